package starfmt

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"spacing", "x=1\ny  =  [1,2]\n", "x = 1\ny = [1, 2]\n"},
		{"keyword arguments", "f(a=1,b = 2)\n", "f(a = 1, b = 2)\n"},
		{"quotes", "x = 'a'\ny = 'say \"hi\"'\n", "x = \"a\"\ny = 'say \"hi\"'\n"},
		{"blank lines collapse", "x = 1\n\n\n\ny = 2\n", "x = 1\n\ny = 2\n"},
		{"final newline", "x = 1", "x = 1\n"},
		{"indentation", "def f(a):\n  if a:\n    return 1\n  return 2\n", "def f(a):\n    if a:\n        return 1\n    return 2\n"},
		{"multi-line list gets one element per line", "x = [1,\n  2]\n", "x = [\n    1,\n    2,\n]\n"},
		{"multi-line def", "def f(a,\n  b = 1):\n  pass\n", "def f(\n        a,\n        b = 1):\n    pass\n"},
		{"comments kept", "# head\nx = 1  # why\n", "# head\nx = 1  # why\n"},
		// What BUILD mode or buildifier's rewrites would change, and fleet
		// fmt must not: load order and arguments, call argument order,
		// list order, parentheses, docstrings, octal-looking ints.
		{"load order kept", "load(\"//b.star\", \"z\", \"a\")\nload(\"//a.star\", \"y\")\n", "load(\"//b.star\", \"z\", \"a\")\nload(\"//a.star\", \"y\")\n"},
		{"load after code kept", "x = 1\nload(\"//a.star\", \"y\")\n", "x = 1\n\nload(\"//a.star\", \"y\")\n"},
		{"argument order kept", "machine(system = \"x\", name = \"web\", features = [\"z\", \"a\"])\n", "machine(system = \"x\", name = \"web\", features = [\"z\", \"a\"])\n"},
		{"positional after keyword kept", "f(a = 1, *args)\n", "f(a = 1, *args)\n"},
		{"dict order kept", "x = {\"b\": 1, \"a\": 2}\n", "x = {\"b\": 1, \"a\": 2}\n"},
		{"parentheses kept", "x = (1)\n", "x = (1)\n"},
		{"docstring kept", "def f():\n    \"\"\"Doc.\n\n      indented\n    \"\"\"\n    pass\n", "def f():\n    \"\"\"Doc.\n\n      indented\n    \"\"\"\n    pass\n"},
		{"raw string", "x = r'\\d+'\n", "x = r\"\\d+\"\n"},
		{"lambda", "f = lambda a:a+1\n", "f = lambda a: a + 1\n"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Format("t.star", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Format(%q)\n got: %q\nwant: %q", tc.in, got, tc.want)
			}
			again, err := Format("t.star", got)
			if err != nil || string(again) != string(got) {
				t.Errorf("not idempotent: %q -> %q (%v)", got, again, err)
			}
		})
	}
}

func TestFormatErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"unclosed paren", "x = 1\ny = (1,\n", "t.star:3:1: "},
		{"bad token", "x = 1\nf(a b)\n", "t.star:2:6: got identifier, want ','"},
		{"unterminated string", "x = 'abc\n", "t.star:1:5: unexpected newline in string"},
		{"indented top level", "x = 1\n  y = 2\n", "t.star:2:3: "},
		// Valid Starlark buildtools cannot read: say so.
		{"bytes literal", "x = b'abc'\n", "(the formatter, buildtools, cannot parse this construct)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Format("t.star", []byte(tc.in))
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// repoStarFiles is every Starlark file of the repository, testdata included.
func repoStarFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".fleet") {
			return filepath.SkipDir
		}
		if !d.IsDir() && IsStarlarkFile(d.Name()) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found only %d .star files", len(files))
	}
	return files
}

