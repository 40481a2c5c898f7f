package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// TestReferenceFleetSecrets is the "done": with an admin identity,
// fleet secrets generate creates the reference fleet's generated secrets
// (the prompted ones are listed as missing without a terminal), check
// passes once those are set, age decrypts them, the generated modules
// refer to them, and no plaintext is left anywhere.
//
// The reference fleet's admin key is replaced by one the test holds, and
// the two programs its gen.command secrets run (zerotier-idtool, mkpasswd)
// are small stand-ins on PATH.
func TestReferenceFleetSecrets(t *testing.T) {
	ageBin := testtool.Require(t, "age", "age")
	dir := t.TempDir()
	for _, p := range []string{"fleet.star", "features", "lib", "nix", "pkgs"} {
		if err := os.CopyFS(filepath.Join(dir, p), os.DirFS(filepath.Join(repoRoot, p))); err != nil {
			if err := copyFile(filepath.Join(repoRoot, p), filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	id := filepath.Join(t.TempDir(), "admin.txt")
	recipient := keygen(t, id)
	ids := filepath.Join(dir, "lib/identities.star")
	src, _ := os.ReadFile(ids)
	if !strings.Contains(string(src), "age10yly8sa6n8p37q3z2nek64mlgxwtq6q4dcd0zsk7hl3s6r6w3kcqe7qee2") {
		t.Fatal("lib/identities.star no longer has cameron's age key; update this test")
	}
	os.WriteFile(ids, []byte(strings.ReplaceAll(string(src), "age10yly8sa6n8p37q3z2nek64mlgxwtq6q4dcd0zsk7hl3s6r6w3kcqe7qee2", recipient)), 0o644)

	bin := t.TempDir()
	stub := func(name, script string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub("zerotier-idtool", `[ "$1" = generate ] || exit 2
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$2"; printf 'public-of-%s\n' "$(head -c 8 "$2")" > "$3"
`)
	stub("mkpasswd", `read -r pw; printf '$y$j9T$stand-in$%s\n' "$(printf %s "$pw" | od -An -tx1 | tr -d ' \n' | tail -c 16)"
`)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))

	file := filepath.Join(dir, "fleet.star")
	code, out, stderr := fleetCmd(t, "secrets", "generate", file, "--identity", id)
	if code != exitError || !strings.Contains(stderr, "2 secret files typed by a person are missing") {
		t.Fatalf("generate: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := fleetCmd(t, "run", file, "--out", t.TempDir()); code != exitOK || !strings.Contains(out, "; 2 files missing (fleet secrets generate)") {
		t.Fatalf("run with two secret files missing: exit %d\n%s%s", code, out, stderr)
	}
	for _, name := range []string{"hetzner-api-token", "gcp-service-account-json"} {
		value := "value-of-" + name
		args := []string{"secrets", "set", "--file", file, name}
		if name == "hetzner-api-token" {
			args = append(args, "--machine", "cinnabar")
		}
		if code, out, stderr := fleetCmdIn(t, value, args...); code != exitOK {
			t.Fatalf("set %s: exit %d\n%s%s", name, code, out, stderr)
		}
	}
	code, out, stderr = fleetCmd(t, "secrets", "check", file)
	if code != exitOK {
		t.Fatalf("check: exit %d\n%s%s", code, out, stderr)
	}
	pw, err := exec.Command(ageBin, "-d", "-i", id, filepath.Join(dir, "secrets/shared/cameron-password/value.age")).Output()
	if err != nil || len(strings.Fields(string(pw))) != 1 || strings.Count(string(pw), "-") != 4 {
		t.Fatalf("age -d of cameron's passphrase: %v %q", err, pw)
	}
	nixOut := filepath.Join(t.TempDir(), "nix")
	if code, _, stderr := fleetCmd(t, "nix", file, "--out", nixOut); code != exitOK {
		t.Fatal(stderr)
	}
	cinnabar, _ := os.ReadFile(filepath.Join(nixOut, "machines/nixos/cinnabar.nix"))
	for _, want := range []string{"ssh-host-key = {", "zerotier-identity = {", "cameron-password-hash = {"} {
		if !strings.Contains(string(cinnabar), want) {
			t.Errorf("cinnabar's module lacks %s", want)
		}
	}
	if _, err := os.Stat(filepath.Join(nixOut, "secrets/cinnabar/ssh-host-key/ssh_host_ed25519_key.age")); err != nil {
		t.Errorf("the encrypted host key is not in the Nix tree: %v", err)
	}
	// No plaintext: the passphrase and the values set appear in no file.
	leaks := []string{strings.TrimSpace(string(pw)), "value-of-hetzner-api-token", "value-of-gcp-service-account-json"}
	assertNoPlaintext(t, leaks, dir, nixOut)
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}
