package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// depsSetup skips without git, isolates git from the machine's
// configuration and gives the test its own dependency cache.
func depsSetup(t *testing.T) (cache string) {
	t.Helper()
	testtool.Require(t, "git", "git")
	for k, v := range testtool.GitEnv() {
		t.Setenv(k, v)
	}
	cache = t.TempDir()
	t.Setenv("FLEET_CACHE_DIR", cache)
	return filepath.Join(cache, "deps")
}

// depsWrite writes files (path -> content) under dir.
func depsWrite(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// depsCopyDir copies the files under src to dst.
func depsCopyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		depsWrite(t, dst, map[string]string{filepath.ToSlash(rel): string(b)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// depsLibrary makes work (a git work tree of files) and its bare
// repository, tagged tag; it returns the work tree and the bare
// repository's path, which serves as the URL.
func depsLibrary(t *testing.T, files map[string]string, tag string) (work, bare string) {
	t.Helper()
	dir := t.TempDir()
	work, bare = filepath.Join(dir, "fleet-lib"), filepath.Join(dir, "fleet-lib.git")
	depsWrite(t, work, files)
	testtool.Git(t, dir, "init", "-q", "-b", "main", work)
	testtool.Git(t, work, "add", "-A")
	testtool.Git(t, work, "commit", "-q", "-m", "fleet library")
	testtool.Git(t, work, "tag", "-a", tag, "-m", "release "+tag)
	testtool.Git(t, dir, "clone", "-q", "--bare", work, bare)
	testtool.Git(t, work, "remote", "add", "origin", bare)
	return work, bare
}

// depsExpect runs fleet and checks its exit code and output.
func depsExpect(t *testing.T, code int, stdout, stderr string, args ...string) (string, string) {
	t.Helper()
	c, out, errs := fleetCmd(t, args...)
	if c != code || !strings.Contains(out, stdout) || !strings.Contains(errs, stderr) {
		t.Fatalf("fleet %s: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant stdout containing %q, stderr containing %q",
			strings.Join(args, " "), c, code, out, errs, stdout, stderr)
	}
	return out, errs
}

func TestDepsCommands(t *testing.T) {
	cache := depsSetup(t)
	work, bare := depsLibrary(t, map[string]string{
		"features/ssh.star": "load(\"../util.star\", \"PORT\")\n\ndef ssh():\n    return feature(\"ssh\", nixos = {\"services.openssh.ports\": [PORT]})\n",
		"util.star":         "PORT = 22\n",
	}, "v1")
	dir := t.TempDir()
	file := filepath.Join(dir, "fleet.star")
	depsWrite(t, dir, map[string]string{
		"fleet.deps": "dep(\"team\", git = \"" + bare + "\", ref = \"v1\")\n",
		"fleet.star": "load(\"@team//features/ssh.star\", \"ssh\")\n\nfleet(name = \"t\")\n\nchannel(\"nixpkgs\", url = \"github:NixOS/nixpkgs/nixos-unstable\")\n\nmachine(\"web\", system = \"x86_64-linux\", state_version = \"26.05\", features = [ssh()])\n",
	})
	out := t.TempDir()
	minimal, err := filepath.Abs(filepath.Join(repoRoot, "examples/minimal/fleet.star"))
	if err != nil {
		t.Fatal(err)
	}

	depsExpect(t, exitError, "", "fleet.star:1:1: fleet.deps declares dependencies but there is no fleet.lock: run fleet deps lock", "run", file, "--out", out)
	depsExpect(t, exitOK, "team  v1  ", "", "deps", "lock", file)
	first, _ := os.ReadFile(filepath.Join(dir, "fleet.lock"))
	// The default FILE is fleet.star in the current directory.
	t.Chdir(dir)
	depsExpect(t, exitOK, "unchanged", "", "deps", "lock")
	if again, _ := os.ReadFile(filepath.Join(dir, "fleet.lock")); !bytes.Equal(first, again) {
		t.Fatalf("locking twice changed fleet.lock:\n%s\n%s", first, again)
	}
	depsExpect(t, exitOK, "features: ssh", "", "run", file, "--out", out)
	depsExpect(t, exitOK, "fleet.lock: 1 dependency verified", "", "deps", "verify", file)

	// The cache serves without the repository, offline or not.
	os.Rename(bare, bare+".away")
	depsExpect(t, exitOK, "features: ssh", "", "run", file, "--out", out, "--offline")
	depsExpect(t, exitOK, "machine  web", "", "eval", file)
	os.Rename(bare+".away", bare)

	// Someone moves the tag: verify says so, update accepts it.
	depsWrite(t, work, map[string]string{"util.star": "PORT = 2222\n"})
	testtool.Git(t, work, "commit", "-q", "-am", "port")
	testtool.Git(t, work, "tag", "-f", "-a", "v1", "-m", "moved")
	testtool.Git(t, work, "push", "-q", "-f", "origin", "main", "v1")
	moved := testtool.Git(t, work, "rev-parse", "HEAD")
	depsExpect(t, exitError, `dependency team: ref "v1" of `+bare+" now names commit "+moved, "fleet deps verify: 1 problem", "deps", "verify", file)
	depsExpect(t, exitOK, "features: ssh", "", "run", file, "--out", out) // still the locked commit
	depsExpect(t, exitOK, "updated from", "", "deps", "update", "team", "--file", file)
	depsExpect(t, exitOK, "verified", "", "deps", "verify", file)

	// A changed cache entry is an error naming the dependency.
	entries, _ := filepath.Glob(filepath.Join(cache, "*", moved))
	if len(entries) != 1 {
		t.Fatalf("cache entries of %s: %v", moved, entries)
	}
	depsWrite(t, entries[0], map[string]string{"util.star": "PORT = 1\n"})
	depsExpect(t, exitError, "", "fleet.star:1:1: dependency team: the cached files of commit "+moved, "run", file, "--out", out)
	depsExpect(t, exitError, "dependency team: the cached files", "1 problem", "deps", "verify", file)
	os.RemoveAll(entries[0])
	depsExpect(t, exitOK, "features: ssh", "", "run", file, "--out", out) // fetched again

	// A local checkout instead of the pin.
	_, stderr := depsExpect(t, exitOK, "features: ssh", "", "run", file, "--out", out, "--override", "team="+work, "--offline")
	if !strings.Contains(stderr, "@team comes from --override "+work) {
		t.Fatalf("no note about the override: %s", stderr)
	}

	for _, tc := range []struct {
		name   string
		code   int
		stderr string
		args   []string
	}{
		{"override syntax", exitUsage, `--override "team": write NAME=DIR`, []string{"run", file, "--override", "team"}},
		{"override unknown", exitError, "declares no dependency tema", []string{"run", file, "--override", "tema=" + work}},
		{"override missing dir", exitError, "no such folder", []string{"run", file, "--override", "team=" + filepath.Join(work, "nope")}},
		{"override without deps", exitUsage, "no fleet.deps next to " + minimal, []string{"run", minimal, "--override", "team=" + work}},
		{"unknown subcommand", exitUsage, `deps: no command "nope" (did you mean "lock"?): use lock, update or verify`, []string{"deps", "nope"}},
		{"lock two files", exitUsage, "takes at most one FILE", []string{"deps", "lock", file, file}},
		{"verify without deps", exitError, filepath.Join(filepath.Dir(minimal), "fleet.deps") + ": no such file", []string{"deps", "verify", minimal}},
		{"update unknown", exitError, `no dependency "nope"`, []string{"deps", "update", "nope", "--file", file}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			depsExpect(t, tc.code, "", tc.stderr, tc.args...)
		})
	}
}

// TestDepsSharedLibraryExample follows examples/shared-library/README.md:
// the library becomes a git repository, the fleet pins it, locks, runs,
// takes a new release, verifies, and develops against a local checkout.
func TestDepsSharedLibraryExample(t *testing.T) {
	depsSetup(t)
	example := filepath.Join(repoRoot, "examples/shared-library")
	readme, err := os.ReadFile(filepath.Join(example, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []string{"fleet deps lock", "fleet run fleet.star", "fleet deps update team", "fleet deps verify", "--override team=lib", `s/SSH_PORT = 22/SSH_PORT = 2222/`} {
		if !strings.Contains(string(readme), step) {
			t.Fatalf("README.md no longer mentions %q: update this test with it", step)
		}
	}

	// 1. The library is a git repository, tagged v1.0.0.
	libFiles := map[string]string{}
	libDir := filepath.Join(example, "lib")
	filepath.WalkDir(libDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(libDir, p)
			libFiles[filepath.ToSlash(rel)] = string(b)
		}
		return err
	})
	work, bare := depsLibrary(t, libFiles, "v1.0.0")

	// 2. fleet.deps points at it.
	dir := t.TempDir()
	depsCopyDir(t, filepath.Join(example, "fleet"), dir)
	deps := filepath.Join(dir, "fleet.deps")
	const placeholder = `git = "https://github.com/example/fleet-lib.git", ref = "v1.0.0"`
	b, _ := os.ReadFile(deps)
	if !strings.Contains(string(b), placeholder) {
		t.Fatalf("fleet/fleet.deps no longer contains %s", placeholder)
	}
	depsWrite(t, dir, map[string]string{"fleet.deps": strings.Replace(string(b), "https://github.com/example/fleet-lib.git", bare, 1)})
	file := filepath.Join(dir, "fleet.star")
	out := t.TempDir()

	// 3, 4. Lock and run.
	depsExpect(t, exitOK, "team  v1.0.0  ", "", "deps", "lock", file)
	depsExpect(t, exitOK, "features: base, ssh", "", "run", file, "--out", out)

	// 5. A new release: commit, tag, push, change the ref, lock.
	util := filepath.Join(work, "lib/util.star")
	u, _ := os.ReadFile(util)
	if !strings.Contains(string(u), "SSH_PORT = 22\n") {
		t.Fatal("lib/lib/util.star no longer sets SSH_PORT = 22, which the README edits")
	}
	depsWrite(t, work, map[string]string{"lib/util.star": strings.Replace(string(u), "SSH_PORT = 22\n", "SSH_PORT = 2222\n", 1)})
	testtool.Git(t, work, "commit", "-q", "-am", "sshd on 2222")
	testtool.Git(t, work, "tag", "-a", "v1.1.0", "-m", "sshd on 2222")
	testtool.Git(t, work, "push", "-q", "origin", "main", "v1.1.0")
	b, _ = os.ReadFile(deps)
	depsWrite(t, dir, map[string]string{"fleet.deps": strings.Replace(string(b), "v1.0.0", "v1.1.0", 1)})
	depsExpect(t, exitError, "", "fleet.deps has changed since fleet.lock was written", "run", file, "--out", out)
	depsExpect(t, exitOK, "updated from", "", "deps", "lock", file)
	depsExpect(t, exitOK, "", "", "run", file, "--out", out)
	if ssh, _ := os.ReadFile(filepath.Join(out, "modules/nixos/ssh.nix")); !strings.Contains(string(ssh), "2222") {
		t.Fatalf("the fleet does not use v1.1.0:\n%s", ssh)
	}
	depsExpect(t, exitOK, "unchanged", "", "deps", "update", "team", "--file", file)

	// 6. Verify; a force-pushed tag is reported.
	depsExpect(t, exitOK, "fleet.lock: 1 dependency verified", "", "deps", "verify", file)
	testtool.Git(t, work, "commit", "-q", "--allow-empty", "-m", "sneaky")
	testtool.Git(t, work, "tag", "-f", "-a", "v1.1.0", "-m", "moved")
	testtool.Git(t, work, "push", "-q", "-f", "origin", "main", "v1.1.0")
	depsExpect(t, exitError, `ref "v1.1.0" of `+bare+" now names commit", "1 problem", "deps", "verify", file)

	// 7. The example as shipped, against the library folder next to it.
	t.Chdir(example)
	_, stderr := depsExpect(t, exitOK, "fleet shared", "", "run", "fleet/fleet.star", "--override", "team=lib", "--out", out)
	if !strings.Contains(stderr, "@team comes from --override") {
		t.Fatalf("no note about the override: %s", stderr)
	}
}
