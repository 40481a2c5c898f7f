package nixgen_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// evilReasons are reasons that would end a Nix comment, or act on a
// terminal or an editor, if printed as they are.
var evilReasons = []string{
	"broken\rINJECTED = builtins.trace \"PWNED\" 1;",
	"broken\nINJECTED2 = builtins.trace \"PWNED\" 2;",
	"broken\r\nINJECTED3 = builtins.trace \"PWNED\" 3;",
	"colour \x1b[31mred\x1b[0m and a bell\a",
	"line\u2028separator\u2029paragraph\u0085next line \u202eevil\u2066 \x7f",
	"vertical\vtab\fform feed\ttab",
}

// commentInjectionFleet declares every overlay kind that has a reason
// with each evil reason.
func commentInjectionFleet(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString(`fleet(name = "evil", admins = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICRUsbpy39MjwMMclIWhMd+g8agpQUIpojD5WXaTU0r/ a@b"])
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
stable = channel("stable", url = "github:NixOS/nixpkgs/nixos-25.05")
`)
	for i, r := range evilReasons {
		q := fmt.Sprintf("%q", r) // Go's escapes are Starlark's too (NUL is refused)
		fmt.Fprintf(&b, "overlay.patch(url = \"https://example.org/%d.patch\", hash = \"sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\", name = \"p%d\", reason = %s)\n", i, i, q)
		fmt.Fprintf(&b, "overlay.fallback(\"fb%d\", channel = stable, reason = %s)\n", i, q)
		fmt.Fprintf(&b, "overlay.fallback(\"fbp%d\", channel = stable, platforms = [\"x86_64-linux\"], reason = %s)\n", i, q)
		fmt.Fprintf(&b, "overlay.fallback(\"fbp%d\", channel = stable, platforms = [\"aarch64-darwin\"], reason = %s)\n", i, q)
		fmt.Fprintf(&b, "overlay.package(\"pk%d\", path = \"pk.nix\", reason = %s)\n", i, q)
		fmt.Fprintf(&b, "overlay.override(\"ov%d\", attrs = {\"doCheck\": False}, reason = %s)\n", i, q)
	}
	testtool.WriteFiles(t, dir, []nixgen.File{
		{Path: "fleet.star", Data: []byte(b.String())},
		{Path: "pk.nix", Data: []byte("{ }: { }\n")},
	})
	return filepath.Join(dir, "fleet.star")
}

// TestCommentsCannotInjectBindings generates the overlay of a fleet whose
// reasons try to end their comment, evaluates overlays/default.nix with
// real Nix and checks that every layer has exactly the declared
// attributes, each of which is forced: an injected binding would add a
// name, and its builtins.trace would print to stderr. No control
// character is left in the file at all.
func TestCommentsCannotInjectBindings(t *testing.T) {
	bin := testtool.Require(t, "nix-instantiate", "nix-bin")
	f, files, dir, _ := stubbed(t, commentInjectionFleet(t))
	var overlay []byte
	for _, file := range files {
		if file.Path == "overlays/default.nix" {
			overlay = file.Data
		}
	}
	if overlay == nil {
		t.Fatal("no overlays/default.nix")
	}
	for i, r := range string(overlay) {
		if r == utf8.RuneError || r != '\n' && (unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control)) {
			t.Errorf("overlays/default.nix holds %q at byte %d:\n%s", r, i, overlay)
			break
		}
	}
	var names []string
	for i := range evilReasons {
		names = append(names, fmt.Sprintf("fb%d", i), fmt.Sprintf("fbp%d", i), fmt.Sprintf("pk%d", i), fmt.Sprintf("ov%d", i))
	}
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	nameList := "[ " + strings.Join(quoted, " ") + " ]"
	src := fmt.Sprintf(`let
  inputs = {
    nixpkgs = { lib.composeManyExtensions = layers: layers; };
    stable = %s;
  };
  mkPkg = n: { __pkg = n; override = a: mkPkg n; overrideAttrs = f: mkPkg n; };
  pkgs = builtins.listToAttrs (map (n: { name = n; value = mkPkg n; }) %s);
  prev = pkgs // {
    stdenv.hostPlatform = { system = "x86_64-linux"; isDarwin = false; };
    config = { };
    fetchpatch = args: args;
    applyPatches = args: %s;
    callPackage = path: args: { inherit path; };
    stable = pkgs;
    patched = pkgs;
  };
  layers = import ./overlays/default.nix inputs;
  force = s: map (n: builtins.seq s.${n} n) (builtins.attrNames s);
in map (l: force (l prev prev)) layers
`, stubChannel(t, dir, "stable", nameList), nameList, stubChannel(t, dir, "patched", nameList))
	file := filepath.Join(dir, "inject-test.nix")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--store", "dummy://", "--eval", "--strict", "--json", file)
	cmd.Env = nixEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s\noverlays/default.nix:\n%s", err, stderr.String(), overlay)
	}
	if strings.Contains(stderr.String(), "PWNED") || strings.Contains(stderr.String(), "trace") {
		t.Errorf("an injected binding was evaluated:\n%s", stderr.String())
	}
	var got [][]string
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"patched", "stable"}, nil, nil, nil}
	for i := range evilReasons {
		want[1] = append(want[1], fmt.Sprintf("fb%d", i), fmt.Sprintf("fbp%d", i))
		want[2] = append(want[2], fmt.Sprintf("pk%d", i))
		want[3] = append(want[3], fmt.Sprintf("ov%d", i))
	}
	for i := range want {
		want[i] = sorted(want[i])
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("layer attribute names:\ngot  %q\nwant %q\noverlays/default.nix:\n%s", got, want, overlay)
	}
	if len(f.Overlays) != 6*len(evilReasons) {
		t.Errorf("%d overlay entries, want %d", len(f.Overlays), 6*len(evilReasons))
	}
}

