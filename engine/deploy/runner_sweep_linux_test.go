package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
	"github.com/fleet-nix/fleet/engine/plaintext"
)

// markedProcesses are the pids whose environment names dir as
// plaintext.MarkerVar.
func markedProcesses(dir string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, v := range strings.Split(string(env), "\x00") {
			if v == plaintext.MarkerVar+"="+dir {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// A run killed with -9 leaves its ssh master behind (it backgrounds
// itself, out of reach of the parent-death signal) and its control
// folder; the next run's sweep stops the master and removes the folder.
// The run is simulated: the folder is named after a pid that is gone.
func TestSweepStopsOrphanedMaster(t *testing.T) {
	srv := sshtest.Start(t)
	short, err := os.MkdirTemp("/tmp", "fs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(short) })
	t.Setenv("TMPDIR", short)
	t.Setenv("XDG_RUNTIME_DIR", "")
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(short, "fleet-"+strconv.Itoa(os.Getuid()))
	if err := os.Mkdir(base, 0o700); err != nil {
		t.Fatal(err)
	}
	control := filepath.Join(base, "fleet-ssh-"+strconv.Itoa(gone.Process.Pid)+"-1")
	r := &SSHRunner{Options: srv.ClientOptions(), ControlDir: control}
	if err := r.Remote(context.Background(), srv.Target(), []string{"true"}, IO{}); err != nil {
		t.Fatal(err)
	}
	masters := markedProcesses(control)
	if len(masters) == 0 {
		t.Fatal("no process carries the control folder's mark: the master could not be found after a kill -9")
	}
	t.Cleanup(r.Close)

	if err := plaintext.Sweep(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(markedProcesses(control)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the orphaned master %v still runs after the sweep", markedProcesses(control))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(control); !os.IsNotExist(err) {
		t.Errorf("control folder %s left after the sweep: %v", control, err)
	}
}
