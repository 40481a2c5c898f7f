package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
)

const secretsFleet = `fleet(name = "s", admins = ["RECIPIENT"])
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
input("agenix", url = "github:ryantm/agenix")
host = secret("host-key", machines = "@cloud", generate = gen.ssh_keypair(), files = {"key": "ssh_host_ed25519_key"}, needed_for = "activation")
machine("web", system = "x86_64-linux", state_version = "26.05", tags = ["cloud"], host_key = host)
secret("db-password", machines = "web", shared = True, generate = gen.password(length = 24))
secret("derived", machines = "web", depends = ["db-password"],
    generate = gen.command(["sh", "-c", "tr a-z A-Z < $in/db-password/value > $out/upper"], outputs = ["upper"]))
secret("api-token", shared = True, generate = gen.prompt(type = "hidden", label = "API token"))
`

// TestSecretsCLI walks the secrets commands as a user would: keygen,
// generate without a terminal, set what needs a person, check, get, the
// age CLI reading fleet's files, and the Nix tree referring to them.
func TestSecretsCLI(t *testing.T) {
	ageBin := testtool.Require(t, "age", "age")
	dir := t.TempDir()
	id := filepath.Join(dir, "admin.txt")
	recipient := keygen(t, id)
	if code, _, _ := fleetCmd(t, "secrets", "keygen", "--identity", id); code != exitError {
		t.Fatal("keygen overwrote an existing identity")
	}
	file := filepath.Join(dir, "fleet.star")
	if err := os.WriteFile(file, []byte(strings.Replace(secretsFleet, "RECIPIENT", recipient, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	var printed strings.Builder
	run := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		code, out, stderr := fleetCmdIn(t, stdin, args...)
		printed.WriteString(out + stderr)
		return code, out, stderr
	}

	// No terminal: the prompt is listed as missing, the rest is generated.
	code, out, stderr := run("", "secrets", "generate", file, "--identity", id)
	if code != exitError || !strings.Contains(out, "secrets/shared/api-token/value.age") || !strings.Contains(stderr, "1 secret file typed by a person is missing") {
		t.Fatalf("generate without a terminal: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := run("", "run", file, "--out", t.TempDir()); code != exitOK || !strings.Contains(out, "; 1 file missing (fleet secrets generate)") {
		t.Fatalf("run with one secret file missing: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, _ := run("", "secrets", "check", file); code != exitError || !strings.Contains(out, "api-token") {
		t.Fatalf("check with a missing secret: exit %d\n%s", code, out)
	}
	if code, out, stderr := run("s3cr3t-token-value", "secrets", "set", "--file", file, "api-token"); code != exitOK {
		t.Fatalf("set: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := run("", "secrets", "check", file); code != exitOK {
		t.Fatalf("check: exit %d\n%s%s", code, out, stderr)
	}

	// get, and the age CLI, read the same values.
	code, pw, stderr := fleetCmd(t, "secrets", "get", "--file", file, "--identity", id, "db-password")
	if code != exitOK || len(pw) != 24 {
		t.Fatalf("get: exit %d, %q: %s", code, pw, stderr)
	}
	ageOut, err := exec.Command(ageBin, "-d", "-i", id, filepath.Join(dir, "secrets/shared/db-password/value.age")).Output()
	if err != nil || string(ageOut) != pw {
		t.Fatalf("age -d: %v, %q want %q", err, ageOut, pw)
	}
	_, derived, _ := fleetCmd(t, "secrets", "get", "--file", file, "--identity", id, "derived", "--machine", "web")
	if derived != strings.ToUpper(pw) {
		t.Fatalf("the gen.command secret computed from db-password: %q", derived)
	}
	if code, _, stderr := fleetCmd(t, "secrets", "get", "--file", file, "--identity", id, "derived"); code != exitUsage || !strings.Contains(stderr, "--machine") {
		t.Fatalf("a per-machine secret without --machine: exit %d: %s", code, stderr)
	}

	// The Nix tree: web decrypts host-key, derived and db-password with
	// its generated host key, which secrets.nix lists.
	out2 := filepath.Join(dir, "nix")
	if code, _, stderr := run("", "nix", file, "--out", out2); code != exitOK {
		t.Fatalf("nix: %s", stderr)
	}
	pub, _ := os.ReadFile(filepath.Join(dir, "secrets/web/host-key/key.pub"))
	rules, _ := os.ReadFile(filepath.Join(out2, "secrets.nix"))
	machine, _ := os.ReadFile(filepath.Join(out2, "machines/nixos/web.nix"))
	if len(pub) == 0 || !strings.Contains(string(rules), strings.TrimSpace(string(pub))) {
		t.Errorf("secrets.nix does not list web's host key:\n%s", rules)
	}
	for _, want := range []string{"db-password = {", "derived = {", "../../secrets/shared/db-password/value.age"} {
		if !strings.Contains(string(machine), want) {
			t.Errorf("machines/nixos/web.nix lacks %q", want)
		}
	}

	// A damaged file is reported and never overwritten.
	target := filepath.Join(dir, "secrets/shared/db-password/value.age")
	os.WriteFile(target, []byte("not age\n"), 0o600)
	if code, out, _ := run("", "secrets", "check", file); code != exitError || !strings.Contains(out, "not age files") {
		t.Fatalf("check of a corrupt file: exit %d\n%s", code, out)
	}
	run("", "secrets", "generate", file, "--identity", id, "--regenerate", "db-password")
	if b, _ := os.ReadFile(target); string(b) != "not age\n" {
		t.Fatal("a corrupt file was overwritten")
	}

	// Nothing fleet printed or wrote in plain text holds a secret value.
	leaks := []string{pw, strings.ToUpper(pw), "s3cr3t-token-value"}
	assertNoPlaintext(t, leaks, dir)
	for _, l := range leaks {
		if strings.Contains(printed.String(), l) {
			t.Errorf("fleet printed a secret value outside `secrets get`")
		}
	}
}

// assertNoPlaintext fails for every file under roots that holds one of
// the leaks (secret values that must only exist encrypted).
func assertNoPlaintext(t *testing.T, leaks []string, roots ...string) {
	t.Helper()
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, _ := os.ReadFile(p)
			for _, l := range leaks {
				if strings.Contains(string(data), l) {
					t.Errorf("%s holds a plaintext secret", p)
				}
			}
			return nil
		})
	}
}
