package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUserTextShownEscaped: a reason with terminal control sequences (ESC,
// CR, a C1 CSI, a bidi override) is listed by `fleet overlays` and `fleet
// eval` with those characters escaped, and nothing else of the table moves.
func TestUserTextShownEscaped(t *testing.T) {
	dir := t.TempDir()
	src := `fleet(name = "t")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
stable = channel("stable", url = "github:NixOS/nixpkgs/nixos-25.05")
overlay.fallback("hello", channel = stable, reason = "broken \x1b[2J\x1b]0;owned\x07 here\rCLEAN\u009b\u202eevil\ttab")
`
	if err := os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	want := `broken \x1b[2J\x1b]0;owned\x07 here\rCLEAN\u009b\u202eevil\ttab`
	for _, args := range [][]string{{"overlays"}, {"eval"}} {
		code, out, stderr := fleetCmd(t, append(args, filepath.Join(dir, "fleet.star"))...)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", args[0], code, stderr)
		}
		if !strings.Contains(out, want) {
			t.Errorf("fleet %s should show the reason escaped, %s:\n%q", args[0], want, out)
		}
		for _, bad := range []string{"\x1b", "\r", "\a", "\u009b", "\u202e"} {
			if strings.Contains(out, bad) {
				t.Errorf("fleet %s prints %q as is:\n%q", args[0], bad, out)
			}
		}
	}
}
