package engine_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/model"
)

// TestErrors runs the .star cases under testdata/errors in the manner of
// go.starlark.net's testdata: a file is split into chunks at lines of
// "---", each chunk is one fleet, and a trailing comment ### "regexp" on a
// line says that an error is reported at that line, matching regexp
// (### :12 "regexp": at that line and column 12). A
// chunk without expectations must evaluate cleanly. A directory is one
// multi-file case with entry fleet.star; expectations may sit in any file.
//
// A chunk that does not call fleet() gets a fleet(), a nixpkgs channel and
// the agenix input appended after its last line, so line numbers stay as
// written.
func TestErrors(t *testing.T) {
	entries, err := os.ReadDir("testdata/errors")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		src := filepath.Join("testdata/errors", e.Name())
		if e.IsDir() {
			t.Run(e.Name(), func(t *testing.T) {
				dir := t.TempDir()
				if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
					t.Fatal(err)
				}
				checkCase(t, dir)
			})
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for i, chunk := range splitChunks(string(data)) {
			name := strings.TrimSuffix(e.Name(), ".star") + "/" + strconv.Itoa(i+1)
			t.Run(name, func(t *testing.T) {
				dir := t.TempDir()
				if !strings.Contains(chunk, "fleet(") {
					chunk += "\nfleet(name = \"test\", admins = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICRUsbpy39MjwMMclIWhMd+g8agpQUIpojD5WXaTU0r/ admin@example.org\"])\nchannel(\"nixpkgs\", url = \"github:NixOS/nixpkgs/nixos-unstable\")\n" +
						"input(\"agenix\", url = \"github:ryantm/agenix\")\n"
				}
				if err := os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(chunk), 0o644); err != nil {
					t.Fatal(err)
				}
				checkCase(t, dir)
			})
		}
	}
}

// splitChunks splits at "---" lines, padding each chunk with blank lines
// so that its line numbers are those of the file.
func splitChunks(s string) []string {
	var chunks []string
	lines := strings.Split(s, "\n")
	start := 0
	for i := 0; i <= len(lines); i++ {
		if i == len(lines) || lines[i] == "---" {
			chunks = append(chunks, strings.Repeat("\n", start)+strings.Join(lines[start:i], "\n"))
			start = i + 1
		}
	}
	return chunks
}

var expectRE = regexp.MustCompile(`###\s*(?::([0-9]+)\s+)?"((?:[^"\\]|\\.)*)"`)

type expectation struct {
	file string
	line int
	col  int // 0: any
	re   *regexp.Regexp
	hit  bool
}

func checkCase(t *testing.T, dir string) {
	t.Helper()
	var wants []*expectation
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".star") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for i, line := range strings.Split(string(data), "\n") {
			for _, m := range expectRE.FindAllStringSubmatch(line, -1) {
				// The pattern is a regexp as written, except that \" is a quote.
				pattern := strings.ReplaceAll(m[2], `\"`, `"`)
				re, err := regexp.Compile(pattern)
				if err != nil {
					t.Fatalf("%s:%d: bad expectation: %v", rel, i+1, err)
				}
				col, _ := strconv.Atoi(m[1])
				wants = append(wants, &expectation{file: filepath.ToSlash(rel), line: i + 1, col: col, re: re})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	got := evalErrors(filepath.Join(dir, "fleet.star"))
	for _, e := range got {
		text := e.Msg
		for _, n := range e.Notes {
			text += "\n" + n.Pos.String() + ": " + n.Msg
		}
		matched := false
		for _, w := range wants {
			if w.file == e.Pos.File && w.line == e.Pos.Line && (w.col == 0 || w.col == e.Pos.Col) && w.re.MatchString(text) {
				w.hit, matched = true, true
			}
		}
		if !matched {
			t.Errorf("unexpected error: %s", e)
		}
	}
	for _, w := range wants {
		if !w.hit {
			at := strconv.Itoa(w.line)
			if w.col > 0 {
				at += ":" + strconv.Itoa(w.col)
			}
			t.Errorf("%s:%s: expected an error matching %q; got %d error(s)", w.file, at, w.re, len(got))
		}
	}
}

// evalErrors evaluates a fleet and builds its graph, returning every
// positioned error.
func evalErrors(file string) model.Errors {
	f, err := engine.Eval(context.Background(), file, engine.Options{Stderr: io.Discard, MaxSteps: 1_000_000})
	if err == nil {
		_, err = graph.Build(f)
	}
	if err == nil {
		return nil
	}
	var many model.Errors
	if errors.As(err, &many) {
		return many
	}
	var one *model.Error
	if errors.As(err, &one) {
		return model.Errors{one}
	}
	return model.Errors{{Pos: model.Pos{File: "?"}, Msg: err.Error()}}
}

// TestErrorPositionsSorted guards the promise that all problems found in
// one pass are reported together, in file order.
func TestErrorPositionsSorted(t *testing.T) {
	dir := t.TempDir()
	src := `fleet(name = "t")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
machine("b", system = "x86_64-linux", state_version = "26.05", features = ["nope2"])
machine("a", system = "x86_64-linux", state_version = "26.05", features = ["nope1"])
`
	if err := os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	errs := evalErrors(filepath.Join(dir, "fleet.star"))
	if len(errs) != 2 {
		t.Fatalf("want 2 errors, got %v", errs)
	}
	lines := []int{errs[0].Pos.Line, errs[1].Pos.Line}
	if !sort.IntsAreSorted(lines) {
		t.Errorf("errors not in file order: %v", lines)
	}
}
