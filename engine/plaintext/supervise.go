package plaintext

import (
	"os"
	"os/exec"
)

// Supervise prepares cmd, started for the private folder dir (empty: for
// none), so that it does not outlive the run: it gets a process group of
// its own, which cancelling cmd's context kills whole (a shell's
// children, ssh's ProxyCommand); on Linux it is killed when fleet dies,
// even by kill -9; and its environment names dir (MarkerVar), which its
// own children inherit, so that the next run's Sweep can stop any of
// them still running before it removes dir. Call it after setting
// cmd.Env, before Start.
func Supervise(cmd *exec.Cmd, dir string) {
	if dir != "" {
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, MarkerVar+"="+dir)
	}
	superviseProcess(cmd)
}
