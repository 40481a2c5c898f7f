package apply_test

import (
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool/testenv"
)

// TestMain runs the tests isolated from the machine: a temporary HOME and
// XDG folders, no cloud credentials, no ssh configuration (testenv.Isolate).
func TestMain(m *testing.M) { testenv.Main(m) }
