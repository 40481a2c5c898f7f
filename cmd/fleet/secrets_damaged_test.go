package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// secretsFleetNoPrompt is secretsFleet without the secret asked of a
// person, so that generate makes everything.
var secretsFleetNoPrompt = strings.Replace(secretsFleet,
	`secret("api-token", shared = True, generate = gen.prompt(type = "hidden", label = "API token"))`+"\n", "", 1)

// newSecretsFleet writes a fleet whose admin is a new identity and
// generates its secrets: the fleet file and the identity.
func newSecretsFleet(t *testing.T) (file, id string) {
	t.Helper()
	dir := t.TempDir()
	id = filepath.Join(dir, "admin.txt")
	recipient := keygen(t, id)
	file = filepath.Join(dir, "fleet.star")
	if err := os.WriteFile(file, []byte(strings.Replace(secretsFleetNoPrompt, "RECIPIENT", recipient, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := fleetCmd(t, "secrets", "generate", file, "--identity", id); code != exitOK {
		t.Fatalf("generate: exit %d\n%s%s", code, out, stderr)
	}
	return file, id
}

// flipLastByte changes one byte of the ciphertext (not of the header).
func flipLastByte(t *testing.T, p string) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1] ^= 0x01
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A secret file with one byte changed is refused by the deploy's secrets
// step, naming the file and what to do, as `fleet secrets check` reports
// it; rekey, which cannot decrypt it, and generate, which will not
// overwrite it, exit non-zero.
func TestDeployRefusesDamagedSecret(t *testing.T) {
	testtool.Require(t, "age", "age")
	file, id := newSecretsFleet(t)
	dir := filepath.Dir(file)
	rel := "secrets/shared/db-password/value.age"

	f, err := engine.Eval(context.Background(), file, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	web := f.Machine("web")
	if err := secretsReady(f)(web); err != nil {
		t.Fatalf("secrets step with every file in order: %v", err)
	}

	flipLastByte(t, filepath.Join(dir, rel))
	if code, out, _ := fleetCmd(t, "secrets", "check", file); code != exitError || !strings.Contains(out, rel) {
		t.Fatalf("check of a damaged file: exit %d\n%s", code, out)
	}
	err = secretsReady(f)(web)
	if err == nil {
		t.Fatal("the deploy's secrets step accepted a damaged secret file")
	}
	for _, want := range []string{rel, "fleet secrets check", "fleet secrets rekey", "generate --regenerate db-password"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the secrets step's error lacks %q: %v", want, err)
		}
	}

	if code, out, stderr := fleetCmd(t, "secrets", "rekey", file, "--identity", id); code == exitOK || !strings.Contains(out+stderr, rel) {
		t.Errorf("rekey of a file it cannot decrypt: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := fleetCmd(t, "secrets", "generate", file, "--identity", id, "--regenerate", "db-password"); code == exitOK {
		t.Errorf("generate with a damaged file: exit %d\n%s%s", code, out, stderr)
	}
}
