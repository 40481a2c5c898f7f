package outdir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gen returns files from path, content pairs, with the default mode.
func gen(kv ...string) []File {
	var out []File
	for i := 0; i < len(kv); i += 2 {
		out = append(out, File{Path: kv[i], Data: []byte(kv[i+1])})
	}
	return out
}

// flake is a small generated tree in the shape fleet produces.
func flake() []File {
	return gen(
		"flake.nix", "{ outputs = _: { }; }\n",
		"modules/base.nix", "{ }\n",
		"modules/ssh.nix", "{ services.openssh.enable = true; }\n",
		"machines/nixos/web.nix", "{ imports = [ ../../modules/base.nix ]; }\n",
		"machines/darwin/mac.nix", "{ }\n",
	)
}

// with returns files with the file at path given content data, added if
// absent; without returns files without the ones at paths.
func with(files []File, path, data string) []File {
	out := without(files, path)
	return append(out, File{Path: path, Data: []byte(data)})
}

func without(files []File, paths ...string) []File {
	var out []File
	for _, f := range files {
		if !slices.Contains(paths, f.Path) {
			out = append(out, f)
		}
	}
	return out
}

// contents maps every file below dir to its content and every directory
// to "/" (keyed with a trailing slash); the manifest is left out unless
// manifest is set.
func contents(t *testing.T, dir string, manifest bool) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(dir, func(full string, e fs.DirEntry, err error) error {
		if err != nil || full == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, full)
		rel = filepath.ToSlash(rel)
		switch {
		case e.IsDir():
			out[rel+"/"] = "/"
		case rel == ManifestName && !manifest:
		case e.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return err
			}
			out[rel] = "-> " + target
		default:
			data, err := os.ReadFile(full)
			if err != nil {
				return err
			}
			out[rel] = string(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshot records everything about the tree below dir that Write could
// change: content, mode and modification time of every entry.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := contents(t, dir, true)
	for rel := range out {
		fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(rel, "/"))))
		if err != nil {
			t.Fatal(err)
		}
		out[rel] += fmt.Sprintf(" [%v %d]", fi.Mode(), fi.ModTime().UnixNano())
	}
	return out
}

// treeOf is what contents returns for a folder holding exactly files.
func treeOf(files []File) map[string]string {
	out := make(map[string]string)
	for _, f := range files {
		out[f.Path] = string(f.Data)
		for d := filepath.ToSlash(filepath.Dir(f.Path)); d != "."; d = filepath.ToSlash(filepath.Dir(d)) {
			out[d+"/"] = "/"
		}
	}
	return out
}

// recorder is a writer whose writes are recorded.
type recorder struct {
	writer
	mu    sync.Mutex
	wrote []string
}

func newRecorder(dir string) *recorder {
	r := &recorder{writer: writer{root: dir}}
	r.beforeWrite = func(name string) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.wrote = append(r.wrote, name)
		return nil
	}
	return r
}

func (r *recorder) writes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.wrote)
	slices.Sort(out)
	r.wrote = nil
	return out
}

func mustWrite(t *testing.T, dir string, files []File) Report {
	t.Helper()
	rep, err := Write(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func writeFile(t *testing.T, dir, rel, data string) {
	t.Helper()
	full := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func paths(files []File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	slices.Sort(out)
	return out
}

func TestFirstWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".fleet", "nix")
	files := append(flake(), File{Path: "bin/deploy", Data: []byte("#!/bin/sh\n"), Mode: 0o755})
	r := newRecorder(dir)
	rep, err := r.run(files)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Report{Written: paths(files)}); !equalReport(rep, want) {
		t.Errorf("report = %+v, want %+v", rep, want)
	}
	// Even a first write records its intent: after a crash, the next run
	// would otherwise take the files it finds for the user's.
	if got, want := r.writes(), slices.Concat([]string{ManifestName, ManifestName}, paths(files)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("writes = %q, want %q", got, want)
	}
	if got, want := contents(t, dir, false), treeOf(files); !maps.Equal(got, want) {
		t.Errorf("tree = %q, want %q", got, want)
	}
	modes := map[string]fs.FileMode{"flake.nix": 0o644, "bin/deploy": 0o755, "bin": fs.ModeDir | 0o755, "machines/nixos": fs.ModeDir | 0o755, ManifestName: 0o644}
	for rel, want := range modes {
		fi, err := os.Lstat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), want)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "modules"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if d, err := Check(dir, files); err != nil || !d.Empty() {
		t.Errorf("Check after Write = %q, %v; want empty", d, err)
	}
}

