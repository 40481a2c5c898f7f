//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/fleet-nix/fleet/engine/testtool"
)

// The terminal tests run fleet repl in a child process whose controlling
// terminal is a pseudo-terminal, as a person's shell would: Ctrl-C at the
// prompt is a key readline reads, but Ctrl-C during an evaluation is the
// kernel's SIGINT to the terminal's foreground process, which only a
// separate process with its own session receives. The child is this test
// binary running TestReplHelperProcess, so no separate build is needed.

// TestReplHelperProcess is the child: fleet with the arguments in
// FLEET_REPL_HELPER_ARGS (one per line), wired like main().
func TestReplHelperProcess(t *testing.T) {
	args := os.Getenv("FLEET_REPL_HELPER_ARGS")
	if args == "" {
		return // not a child: nothing to test here
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, append([]string{"fleet"}, strings.Split(args, "\n")...), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// replTTY is a fleet repl on a pseudo-terminal.
type replTTY struct {
	t    *testing.T
	pty  *os.File
	out  replBuffer
	mark int // output before mark has been matched already
	done chan error
}

func startReplTTY(t *testing.T, env []string, args ...string) *replTTY {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestReplHelperProcess$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), "FLEET_REPL_HELPER_ARGS="+strings.Join(args, "\n")), env...)
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		testtool.Unavailable(t, fmt.Sprintf("no pseudo-terminal: %v", err))
	}
	r := &replTTY{t: t, pty: f, done: make(chan error, 1)}
	go io.Copy(&r.out, f) // ends with EIO when the child exits
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		f.Close()
	})
	return r
}

func (r *replTTY) send(s string) {
	r.t.Helper()
	if _, err := r.pty.WriteString(s); err != nil {
		r.t.Fatalf("writing %q: %v", s, err)
	}
}

// expect waits for want in the output after what was matched before.
func (r *replTTY) expect(want string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := r.out.String()
		if i := strings.Index(out[r.mark:], want); i >= 0 {
			r.mark += i + len(want)
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("the terminal never showed %q; after the last match it shows:\n%q", want, out[r.mark:])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exitCode waits for the child to end.
func (r *replTTY) exitCode() int {
	r.t.Helper()
	select {
	case err := <-r.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			r.t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		r.t.Fatalf("fleet repl did not exit; the terminal shows:\n%q", r.out.String())
	}
	return -1
}

func TestReplTerminal(t *testing.T) {
	history := filepath.Join(t.TempDir(), "state", "repl_history")
	if err := os.MkdirAll(filepath.Dir(history), 0o700); err != nil {
		t.Fatal(err)
	}
	replWriteFile(t, history, "1000+2345\n")
	r := startReplTTY(t, []string{"FLEET_REPL_HISTORY=" + history},
		"repl", filepath.Join(repoRoot, "fleet.star"), "--max-steps", "1000000000000000")
	r.expect("fleet repl: ")
	r.expect(">>> ")

	// History from the file: up-arrow recalls the last line of the
	// previous session.
	r.send("\x1b[A")
	r.expect("1000+2345")
	r.send("\r")
	r.expect("3345")

	r.send("6*7\r")
	r.expect("42")

	// TAB completes a global, then one of its attributes.
	r.send("ssh_host_ke\t")
	r.expect("ssh_host_key")
	r.send(".needed_f\t")
	r.expect("needed_for")
	r.send("\r")
	r.expect(`"activation"`)

	// Ctrl-C during an endless loop (the step limit is far away)
	// cancels it; the session goes on. The loop prints when it starts,
	// in words the echo of the input does not contain.
	r.send(`print("spin" + "ning"); [x for x in range(1000000000000000) if False]` + "\r")
	r.expect("spinning")
	time.Sleep(20 * time.Millisecond)
	r.send("\x03")
	r.expect("interrupted (Ctrl-C)")
	r.expect(">>> ")
	r.send("6*6\r")
	r.expect("36")

	// Ctrl-C at the prompt drops the line.
	r.send("abc\x03")
	r.expect("^C")
	r.send("2000+2000\r")
	r.expect("4000")
	if strings.Contains(r.out.String(), "undefined: abc") {
		t.Error("Ctrl-C at the prompt did not drop the line")
	}

	// A block ends at a blank line.
	r.send("def sq(x):\r")
	r.expect("... ")
	r.send("    return x * x\r")
	r.send("\r")
	r.send("sq(111)\r")
	r.expect("12321")

	// Errors do not end the session.
	r.send("sq(None)\r")
	r.expect("Traceback (most recent call last):")
	r.expect("<repl>:2:14: in sq")
	r.send("7*11\r")
	r.expect("77")

	// Ctrl-D exits with 0 although a statement failed.
	r.send("\x04")
	if code := r.exitCode(); code != 0 {
		t.Errorf("exit %d after Ctrl-D", code)
	}
	data, err := os.ReadFile(history)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1000+2345", "6*7", "ssh_host_key.needed_for", "sq(111)"} {
		if !strings.Contains(string(data), want+"\n") {
			t.Errorf("history file lacks %q:\n%s", want, data)
		}
	}
}

// On a terminal, a fleet file that does not evaluate starts an empty
// session (the error shown): fixing the file and reload() picks it up.
func TestReplTerminalBrokenFleetThenReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "fleet.star")
	replWriteFile(t, file, "fleet(name = \"t\")\nmachine(\"web\", system = \"x86_64-linux\", state_version = \"26.05\", features = [\"nope\"])\n")
	r := startReplTTY(t, []string{"FLEET_REPL_HISTORY=" + filepath.Join(t.TempDir(), "history")}, "repl", file)
	r.expect(`unknown feature "nope"`)
	r.expect("the session starts without it; fix it and reload()")
	r.expect(">>> ")
	r.send("len(machines())\r")
	r.expect("0")
	replWriteFile(t, file, "fleet(name = \"t\")\nchannel(\"nixpkgs\", url = \"github:NixOS/nixpkgs/nixos-unstable\")\nmachine(\"web\", system = \"x86_64-linux\", state_version = \"26.05\")\n")
	r.send("reload()\r")
	r.expect("reloaded")
	r.send("machines()[0].name\r")
	r.expect(`"web"`)
	r.send("\x04")
	if code := r.exitCode(); code != 0 {
		t.Errorf("exit %d after Ctrl-D", code)
	}
}
