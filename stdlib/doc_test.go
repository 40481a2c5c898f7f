package stdlib

import (
	"strings"
	"testing"
)

// TestEveryLibraryIsDocumented: fleet doc @stdlib and docs/stdlib.md are
// read from the sources, so a file without a docstring, a function
// without one or a value without a comment shows up there as a gap.
func TestEveryLibraryIsDocumented(t *testing.T) {
	files, err := Docs()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no libraries")
	}
	for _, f := range files {
		if strings.HasSuffix(f.Name, "_test.star") {
			t.Errorf("%s is a test, not a library", f.Name)
		}
		if f.Doc == "" {
			t.Errorf("%s has no module docstring", f.Load)
		}
		if len(f.Symbols) == 0 {
			t.Errorf("%s exports nothing", f.Load)
		}
		for _, s := range f.Symbols {
			if strings.HasPrefix(s.Name, "_") {
				t.Errorf("%s: private %s listed", f.Load, s.Name)
			}
			if s.Doc == "" {
				t.Errorf("%s: %s has no docstring or comment", f.Load, s.Name)
			}
		}
	}
}

func TestDocOf(t *testing.T) {
	src := `"""Module doc.

    load("@stdlib//x.star", "f")
"""

# A value,
# in two lines.
VALUE = {
    "a": 1,
}

_PRIVATE = 1

def f(a, b = "x, y", *args, c = [1, 2], **kw):
    """First line.

    More, dedented.
    """
    return a

def _g():
    pass
`
	f, err := docOf("x.star", src)
	if err != nil {
		t.Fatal(err)
	}
	if f.Load != "@stdlib//x.star" || f.Doc != "Module doc.\n\n    load(\"@stdlib//x.star\", \"f\")" {
		t.Errorf("file: %q %q", f.Load, f.Doc)
	}
	want := []Symbol{
		{Name: "f", Func: true, Signature: `f(a, b = "x, y", *args, c = [1, 2], **kw)`, Doc: "First line.\n\nMore, dedented."},
		{Name: "VALUE", Signature: "VALUE = {\n    \"a\": 1,\n}", Doc: "A value,\nin two lines."},
	}
	if len(f.Symbols) != len(want) {
		t.Fatalf("symbols: %+v", f.Symbols)
	}
	for i := range want {
		if f.Symbols[i] != want[i] {
			t.Errorf("symbol %d:\n got %+v\nwant %+v", i, f.Symbols[i], want[i])
		}
	}
	if _, ok := Lookup([]File{f}, "@stdlib//x"); !ok {
		t.Error("Lookup without .star")
	}
}
