package nixgen_test

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/nixgen"
)

// pieces are the fragments that break naive Nix string printers.
var pieces = []string{
	`"`, `\`, `$`, `{`, `}`, `'`, `''`, `'''`, `${`, `$${`, `''${`, `'${`, `''\`, `\${`,
	"\n", "\r", "\t", " ", "  ", "    ", "a", "b", "x y", "é", "日本", "\x01", "\x7f", "\xff", "#", "/*", "*/", ";",
}

func randomString(r *rand.Rand) string {
	var b strings.Builder
	for n := r.IntN(12); n >= 0; n-- {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// roundTrip prints every string as a value and as an attribute name, at
// several indentation depths, and has real Nix hash them back: hashes
// compare arbitrary bytes, which JSON output cannot carry.
func roundTrip(t testing.TB, strs []string) {
	t.Helper()
	hash := func(e nixgen.Expr) nixgen.Expr {
		return nixgen.Call(nixgen.Sel("builtins", "hashString"), nixgen.Str{S: "sha256"}, e)
	}
	var values, names []nixgen.Expr
	for _, s := range strs {
		values = append(values, hash(nixgen.Str{S: s}))
		set := &nixgen.Attrs{}
		set.Set(nixgen.Null{}, s)
		names = append(names, hash(nixgen.Call(nixgen.Sel("builtins", "head"), nixgen.Call(nixgen.Sel("builtins", "attrNames"), set))))
	}
	// Nest the lists so that indented strings are printed at depth > 0.
	deep := &nixgen.Attrs{}
	deep.Set(nixgen.List{Elems: values}, "a", "b")
	deep.Set(nixgen.Null{}, "z", "c")
	src := nixgen.Print(nixgen.List{Elems: []nixgen.Expr{nixgen.List{Elems: values}, nixgen.List{Elems: names},
		nixgen.Select{X: deep, Path: []string{"a", "b"}}}})
	var got [3][]string
	if err := evalNix(t, t.TempDir(), src, &got); err != nil {
		t.Fatal(err)
	}
	for i, s := range strs {
		for k, what := range []string{"value", "attribute name", "nested value"} {
			if got[k][i] != sha(s) {
				t.Errorf("%s %q did not round-trip through Nix; printed as:\n%s", what, s, nixgen.Print(nixgen.Str{S: s}))
			}
		}
	}
}

// TestStringsRoundTripThroughNix is the escaping property over thousands
// of generated strings, in one nix-instantiate run.
func TestStringsRoundTripThroughNix(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	strs := append([]string{}, pieces...)
	strs = append(strs, "", "line one\nline two\n", "  indented\nflush\n", "a\n\nb\n", "'\n''\n'''\n", "$\n${x}\n$${y}\n", "''${\n'${\n")
	for i := 0; i < 3000; i++ {
		s := randomString(r)
		if strings.Count(s, "\n") < 2 && r.IntN(2) == 0 {
			s += "\nmore\n" // exercise the ''...'' form
		}
		strs = append(strs, s)
	}
	for _, s := range strs {
		if strings.IndexByte(s, 0) >= 0 {
			t.Fatal("NUL cannot be tested: the builtins refuse it")
		}
	}
	indented := 0
	for _, s := range strs {
		if strings.HasPrefix(nixgen.Print(nixgen.Str{S: s}), "''") {
			indented++
		}
	}
	if indented < 100 {
		t.Fatalf("only %d strings were printed in the indented form: the property no longer covers it", indented)
	}
	roundTrip(t, strs)
}

// FuzzStringRoundTrip: `go test -fuzz FuzzStringRoundTrip ./engine/nixgen`
// tries arbitrary strings; each is checked by real Nix.
func FuzzStringRoundTrip(f *testing.F) {
	for _, p := range pieces {
		f.Add(p + "\n" + p + "\n")
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			t.Skip("NUL is refused by the builtins")
		}
		roundTrip(t, []string{s})
	})
}
