// Package testtool finds the external programs that fleet's tests drive
// for real (nix-instantiate, sshd, age, git, dot).
//
// A test that needs one calls Require. On a developer's machine without
// the program the test is skipped with a message naming the program and
// the Debian package to install; under FLEET_REQUIRE_TOOLS=1 (as in CI,
// where .ci/run installs them) the test fails instead, so a missing
// install step cannot turn a green CI into a run that tested nothing.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// Require returns the path of program, or skips (fails under
// FLEET_REQUIRE_TOOLS=1) naming the Debian package that provides it.
func Require(t testing.TB, program, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	msg := program + " not found in PATH: install the Debian package " + debianPackage + " to run this test"
	if os.Getenv("FLEET_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg + " (FLEET_REQUIRE_TOOLS=1 makes this a failure)")
	}
	t.Skip(msg)
	return ""
}