func reversed(files []File) []File {
	out := slices.Clone(files)
	slices.Reverse(out)
	return out
}

func equalReport(a, b Report) bool {
	return slices.Equal(a.Written, b.Written) && slices.Equal(a.Unchanged, b.Unchanged) &&
		slices.Equal(a.Removed, b.Removed) && slices.Equal(a.Kept, b.Kept)
}

// TestSecondWriteTouchesNothing checks through modification times, not
// just the hook, that an unchanged tree is left alone, manifest and
// directories included.
func TestSecondWriteTouchesNothing(t *testing.T) {
	dir := t.TempDir()
	files := flake()
	mustWrite(t, dir, files)
	past := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for rel := range contents(t, dir, true) {
		if err := os.Chtimes(filepath.Join(dir, rel), past, past); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshot(t, dir)
	r := newRecorder(dir)
	// Reversed input: order must not matter.
	rep, err := r.run(reversed(files))
	if err != nil {
		t.Fatal(err)
	}
	if w := r.writes(); len(w) != 0 {
		t.Errorf("second Write wrote %q", w)
	}
	if !equalReport(rep, Report{Unchanged: paths(files)}) {
		t.Errorf("report = %+v, want all unchanged", rep)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("tree changed:\nbefore %q\nafter  %q", before, after)
	}
}

// TestWriteTransitions writes one tree, lets the user act, writes another
// and checks the outcome. It also checks that Check is empty exactly when
// Write writes nothing.
func TestWriteTransitions(t *testing.T) {
	M := ManifestName
	v := flake()
	tests := []struct {
		name   string
		before []File
		edit   func(t *testing.T, dir string)
		after  []File
		want   Report
		tree   map[string]string // nil: treeOf(after)
		writes []string
	}{{
		name:   "nothing changed",
		before: v, after: v,
		want: Report{Unchanged: paths(v)},
	}, {
		name:   "one file changed",
		before: v, after: with(v, "modules/base.nix", "{ boot.tmp.cleanOnBoot = true; }\n"),
		want:   Report{Written: []string{"modules/base.nix"}, Unchanged: paths(without(v, "modules/base.nix"))},
		writes: []string{M, M, "modules/base.nix"},
	}, {
		name:   "new file in a new directory",
		before: v, after: with(v, "users/alice/home.nix", "{ }\n"),
		want:   Report{Written: []string{"users/alice/home.nix"}, Unchanged: paths(v)},
		writes: []string{M, M, "users/alice/home.nix"},
	}, {
		name:   "file no longer produced is removed with its empty directories",
		before: v, after: without(v, "machines/nixos/web.nix", "machines/darwin/mac.nix"),
		want: Report{Removed: []string{"machines/darwin/mac.nix", "machines/nixos/web.nix"},
			Unchanged: paths(without(v, "machines/nixos/web.nix", "machines/darwin/mac.nix"))},
		writes: []string{M},
	}, {
		name:   "removal keeps directories that still hold files",
		before: gen("a/b/c/x", "x", "a/y", "y"), after: gen("a/y", "y"),
		want:   Report{Removed: []string{"a/b/c/x"}, Unchanged: []string{"a/y"}},
		writes: []string{M},
	}, {
		name:   "removal keeps a directory holding the user's empty directory",
		before: gen("a/b/x", "x"),
		edit: func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "a/b/mine"), 0o755); err != nil {
				t.Fatal(err)
			}
		},
		after:  nil,
		want:   Report{Removed: []string{"a/b/x"}},
		tree:   map[string]string{"a/": "/", "a/b/": "/", "a/b/mine/": "/"},
		writes: []string{M},
	}, {
		name:   "edited file no longer produced is kept",
		before: v,
		edit:   func(t *testing.T, dir string) { writeFile(t, dir, "machines/nixos/web.nix", "# mine now\n") },
		after:  without(v, "machines/nixos/web.nix"),
		want:   Report{Kept: []string{"machines/nixos/web.nix"}, Unchanged: paths(without(v, "machines/nixos/web.nix"))},
		tree:   merge(treeOf(v), map[string]string{"machines/nixos/web.nix": "# mine now\n"}),
		writes: []string{M},
	}, {
		name:   "nothing produced any more",
		before: v, after: nil,
		want:   Report{Removed: paths(v)},
		tree:   map[string]string{},
		writes: []string{M},
	}, {
		name:   "hand-edited file is regenerated",
		before: v,
		edit:   func(t *testing.T, dir string) { writeFile(t, dir, "flake.nix", "{ oops }\n") },
		after:  v,
		want:   Report{Written: []string{"flake.nix"}, Unchanged: paths(without(v, "flake.nix"))},
		writes: []string{M, M, "flake.nix"},
	}, {
		name:   "deleted file is regenerated",
		before: v,
		edit: func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "modules/ssh.nix")); err != nil {
				t.Fatal(err)
			}
		},
		after:  v,
		want:   Report{Written: []string{"modules/ssh.nix"}, Unchanged: paths(without(v, "modules/ssh.nix"))},
		writes: []string{M, M, "modules/ssh.nix"},
	}, {
		name:   "executable bit changed",
		before: gen("run", "#!/bin/sh\n"), after: []File{{Path: "run", Data: []byte("#!/bin/sh\n"), Mode: 0o755}},
		want:   Report{Written: []string{"run"}},
		writes: []string{M, M, "run"},
	}, {
		name:   "group-writable checkout is not a change",
		before: v,
		edit: func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "flake.nix"), 0o664); err != nil {
				t.Fatal(err)
			}
		},
		after: v,
		want:  Report{Unchanged: paths(v)},
	}, {
		name:   "user's files are left alone",
		before: v,
		edit: func(t *testing.T, dir string) {
			writeFile(t, dir, "README.md", "mine\n")
			writeFile(t, dir, "modules/mine.nix", "mine\n")
			writeFile(t, dir, "machines/nixos/.fleet-tmp-web.nixx", "mine\n")
		},
		after: without(v, "modules/base.nix", "modules/ssh.nix", "machines/nixos/web.nix"),
		want: Report{Removed: []string{"machines/nixos/web.nix", "modules/base.nix", "modules/ssh.nix"},
			Unchanged: paths(without(v, "modules/base.nix", "modules/ssh.nix", "machines/nixos/web.nix"))},
		tree: merge(treeOf(without(v, "modules/base.nix", "modules/ssh.nix", "machines/nixos/web.nix")), map[string]string{
			"README.md": "mine\n", "modules/": "/", "modules/mine.nix": "mine\n",
			"machines/nixos/": "/", "machines/nixos/.fleet-tmp-web.nixx": "mine\n"}),
		writes: []string{M},
	}, {
		name:   "stale file where a directory is wanted",
		before: gen("users", "alice\n"), after: gen("users/alice.nix", "{ }\n"),
		want:   Report{Written: []string{"users/alice.nix"}, Removed: []string{"users"}},
		writes: []string{M, M, "users/alice.nix"},
	}, {
		name:   "stale directory where a file is wanted",
		before: gen("users/alice.nix", "{ }\n", "users/bob/home.nix", "{ }\n"), after: gen("users", "alice bob\n"),
		want:   Report{Written: []string{"users"}, Removed: []string{"users/alice.nix", "users/bob/home.nix"}},
		writes: []string{M, M, "users"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mustWrite(t, dir, tt.before)
			if tt.edit != nil {
				tt.edit(t, dir)
			}
			diff, err := Check(dir, tt.after)
			if err != nil {
				t.Fatal(err)
			}
			r := newRecorder(dir)
			rep, err := r.run(tt.after)
			if err != nil {
				t.Fatal(err)
			}
			if !equalReport(rep, tt.want) {
				t.Errorf("report = %+v\nwant     %+v", rep, tt.want)
			}
			writes := r.writes()
			if !slices.Equal(writes, tt.writes) {
				t.Errorf("writes = %q, want %q", writes, tt.writes)
			}
			if diff.Empty() != (len(writes) == 0) {
				t.Errorf("Check before Write = %q, but Write wrote %q", diff, writes)
			}
			want := tt.tree
			if want == nil {
				want = treeOf(tt.after)
			}
			if got := contents(t, dir, false); !maps.Equal(got, want) {
				t.Errorf("tree = %q\nwant   %q", got, want)
			}
			if d, err := Check(dir, tt.after); err != nil || !d.Empty() {
				t.Errorf("Check after Write = %q, %v; want empty", d, err)
			}
			if _, err := r.run(tt.after); err != nil {
				t.Fatal(err)
			}
			if w := r.writes(); len(w) != 0 {
				t.Errorf("third Write wrote %q", w)
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// TestKeptFileBecomesUsers checks that a file fleet gave up because the
// user edited it is the user's from then on.
func TestKeptFileBecomesUsers(t *testing.T) {
	dir := t.TempDir()
	v := flake()
	mustWrite(t, dir, v)
	writeFile(t, dir, "modules/ssh.nix", "# mine\n")
	if rep := mustWrite(t, dir, without(v, "modules/ssh.nix")); !slices.Equal(rep.Kept, []string{"modules/ssh.nix"}) {
		t.Fatalf("Kept = %q", rep.Kept)
	}
	if rep := mustWrite(t, dir, without(v, "modules/ssh.nix")); len(rep.Kept) != 0 {
		t.Errorf("Kept reported again: %q", rep.Kept)
	}
	var fe *ForeignError
	if _, err := Write(dir, v); !errors.As(err, &fe) || !slices.Equal(fe.Paths, []string{"modules/ssh.nix"}) {
		t.Errorf("Write wanting the kept file again: %v; want a ForeignError naming it", err)
	}
}

func TestForeign(t *testing.T) {
	v := flake()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string
		why   string // in the message
	}{{
		name:  "file at a wanted path, no manifest",
		setup: func(t *testing.T, dir string) { writeFile(t, dir, "flake.nix", "mine\n") },
		want:  []string{"flake.nix"},
	}, {
		name: "every foreign file is named",
		setup: func(t *testing.T, dir string) {
			writeFile(t, dir, "flake.nix", "mine\n")
			writeFile(t, dir, "machines/nixos/web.nix", "mine\n")
		},
		want: []string{"flake.nix", "machines/nixos/web.nix"},
	}, {
		name: "file at a new wanted path",
		setup: func(t *testing.T, dir string) {
			mustWrite(t, dir, without(v, "modules/ssh.nix"))
			writeFile(t, dir, "modules/ssh.nix", "mine\n")
		},
		want: []string{"modules/ssh.nix"},
	}, {
		name:  "file where a directory is needed",
		setup: func(t *testing.T, dir string) { writeFile(t, dir, "modules", "mine\n") },
		want:  []string{"modules"},
		why:   "in the way of modules/base.nix",
	}, {
		name:  "directory at a wanted path",
		setup: func(t *testing.T, dir string) { writeFile(t, dir, "flake.nix/notes", "mine\n") },
		want:  []string{"flake.nix"},
		why:   "a directory",
	}, {
		name: "symbolic link at a wanted path",
		setup: func(t *testing.T, dir string) {
			mustWrite(t, dir, v)
			if err := os.Remove(filepath.Join(dir, "flake.nix")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("modules/base.nix", filepath.Join(dir, "flake.nix")); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"flake.nix"},
		why:  "not a regular file",
	}, {
		name: "symbolic link to a directory outside",
		setup: func(t *testing.T, dir string) {
			outside := t.TempDir()
			writeFile(t, outside, "base.nix", "{ }\n")
			if err := os.Symlink(outside, filepath.Join(dir, "modules")); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"modules"},
	}, {
		name: "edited stale file in the way",
		setup: func(t *testing.T, dir string) {
			mustWrite(t, dir, gen("flake.nix", "{ }\n", "modules", "old\n"))
			writeFile(t, dir, "modules", "edited\n")
		},
		want: []string{"modules"},
		why:  "edited since",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			before := snapshot(t, dir)
			r := newRecorder(dir)
			_, err := r.run(v)
			var fe *ForeignError
			if !errors.As(err, &fe) {
				t.Fatalf("Write = %v, want a ForeignError", err)
			}
			if !slices.Equal(fe.Paths, tt.want) {
				t.Errorf("foreign = %q, want %q", fe.Paths, tt.want)
			}
			msg := err.Error()
			for _, want := range append([]string{"--out", "move"}, tt.want...) {
				if !strings.Contains(msg, want) {
					t.Errorf("message does not mention %q:\n%s", want, msg)
				}
			}
			if !strings.Contains(msg, tt.why) {
				t.Errorf("message does not say %q:\n%s", tt.why, msg)
			}
			if w := r.writes(); len(w) != 0 {
				t.Errorf("failed Write wrote %q", w)
			}
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Errorf("failed Write changed the tree:\nbefore %q\nafter  %q", before, after)
			}
			d, err := Check(dir, v)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(d.Foreign, tt.want) {
				t.Errorf("Check foreign = %q, want %q", d.Foreign, tt.want)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		files []File
		want  []string // each in the error
	}{
		{"empty", gen("", "x"), []string{`"": empty path`}},
		{"absolute", gen("/etc/passwd", "x"), []string{"absolute"}},
		{"parent", gen("../x", "x"), []string{`".."`}},
		{"inner parent", gen("a/../../x", "x"), []string{`".."`}},
		{"dot", gen(".", "x"), []string{"not a clean path"}},
		{"inner dot", gen("a/./b", "x"), []string{`not a clean path (want "a/b")`}},
		{"double slash", gen("a//b", "x"), []string{`want "a/b"`}},
		{"trailing slash", gen("a/", "x"), []string{`want "a"`}},
		{"backslash", gen(`a\b`, "x"), []string{"backslash"}},
		{"NUL", gen("a\x00b", "x"), []string{"control character"}},
		{"newline", gen("a\nb", "x"), []string{"control character"}},
		{"not UTF-8", gen("a\xffb", "x"), []string{"UTF-8"}},
		{"manifest", gen(ManifestName, "x"), []string{"reserved"}},
		{"temporary", gen("a/.fleet-tmp-b", "x"), []string{"reserved"}},
		{"duplicate", gen("a", "x", "a", "y"), []string{`"a": given more than once`}},
		{"file and directory", gen("a/b", "x", "a", "y"), []string{`"a": both a file and a directory`}},
		{"case", gen("Web.nix", "x", "web.nix", "y"), []string{`"Web.nix" and "web.nix" differ only in case`}},
		{"case of a directory", gen("M/a", "x", "m/b", "y"), []string{`"M" and "m" differ only in case`}},
		{"mode", []File{{Path: "a", Mode: 0o600}}, []string{"mode -rw-------"}},
		{"every problem", gen("/a", "x", "b/../c", "y", "ok", "z"), []string{"2 invalid", "/a", "b/../c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			_, err := Write(dir, tt.files)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if _, serr := os.Stat(dir); !errors.Is(serr, fs.ErrNotExist) {
				t.Errorf("output folder created despite the error")
			}
			if _, err := Check(dir, tt.files); err == nil {
				t.Errorf("Check succeeded")
			}
		})
	}
}

func TestCheck(t *testing.T) {
	M := ManifestName
	v := flake()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  Diff
	}{{
		name:  "empty folder",
		setup: func(t *testing.T, dir string) {},
		want:  Diff{Missing: slices.Sorted(slices.Values(append(paths(v), M)))},
	}, {
		name:  "up to date",
		setup: func(t *testing.T, dir string) { mustWrite(t, dir, v) },
	}, {
		name: "hand-edited, manifest unchanged",
		setup: func(t *testing.T, dir string) {
			mustWrite(t, dir, v)
			writeFile(t, dir, "machines/nixos/web.nix", "{ }\n")
		},
		want: Diff{Changed: []string{"machines/nixos/web.nix"}},
	}, {
		name:  "outdated",
		setup: func(t *testing.T, dir string) { mustWrite(t, dir, with(v, "flake.nix", "{ }\n")) },
		want:  Diff{Changed: []string{M, "flake.nix"}},
	}, {
		name: "executable bit",
		setup: func(t *testing.T, dir string) {
			mustWrite(t, dir, v)
			if err := os.Chmod(filepath.Join(dir, "flake.nix"), 0o755); err != nil {
				t.Fatal(err)
			}
		},
		want: Diff{Changed: []string{"flake.nix"}},
	}, {
		name:  "missing and extra",
		setup: func(t *testing.T, dir string) { mustWrite(t, dir, with(without(v, "modules/ssh.nix"), "old.nix", "")) },
		want:  Diff{Missing: []string{"modules/ssh.nix"}, Changed: []string{M}, Extra: []string{"old.nix"}},
	}, {
		name: "foreign",
		setup: func(t *testing.T, dir string) {
			mustWrite(t, dir, without(v, "flake.nix"))
			writeFile(t, dir, "flake.nix", "mine\n")
			writeFile(t, dir, "README.md", "mine\n")
		},
		want: Diff{Foreign: []string{"flake.nix"}, Changed: []string{M}},
	}, {
		name: "interrupted run",
		setup: func(t *testing.T, dir string) {
			w := &writer{root: dir, beforeWrite: failAfter(1)}
			if _, err := w.run(v); err == nil {
				t.Fatal("interrupted Write succeeded")
			}
		},
		want: Diff{Missing: paths(v), Changed: []string{M}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			before := snapshot(t, dir)
			got, err := Check(dir, v)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want.String() || got.Empty() != tt.want.Empty() {
				t.Errorf("Check =\n%s\nwant\n%s", got, tt.want)
			}
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Errorf("Check changed the tree")
			}
			if len(tt.want.Foreign) > 0 {
				return
			}
			mustWrite(t, dir, v)
			if d, err := Check(dir, v); err != nil || !d.Empty() {
				t.Errorf("Check after Write = %q, %v; want empty", d, err)
			}
		})
	}
}

func TestCheckMissingFolder(t *testing.T) {
	d, err := Check(filepath.Join(t.TempDir(), "nope"), gen("a", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "missing: " + ManifestName + "\nmissing: a"; d.String() != want {
		t.Errorf("Check = %q, want %q", d, want)
	}
}

func TestDiffString(t *testing.T) {
	d := Diff{
		Missing: []string{"b.nix"},
		Changed: []string{"machines/nixos/web.nix", "a.nix"},
		Extra:   []string{"old.nix"},
		Foreign: []string{"c.nix"},
	}
	want := strings.Join([]string{
		"changed: a.nix",
		"missing: b.nix",
		"foreign: c.nix",
		"changed: machines/nixos/web.nix",
		"extra:   old.nix",
	}, "\n")
	if got := d.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
	if d.Empty() || !(Diff{}).Empty() || (Diff{}).String() != "" {
		t.Errorf("Empty() wrong")
	}
}

// failAfter returns a beforeWrite hook that lets n writes through and
// fails every one after, as if the process died.
func failAfter(n int) func(string) error {
	var count atomic.Int64
	return func(name string) error {
		if count.Add(1) > int64(n) {
			return errors.New("killed")
		}
		return nil
	}
}

// TestInterrupted stops a Write after every possible number of writes and
// checks that a full Write afterwards converges on what an uninterrupted
// run makes, whatever it is asked for next: the files of the interrupted
// run, those of the run before it, or others still.
func TestInterrupted(t *testing.T) {
	v1 := flake()
	v2 := with(with(without(v1, "machines/darwin/mac.nix"), "flake.nix", "{ v = 2; }\n"), "users/alice.nix", "{ }\n")
	v2 = with(without(v2, "modules/ssh.nix"), "modules/ssh.nix/default.nix", "{ }\n") // a file becomes a directory
	v3 := gen("flake.nix", "{ v = 3; }\n", "modules/base.nix", "{ }\n")
	reference := func(files []File) map[string]string {
		dir := t.TempDir()
		mustWrite(t, dir, files)
		return contents(t, dir, true)
	}
	refs := map[string]map[string]string{"v1": reference(v1), "v2": reference(v2), "v3": reference(v3)}
	targets := map[string][]File{"v1": v1, "v2": v2, "v3": v3}

	for _, from := range []string{"empty", "v1"} {
		// Count the writes of an uninterrupted run.
		dir := t.TempDir()
		if from == "v1" {
			mustWrite(t, dir, v1)
		}
		r := newRecorder(dir)
		if _, err := r.run(v2); err != nil {
			t.Fatal(err)
		}
		total := len(r.writes())
		for n := range total {
			for _, next := range []string{"v1", "v2", "v3"} {
				t.Run(fmt.Sprintf("%s-to-v2-stopped-after-%d-then-%s", from, n, next), func(t *testing.T) {
					dir := t.TempDir()
					if from == "v1" {
						mustWrite(t, dir, v1)
					}
					w := &writer{root: dir, beforeWrite: failAfter(n)}
					if _, err := w.run(v2); err == nil {
						t.Fatal("interrupted Write succeeded")
					}
					rep, err := Write(dir, targets[next])
					if err != nil {
						t.Fatalf("Write after interruption: %v", err)
					}
					if len(rep.Kept) > 0 {
						t.Errorf("Write after interruption kept %q as edited", rep.Kept)
					}
					if got := contents(t, dir, true); !maps.Equal(got, refs[next]) {
						t.Errorf("tree = %q\nwant   %q", got, refs[next])
					}
				})
			}
		}
	}
}

// TestOrphanedTemporaryFile checks that a temporary file left by a crash
// mid-write neither breaks the next run nor survives it.
func TestOrphanedTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	v := flake()
	mustWrite(t, dir, v)
	writeFile(t, dir, "modules/"+tmpPrefix+"base.nix", "{ half")
	if err := os.Chmod(filepath.Join(dir, "modules", tmpPrefix+"base.nix"), 0o400); err != nil {
		t.Fatal(err)
	}
	// And one beside a file the next run leaves unchanged: only a sweep
	// removes it.
	writeFile(t, dir, "machines/nixos/"+tmpPrefix+"web.nix", "{ half")
	d, err := Check(dir, v)
	if want := []string{"machines/nixos/" + tmpPrefix + "web.nix", "modules/" + tmpPrefix + "base.nix"}; err != nil || !slices.Equal(d.Temp, want) || d.Empty() {
		t.Errorf("Check = %q (Temp %q), %v; want the temporary files %q reported", d, d.Temp, err, want)
	}
	if !strings.Contains(d.String(), "temp:") {
		t.Errorf("Diff.String() = %q, want a temp: line", d)
	}
	// A run that changes no file still sweeps them.
	mustWrite(t, dir, v)
	if got, want := contents(t, dir, false), treeOf(v); !maps.Equal(got, want) {
		t.Errorf("tree = %q\nwant   %q", got, want)
	}
	if d, err := Check(dir, v); err != nil || !d.Empty() {
		t.Errorf("Check after Write = %q, %v", d, err)
	}
}

// TestConcurrentWriter checks that a second writer of a folder being
// written is refused at once, naming the folder.
func TestConcurrentWriter(t *testing.T) {
	dir := t.TempDir()
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	w := &writer{root: dir, beforeWrite: func(string) error {
		once.Do(func() { close(started); <-release })
		return nil
	}}
	done := make(chan error)
	go func() {
		_, err := w.run(flake())
		done <- err
	}()
	<-started
	_, err := Write(dir, with(flake(), "flake.nix", "{ }\n"))
	close(release)
	if err == nil || !strings.Contains(err.Error(), "another fleet is writing "+dir) {
		t.Errorf("second Write = %v, want \"another fleet is writing %s\"", err, dir)
	}
	if err := <-done; err != nil {
		t.Fatalf("first Write: %v", err)
	}
	if got, want := contents(t, dir, false), treeOf(flake()); !maps.Equal(got, want) {
		t.Errorf("tree = %q\nwant   %q", got, want)
	}
	// The lock is released: the next writer proceeds.
	mustWrite(t, dir, flake())
}

// TestReadOnlyFolder checks that an output folder fleet may not write is
// named in the error, not a temporary file inside it.
func TestReadOnlyFolder(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores permissions")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	_, err := Write(dir, flake())
	if err == nil || strings.Contains(err.Error(), tmpPrefix) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Write = %v, want an error naming %s and no temporary file", err, dir)
	}
}

func TestManifest(t *testing.T) {
	sum := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	files := gen("b/c.nix", "c", "a.nix", "a", "b/<&>.nix", "x", `q/"é.nix`, "q")
	dirs := []string{t.TempDir(), t.TempDir()}
	mustWrite(t, dirs[0], files)
	mustWrite(t, dirs[1], reversed(files))
	var got [2]string
	for i, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ManifestName))
		if err != nil {
			t.Fatal(err)
		}
		got[i] = string(data)
	}
	if got[0] != got[1] {
		t.Errorf("manifest depends on input order:\n%s\n%s", got[0], got[1])
	}
	want := `{
  "comment": "` + manifestComment + `",
  "version": 1,
  "files": {
    "a.nix": "` + sum("a") + `",
    "b/<&>.nix": "` + sum("x") + `",
    "b/c.nix": "` + sum("c") + `",
    "q/\"é.nix": "` + sum("q") + `"
  }
}
`
	if got[0] != want {
		t.Errorf("manifest =\n%s\nwant\n%s", got[0], want)
	}

	// The hand-written encoder agrees with encoding/json, pending map and
	// all, so the manifest stays ordinary JSON.
	m := manifest{files: map[string]string{"a": sum("a"), `b"c`: sum("b")}, pending: map[string]string{"z/y": sum("z")}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(manifestJSON{Comment: manifestComment, Version: manifestVersion, Files: m.files, Pending: m.pending}); err != nil {
		t.Fatal(err)
	}
	if got := string(m.encode()); got != buf.String() {
		t.Errorf("encode =\n%s\nencoding/json =\n%s", got, buf.String())
	}
}

