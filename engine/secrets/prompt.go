package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// ErrNoTerminal is returned when a value must be asked for and there is
// no terminal to ask on. GenerateMissing lists such secrets as needing a
// prompt instead of failing.
var ErrNoTerminal = errors.New("no terminal to ask on")

// Prompter asks a person for a value. kind is gen.prompt's type:
// "hidden" (not echoed), "line" or "multiline". The value is returned
// without the final newline of a single line; a multiline value keeps a
// newline after each line.
type Prompter interface {
	Prompt(ctx context.Context, label, help, kind string) ([]byte, error)
}

// TerminalPrompter asks on a terminal: questions are written to Out and
// answers read from In, which must be a terminal (else ErrNoTerminal).
type TerminalPrompter struct {
	In  *os.File
	Out io.Writer
}

// NewTerminalPrompter asks on standard input, writing questions to
// standard error.
func NewTerminalPrompter() *TerminalPrompter {
	return &TerminalPrompter{In: os.Stdin, Out: os.Stderr}
}

// Prompt implements Prompter.
func (p *TerminalPrompter) Prompt(ctx context.Context, label, help, kind string) ([]byte, error) {
	if p.In == nil || !term.IsTerminal(int(p.In.Fd())) {
		return nil, ErrNoTerminal
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := p.Out
	if out == nil {
		out = io.Discard
	}
	if help != "" {
		fmt.Fprintf(out, "%s\n", help)
	}
	fd := int(p.In.Fd())
	switch kind {
	case "hidden", "":
		fmt.Fprintf(out, "%s (input hidden): ", label)
		v, err := term.ReadPassword(fd)
		fmt.Fprintln(out)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", label, err)
		}
		return v, nil
	case "line":
		fmt.Fprintf(out, "%s: ", label)
		v, err := readLine(p.In)
		if err != nil && !(errors.Is(err, io.EOF) && len(v) > 0) {
			return nil, fmt.Errorf("%s: %v", label, err)
		}
		return v, nil
	case "multiline":
		fmt.Fprintf(out, "%s (end with a line holding a single \".\", or Ctrl-D):\n", label)
		var buf bytes.Buffer
		for {
			line, err := readLine(p.In)
			if errors.Is(err, io.EOF) {
				if len(line) > 0 {
					buf.Write(line)
					buf.WriteByte('\n')
				}
				return buf.Bytes(), nil
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %v", label, err)
			}
			if string(line) == "." {
				return buf.Bytes(), nil
			}
			buf.Write(line)
			buf.WriteByte('\n')
			wipe(line)
		}
	}
	return nil, fmt.Errorf("%s: unknown prompt type %q (hidden, line, multiline)", label, kind)
}

// readLine reads one line a byte at a time, so that nothing after it is
// consumed (a terminal in canonical mode hands over whole lines anyway).
// The newline (and a carriage return before it) is dropped.
func readLine(r io.Reader) ([]byte, error) {
	var line []byte
	var b [1]byte
	for {
		n, err := r.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				return bytes.TrimSuffix(line, []byte("\r")), nil
			}
			line = append(line, b[0])
			continue
		}
		if err != nil {
			return line, err
		}
	}
}
