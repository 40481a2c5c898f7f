//go:build !unix

package deploy

import "os/exec"

// killProcessGroupOnCancel: without process groups, cancelling kills the
// command itself (exec's default).
func killProcessGroupOnCancel(cmd *exec.Cmd) {}
