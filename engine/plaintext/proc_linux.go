package plaintext

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// dieWithParent has the kernel send SIGKILL to the child when fleet dies
// (PR_SET_PDEATHSIG). Go caveat: the signal follows the OS thread that
// started the child, not the process; fleet never ends a thread on
// purpose (no LockOSThread without Unlock), so in practice it is the
// process.
func dieWithParent(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}

// killMarked sends SIGKILL to every process of this user whose
// environment names one of dirs as MarkerVar: what a killed run's
// programs left running. Processes whose environment cannot be read
// (another user's) are not ours.
func killMarked(dirs []string) error {
	marks := make([][]byte, len(dirs))
	for i, d := range dirs {
		marks[i] = []byte(MarkerVar + "=" + d)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil // no /proc: nothing to find
	}
	var failed []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if !marked(env, marks) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			failed = append(failed, fmt.Sprintf("process %d: %v", pid, err))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("stopping what a killed run left running: %v", failed)
	}
	return nil
}

// marked reports whether a NUL-separated environment holds one of marks
// as a whole variable.
func marked(env []byte, marks [][]byte) bool {
	for _, v := range bytes.Split(env, []byte{0}) {
		for _, m := range marks {
			if bytes.Equal(v, m) {
				return true
			}
		}
	}
	return false
}