// TestCorruptManifest checks that a manifest fleet cannot trust stops it
// before it removes anything, in particular outside the folder.
func TestCorruptManifest(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     string
	}{
		{"not JSON", "{", "corrupt manifest"},
		{"escape", `{"version": 1, "files": {"../victim": "` + hash([]byte("precious\n")) + `"}}`, `contains ".."`},
		{"absolute", `{"version": 1, "files": {"/victim": "` + hash([]byte("precious\n")) + `"}}`, "absolute"},
		{"bad hash", `{"version": 1, "files": {"a": "xyz"}}`, "not a sha256"},
		{"newer", `{"version": 2, "files": {}}`, "upgrade fleet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := t.TempDir()
			writeFile(t, top, "victim", "precious\n")
			dir := filepath.Join(top, "out")
			writeFile(t, dir, ManifestName, tt.manifest)
			before := snapshot(t, top)
			if _, err := Write(dir, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Write = %v, want an error saying %q", err, tt.want)
			}
			if _, err := Check(dir, nil); err == nil {
				t.Errorf("Check succeeded")
			}
			if after := snapshot(t, top); !maps.Equal(before, after) {
				t.Errorf("tree changed")
			}
		})
	}
}

func TestBadFolder(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file} {
		if _, err := Write(dir, flake()); err == nil {
			t.Errorf("Write(%q) succeeded", dir)
		}
		if _, err := Check(dir, flake()); err == nil {
			t.Errorf("Check(%q) succeeded", dir)
		}
	}
}
