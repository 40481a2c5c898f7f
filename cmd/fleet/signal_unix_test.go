//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// sleepyFleet has one secret whose gen.command writes its own pid and
// that of a background sleep (its child, our grandchild) into MARKER,
// then waits: the run is stopped by a signal while it sleeps.
const sleepyFleet = `fleet(name = "s", admins = ["RECIPIENT"])
secret("slow", shared = True,
    generate = gen.command(["sh", "-c", "sleep 60 & echo $$ $! > MARKER.tmp; mv MARKER.tmp MARKER; wait"], outputs = ["v"]))
`

// buildFleet builds the fleet binary into a temporary folder.
func buildFleet(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fleet")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stdin = nil
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// alive reports whether pid is a process that is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: kill(0) said it is there
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2] != 'Z'
	}
	return true
}

// sleepyRun is a fleet secrets generate stopped in its gen.command.
type sleepyRun struct {
	cmd          *exec.Cmd
	out          *bytes.Buffer
	pids         []int // gen.command's shell, then its background sleep
	runtime, tmp string
}

// startSleepy starts bin secrets generate on sleepyFleet, with private
// XDG_RUNTIME_DIR and TMPDIR, and returns once gen.command runs.
func startSleepy(t *testing.T, bin string) *sleepyRun {
	t.Helper()
	dir := t.TempDir()
	r := &sleepyRun{runtime: t.TempDir(), tmp: t.TempDir(), out: &bytes.Buffer{}}
	id := filepath.Join(dir, "admin.txt")
	recipient := keygen(t, id)
	marker := filepath.Join(dir, "marker")
	src := strings.NewReplacer("RECIPIENT", recipient, "MARKER", marker).Replace(sleepyFleet)
	file := filepath.Join(dir, "fleet.star")
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "secrets", "generate", file, "--identity", id)
	r.cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+r.runtime, "TMPDIR="+r.tmp)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	r.cmd.WaitDelay = 2 * time.Second // a leftover grandchild holds the pipe
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(marker); err == nil {
			for _, f := range strings.Fields(string(b)) {
				p, _ := strconv.Atoi(f)
				r.pids = append(r.pids, p)
			}
			break
		}
		if time.Now().After(deadline) {
			r.cmd.Process.Kill()
			r.cmd.Wait()
			t.Fatalf("gen.command did not start:\n%s", r.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		for _, p := range r.pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
	return r
}

// wait waits for fleet to end, at most 20 s.
func (r *sleepyRun) wait(t *testing.T) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		<-done
		t.Fatalf("fleet did not stop:\n%s", r.out.String())
	}
}

// plaintextLeft lists the fleet-secret-* folders under the run's places.
func (r *sleepyRun) plaintextLeft() []string {
	var left []string
	for _, root := range []string{r.runtime, r.tmp} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(d.Name(), "fleet-secret-") {
				left = append(left, p)
			}
			return nil
		})
	}
	return left
}

// waitGone waits (at most 10 s) until none of pids runs, and returns
// those that still do.
func waitGone(pids []int) []int {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var running []int
		for _, p := range pids {
			if alive(p) {
				running = append(running, p)
			}
		}
		if len(running) == 0 || time.Now().After(deadline) {
			return running
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSignalCleansUp stops fleet secrets generate with SIGTERM and with
// SIGINT while gen.command runs: fleet exits 143 or 130, its plaintext
// folders are gone and so are gen.command's processes.
func TestSignalCleansUp(t *testing.T) {
	testtool.Require(t, "sh", "dash")
	bin := buildFleet(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			r := startSleepy(t, bin)
			r.cmd.Process.Signal(tc.sig)
			r.wait(t)
			if got := r.cmd.ProcessState.ExitCode(); got != tc.code {
				t.Errorf("exit code %d, want %d\n%s", got, tc.code, r.out.String())
			}
			for _, p := range r.plaintextLeft() {
				t.Errorf("plaintext folder left behind: %s", p)
			}
			for _, p := range waitGone(r.pids) {
				t.Errorf("gen.command's process %d still runs", p)
			}
		})
	}
}

// TestKill9 kills fleet with SIGKILL while gen.command runs: nothing can
// clean up then, so gen.command's shell dies with fleet (Linux's parent
// death signal), and the next run stops its background child and removes
// the plaintext folders before it does anything else.
func TestKill9(t *testing.T) {
	if _, err := os.Stat("/proc/self/environ"); err != nil {
		t.Skip("no /proc: a killed run's processes cannot be found here (Linux only)")
	}
	bin := buildFleet(t)
	r := startSleepy(t, bin)
	r.cmd.Process.Kill()
	r.wait(t)
	if running := waitGone(r.pids[:1]); len(running) > 0 {
		t.Errorf("gen.command's shell %d outlived fleet's kill -9", running[0])
	}
	if len(r.plaintextLeft()) == 0 {
		t.Fatal("no plaintext folder after kill -9: the test did not stop fleet where it meant to")
	}
	if !alive(r.pids[1]) {
		t.Fatal("the background child is gone already: the test proves nothing about the sweep")
	}

	// The next run: any command that makes private folders sweeps first.
	t.Setenv("XDG_RUNTIME_DIR", r.runtime)
	t.Setenv("TMPDIR", r.tmp)
	sweepPlaintext(os.Stderr)
	for _, p := range r.plaintextLeft() {
		t.Errorf("plaintext folder left after the next run's sweep: %s", p)
	}
	for _, p := range waitGone(r.pids) {
		t.Errorf("gen.command's process %d still runs after the next run's sweep", p)
	}
}
