package repl

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const minimal = `fleet(name = "t")
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")
ssh = feature("ssh", nixos = {"services.openssh.enable": True})
machine("web", system = "x86_64-linux", state_version = "26.05", features = [ssh], tags = ["cloud"])
machine("db", system = "x86_64-linux", state_version = "26.05")
`

func writeFleet(t *testing.T, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fleet.star")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// lockedBuffer is written by the session and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func runScript(t *testing.T, file, script string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb lockedBuffer
	err = Run(context.Background(), Config{File: file, Stdin: strings.NewReader(script), Stdout: &out, Stderr: &errb})
	return out.String(), errb.String(), err
}

// Scripts cut blocks at the first line that is not indented (or else /
// elif), blank lines inside them included.
func TestScriptBlocks(t *testing.T) {
	script := `def f(x):
    if x:

        return "yes"
    else:
        return "no"
f(1)
for m in machines():
    print(m.name)

if False:
    pass
elif True:
    print("elif")
else:
    pass
f(0)
x = [
  1,

  2,
]
x
`
	out, stderr, err := runScript(t, writeFleet(t, minimal), script)
	if err != nil || stderr != "" {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if want := "\"yes\"\ndb\nweb\nelif\n\"no\"\n[1, 2]\n"; out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

// A Ctrl-C while a statement runs cancels it, and only it.
func TestInterruptCancelsStatement(t *testing.T) {
	in, w := io.Pipe()
	interrupt := make(chan os.Signal, 1)
	var out, errb lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Config{File: writeFleet(t, minimal), Stdin: in, Stdout: &out, Stderr: &errb,
			Interrupt: interrupt, MaxSteps: 1 << 62})
	}()
	io.WriteString(w, "print('start' + 'ed'); [x for x in range(1 << 60) if False]\n")
	waitFor(t, out.String, "started\n")
	interrupt <- os.Interrupt
	waitFor(t, errb.String, "Error: interrupted (Ctrl-C)")
	io.WriteString(w, "len(machines())\n")
	waitFor(t, out.String, "2\n")
	w.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "1 of 2 statements") {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end at end of input")
	}
}

// A Ctrl-C while a script waits for input ends the session.
func TestInterruptWhileReading(t *testing.T) {
	in, w := io.Pipe()
	defer w.Close()
	interrupt := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Config{File: writeFleet(t, minimal), Stdin: in, Interrupt: interrupt})
	}()
	// Until the session reads, a Ctrl-C is taken for the evaluation of
	// the fleet or dropped as stale: keep pressing it.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case interrupt <- os.Interrupt:
		default:
		}
		select {
		case err := <-done:
			if !errors.Is(err, errInterrupted) {
				t.Errorf("Run: %v", err)
			}
			return
		case <-deadline:
			t.Fatal("Run did not end on Ctrl-C")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func waitFor(t *testing.T, s func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("never got %q:\n%s", want, s())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestComplete(t *testing.T) {
	s, err := New(context.Background(), Config{File: writeFleet(t, minimal)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text, prefix string
		want         []string
	}{
		{"mach", "mach", []string{"machine", "machines"}},
		{"x = len(mac", "mac", []string{"machine", "machines"}},
		{"ss", "ss", []string{"ssh"}},
		{"ssh.re", "re", []string{"requires"}},
		{"nix.p", "p", []string{"path", "pkg"}},
		{"hetzner.ser", "ser", []string{"server"}},
		{"sorted", "sorted", []string{"sorted"}},
		{"1.2", "", nil},
		{"nothere.x", "x", nil},
		{"machines().na", "na", nil}, // completing never calls
	} {
		prefix, got := s.Complete(tc.text)
		if prefix != tc.prefix || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Complete(%q) = %q, %q; want %q, %q", tc.text, prefix, got, tc.prefix, tc.want)
		}
	}
	// Names bound in the session complete too, attributes of views as well.
	if err := s.exec(context.Background(), []string{"web = machines('web')[0]"}, 1); err != nil {
		t.Fatal(err)
	}
	if _, got := s.Complete("web.ho"); !reflect.DeepEqual(got, []string{"home", "host", "host_key"}) {
		t.Errorf("Complete(web.ho) = %q", got)
	}
}

func TestHistoryPath(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		env  func(string) string
		want string
	}{
		{env("FLEET_REPL_HISTORY", "/x/h", "XDG_STATE_HOME", "/s", "HOME", "/home/u"), "/x/h"},
		{env("XDG_STATE_HOME", "/s", "HOME", "/home/u"), "/s/fleet/repl_history"},
		{env("XDG_STATE_HOME", "relative", "HOME", "/home/u"), "/home/u/.local/state/fleet/repl_history"},
		{env("HOME", "/home/u"), "/home/u/.local/state/fleet/repl_history"},
	} {
		if got := HistoryPath(tc.env); got != tc.want {
			t.Errorf("HistoryPath = %q, want %q", got, tc.want)
		}
	}
}

// Names the user binds survive reload(); the fleet's globals are the new
// ones; a helper shadowing a fleet global is noted.
func TestReloadKeepsUserNames(t *testing.T) {
	file := writeFleet(t, minimal+"show = 1\nversion = 1\n")
	in, w := io.Pipe()
	var out, errb lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Config{File: file, Stdin: in, Stdout: &out, Stderr: &errb})
	}()
	io.WriteString(w, "mine, (a, b) = 1, [2, 3]\nfor i in range(2):\n    last = i\nversion\n")
	waitFor(t, out.String, "1\n")
	if err := os.WriteFile(file, []byte(minimal+"show = 1\nversion = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "reload()\n(mine, a, b, last, version)\n")
	waitFor(t, out.String, "(1, 2, 3, 1, 2)\n")
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errb.String(), "note: the REPL's show hides the fleet file's global of the same name") {
		t.Errorf("stderr:\n%s", errb.String())
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"hashedPassword", "$6$x", "<redacted>"},
		{"api_token", "abc", "<redacted>"},
		{"passwordFile", "/run/agenix/p", ""},
		{"tokenPath", "/x", ""},
		{"text", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn...", "<redacted: private key material>"},
		{"", "AGE-SECRET-KEY-1QQQQ", "<redacted: private key material>"},
		{"hostName", "web", ""},
		{"PasswordAuthentication", "", ""},
	} {
		if got := redact(tc.key, tc.value); got != tc.want {
			t.Errorf("redact(%q, %q) = %q, want %q", tc.key, tc.value, got, tc.want)
		}
	}
}
