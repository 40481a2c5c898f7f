package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A fleet made by fleet init is accepted at once by every command a
// newcomer runs next: run, test, lint, fmt --check, nix --check; the
// admin key is found where ssh keeps it.
func TestInitMakesAWorkingFleet(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICRUsbpy39MjwMMclIWhMd+g8agpQUIpojD5WXaTU0r/ me@laptop"
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519.pub"), []byte(key+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "My Homelab")
	code, out, stderr := fleetCmd(t, "init", dir)
	if code != exitOK {
		t.Fatalf("init: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range []string{"wrote " + filepath.Join(dir, "fleet.star"), "admin: the key in " + filepath.Join(home, ".ssh", "id_ed25519.pub"), "next: cd "} {
		if !strings.Contains(out, want) {
			t.Errorf("init's output lacks %q:\n%s", want, out)
		}
	}
	src, _ := os.ReadFile(filepath.Join(dir, "fleet.star"))
	if !strings.Contains(string(src), `name = "my-homelab"`) || !strings.Contains(string(src), key) {
		t.Errorf("fleet.star lacks the folder's name or the key:\n%s", src)
	}
	file := filepath.Join(dir, "fleet.star")
	for _, args := range [][]string{
		{"run", file},
		{"test", dir},
		{"lint", file},
		{"fmt", "--check", dir},
		{"nix", "--check", file},
	} {
		if code, out, stderr := fleetCmd(t, args...); code != exitOK {
			t.Errorf("fleet %s on a new fleet: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
		}
	}

	// A second init overwrites nothing.
	before, _ := os.ReadFile(file)
	if code, _, stderr := fleetCmd(t, "init", dir); code != exitError || !strings.Contains(stderr, "already has fleet.star") {
		t.Errorf("init over a fleet: exit %d: %s", code, stderr)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Error("a second init changed fleet.star")
	}
}

func TestInitOptions(t *testing.T) {
	t.Setenv("HOME", t.TempDir()) // no ssh key there
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no key anywhere", []string{"init"}, exitOK, "admin: none yet"},
		{"key none", []string{"init", "--admin-key", "none"}, exitOK, "admin: none yet"},
		{"key line", []string{"init", "--admin-key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICRUsbpy39MjwMMclIWhMd+g8agpQUIpojD5WXaTU0r/ x"}, exitOK, "next: cd"},
		{"name", []string{"init", "--name", "prod"}, exitOK, "wrote"},
		{"bad name", []string{"init", "--name", "Prod Fleet"}, exitUsage, "use lower-case letters"},
		{"key file that is not a key", []string{"init", "--admin-key", "init_test.go"}, exitUsage, "does not hold an ssh public key"},
		{"two dirs", []string{"init", "a", "b"}, exitUsage, "at most one DIR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "f")
			args := append([]string{}, tc.args...)
			if tc.name != "two dirs" {
				args = append(args, dir)
			}
			code, out, stderr := fleetCmd(t, args...)
			if code != tc.code || !strings.Contains(out+stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q\n%s%s", code, tc.code, tc.want, out, stderr)
			}
			if code == exitOK {
				if code, out, stderr := fleetCmd(t, "run", filepath.Join(dir, "fleet.star")); code != exitOK {
					t.Errorf("run: exit %d\n%s%s", code, out, stderr)
				}
			}
		})
	}
}
