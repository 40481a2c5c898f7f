//go:build linux

package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/testtool"
	"golang.org/x/sys/unix"
)

// terminal is a pseudo-terminal: the prompter uses tty, the test types on
// ptm and reads what the terminal shows from it.
type terminal struct {
	t        *testing.T
	ptm, tty *os.File
	mu       sync.Mutex
	screen   bytes.Buffer
}

func newTerminal(t *testing.T) *terminal {
	ptm, tty, err := pty.Open()
	if err != nil {
		testtool.Unavailable(t, fmt.Sprintf("no pseudo-terminal here: %v", err))
	}
	term := &terminal{t: t, ptm: ptm, tty: tty}
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := ptm.Read(buf)
			term.mu.Lock()
			term.screen.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { tty.Close(); ptm.Close() })
	return term
}

func (term *terminal) shown() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.screen.String()
}

// waitFor waits until the screen shows s.
func (term *terminal) waitFor(s string) {
	term.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(term.shown(), s) {
		if time.Now().After(deadline) {
			term.t.Fatalf("terminal never showed %q; it shows %q", s, term.shown())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitEcho waits until the terminal's echo is on or off: typing before
// ReadPassword turned it off would echo.
func (term *terminal) waitEcho(on bool) {
	term.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(term.tty.Fd()), unix.TCGETS)
		if err != nil {
			term.t.Fatal(err)
		}
		if (tio.Lflag&unix.ECHO != 0) == on {
			return
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("echo never turned %v", on)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (term *terminal) typeIn(s string) {
	term.t.Helper()
	if _, err := io.WriteString(term.ptm, s); err != nil {
		term.t.Fatal(err)
	}
}

func TestTerminalPrompter(t *testing.T) {
	tests := []struct {
		name, kind string
		typing     []string // typed one after the other
		want       string
		echoed     bool
	}{
		{"hidden", "hidden", []string{"hunter2-correct-horse\n"}, "hunter2-correct-horse", false},
		{"line", "line", []string{"zerotier-network-id\n"}, "zerotier-network-id", true},
		{"line with carriage return", "line", []string{"value\r\n"}, "value", true},
		{"multiline ended by dot", "multiline", []string{"{\n  \"type\": \"service_account\"\n}\n.\n"}, "{\n  \"type\": \"service_account\"\n}\n", true},
		{"multiline ended by EOF", "multiline", []string{"first line\nsecond line\n", "\x04"}, "first line\nsecond line\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			term := newTerminal(t)
			p := &TerminalPrompter{In: term.tty, Out: term.tty}
			type result struct {
				v   []byte
				err error
			}
			done := make(chan result, 1)
			go func() {
				v, err := p.Prompt(context.Background(), "Hetzner token", "From the Hetzner console, Security > API tokens.", tt.kind)
				done <- result{v, err}
			}()
			term.waitFor("Hetzner token")
			if tt.kind == "hidden" {
				term.waitEcho(false)
			}
			for _, s := range tt.typing {
				term.typeIn(s)
				time.Sleep(20 * time.Millisecond)
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("prompt did not return; terminal shows %q", term.shown())
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if string(r.v) != tt.want {
				t.Errorf("value %q, want %q", r.v, tt.want)
			}
			time.Sleep(20 * time.Millisecond)
			screen := term.shown()
			if !strings.Contains(screen, "From the Hetzner console") {
				t.Errorf("help not shown: %q", screen)
			}
			first := strings.SplitN(tt.want, "\n", 2)[0]
			if got := strings.Contains(screen, first); got != tt.echoed {
				t.Errorf("value echoed = %v, want %v; terminal shows %q", got, tt.echoed, screen)
			}
		})
	}
}

func TestTerminalPrompterNoTerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, in := range []*os.File{r, nil} {
		p := &TerminalPrompter{In: in, Out: io.Discard}
		if _, err := p.Prompt(context.Background(), "x", "", "hidden"); !errors.Is(err, ErrNoTerminal) {
			t.Errorf("stdin %v: %v, want ErrNoTerminal", in, err)
		}
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	p := &TerminalPrompter{In: devnull}
	if _, err := p.Prompt(context.Background(), "x", "", "line"); !errors.Is(err, ErrNoTerminal) {
		t.Errorf("/dev/null: %v, want ErrNoTerminal", err)
	}
}

// TestGenerateMissingOnTerminal asks a hidden prompt through a real
// terminal during GenerateMissing and finds the value decryptable, and on
// the terminal only as the question.
func TestGenerateMissingOnTerminal(t *testing.T) {
	term := newTerminal(t)
	root := t.TempDir()
	a := newAdmin(t)
	token := mkSecret("hcloud-token", true, nil, mkGen(KindPrompt, map[string]model.Value{"type": model.String("hidden"), "label": model.String("Hetzner API token")}))
	f := mkFleet(root, []string{a.rec}, nil, token)
	st := &Store{Root: root}
	done := make(chan error, 1)
	var rep Report
	go func() {
		var err error
		rep, err = GenerateMissing(context.Background(), f, st, Options{Prompter: &TerminalPrompter{In: term.tty, Out: term.tty}})
		done <- err
	}()
	term.waitFor("Hetzner API token")
	term.waitEcho(false)
	term.typeIn("tok-9f8e7d6c5b4a\n")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GenerateMissing did not return")
	}
	if len(rep.Generated) != 1 {
		t.Fatalf("generated %v", rep.Generated)
	}
	v, err := st.Read("secrets/shared/hcloud-token/value.age", a.ids())
	if err != nil || string(v) != "tok-9f8e7d6c5b4a" {
		t.Fatalf("read %q, %v", v, err)
	}
	if strings.Contains(term.shown(), "tok-9f8e7d6c5b4a") {
		t.Error("the hidden value was shown on the terminal")
	}
}
