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

// TestSignalCleansUp stops fleet secrets generate with SIGTERM and with
// SIGINT while gen.command runs: fleet exits 143 or 130, its plaintext
// folders are gone and so are gen.command's processes.
func TestSignalCleansUp(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	bin := buildFleet(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGINT, 130}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			runtime := t.TempDir()
			tmp := t.TempDir()
			id := filepath.Join(dir, "admin.txt")
			code, out, stderr := fleetCmd(t, "secrets", "keygen", "--identity", id)
			if code != exitOK {
				t.Fatalf("keygen: exit %d: %s", code, stderr)
			}
			recipient := strings.TrimSpace(out[strings.Index(out, "recipient: ")+len("recipient: "):])
			marker := filepath.Join(dir, "marker")
			src := strings.NewReplacer("RECIPIENT", recipient, "MARKER", marker).Replace(sleepyFleet)
			file := filepath.Join(dir, "fleet.star")
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "secrets", "generate", file, "--identity", id)
			cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, "TMPDIR="+tmp)
			var errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &errb, &errb
			cmd.WaitDelay = 2 * time.Second // a leftover grandchild holds the pipe
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pids []int
			deadline := time.Now().Add(30 * time.Second)
			for {
				if b, err := os.ReadFile(marker); err == nil {
					for _, f := range strings.Fields(string(b)) {
						p, _ := strconv.Atoi(f)
						pids = append(pids, p)
					}
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("gen.command did not start:\n%s", errb.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Cleanup(func() {
				for _, p := range pids {
					syscall.Kill(p, syscall.SIGKILL)
				}
			})
			cmd.Process.Signal(tc.sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("fleet did not stop on %v:\n%s", tc.sig, errb.String())
			}
			if got := cmd.ProcessState.ExitCode(); got != tc.code {
				t.Errorf("exit code %d, want %d\n%s", got, tc.code, errb.String())
			}
			for _, root := range []string{runtime, tmp} {
				filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
					if err == nil && strings.HasPrefix(d.Name(), "fleet-secret-") {
						t.Errorf("plaintext folder left behind: %s", p)
					}
					return nil
				})
			}
			// A killed process takes a moment to go: wait for it (the
			// bound only ends a test whose processes were left running).
			for _, p := range pids {
				for deadline := time.Now().Add(10 * time.Second); alive(p); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Errorf("gen.command's process %d still runs", p)
						break
					}
				}
			}
		})
	}
}
