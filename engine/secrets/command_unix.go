//go:build unix

package secrets

import (
	"os/exec"
	"syscall"
)

// ownProcessGroup runs the program in a process group of its own, so that
// cancelling kills whatever it started too (a shell's children would
// otherwise keep running, and keep writing into $out).
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
