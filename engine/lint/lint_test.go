package lint_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/lint"
	"github.com/fleet-nix/fleet/engine/model"
)

// want is an expected finding: a regexp on "message (rule)" at a line.
type want struct {
	file string
	line int
	re   *regexp.Regexp
}

// wants reads the `# want: "regexp" ...` comments of a file: each quoted
// (Go syntax) regexp must match one finding on that line.
func wants(t *testing.T, label string, src []byte) []want {
	t.Helper()
	var out []want
	for i, line := range strings.Split(string(src), "\n") {
		_, rest, ok := strings.Cut(line, "# want:")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		for rest != "" {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("%s:%d: bad want comment %q: %v", label, i+1, rest, err)
			}
			s, _ := strconv.Unquote(q)
			out = append(out, want{label, i + 1, regexp.MustCompile(s)})
			rest = strings.TrimSpace(rest[len(q):])
		}
	}
	return out
}

// check matches findings against wants, one to one.
func check(t *testing.T, findings []lint.Finding, ws []want) {
	t.Helper()
	left := append([]lint.Finding(nil), findings...)
	for _, w := range ws {
		found := false
		for i, f := range left {
			if f.Pos.File == w.file && f.Pos.Line == w.line && w.re.MatchString(f.Msg+" ("+f.Rule+")") {
				left = append(left[:i], left[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s:%d: no finding matching %q", w.file, w.line, w.re)
		}
	}
	for _, f := range left {
		t.Errorf("unexpected finding: %s", f)
	}
}

func TestSource(t *testing.T) {
	files, _ := filepath.Glob("testdata/syntax/*.star")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			label := filepath.Base(file)
			findings, err := lint.Source(label, src)
			if err != nil {
				t.Fatal(err)
			}
			check(t, findings, wants(t, label, src))
		})
	}
}

// TestFleet lints a small evaluated fleet: every rule, findings in
// several files, features declared through a library, silenced ones, and
// files lint must not read (test files, testdata, hidden directories).
func TestFleet(t *testing.T) {
	root := "testdata/fleet"
	f, err := engine.Eval(context.Background(), filepath.Join(root, "fleet.star"), engine.Options{Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	g, err := graph.Build(f)
	if err != nil {
		t.Fatal(err)
	}
	findings, err := lint.Fleet(f, g)
	if err != nil {
		t.Fatal(err)
	}
	files, err := lint.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(files, " "), "features/base.star fleet.star lib/shapes.star"; got != want {
		t.Errorf("Files = %s, want %s", got, want)
	}
	var ws []want
	for _, label := range files {
		src, err := os.ReadFile(filepath.Join(root, label))
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, wants(t, label, src)...)
	}
	check(t, findings, ws)
	for i := 1; i < len(findings); i++ {
		if findings[i].Pos.Less(findings[i-1].Pos) {
			t.Errorf("findings not sorted: %s before %s", findings[i-1], findings[i])
		}
	}
}

func TestFindingString(t *testing.T) {
	findings, err := lint.Source("x.star", []byte("load(\"//a.star\", \"b\")\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(findings) != 1 {
		t.Fatalf("got %v", findings)
	}
	if got, want := findings[0].String(), `x.star:1:18: unused load "b" from "//a.star" (unused-load)`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestSourceParseError(t *testing.T) {
	_, err := lint.Source("bad.star", []byte("x = (\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "bad.star:") {
		t.Errorf("err = %v, want a bad.star:line:col error", err)
	}
}

// TestReferenceFleetFiles lints the syntax of every file of the reference
// fleet: it is kept clean.
func TestReferenceFleetFiles(t *testing.T) {
	root := "../.."
	files, err := lint.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range files {
		if strings.HasPrefix(label, "engine/") || strings.HasPrefix(label, "cmd/") {
			continue // test fixtures of other packages
		}
		src, err := os.ReadFile(filepath.Join(root, label))
		if err != nil {
			t.Fatal(err)
		}
		findings, err := lint.Source(label, src)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			t.Errorf("%s", f)
		}
	}
}

// TestFeaturesOutsideRoot: a feature declared in @stdlib or a dependency
// is not reported; the same feature declared in the fleet is.
func TestFeaturesOutsideRoot(t *testing.T) {
	f := &model.Fleet{
		Name: "t",
		Features: []*model.Feature{
			{Name: "from-stdlib", Pos: model.Pos{File: "@stdlib//nixos.star", Line: 3, Col: 1}},
			{Name: "local", Pos: model.Pos{File: "fleet.star", Line: 2, Col: 8}},
			{Name: "used", Pos: model.Pos{File: "fleet.star", Line: 3, Col: 8}},
		},
		Machines: []*model.Machine{{Name: "web", System: "x86_64-linux", Class: model.NixOS, Features: []string{"used"}}},
	}
	g, err := graph.Build(f)
	if err != nil {
		t.Fatal(err)
	}
	got := lint.Features(f, g)
	if len(got) != 1 || got[0].Pos.String() != "fleet.star:2:8" || !strings.Contains(got[0].Msg, `"local"`) {
		t.Errorf("got %v", got)
	}
}
