package nixgen

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
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

// nixEval evaluates a Nix file and decodes its JSON result.
func nixEval(t testing.TB, src string, out any) {
	t.Helper()
	bin := testtool.Require(t, "nix-instantiate", "nix-bin")
	file := filepath.Join(t.TempDir(), "test.nix")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--eval", "--strict", "--json", file)
	cmd.Env = append(os.Environ(), "NIX_REMOTE=", "NIX_STATE_DIR="+t.TempDir(), "NIX_PATH=")
	b, err := cmd.Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += "\n" + string(ee.Stderr)
		}
		t.Fatalf("nix-instantiate: %s\n--- source ---\n%s", msg, src)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
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
	hash := func(e Expr) Expr { return Call(Sel("builtins", "hashString"), Str{"sha256"}, e) }
	var values, names []Expr
	for _, s := range strs {
		values = append(values, hash(Str{s}))
		set := &Attrs{}
		set.Set(Null{}, s)
		names = append(names, hash(Call(Sel("builtins", "head"), Call(Sel("builtins", "attrNames"), set))))
	}
	// Nest the lists so that indented strings are printed at depth > 0.
	deep := &Attrs{}
	deep.Set(List{Elems: values}, "a", "b")
	deep.Set(&Attrs{Binds: []Bind{{Path: []string{"c"}, Value: Null{}}}}, "z")
	src := Print(List{Elems: []Expr{List{Elems: values}, List{Elems: names}, Select{X: deep, Path: []string{"a", "b"}}}})
	var got [3][]string
	nixEval(t, src, &got)
	for i, s := range strs {
		for k, what := range []string{"value", "attribute name", "nested value"} {
			if got[k][i] != sha(s) {
				t.Errorf("%s %q did not round-trip through Nix; printed as:\n%s", what, s, Print(Str{s}))
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
