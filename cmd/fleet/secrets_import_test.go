package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
	"golang.org/x/crypto/ssh"
)

// sopsTestdata holds files made by the sops CLI and the throwaway age
// identity they are encrypted to (make.sh there says how).
const sopsTestdata = "../../engine/secrets/sopsfile/testdata"

// TestSecretsImportSops imports files made by sops as a user would: the
// first run prints the declarations to paste, the second stores the
// values, check is content, and the age CLI reads back every value.
func TestSecretsImportSops(t *testing.T) {
	ageBin := testtool.Require(t, "age", "age")
	dir := t.TempDir()
	admin := filepath.Join(dir, "admin.txt")
	recipient := keygen(t, admin)
	sopsKey, err := filepath.Abs(filepath.Join(sopsTestdata, "key.txt"))
	if err != nil {
		t.Fatal(err)
	}
	td := func(name string) string { return filepath.Join(sopsTestdata, name) }
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	hostKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	file := filepath.Join(dir, "fleet.star")
	fleetText := `fleet(name = "s", admins = ["` + recipient + `"])
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
input("agenix", url = "github:ryantm/agenix")
machine("web", system = "x86_64-linux", state_version = "26.05", host_key = "` + hostKey + `")
`
	if err := os.WriteFile(file, []byte(fleetText), 0o644); err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	imp := func(args ...string) (int, string, string) {
		t.Helper()
		code, out, stderr := fleetCmd(t, append([]string{"secrets", "import", "sops", "--file", file, "--identity", sopsKey}, args...)...)
		printed.WriteString(out + stderr)
		return code, out, stderr
	}
	// paste appends the declarations a run printed to fleet.star.
	paste := func(out string) {
		t.Helper()
		f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(out); err != nil {
			t.Fatal(err)
		}
	}

	// YAML (nested keys, a list, a number, a bool), dotenv and binary at
	// once, for machine web: first the declarations, nothing stored.
	code, out, stderr := imp("--machine", "web", td("secrets.yaml"), td("secrets.env"), td("secrets.bin"))
	if code != exitError || !strings.Contains(stderr, "11 secrets are not declared") {
		t.Fatalf("import of undeclared secrets: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{`secret("db-password", machines = "web")`, `secret("db-port", machines = "web")`,
		`secret("hosts-1", machines = "web")`, `secret("DB_PASSWORD", machines = "web")`, `secret("secrets", machines = "web")`} {
		if !strings.Contains(out, want) {
			t.Errorf("the declarations lack %s:\n%s", want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "secrets")); err == nil {
		t.Fatal("an import of undeclared secrets stored something")
	}
	paste(out)
	code, out, stderr = imp("--machine", "web", td("secrets.yaml"), td("secrets.env"), td("secrets.bin"))
	if code != exitOK || strings.Count(out, "stored ") != 11 {
		t.Fatalf("import: exit %d\n%s%s", code, out, stderr)
	}

	// INI and JSON, one key each named on the command line, shared.
	code, out, _ = imp("--key", "db/user=ini-user", "--key", "api/token", td("secrets.ini"))
	if code != exitError || !strings.Contains(out, `secret("ini-user", shared = True)`) || !strings.Contains(out, `secret("api-token", shared = True)`) {
		t.Fatalf("INI declarations: exit %d\n%s", code, out)
	}
	paste(out)
	code, out, _ = imp("--key", "enabled", "--secret", "json-enabled", td("secrets.json"))
	if code != exitError || !strings.Contains(out, `secret("json-enabled", shared = True)`) {
		t.Fatalf("JSON declaration: exit %d\n%s", code, out)
	}
	paste(out)
	if code, out, stderr := imp("--key", "db/user=ini-user", "--key", "api/token", td("secrets.ini")); code != exitOK {
		t.Fatalf("INI import: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := imp("--key", "enabled", "--secret", "json-enabled", td("secrets.json")); code != exitOK {
		t.Fatalf("JSON import: exit %d\n%s%s", code, out, stderr)
	}

	// --dry-run stores nothing, says what it would.
	before, _ := os.ReadFile(filepath.Join(dir, "secrets/.recipients.json"))
	if code, out, _ := imp("--dry-run", "--key", "enabled", "--secret", "json-enabled", td("secrets.json")); code != exitOK || !strings.Contains(out, "would store") {
		t.Fatalf("--dry-run: exit %d\n%s", code, out)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "secrets/.recipients.json")); string(after) != string(before) {
		t.Fatal("--dry-run changed the record")
	}

	// The record is right: check is content.
	if code, out, stderr := fleetCmd(t, "secrets", "check", file); code != exitOK {
		t.Fatalf("check after the import: exit %d\n%s%s", code, out, stderr)
	}

	// Every value decrypts with the age CLI to what was encrypted with sops.
	bin, err := os.ReadFile(td("plain.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]string{
		"web/db-password": "hunter2", "web/db-port": "5432", "web/db-ratio": "0.75", "web/db-enabled": "true",
		"web/api_token": "tok-123", "web/multi": "line one\nline two\n", "web/hosts-0": "alpha", "web/hosts-1": "beta",
		"web/DB_PASSWORD": "hunter2", "web/API_TOKEN": "tok-123", "web/secrets": string(bin),
		"shared/ini-user": "admin", "shared/api-token": "tok-123", "shared/json-enabled": "false",
	} {
		got, err := exec.Command(ageBin, "-d", "-i", admin, filepath.Join(dir, "secrets", rel, "value.age")).Output()
		if err != nil || string(got) != want {
			t.Errorf("age -d %s: %v, %q, want %q", rel, err, got, want)
		}
	}

	// Refused: a file not encrypted to us (naming whom it is encrypted
	// to), a changed file (MAC), a machine for a shared secret, --secret
	// for several values, a key the file lacks.
	other, _ := os.ReadFile(td("other.pub"))
	if code, _, stderr := imp(td("other.yaml")); code != exitError || !strings.Contains(stderr, strings.TrimSpace(string(other))) {
		t.Errorf("a file for another key: exit %d: %s", code, stderr)
	}
	yml, _ := os.ReadFile(td("secrets.yaml"))
	var kept []string
	for _, l := range strings.Split(string(yml), "\n") {
		if !strings.HasPrefix(l, "api_token:") {
			kept = append(kept, l)
		}
	}
	tampered := filepath.Join(dir, "tampered.yaml")
	if err := os.WriteFile(tampered, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := imp("--machine", "web", tampered); code != exitError || !strings.Contains(stderr, "MAC mismatch") {
		t.Errorf("a changed file: exit %d: %s", code, stderr)
	}
	if code, _, stderr := imp("--machine", "web", "--key", "enabled=json-enabled", td("secrets.json")); code != exitError || !strings.Contains(stderr, "leave out --machine") {
		t.Errorf("--machine for a shared secret: exit %d: %s", code, stderr)
	}
	if code, _, stderr := imp("--secret", "x", td("secrets.env")); code != exitUsage {
		t.Errorf("--secret for two values: exit %d: %s", code, stderr)
	}
	if code, _, stderr := imp("--key", "db/nope", td("secrets.yaml")); code != exitError || !strings.Contains(stderr, "db/password") {
		t.Errorf("a missing key: exit %d: %s", code, stderr)
	}

	// No value was printed, and none is in plain text under the fleet.
	leaks := []string{"hunter2", "tok-123", "line one", "alpha"}
	assertNoPlaintext(t, leaks, dir)
	for _, l := range leaks {
		if strings.Contains(printed.String(), l) {
			t.Errorf("the import printed a value (%q)", l)
		}
	}
}
