package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Two runs in the same second get folders of their own: their logs used
// to interleave in one.
func TestRunLogDirSameSecond(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2026, 12, 1, 23, 59, 59, 0, time.UTC)
	seen := map[string]bool{}
	for i := range 3 {
		dir, err := runLogDir(root, "build-", now)
		if err != nil {
			t.Fatal(err)
		}
		if seen[dir] {
			t.Fatalf("run %d got %s again", i, dir)
		}
		seen[dir] = true
		st, err := os.Stat(dir)
		if err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v", dir, st, err)
		}
	}
	for _, want := range []string{"build-20261201-235959", "build-20261201-235959-2", "build-20261201-235959-3"} {
		if !seen[filepath.Join(root, ".fleet", "logs", want)] {
			t.Errorf("no folder %s among %v", want, seen)
		}
	}
}
