//go:build unix

package plaintext

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// checkPrivate refuses a dir that is a symlink or not a folder, belongs
// to someone else, or that others may enter.
func checkPrivate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("private folder for plaintext: %v", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("private folder for plaintext %s is not a folder; refusing to use it", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("private folder for plaintext %s belongs to uid %d, not to you; refusing to use it", dir, st.Uid)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("private folder for plaintext %s has mode %v, open to others; refusing to use it (chmod 700 it)", dir, fi.Mode().Perm())
	}
	return nil
}

// processExists: kill(pid, 0) finds it (EPERM: it exists, someone else's).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// superviseProcess: a process group of its own, killed whole on cancel,
// and death with the parent where the system offers it.
func superviseProcess(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
}
