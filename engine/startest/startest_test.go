package startest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// testOptions adds go_panic, a builtin that panics as a buggy builtin
// would, so that testdata can check a panic fails only its test.
func testOptions(o Options) Options {
	o.extra = starlark.StringDict{
		"go_panic": starlark.NewBuiltin("go_panic", func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
			panic("deliberate")
		}),
	}
	return o
}

func TestRunFile(t *testing.T) {
	for _, tc := range []struct {
		file    string
		opts    Options
		pass    []string // tests that pass, in order
		fail    []string // tests that fail, in order
		fileErr string   // regexp the file's error must match ("": no error)
	}{
		{file: "pass_test.star", pass: []string{
			"test_eq_ne_true", "test_contains", "test_fails_returns_the_message", "test_nix_values_compare_by_meaning",
			"test_load_file", "test_graph", "test_nix", "test_eval_snippet_next_to_the_test",
			"test_eval_errors_are_positioned", "test_views_are_read_only", "test_unknown_names_are_errors",
			"test_print_is_captured",
		}},
		{file: "fail_test.star", pass: []string{"test_passes"}, fail: []string{
			"test_eq", "test_ne_true", "test_contains", "test_fails", "test_helper",
			"test_continues_after_failures_then_stops_at_an_error", "test_uncaught_eval_error",
			"test_declaring_outside_an_eval",
		}},
		{file: "isolation_test.star", opts: Options{MaxSteps: 100_000},
			pass: []string{"test_first", "test_last"},
			fail: []string{"test_runaway", "test_error", "test_panic", "test_recursion", "test_takes_arguments"}},
		{file: "pass_test.star", opts: Options{Run: regexp.MustCompile("graph|^test_nix$")},
			pass: []string{"test_graph", "test_nix"}},
		{file: "fail_test.star", opts: Options{Run: regexp.MustCompile("nothing")}},
		{file: "broken_load_test.star", fileErr: `^broken_load_test\.star:1:1: missing\.star: no such file$`},
		{file: "broken_syntax_test.star", fileErr: `^broken_syntax_test\.star:1:13: got ':', want '\)'$`},
		{file: "toplevel_assert_test.star", fileErr: `^assert\.eq: at the top: 1 != 2$`},
	} {
		name := tc.file
		if tc.opts.Run != nil {
			name += "/run=" + tc.opts.Run.String()
		}
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			res := RunFile(context.Background(), path, testOptions(tc.opts))
			if res.Label != tc.file {
				t.Errorf("label %q, want %q (testdata holds fleet.star, so it is the root)", res.Label, tc.file)
			}
			switch {
			case tc.fileErr == "" && res.Err != nil:
				t.Fatalf("file error: %v", res.Err)
			case tc.fileErr != "":
				if res.Err == nil || !regexp.MustCompile(tc.fileErr).MatchString(res.Err.(*model.Error).Msg) &&
					!regexp.MustCompile(tc.fileErr).MatchString(res.Err.Error()) {
					t.Fatalf("file error %v, want one matching %s", res.Err, tc.fileErr)
				}
				if len(res.Tests) > 0 {
					t.Errorf("%d tests ran after the file failed", len(res.Tests))
				}
				return
			}
			var pass, fail []string
			for _, r := range res.Tests {
				if r.Passed() {
					pass = append(pass, r.Name)
				} else {
					fail = append(fail, r.Name)
				}
			}
			if !slices.Equal(pass, tc.pass) || !slices.Equal(fail, tc.fail) {
				t.Errorf("passed %q\nfailed %q\nwant passed %q\nfailed %q", pass, fail, tc.pass, tc.fail)
			}
			if tc.opts.Run == nil {
				checkWants(t, path, res)
			}
			if t.Failed() {
				var out bytes.Buffer
				(&Report{W: &out, Verbose: true}).Add(res)
				t.Logf("output:\n%s", out.String())
			}
		})
	}
}

// checkWants matches the failures of a file with its "# want: REGEXP"
// comments: every comment gets exactly one failure at its line (the
// failure's position, or a note: the test line that called a helper) with
// a matching message, and every failure has its comment.
func checkWants(t *testing.T, path string, res *FileResult) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wants := map[int]*regexp.Regexp{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if _, re, ok := strings.Cut(sc.Text(), "# want: "); ok {
			wants[line] = regexp.MustCompile(re)
		}
	}
	matched := map[int]int{}
	for _, r := range res.Tests {
		for _, e := range r.Failures {
			lines := []int{}
			if e.Pos.File == res.Label {
				lines = append(lines, e.Pos.Line)
			}
			for _, n := range e.Notes {
				if n.Pos.File == res.Label {
					lines = append(lines, n.Pos.Line)
				}
			}
			found := false
			for _, l := range lines {
				if re, ok := wants[l]; ok && re.MatchString(e.Msg) {
					matched[l]++
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s: unexpected failure in %s: %s", e.Pos, r.Name, e.Msg)
			}
		}
	}
	for l, re := range wants {
		if matched[l] != 1 {
			t.Errorf("%s:%d: %d failures matching %s, want 1", path, l, matched[l], re)
		}
	}
}

