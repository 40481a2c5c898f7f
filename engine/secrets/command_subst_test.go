package secrets

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
)

// TestCommandSubstitutesWholeWords: $in and $out (and ${in}, ${out}) are
// replaced in argv only as whole words, alone or followed by '/'; a
// script's own $input, $output or $index is left to the script, and in
// and out are in the environment as well.
func TestCommandSubstitutesWholeWords(t *testing.T) {
	tmp := t.TempDir()
	script := `input=I; output=O; index=X; inner=N; outer=U
printf '%s %s %s %s %s' "$input" "$output" "$index" "$inner" "$outer" > $out/vars
cat $in/dep/value > ${out}/dep
cat ${in}/dep/value >> "$out/dep"
printf '%s|%s|%s' "$in" "$out" "$1" > "$out/env"`
	g := mkGen(KindCommand, map[string]model.Value{
		"argv":    strs("sh", "-c", script, "sh", "$out"),
		"outputs": strs("vars", "dep", "env")})
	in := Inputs{TempDir: tmp, Deps: map[string]map[string][]byte{"dep": {"value": []byte("v")}}}
	out, err := Generate(context.Background(), g, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(out["vars"]); got != "I O X N U" {
		t.Errorf("the script's own variables: %q, want %q", got, "I O X N U")
	}
	if got := string(out["dep"]); got != "vv" {
		t.Errorf("$in/dep/value and ${in}/dep/value: %q", got)
	}
	env := strings.Split(string(out["env"]), "|")
	if len(env) != 3 || !strings.HasPrefix(env[0], filepath.Join(tmp, "fleet-secret-in-")) ||
		!strings.HasPrefix(env[1], filepath.Join(tmp, "fleet-secret-out-")) || env[2] != env[1] {
		t.Errorf("in, out from the environment and a lone $out argument: %q", env)
	}
}

func TestSubstDirs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"$in", "/I"}, {"$out", "/O"}, {"${in}", "/I"}, {"${out}", "/O"},
		{"$in/a/b", "/I/a/b"}, {"$out/x", "/O/x"}, {"${out}/x", "/O/x"}, {"${in}x", "/Ix"},
		{"--key=$out/key", "--key=/O/key"}, {"a $in/b $out", "a /I/b /O"},
		{"$input", "$input"}, {"$output", "$output"}, {"$index", "$index"}, {"$in_x", "$in_x"},
		{"${input}", "${input}"}, {"$inx/y", "$inx/y"}, {"$$", "$$"}, {"$", "$"}, {"", ""},
	} {
		if got := substDirs(tc.in, "/I", "/O"); got != tc.want {
			t.Errorf("substDirs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
