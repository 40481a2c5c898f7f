package deps_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/deps"
)

func TestDepsParse(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // name git ref @pos
		err       string
	}{
		{"empty", "# nothing yet\n", nil, ""},
		{"two", `# the team's library
dep("team", git = "https://git.example.org/org/fleet-lib.git", ref = "v1.2.0")
dep(name = "util-x_2", ref = "main", git = "git@github.com:org/util.git")
`, []string{"team https://git.example.org/org/fleet-lib.git v1.2.0 @fleet.deps:2:1", "util-x_2 git@github.com:org/util.git main @fleet.deps:3:1"}, ""},
		{"syntax", "dep(\"a\", git = \"x\"\n", nil, "fleet.deps:2:1: got end of file"},
		{"not a call", "x = 1\n", nil, "fleet.deps:1:1: fleet.deps holds only dep(...) calls"},
		{"other call", "load(\"x.star\", \"y\")\n", nil, "fleet.deps:1:1: fleet.deps holds only"},
		{"other function", "print(\"a\")\n", nil, "fleet.deps:1:1: fleet.deps holds only"},
		{"no name", "dep(git = \"u\", ref = \"v1\")\n", nil, "fleet.deps:1:4: dep: missing the name"},
		{"bad name", "dep(\"Team\", git = \"u\", ref = \"v1\")\n", nil, `invalid name "Team"`},
		{"stdlib", "dep(\"stdlib\", git = \"u\", ref = \"v1\")\n", nil, "taken by fleet's standard library"},
		{"no git", "dep(\"a\", ref = \"v1\")\n", nil, "dep a: missing git ="},
		{"no ref", "dep(\"a\", git = \"/srv/a.git\")\n", nil, "dep a: missing ref ="},
		{"url keyword", "dep(\"a\", url = \"u\", ref = \"v1\")\n", nil, "fleet.deps:1:10: dep: unexpected keyword argument url (did you mean git?)"},
		{"tag keyword", "dep(\"a\", git = \"u\", tag = \"v1\")\n", nil, "unexpected keyword argument tag (did you mean ref?)"},
		{"other keyword", "dep(\"a\", git = \"u\", ref = \"v1\", sha = \"x\")\n", nil, "it takes name, git and ref"},
		{"not a literal", "dep(\"a\", git = \"u\" + \"v\", ref = \"v1\")\n", nil, "fleet.deps:1:16: dep: git must be a string literal"},
		{"int", "dep(\"a\", git = \"u\", ref = 1)\n", nil, "ref must be a string literal"},
		{"relative git", "dep(\"a\", git = \"../lib\", ref = \"v1\")\n", nil, "is a relative path: write an absolute path or a URL (for a local checkout you are working on, use --override a=../lib)"},
		{"dash git", "dep(\"a\", git = \"--upload-pack=x\", ref = \"v1\")\n", nil, "cannot start with '-'"},
		{"bad ref", "dep(\"a\", git = \"u\", ref = \"v1 ~2\")\n", nil, `ref = "v1 ~2" is not`},
		{"two positionals", "dep(\"a\", \"u\", ref = \"v1\")\n", nil, "only the name is positional"},
		{"given twice", "dep(\"a\", name = \"b\", git = \"u\", ref = \"v\")\n", nil, "dep: name is given twice"},
		{"duplicate", depLine("a", "u", "v1") + depLine("a", "u", "v2"), nil, `fleet.deps:2:1: dependency "a" is declared twice (first at fleet.deps:1:1): keep one`},
		{"all reported", "x = 1\ndep(\"B\", git = \"u\", ref = \"v\")\n", nil, "fleet.deps:1:1: fleet.deps holds only dep(...) calls: write dep(\"name\", git = \"URL\", ref = \"TAG, BRANCH or COMMIT\")\nfleet.deps:2:1: dep: invalid name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := deps.Parse("fleet.deps", []byte(tc.src))
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.Name+" "+d.Git+" "+d.Ref+" @"+d.Pos.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestDepsTreeHashFormat pins the documented format on a small tree, and
// checks what the hash depends on.
func TestDepsTreeHashFormat(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"b/c.star": "c\n", "a-z.star": "a\n", "empty/.keep": "k"})
	os.Remove(filepath.Join(dir, "empty/.keep")) // an empty folder does not count
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b/c.star", filepath.Join(dir, "link.star")); err != nil {
		t.Fatal(err)
	}
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	want := sum("f " + sum("a\n") + " a-z.star\n" + // "a-z.star" < "b/c.star": byte order of whole paths
		"f " + sum("c\n") + " b/c.star\n" +
		"l " + sum("b/c.star") + " link.star\n" +
		"x " + sum("#!/bin/sh\n") + " run.sh\n")
	got, err := deps.TreeHash(dir)
	if err != nil || got != want {
		t.Fatalf("TreeHash = %s, %v; want %s", got, err, want)
	}

	for _, tc := range []struct {
		name   string
		change func()
	}{
		{"content", func() { os.WriteFile(filepath.Join(dir, "b/c.star"), []byte("C\n"), 0o644) }},
		{"exec bit", func() { os.Chmod(filepath.Join(dir, "a-z.star"), 0o755) }},
		{"symlink target", func() {
			os.Remove(filepath.Join(dir, "link.star"))
			os.Symlink("a-z.star", filepath.Join(dir, "link.star"))
		}},
		{"new file", func() { os.WriteFile(filepath.Join(dir, "new.star"), nil, 0o644) }},
	} {
		before, _ := deps.TreeHash(dir)
		tc.change()
		after, err := deps.TreeHash(dir)
		if err != nil || after == before {
			t.Errorf("%s: hash did not change (%v)", tc.name, err)
		}
	}
}