// commentPieces are the fragments that end or disturb comments.
var commentPieces = append([]string{"\r", "\n", "\r\n", "\x1b", "\x1b[2J", "\a", "\b", "\v", "\f", "\x00", "\x7f",
	"\u0085", "\u009b", "\u2028", "\u2029", "\u202e", "\u2066", "\u200f", "\xff", "\xc3", "*/", "/*", "#", "''",
	"x = 1;", "assert false;", "in", "}", " "}, pieces...)

func randomComment(r *rand.Rand) string {
	var b strings.Builder
	for n := r.IntN(16); n >= 0; n-- {
		b.WriteString(commentPieces[r.IntN(len(commentPieces))])
	}
	return b.String()
}

// checkCommentLines is the Go-level property of printed comments: every
// line that is a comment holds no control character, nor a line or
// paragraph separator, bidi control or invalid UTF-8, and every other
// line is the printer's own code.
func checkCommentLines(t testing.TB, out string, code map[string]bool) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if !strings.HasPrefix(trimmed, "#") {
			if !code[trimmed] {
				t.Fatalf("line %q is neither a comment nor the printer's code:\n%s", line, out)
			}
			continue
		}
		if !utf8.ValidString(line) {
			t.Fatalf("comment line %q is not UTF-8", line)
		}
		for _, r := range line {
			if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
				t.Fatalf("comment line %q holds %U", line, r)
			}
		}
	}
}

// renderComments renders a file whose header lines and binding comments
// are comments, and the lines of code it may contain.
func renderComments(comments []string) (string, map[string]bool, map[string]any) {
	set := &nixgen.Attrs{}
	want := map[string]any{}
	code := map[string]bool{"{": true, "}": true}
	for i, c := range comments {
		name := fmt.Sprintf("b%d", i)
		set.Binds = append(set.Binds, nixgen.Bind{Path: []string{name}, Value: nixgen.Int{V: int64(i)}, Comment: c})
		want[name] = float64(i)
		code[fmt.Sprintf("%s = %d;", name, i)] = true
	}
	return string(nixgen.Render(comments, set)), code, want
}

// TestCommentsThroughNix: for thousands of random comments, as header
// lines and as binding comments, Nix reads the file as exactly the set
// of the bindings (no comment ends early), and the Go-level property
// holds.
func TestCommentsThroughNix(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	comments := append([]string{}, commentPieces...)
	for i := 0; i < 2000; i++ {
		comments = append(comments, randomComment(r))
	}
	out, code, want := renderComments(comments)
	checkCommentLines(t, out, code)
	var got map[string]any
	if err := evalNix(t, t.TempDir(), out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Nix read other bindings than the printed ones:\ngot  %v\nwant %v", got, want)
	}
}

// FuzzComment: `go test -fuzz FuzzComment ./engine/nixgen` tries
// arbitrary comments against the Go-level property.
func FuzzComment(f *testing.F) {
	for _, p := range commentPieces {
		f.Add(p + "x\n" + p)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, code, _ := renderComments([]string{s})
		checkCommentLines(t, out, code)
	})
}
