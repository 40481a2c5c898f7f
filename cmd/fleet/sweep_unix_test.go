//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// TestSweepLeftovers: a plaintext folder whose run was killed with -9
// (simulated: named after a pid that is gone) is removed when the next
// command that makes such folders starts; one of a running process stays.
func TestSweepLeftovers(t *testing.T) {
	runtime := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	live := exec.Command("sleep", "60")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Process.Kill(); live.Wait() })
	base := filepath.Join(runtime, "fleet")
	if err := os.Mkdir(base, 0o700); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(base, "fleet-secret-in-"+strconv.Itoa(dead.Process.Pid)+"-123")
	kept := filepath.Join(base, "fleet-secret-out-"+strconv.Itoa(live.Process.Pid)+"-456")
	for _, d := range []string{gone, kept} {
		if err := os.MkdirAll(filepath.Join(d, "db"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "db", "value"), []byte("plaintext"), 0o600)
	}

	dir := t.TempDir()
	id := filepath.Join(dir, "admin.txt")
	recipient := keygen(t, id)
	file := filepath.Join(dir, "fleet.star")
	os.WriteFile(file, []byte(`fleet(name = "s", admins = ["`+recipient+`"])
secret("pw", shared = True, generate = gen.password(length = 8))
`), 0o644)
	if code, _, stderr := fleetCmd(t, "secrets", "generate", file, "--identity", id); code != exitOK {
		t.Fatalf("generate: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("the folder of a killed run was not swept: %v", err)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("the folder of a running process was swept: %v", err)
	}
}
