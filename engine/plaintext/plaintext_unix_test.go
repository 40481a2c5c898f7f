//go:build unix

package plaintext

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMkdirTempPrivate(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	d, err := MkdirTemp("fleet-test-")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(d) != filepath.Join(rt, "fleet") {
		t.Errorf("folder %s is not in $XDG_RUNTIME_DIR/fleet", d)
	}
	if pid, ok := ownerPid(filepath.Base(d)); !ok || pid != os.Getpid() {
		t.Errorf("name %s does not carry our pid", filepath.Base(d))
	}
	for _, p := range []string{filepath.Dir(d), d} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
	}
	// Our own folder is never swept.
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d); err != nil {
		t.Errorf("Sweep removed a folder of this process: %v", err)
	}
}

func TestRefusesOpenOrForeignBase(t *testing.T) {
	rt := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", rt)
	base := filepath.Join(rt, "fleet")
	os.Mkdir(base, 0o755)
	os.Chmod(base, 0o755)
	if _, err := MkdirTemp("fleet-test-"); err == nil || !strings.Contains(err.Error(), "open to others") {
		t.Errorf("a 0755 base: %v", err)
	}
	if err := Sweep(); err == nil {
		t.Error("Sweep went into a 0755 base")
	}
	os.Chmod(base, 0o700)
	if err := os.Chown(base, os.Getuid()+1, -1); err == nil {
		if _, err := MkdirTemp("fleet-test-"); err == nil || !strings.Contains(err.Error(), "belongs to uid") {
			t.Errorf("someone else's base: %v", err)
		}
	} else {
		t.Logf("cannot chown (not root): the other owner's case is not tested: %v", err)
	}
	os.Remove(base)
	other := t.TempDir()
	os.Symlink(other, base)
	if _, err := MkdirTemp("fleet-test-"); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("a symlinked base: %v", err)
	}
}

func TestFallbackBase(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if got, want := baseDir(), filepath.Join(tmp, "fleet-"+strconv.Itoa(os.Getuid())); got != want {
		t.Errorf("base %s, want %s", got, want)
	}
}

func TestOwnerPid(t *testing.T) {
	for name, want := range map[string]int{
		"fleet-secret-in-123-456789": 123,
		"fleet-credentials-7-1":      7,
		"fleet-secret-in-456789":     0, // made before pids were in names: left alone
		"other-12-34":                0,
		"fleet-x--1":                 0,
	} {
		got, ok := ownerPid(name)
		if got != want || ok != (want != 0) {
			t.Errorf("ownerPid(%q) = %d, %v; want %d", name, got, ok, want)
		}
	}
}