func TestDepsLockFileFormat(t *testing.T) {
	dir := t.TempDir()
	c := strings.Repeat("a", 40)
	h := strings.Repeat("b", 64)
	l := &deps.Lock{Deps: []deps.Locked{
		{Name: "z", Git: "/z.git", Ref: "v1", Commit: c, SHA256: h, RequestedBy: []string{"fleet.deps", "@a", "@a"}},
		{Name: "a", Git: "https://x/a.git", Ref: "main", Commit: c, SHA256: h, RequestedBy: []string{"fleet.deps"}},
	}}
	path := filepath.Join(dir, "fleet.lock")
	if changed, err := deps.WriteLock(path, l); err != nil || !changed {
		t.Fatalf("WriteLock: %v, %v", changed, err)
	}
	b, _ := os.ReadFile(path)
	want := `{
  "version": 1,
  "deps": [
    {
      "name": "a",
      "git": "https://x/a.git",
      "ref": "main",
      "commit": "` + c + `",
      "sha256": "` + h + `",
      "requested_by": [
        "fleet.deps"
      ]
    },
    {
      "name": "z",
      "git": "/z.git",
      "ref": "v1",
      "commit": "` + c + `",
      "sha256": "` + h + `",
      "requested_by": [
        "@a",
        "fleet.deps"
      ]
    }
  ]
}
`
	if string(b) != want {
		t.Fatalf("fleet.lock:\n%s\nwant:\n%s", b, want)
	}
	if changed, err := deps.WriteLock(path, l); err != nil || changed {
		t.Fatalf("second WriteLock: changed %v, %v", changed, err)
	}
	back, err := deps.ReadLock(path)
	if err != nil || string(back.Marshal()) != want {
		t.Fatalf("ReadLock round trip: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	for _, bad := range []string{`{"version": 2, "deps": []}`, `{"version": 1, "deps": [{"name": "a", "commit": "abc"}]}`, `not json`} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := deps.ReadLock(path); err == nil || !strings.Contains(err.Error(), "fleet deps lock") {
			t.Errorf("ReadLock(%s): %v; want an error saying to run fleet deps lock", bad, err)
		}
	}
}

func TestDepsDefaultCache(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(deps.CacheEnv, dir)
	c, err := deps.DefaultCache()
	if err != nil || c.Root != filepath.Join(dir, "deps") {
		t.Fatalf("with %s=%s: %+v, %v", deps.CacheEnv, dir, c, err)
	}
	t.Setenv(deps.CacheEnv, "")
	user, err := os.UserCacheDir()
	if err != nil {
		t.Skip(err)
	}
	if c, err := deps.DefaultCache(); err != nil || c.Root != filepath.Join(user, "fleet", "deps") {
		t.Fatalf("without %s: %+v, %v", deps.CacheEnv, c, err)
	}
	a, b := c.Dir("https://x/a.git", strings.Repeat("1", 40)), c.Dir("https://x/b.git", strings.Repeat("1", 40))
	if filepath.Base(a) != strings.Repeat("1", 40) || filepath.Dir(a) == filepath.Dir(b) || len(filepath.Base(filepath.Dir(a))) != 16 {
		t.Fatalf("cache layout: %s, %s", a, b)
	}
}
