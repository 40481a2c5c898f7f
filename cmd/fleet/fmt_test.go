package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles creates files (slash paths relative to dir) with contents.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const (
	unformattedStar = "x=1\nf(a=1,b = 2)\n"
	formattedStar   = "x = 1\nf(a = 1, b = 2)\n"
)

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"fleet.star":          unformattedStar,
		"fleet.deps":          "dep( 'x' )\n",
		"features/ok.star":    formattedStar,
		"features/ssh.star":   unformattedStar,
		"testdata/odd.star":   unformattedStar,
		".fleet/nix/gen.star": unformattedStar,
		"notes.txt":           unformattedStar,
	})
	os.Chmod(filepath.Join(dir, "features/ssh.star"), 0o600)

	// --check: lists, writes nothing, exits 1.
	code, stdout, stderr := fleetCmd(t, "fmt", "--check", dir)
	wantList := strings.Join([]string{
		filepath.Join(dir, "features/ssh.star"), filepath.Join(dir, "fleet.deps"), filepath.Join(dir, "fleet.star"),
	}, "\n") + "\n"
	if code != exitError || stdout != wantList || !strings.Contains(stderr, "3 files not formatted") {
		t.Fatalf("fmt --check: exit %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", code, stdout, wantList, stderr)
	}
	if got := readFile(t, filepath.Join(dir, "fleet.star")); got != unformattedStar {
		t.Fatal("--check wrote a file")
	}

	// --diff implies --check and shows what would change.
	code, stdout, _ = fleetCmd(t, "fmt", "-d", filepath.Join(dir, "fleet.star"))
	if code != exitError || !strings.Contains(stdout, "\n-x=1\n") || !strings.Contains(stdout, "\n+x = 1\n") || !strings.Contains(stdout, "@@ -1,2 +1,2 @@") {
		t.Fatalf("fmt -d: exit %d\n%s", code, stdout)
	}

	// Formatting: prints what it changed, leaves the rest alone.
	code, stdout, stderr = fleetCmd(t, "fmt", dir)
	if code != exitOK || stdout != wantList {
		t.Fatalf("fmt: exit %d\nstdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
	if got := readFile(t, filepath.Join(dir, "features/ssh.star")); got != formattedStar {
		t.Errorf("features/ssh.star = %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "fleet.deps")); got != "dep(\"x\")\n" {
		t.Errorf("fleet.deps = %q", got)
	}
	if info, _ := os.Stat(filepath.Join(dir, "features/ssh.star")); info.Mode().Perm() != 0o600 {
		t.Errorf("mode changed to %v", info.Mode().Perm())
	}
	for _, skipped := range []string{"testdata/odd.star", ".fleet/nix/gen.star", "notes.txt"} {
		if got := readFile(t, filepath.Join(dir, skipped)); got != unformattedStar {
			t.Errorf("%s was formatted", skipped)
		}
	}

	// Formatted now: nothing to do, --check passes.
	if code, stdout, stderr := fleetCmd(t, "fmt", dir); code != exitOK || stdout != "" {
		t.Errorf("second fmt: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := fleetCmd(t, "fmt", dir, "--check"); code != exitOK || stdout != "" {
		t.Errorf("fmt --check after fmt: exit %d\n%s%s", code, stdout, stderr)
	}

	// A file named explicitly is formatted even under testdata.
	if code, stdout, _ := fleetCmd(t, "fmt", filepath.Join(dir, "testdata/odd.star")); code != exitOK || !strings.Contains(stdout, "odd.star") {
		t.Errorf("fmt testdata/odd.star: exit %d, %s", code, stdout)
	}
}

func TestFmtParseError(t *testing.T) {
	dir := t.TempDir()
	broken := "x = 1\nf(a b)\n"
	writeFiles(t, dir, map[string]string{"a.star": broken, "b.star": unformattedStar})
	code, stdout, stderr := fleetCmd(t, "fmt", dir)
	if code != exitError || !strings.Contains(stderr, filepath.Join(dir, "a.star")+":2:6: got identifier, want ','") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if got := readFile(t, filepath.Join(dir, "a.star")); got != broken {
		t.Error("the file that does not parse was changed")
	}
	// The other files are still formatted.
	if got := readFile(t, filepath.Join(dir, "b.star")); got != formattedStar {
		t.Errorf("b.star = %q", got)
	}
	if code, _, stderr := fleetCmd(t, "fmt", "--check", dir); code != exitError || !strings.Contains(stderr, "a.star:2:6") {
		t.Errorf("--check with a parse error: exit %d, %s", code, stderr)
	}
}

func TestFmtUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"fmt", "no/such/dir"}, exitError, "no such file"},
		{[]string{"fmt", "--nope"}, exitUsage, "fmt: unknown flag --nope"},
		{[]string{"lint", "a.star", "b.star"}, exitUsage, "takes one FILE"},
		{[]string{"lint", "testdata/none.star"}, exitError, "no such file"},
	} {
		code, _, stderr := fleetCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("fleet %s: exit %d (want %d), stderr %q (want %q)", strings.Join(tc.args, " "), code, tc.code, stderr, tc.stderr)
		}
	}
}

