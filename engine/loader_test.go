//go:build unix

package engine_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// evalWithin runs Eval, failing the test if it has not returned after d:
// the loader must refuse what it cannot read, never wait on it.
func evalWithin(t *testing.T, d time.Duration, file string, opts engine.Options) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := engine.Eval(context.Background(), file, opts)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Eval(%s) still running after %v", file, d)
		return nil
	}
}

// TestNonRegularFileRefused checks that a FIFO or a device is refused as
// a .star file, at the statement naming it, without being read.
func TestNonRegularFileRefused(t *testing.T) {
	dir := writeTree(t, map[string]string{"fleet.star": header + "load(\"lib.star\", \"x\")\n"})
	if err := syscall.Mkfifo(filepath.Join(dir, "lib.star"), 0o644); err != nil {
		testtool.Unavailable(t, "no FIFOs: "+err.Error())
	}
	err := evalWithin(t, 5*time.Second, filepath.Join(dir, "fleet.star"), engine.Options{})
	if err == nil || !strings.Contains(err.Error(), "fleet.star:3:") || !strings.Contains(err.Error(), "lib.star: not a regular file") {
		t.Errorf("load of a FIFO: got %v, want fleet.star:3: ... lib.star: not a regular file", err)
	}
	// The entry file itself.
	err = evalWithin(t, 5*time.Second, filepath.Join(dir, "lib.star"), engine.Options{})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO as entry file: got %v", err)
	}
	err = evalWithin(t, 5*time.Second, "/dev/zero", engine.Options{})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("/dev/zero as entry file: got %v", err)
	}
}

// TestRootSlash checks that --root / works: every file is inside it.
func TestRootSlash(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"fleet.star": header + "load(\"lib.star\", \"x\")\n",
		"lib.star":   "x = 1\n",
	})
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := evalWithin(t, 30*time.Second, filepath.Join(real, "fleet.star"), engine.Options{Root: "/"}); err != nil {
		t.Errorf("Eval with root /: %v", err)
	}
}

// TestFilePathMustBeRegular checks that nix.path, modules = and the like,
// whose files fleet nix copies into the tree, refuse a directory where
// they are called, not later in fleet nix.
func TestFilePathMustBeRegular(t *testing.T) {
	for name, src := range map[string]string{
		"nix.path": "p = nix.path(\"dir\")\n",
		"modules":  "feature(\"x\", modules = [\"dir\"])\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"fleet.star": header + src, "dir/a.nix": "{ }\n"})
			err := evalWithin(t, 30*time.Second, filepath.Join(dir, "fleet.star"), engine.Options{})
			if err == nil || !strings.Contains(err.Error(), "fleet.star:3:") || !strings.Contains(err.Error(), "dir: not a regular file (a directory)") {
				t.Errorf("got %v, want fleet.star:3: ... dir: not a regular file (a directory)", err)
			}
		})
	}
}
