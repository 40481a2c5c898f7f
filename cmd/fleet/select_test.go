package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// A machine name or tag in --on or --exclude that no machine has is a
// typo: refused with a did-you-mean, before anything runs. A glob that
// matches nothing is not one.
func TestSelectorsThatSelectNothing(t *testing.T) {
	file := filepath.Join(repoRoot, "fleet.star")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"deploy", "--dry-run", "--on", "cinabar", file}, `--on cinabar: no machine is called "cinabar" (did you mean "cinnabar"?)`},
		{[]string{"deploy", "--dry-run", "--on", "@lapop", file}, `--on @lapop: no machine has the tag "lapop" (did you mean "laptop"?)`},
		{[]string{"deploy", "--dry-run", "--exclude", "cinabar", file}, `--exclude cinabar: no machine is called "cinabar"`},
		{[]string{"exec", "--on", "cinabar", file, "--", "true"}, `no machine is called "cinabar"`},
		{[]string{"deploy", "--dry-run", "--on", "zz*", file}, "no machine selected (--on zz*"},
	} {
		code, out, stderr := fleetCmd(t, tc.args...)
		if code != exitError || !strings.Contains(out+stderr, tc.want) {
			t.Errorf("fleet %s: exit %d, want 1 with %q\n%s%s", strings.Join(tc.args, " "), code, tc.want, out, stderr)
		}
	}
}