// TestRepositoryFormatted is the issue's "fleet fmt --check passes on the
// repository itself". A failure here means a .star file was added or
// edited without formatting: run `go run ./cmd/fleet fmt .`.
func TestRepositoryFormatted(t *testing.T) {
	code, stdout, stderr := fleetCmd(t, "fmt", "--check", "--diff", repoRoot)
	if code != exitOK {
		t.Errorf("fleet fmt --check: exit %d; run `go run ./cmd/fleet fmt .` at the repository root\n%s%s", code, stdout, stderr)
	}
}

func TestLint(t *testing.T) {
	// The reference fleet and the minimal example are clean.
	for _, file := range []string{"fleet.star", "examples/minimal/fleet.star"} {
		code, stdout, stderr := fleetCmd(t, "lint", filepath.Join(repoRoot, file))
		if code != exitOK || stdout != "" {
			t.Errorf("lint %s: exit %d\n%s%s", file, code, stdout, stderr)
		}
	}

	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"fleet.star": `load("//lib/util.star", "helper", "unused")

fleet(name = "t")

channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")

include("features/*.star")

machine("web", system = "x86_64-linux", state_version = "26.05", features = helper())
`,
		"lib/util.star": `unused = 1

def helper():
    tmp = 1
    return ["base"]

def _private():
    pass
`,
		"features/base.star": `feature("base")

feature("spare")

# lint: ignore=unused-feature  kept for the next machine
feature("kept")
`,
		"features/base_test.star": `load("//lib/util.star", "unused_in_test")
`,
	})
	code, stdout, stderr := fleetCmd(t, "lint", filepath.Join(dir, "fleet.star"))
	want := `features/base.star:3:8: unused feature "spare": no machine uses it, directly, through requires or through a user's home (unused-feature)
fleet.star:1:35: unused load "unused" from "//lib/util.star" (unused-load)
lib/util.star:4:5: unused local variable "tmp" in helper (unused-local)
lib/util.star:7:5: unused symbol "_private": it is private to this file, and this file never uses it (unused-symbol)
`
	if code != exitError || stdout != want || !strings.Contains(stderr, "lint: 4 findings") {
		t.Errorf("lint: exit %d\nstdout:\n%s\nwant:\n%s\nstderr: %s", code, stdout, want, stderr)
	}

	// FILE defaults to fleet.star; flags work after it.
	t.Chdir(dir)
	if code, stdout, _ := fleetCmd(t, "lint", "--max-steps", "1000000"); code != exitError || stdout != want {
		t.Errorf("lint without FILE: exit %d\n%s", code, stdout)
	}
}
