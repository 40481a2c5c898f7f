package scaffold

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestNameFor(t *testing.T) {
	for in, want := range map[string]string{
		"homelab":        "homelab",
		"My Fleet":       "my-fleet",
		"infra_2026":     "infra-2026",
		"--x--":          "x",
		"...":            "fleet",
		"Ünïcode Stuff!": "n-code-stuff",
	} {
		if got := NameFor(in); got != want {
			t.Errorf("NameFor(%q) = %q, want %q", in, got, want)
		}
	}
}

// Write refuses when any file exists, and then writes none.
func TestWriteOverwritesNothing(t *testing.T) {
	dir := t.TempDir()
	files, err := Files(dir, Options{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fleet_test.star"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = Write(dir, files)
	if err == nil || !strings.Contains(err.Error(), "already has fleet_test.star") {
		t.Fatalf("Write over an existing file: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("a refused init wrote files: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "fleet_test.star")); string(b) != "mine" {
		t.Errorf("the user's file was changed: %q", b)
	}
}

func TestFilesRefusesBadInput(t *testing.T) {
	if _, err := Files(t.TempDir(), Options{Name: "Bad Name"}); err == nil {
		t.Error("a name with capitals and a space was accepted")
	}
	if _, err := Files(t.TempDir(), Options{Name: "x", AdminKey: "ssh-ed25519 AAAA\"] + evil"}); err == nil {
		t.Error("a key that breaks out of its string was accepted")
	}
}
