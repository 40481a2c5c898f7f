//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// TestShellCompletion sources the bash script into a real bash and runs
// its function as bash's programmable completion would, with the fleet
// binary on the PATH: the words reach fleet __complete and the candidates
// come back as COMPREPLY, "@" (one of bash's word breaks) included. Then
// the same with fish's complete -C.
func TestShellCompletion(t *testing.T) {
	bash := testtool.Require(t, "bash", "bash")
	bin := buildFleet(t)
	dir := fleetDir(t, cliFleet)
	path := "PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	script := `source <(fleet completion bash)
comp() { # LINE, then the words as bash splits them
    COMP_LINE=$1; COMP_POINT=${#1}; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
    _fleet; echo "${COMPREPLY[*]}"
}
comp "fleet sec" fleet sec
comp "fleet deploy --on @e" fleet deploy --on @ e
comp "fleet deploy --on " fleet deploy --on ""
comp "fleet deploy --goal dr" fleet deploy --goal dr
complete -p fleet
`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	want := "secrets\nedge\n@cloud @edge all db web\ndry-activate\ncomplete -o default -F _fleet fleet\n"
	if string(out) != want {
		t.Errorf("bash completion:\n%s\nwant:\n%s", out, want)
	}

	fish := testtool.Require(t, "fish", "fish")
	cmd = exec.Command(fish, "--no-config", "-c", `fleet completion fish | source
complete -C "fleet sec"; complete -C "fleet deploy --on @"; complete -C "fleet graph --format j"`)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), path)
	out, err = cmd.CombinedOutput()
	if want := "secrets\n@cloud\n@edge\njson\n"; err != nil || string(out) != want {
		t.Errorf("fish completion: %v\n%s\nwant:\n%s", err, out, want)
	}
}
