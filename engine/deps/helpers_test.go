package deps_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/deps"
	"github.com/fleet-nix/fleet/engine/testtool"
	"github.com/fleet-nix/fleet/engine/testtool/testenv"
)

// TestMain isolates the tests (testenv.Isolate), which includes git's
// environment (testenv.GitEnv): parallel tests cannot t.Setenv.
func TestMain(m *testing.M) { testenv.Main(m) }

// setupGit skips without git, marks the test parallel and returns a fresh
// cache root.
func setupGit(t *testing.T) *deps.Cache {
	t.Helper()
	testtool.Require(t, "git", "git")
	t.Parallel()
	return &deps.Cache{Root: filepath.Join(t.TempDir(), "deps")}
}

// repo is a bare repository served by file path, and a work tree that
// pushes to it.
type repo struct {
	t    *testing.T
	url  string // the bare repository's path: what fleet.deps names
	work string
}

func newRepo(t *testing.T, name string) *repo {
	t.Helper()
	dir := t.TempDir()
	r := &repo{t: t, url: filepath.Join(dir, name+".git"), work: filepath.Join(dir, name)}
	testtool.Git(t, dir, "init", "-q", "--bare", "-b", "main", r.url)
	testtool.Git(t, dir, "init", "-q", "-b", "main", r.work)
	testtool.Git(t, r.work, "remote", "add", "origin", r.url)
	return r
}

// commit writes files (an empty content deletes the file), commits, pushes
// main and returns the commit hash.
func (r *repo) commit(files map[string]string) string {
	r.t.Helper()
	writeFiles(r.t, r.work, files)
	testtool.Git(r.t, r.work, "add", "-A")
	testtool.Git(r.t, r.work, "commit", "-q", "--allow-empty", "-m", "change")
	testtool.Git(r.t, r.work, "push", "-q", "origin", "main")
	return testtool.Git(r.t, r.work, "rev-parse", "HEAD")
}

// tag (re)points tag name at HEAD, annotated or not, and force-pushes it.
func (r *repo) tag(name string, annotated bool) {
	r.t.Helper()
	args := []string{"tag", "-f", name}
	if annotated {
		args = []string{"tag", "-f", "-a", "-m", "release " + name, name}
	}
	testtool.Git(r.t, r.work, args...)
	testtool.Git(r.t, r.work, "push", "-q", "-f", "origin", "refs/tags/"+name)
}

// writeFiles writes files (path -> content; "" removes) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fleetDir writes a fleet (fleet.star and friends) into a new folder.
func fleetDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	return dir
}

func project(dir string, c *deps.Cache) *deps.Project {
	return &deps.Project{Dir: dir, Cache: c}
}

func depLine(name, url, ref string) string {
	return "dep(\"" + name + "\", git = \"" + url + "\", ref = \"" + ref + "\")\n"
}

func wantErr(t *testing.T, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q\ndoes not contain %q", err, s)
		}
	}
}