// TestIsolation checks what one test's trouble does not do: stop the
// others, or leak its output into theirs.
func TestIsolation(t *testing.T) {
	res := RunFile(context.Background(), filepath.Join("testdata", "isolation_test.star"), testOptions(Options{MaxSteps: 100_000}))
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	last := res.Tests[len(res.Tests)-1]
	if last.Name != "test_last" || !last.Passed() || last.Output != "isolation_test.star:26: still running\n" {
		t.Errorf("last test: %+v", last)
	}
	for _, r := range res.Tests {
		if r.Name == "test_panic" && !strings.Contains(r.Failures[0].Msg, "a bug in fleet") {
			t.Errorf("panic failure: %s", r.Failures[0].Msg)
		}
		if r.Name == "test_runaway" && !strings.Contains(r.Failures[0].Msg, "step limit of 100000 steps") {
			t.Errorf("step limit failure: %s", r.Failures[0].Msg)
		}
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := RunFile(ctx, filepath.Join("testdata", "pass_test.star"), Options{})
	if res.Err == nil || !strings.Contains(res.Err.Error(), "cancel") {
		t.Fatalf("err %v, want a cancellation", res.Err)
	}
}

func TestReport(t *testing.T) {
	var out bytes.Buffer
	r := &Report{W: &out}
	r.Add(RunFile(context.Background(), filepath.Join("testdata", "pass_test.star"), Options{}))
	r.Add(RunFile(context.Background(), filepath.Join("testdata", "fail_test.star"), Options{Run: regexp.MustCompile("test_eq$|test_helper")}))
	r.Add(RunFile(context.Background(), filepath.Join("testdata", "broken_load_test.star"), Options{}))
	got := regexp.MustCompile(`\d+\.\dms`).ReplaceAllString(out.String(), "X.Xms")
	want := `# testdata/fail_test.star (root testdata)
FAIL test_eq (fail_test.star:7) X.Xms
    fail_test.star:8:14: assert.eq: 1 != 2
    fail_test.star:9:14: assert.eq: letters: "a" != "b"
    fail_test.star:10:14: assert.eq: values differ
        left:  [1, 2, 3, "a long string to push this past the width"]
        right: [1, 2, 3, "another long string"]
    fail_test.star:11:14: assert.eq: strings differ at line 2
        left:  "two"
        right: "TWO"
    fail_test.star:12:14: assert.eq: nix.force(1) != nix.default(1)
FAIL test_helper (fail_test.star:30) X.Xms
    helpers.star:6:16: assert.true: -1 is not positive: got False
        fail_test.star:32:19: called from test_helper
# testdata/broken_load_test.star (root testdata)
FAIL broken_load_test.star: the file did not run
    broken_load_test.star:1:1: missing.star: no such file
`
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}
	if s := r.Summary(); s != "12 passed, 3 failed" {
		t.Errorf("summary %q", s)
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{
		"a_test.star", "fleet.star", "lib.star",
		"sub/b_test.star", "sub/deeper/c_test.star",
		".git/x_test.star", ".fleet/nix/y_test.star", "_old/z_test.star", "testdata/w_test.star",
	} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	for _, tc := range []struct {
		name  string
		paths []string
		want  []string
		err   string
	}{
		{"walk", []string{dir}, []string{j("a_test.star"), j("sub/b_test.star"), j("sub/deeper/c_test.star")}, ""},
		{"named testdata is walked", []string{j("testdata")}, []string{j("testdata/w_test.star")}, ""},
		{"file and overlapping dir", []string{j("sub/b_test.star"), j("sub")}, []string{j("sub/b_test.star"), j("sub/deeper/c_test.star")}, ""},
		{"not a test file", []string{j("lib.star")}, nil, "not a test file"},
		{"missing", []string{j("nope")}, nil, "no such file or directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Discover(tc.paths)
			if tc.err != "" {
				var pe *PathError
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &pe) {
					t.Fatalf("err %v, want a PathError containing %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("got %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
}

func TestRootOf(t *testing.T) {
	dir := t.TempDir()
	mk := func(p string) {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("fleet.star")
	mk("lib/x_test.star")
	mk("repo/.git/HEAD")
	mk("repo/pkg/y_test.star")
	for _, tc := range []struct{ file, root string }{
		{"lib/x_test.star", dir},                    // the fleet above
		{"x_test.star", dir},                        // next to fleet.star
		{"repo/pkg/y_test.star", dir + "/repo/pkg"}, // the checkout's top stops the search
	} {
		got, err := RootOf(filepath.Join(dir, tc.file))
		if err != nil || got != filepath.FromSlash(tc.root) {
			t.Errorf("RootOf(%s) = %s, %v; want %s", tc.file, got, err, tc.root)
		}
	}
}

// TestRepositoryTests runs the *_test.star files the repository ships
// (stdlib/, examples/, lib/, features/), so that `go test ./...` runs them.
func TestRepositoryTests(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	files, err := Discover([]string{root})
	if err != nil {
		t.Fatal(err)
	}
	var labels []string
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		labels = append(labels, filepath.ToSlash(rel))
	}
	for _, want := range []string{"stdlib/nixos_test.star", "stdlib/darwin_test.star", "examples/minimal/fleet_test.star", "lib/hosts_test.star"} {
		if !slices.Contains(labels, want) {
			t.Errorf("%s not found (found %q)", want, labels)
		}
	}
	for i, f := range files {
		t.Run(labels[i], func(t *testing.T) {
			res := RunFile(context.Background(), f, Options{})
			passed, failed := res.Counts()
			if failed > 0 || passed == 0 {
				var out bytes.Buffer
				(&Report{W: &out, Verbose: true}).Add(res)
				t.Errorf("%d passed, %d failed:\n%s", passed, failed, out.String())
			}
		})
	}
}