// TestIdempotentOnRepository formats every .star file of the repository,
// testdata included, twice: the second pass changes nothing, and (checked
// by Format itself) neither pass changes a program.
func TestIdempotentOnRepository(t *testing.T) {
	for _, file := range repoStarFiles(t) {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		once, err := Format(file, src)
		if err != nil {
			var fe *Error
			if errors.As(err, &fe) && strings.Contains(file, "testdata") {
				continue // a deliberately broken file
			}
			t.Errorf("%v", err)
			continue
		}
		twice, err := Format(file, once)
		if err != nil {
			t.Errorf("%s: formatted output does not format: %v", file, err)
			continue
		}
		if string(twice) != string(once) {
			t.Errorf("%s: not idempotent:\n%s", file, Diff(file, once, twice))
		}
	}
}

// TestSameTree checks the program comparison Format relies on.
func TestSameTree(t *testing.T) {
	parse := func(src string) reflect.Value {
		f, err := parseOptions.Parse("t.star", src, 0)
		if err != nil {
			t.Fatal(err)
		}
		return reflect.ValueOf(f.Stmts)
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"x = 1\n", "x  =  1  # c\n", true},
		{"x = 'a'\n", "x = \"a\"\n", true},
		{"x = (1 + 2)\n", "x = 1 + 2\n", true},
		{"x = 0x10\n", "x = 16\n", true},
		{"x = 99999999999999999999999\n", "x = 99999999999999999999999\n", true},
		{"x = 99999999999999999999999\n", "x = 99999999999999999999998\n", false},
		{"x = 1\n", "x = 2\n", false},
		{"x = 'a'\n", "x = 'b'\n", false},
		{"f(a = 1, b = 2)\n", "f(b = 2, a = 1)\n", false},
		{"x = [1, 2]\n", "x = [2, 1]\n", false},
		{"load('a', 'x', 'y')\n", "load('a', 'y', 'x')\n", false},
		{"x = 1\ny = 2\n", "y = 2\nx = 1\n", false},
		{"x = a.b\n", "x = a.c\n", false},
		{"x = a + b\n", "x = a - b\n", false},
	} {
		if got := sameTree(parse(tc.a), parse(tc.b)); got != tc.same {
			t.Errorf("sameTree(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{
		"fleet.star", "fleet.deps", "README.md", "features/ssh.star", "features/ssh_test.star",
		"features/notes.txt", "testdata/odd.star", "sub/testdata/odd.star", ".git/x.star",
		".fleet/nix/x.star", "deep/er/lib.star",
	} {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Files([]string{dir, filepath.Join(dir, "testdata/odd.star"), filepath.Join(dir, "fleet.star")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i] = filepath.ToSlash(strings.TrimPrefix(got[i], dir+string(filepath.Separator)))
	}
	want := "deep/er/lib.star features/ssh.star features/ssh_test.star fleet.deps fleet.star testdata/odd.star"
	if strings.Join(got, " ") != want {
		t.Errorf("Files = %s\nwant    %s", strings.Join(got, " "), want)
	}
	if _, err := Files([]string{filepath.Join(dir, "missing")}); err == nil {
		t.Error("a missing path is not an error")
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.star")
	if err := os.WriteFile(p, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	info, _ := os.Stat(p)
	if string(got) != "new\n" {
		t.Errorf("contents %q", got)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", info.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	// A link stays a link; its target gets the contents.
	link := filepath.Join(dir, "link.star")
	if err := os.Symlink("x.star", link); err != nil {
		t.Skip(err)
	}
	if err := WriteFile(link, []byte("via link\n")); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link was replaced by a file")
	}
	if got, _ := os.ReadFile(p); string(got) != "via link\n" {
		t.Errorf("target contents %q", got)
	}
}

func TestDiff(t *testing.T) {
	old := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nx=1\nk\n"
	new := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nx = 1\nk\n"
	want := `--- t.star
+++ t.star (formatted)
@@ -8,5 +8,5 @@
 h
 i
 j
-x=1
+x = 1
 k
`
	if got := string(Diff("t.star", []byte(old), []byte(new))); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if Diff("t.star", []byte(old), []byte(old)) != nil {
		t.Error("equal inputs give a diff")
	}
	// Two changes far apart make two hunks; a missing final newline is
	// marked.
	got := string(Diff("t.star", []byte("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12"), []byte("0\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n")))
	if strings.Count(got, "@@ -") != 2 || !strings.Contains(got, "\\ No newline at end of file") {
		t.Errorf("got:\n%s", got)
	}
}
