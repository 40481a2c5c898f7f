package repl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/chzyer/readline"
	"go.starlark.net/starlark"
	"golang.org/x/term"
)

// HistoryPath is where the terminal's history is kept: $FLEET_REPL_HISTORY
// if set, else $XDG_STATE_HOME/fleet/repl_history, else
// ~/.local/state/fleet/repl_history (the XDG default for state that is
// not worth backing up but should survive restarts).
func HistoryPath(getenv func(string) string) string {
	if p := getenv("FLEET_REPL_HISTORY"); p != "" {
		return p
	}
	if d := getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "fleet", "repl_history")
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return ""
		}
	}
	return filepath.Join(home, ".local", "state", "fleet", "repl_history")
}

// terminal reads lines with readline.
type terminal struct {
	rl *readline.Instance
}

func newTerminal(s *Session, in *os.File) (*terminal, error) {
	fd := int(in.Fd())
	history := s.cfg.HistoryFile
	if history != "" {
		if err := os.MkdirAll(filepath.Dir(history), 0o700); err != nil {
			fmt.Fprintf(s.cfg.Stderr, "note: no history: %v\n", err)
			history = ""
		}
	}
	var saved *readline.State
	rl, err := readline.NewEx(&readline.Config{
		Prompt:            ps1,
		HistoryFile:       history,
		HistorySearchFold: true,
		AutoComplete:      completer{s},
		InterruptPrompt:   "^C",
		EOFPrompt:         "exit",
		// Closing readline must not close the terminal.
		Stdin:  readline.NewCancelableStdin(in),
		Stdout: s.cfg.Stdout,
		Stderr: s.cfg.Stderr,
		// The terminal is the one we were given, not necessarily fd 0.
		FuncIsTerminal: func() bool { return true },
		FuncMakeRaw: func() error {
			st, err := readline.MakeRaw(fd)
			saved = st
			return err
		},
		FuncExitRaw: func() error {
			if saved == nil {
				return nil
			}
			return readline.Restore(fd, saved)
		},
		FuncGetWidth: func() int {
			if w, _, err := term.GetSize(fd); err == nil && w > 0 {
				return w
			}
			return 80
		},
	})
	if err != nil {
		return nil, err
	}
	return &terminal{rl: rl}, nil
}

func (t *terminal) next(prompt string) (string, error) {
	t.rl.SetPrompt(prompt)
	line, err := t.rl.Readline()
	if errors.Is(err, readline.ErrInterrupt) {
		return "", errInterrupted
	}
	return line, err
}

func (t *terminal) peek(int) (string, bool) { return "", false }

func (t *terminal) close() { t.rl.Close() }

// completer completes names in scope and attributes of dotted names.
// Only names are followed, never calls or indexes: completing must not
// run anything (machines()[0].na would evaluate machines()).
type completer struct{ s *Session }

func (c completer) Do(line []rune, pos int) ([][]rune, int) {
	prefix, cands := c.s.Complete(string(line[:pos]))
	out := make([][]rune, len(cands))
	for i, cand := range cands {
		out[i] = []rune(cand[len(prefix):])
	}
	return out, len([]rune(prefix))
}

// Complete returns the word being typed at the end of text (after the
// last dot, for an attribute) and the names it may complete to.
func (s *Session) Complete(text string) (string, []string) {
	start := len(text)
	for start > 0 && isWordByte(text[start-1]) {
		start--
	}
	word := text[start:]
	if word != "" && word[0] >= '0' && word[0] <= '9' {
		return "", nil
	}
	var names []string
	base, partial, dotted := cutLast(word, ".")
	if !dotted {
		partial = word
		for k := range s.globals {
			names = append(names, k)
		}
		for k := range starlark.Universe {
			names = append(names, k)
		}
	} else {
		v := s.lookupPath(base)
		h, ok := v.(starlark.HasAttrs)
		if !ok {
			return partial, nil
		}
		names = h.AttrNames()
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range names {
		if strings.HasPrefix(n, partial) && !seen[n] && (partial != "" || !strings.HasPrefix(n, "_")) {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return partial, out
}

// lookupPath resolves a.b.c through the globals and attributes.
func (s *Session) lookupPath(path string) starlark.Value {
	parts := strings.Split(path, ".")
	v, ok := s.globals[parts[0]]
	if !ok {
		if v, ok = starlark.Universe[parts[0]]; !ok {
			return nil
		}
	}
	for _, p := range parts[1:] {
		h, ok := v.(starlark.HasAttrs)
		if !ok || p == "" {
			return nil
		}
		next, err := h.Attr(p)
		if err != nil || next == nil {
			return nil
		}
		v = next
	}
	return v
}

func isWordByte(b byte) bool {
	return b == '_' || b == '.' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
