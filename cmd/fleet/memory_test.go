package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// --max-memory reaches every command that evaluates, and a size that
// does not read is a usage error before any work. Not parallel: the
// guard measures the whole process.
func TestMaxMemoryFlag(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.star")
	src := "fleet(name = \"m\")\ndef f():\n    s = \"x\"\n    for i in range(64):\n        s = s + s\n    return s\nt = f()\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	test := filepath.Join(dir, "grow_test.star")
	if err := os.WriteFile(test, []byte("def test_grow():\n    s = \"x\"\n    for i in range(64):\n        s = s + s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"run", []string{"run", "--max-memory", "64MiB", file}, exitError, "fleet.star:5:15: evaluation used more than 64MiB of memory"},
		{"eval", []string{"eval", "--max-memory", "64MiB", file}, exitError, "evaluation used more than 64MiB"},
		{"test", []string{"test", "--max-memory", "64MiB", test}, exitError, "used more than 64MiB of memory"},
		{"repl", []string{"repl", "--max-memory", "64MiB", file}, exitError, "used more than 64MiB"},
		{"bad size", []string{"run", "--max-memory", "lots", file}, exitUsage, `--max-memory: "lots" is not a size`},
		{"bad unit", []string{"test", "--max-memory", "3 parsecs", test}, exitUsage, "unknown unit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GC()
			code, stdout, stderr := fleetCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
				t.Fatalf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, stdout, stderr)
			}
		})
	}
}
