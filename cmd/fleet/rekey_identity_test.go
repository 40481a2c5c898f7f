package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// ageKeygen makes an identity with the real age-keygen and returns its
// file and recipient.
func ageKeygen(t *testing.T) (id, recipient string) {
	t.Helper()
	bin := testtool.Require(t, "age-keygen", "age")
	id = filepath.Join(t.TempDir(), "key.txt")
	if out, err := exec.Command(bin, "-o", id).CombinedOutput(); err != nil {
		t.Fatalf("age-keygen: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-y", id).Output()
	if err != nil {
		t.Fatalf("age-keygen -y: %v", err)
	}
	return id, strings.TrimSpace(string(out))
}

// ageDecrypt is the real age CLI's decryption of path with id.
func ageDecrypt(t *testing.T, id, path string) (string, error) {
	t.Helper()
	bin := testtool.Require(t, "age", "age")
	out, err := exec.Command(bin, "-d", "-i", id, path).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = &ageError{string(ee.Stderr)}
	}
	return string(out), err
}

type ageError struct{ stderr string }

func (e *ageError) Error() string { return "age: " + strings.TrimSpace(e.stderr) }

// setAdmins rewrites fleet(admins = [...]) in file.
func setAdmins(t *testing.T, file string, recipients ...string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	start := strings.Index(s, "admins = [")
	end := strings.Index(s[start:], "]")
	if start < 0 || end < 0 {
		t.Fatalf("%s has no admins = [...]", file)
	}
	s = s[:start] + `admins = ["` + strings.Join(recipients, `", "`) + `"` + s[start+end:]
	if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSecretsRekeyCLI: after a recipient is added to the admins, fleet
// secrets check says the files are stale, fleet secrets rekey re-encrypts
// them, and the real age CLI decrypts them with the new identity to the
// same value; after one is removed, rekey leaves it unable to.
func TestSecretsRekeyCLI(t *testing.T) {
	file, admin := newSecretsFleet(t)
	dir := filepath.Dir(file)
	pwFile := filepath.Join(dir, "secrets/shared/db-password/value.age")
	pw, err := ageDecrypt(t, admin, pwFile)
	if err != nil || len(pw) != 24 {
		t.Fatalf("the admin's age -d: %q, %v", pw, err)
	}
	newID, newRecipient := ageKeygen(t)
	if _, err := ageDecrypt(t, newID, pwFile); err == nil {
		t.Fatal("the new identity decrypts before it is a recipient")
	}
	adminRecipient := strings.TrimSpace(mustOutput(t, "age-keygen", "-y", admin))
	setAdmins(t, file, adminRecipient, newRecipient)

	if code, out, stderr := fleetCmd(t, "secrets", "check", file); code != exitError || !strings.Contains(out, "stale") || !strings.Contains(out, "db-password") {
		t.Fatalf("check after adding an admin: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr := fleetCmd(t, "secrets", "rekey", file, "--identity", admin)
	if code != exitOK || !strings.Contains(out, "db-password") {
		t.Fatalf("rekey: exit %d\n%s%s", code, out, stderr)
	}
	for _, id := range []string{newID, admin} {
		if got, err := ageDecrypt(t, id, pwFile); err != nil || got != pw {
			t.Errorf("age -d -i %s after rekey: %q, %v; want the same password", filepath.Base(id), got, err)
		}
	}
	if code, out, stderr := fleetCmd(t, "secrets", "check", file); code != exitOK {
		t.Fatalf("check after rekey: exit %d\n%s%s", code, out, stderr)
	}
	// web's private host key, encrypted to the admins, too.
	hostKeys, _ := filepath.Glob(filepath.Join(dir, "secrets/web/host-key/*.age"))
	if len(hostKeys) != 1 {
		t.Fatalf("web's host key files: %q", hostKeys)
	}
	if _, err := ageDecrypt(t, newID, hostKeys[0]); err != nil {
		t.Errorf("the new admin cannot read web's host key after rekey: %v", err)
	}

	// Removing the first admin and rekeying with the new one's identity
	// (through FLEET_AGE_IDENTITY) shuts the first out.
	setAdmins(t, file, newRecipient)
	t.Setenv("FLEET_AGE_IDENTITY", newID)
	if code, out, stderr := fleetCmd(t, "secrets", "rekey", file); code != exitOK {
		t.Fatalf("rekey with FLEET_AGE_IDENTITY: exit %d\n%s%s", code, out, stderr)
	}
	if _, err := ageDecrypt(t, admin, pwFile); err == nil {
		t.Error("the removed admin still decrypts after rekey")
	}
	if got, err := ageDecrypt(t, newID, pwFile); err != nil || got != pw {
		t.Errorf("the remaining admin: %q, %v", got, err)
	}
	// Stale files and an identity that is no recipient: rekey cannot
	// decrypt, and says so.
	setAdmins(t, file, newRecipient, adminRecipient)
	code, out, stderr = fleetCmd(t, "secrets", "rekey", file, "--identity", admin)
	if code != exitError || !strings.Contains(out+stderr, "could not be rekeyed") {
		t.Fatalf("rekey with an identity that decrypts nothing: exit %d\n%s%s", code, out, stderr)
	}
}

func mustOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

// withoutIdentityEnv gives the test a HOME of its own and no
// XDG_CONFIG_HOME or FLEET_AGE_IDENTITY, so that the secrets commands
// fall back to the default identity there.
func withoutIdentityEnv(t *testing.T) (home string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("HOME", home)
	for _, k := range []string{"XDG_CONFIG_HOME", "FLEET_AGE_IDENTITY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	return home
}

// TestDefaultIdentity: without --identity or FLEET_AGE_IDENTITY, keygen
// writes the identity to ~/.config/fleet/age/keys.txt (0600) and
// generate, get and rekey find it there; XDG_CONFIG_HOME moves it; with
// none there, the error says where it looked and what to do.
func TestDefaultIdentity(t *testing.T) {
	home := withoutIdentityEnv(t)
	def := filepath.Join(home, ".config", "fleet", "age", "keys.txt")
	code, out, stderr := fleetCmd(t, "secrets", "keygen")
	if code != exitOK || !strings.Contains(out, "wrote "+def+"\n") {
		t.Fatalf("keygen: exit %d\n%s%s", code, out, stderr)
	}
	if fi, err := os.Stat(def); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the default identity: %v %v", fi, err)
	}
	recipient := strings.TrimSpace(out[strings.Index(out, "recipient: ")+len("recipient: "):])
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.star")
	if err := os.WriteFile(file, []byte(strings.Replace(secretsFleetNoPrompt, "RECIPIENT", recipient, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	// derived is computed from db-password: generate decrypts it with
	// the default identity.
	if code, out, stderr := fleetCmd(t, "secrets", "generate", file); code != exitOK {
		t.Fatalf("generate: exit %d\n%s%s", code, out, stderr)
	}
	code, pw, stderr := fleetCmd(t, "secrets", "get", "--file", file, "db-password")
	if code != exitOK || len(pw) != 24 {
		t.Fatalf("get with the default identity: exit %d %q\n%s", code, pw, stderr)
	}
	if got, err := ageDecrypt(t, def, filepath.Join(dir, "secrets/shared/db-password/value.age")); err != nil || got != pw {
		t.Fatalf("age -d -i %s: %q, %v", def, got, err)
	}
	_, newRecipient := ageKeygen(t)
	setAdmins(t, file, recipient, newRecipient)
	if code, out, stderr := fleetCmd(t, "secrets", "rekey", file); code != exitOK {
		t.Fatalf("rekey with the default identity: exit %d\n%s%s", code, out, stderr)
	}

	// None at the default place: where it looked, and what to do.
	if err := os.Rename(def, def+".moved"); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"secrets", "get", "--file", file, "db-password"},
		{"secrets", "rekey", file},
	} {
		if args[1] == "rekey" {
			setAdmins(t, file, recipient) // stale again: rekey must decrypt
		}
		code, out, stderr := fleetCmd(t, args...)
		for _, want := range []string{def, "--identity", "FLEET_AGE_IDENTITY", "fleet secrets keygen"} {
			if code != exitError || !strings.Contains(stderr, want) {
				t.Errorf("%s without an identity: exit %d, stderr lacks %q:\n%s%s", strings.Join(args, " "), code, want, out, stderr)
			}
		}
	}

	// XDG_CONFIG_HOME moves the default; the error names that place.
	xdg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", xdg)
	code, out, stderr = fleetCmd(t, "secrets", "get", "--file", file, "db-password")
	if want := filepath.Join(xdg, "fleet", "age", "keys.txt"); code != exitError || !strings.Contains(stderr, want) {
		t.Errorf("with XDG_CONFIG_HOME: exit %d, want %s in\n%s%s", code, want, out, stderr)
	}
	if err := os.MkdirAll(filepath.Join(xdg, "fleet", "age"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(def+".moved", filepath.Join(xdg, "fleet", "age", "keys.txt")); err != nil {
		t.Fatal(err)
	}
	if code, got, stderr := fleetCmd(t, "secrets", "get", "--file", file, "db-password"); code != exitOK || got != pw {
		t.Errorf("get with the identity under XDG_CONFIG_HOME: exit %d %q\n%s", code, got, stderr)
	}
}
