package main

import (
	"os"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool/testenv"
)

// TestMain runs the tests isolated from the machine: a temporary HOME and
// XDG folders, no cloud credentials, no ssh configuration (testenv.Isolate),
// and fleet's own ssh runner with -F /dev/null (sshConfigFile), so that a
// test's deploy or exec never reads the developer's ~/.ssh/config.
// FLEET_EVAL_MEMORY is fixed (8 machines per nix process), so that the
// batches a test sees do not depend on the memory free when it runs.
func TestMain(m *testing.M) {
	sshConfigFile = os.DevNull
	os.Setenv("FLEET_EVAL_MEMORY", "4GiB")
	testenv.Main(m)
}
