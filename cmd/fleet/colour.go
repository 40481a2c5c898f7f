package main

import (
	"bytes"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Colour is small: failed in red and changed in yellow, in the plan and
// the deploy summaries, on a terminal only. NO_COLOR (any value) and
// TERM=dumb turn it off; output that is not a terminal never has it.

const (
	red    = "31"
	yellow = "33"
)

// paint wraps s in the ANSI colour when on.
func paint(on bool, colour, s string) string {
	if !on || colour == "" {
		return s
	}
	return "\x1b[" + colour + "m" + s + "\x1b[0m"
}

// colourOn reports whether what the command writes to w may be coloured.
func colourOn(c *cli.Context, w io.Writer) bool {
	getenv, _ := c.App.Metadata["getenv"].(func(string) string)
	if getenv == nil {
		getenv = os.Getenv
	}
	return getenv("NO_COLOR") == "" && getenv("TERM") != "dumb" && isTerminal(w)
}

// colourLines returns a writer that colours each line written through it
// to w as colour(line) says, when colour is on for w; done writes what is
// left. Tables go through it whole, after alignment, so the escape codes
// do not disturb their columns.
func colourLines(c *cli.Context, w io.Writer, colour func(line string) string) (io.Writer, func()) {
	if !colourOn(c, w) {
		return w, func() {}
	}
	lw := &lineColourer{w: w, colour: colour}
	return lw, func() { lw.flush(true) }
}

type lineColourer struct {
	w      io.Writer
	colour func(string) string
	buf    bytes.Buffer
}

func (l *lineColourer) Write(p []byte) (int, error) {
	l.buf.Write(p)
	return len(p), l.flush(false)
}

func (l *lineColourer) flush(all bool) error {
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil { // no newline: keep it for later, or write it now
			if all && line != "" {
				_, werr := io.WriteString(l.w, paint(true, l.colour(line), line))
				return werr
			}
			l.buf.WriteString(line)
			return nil
		}
		text := strings.TrimSuffix(line, "\n")
		if _, err := io.WriteString(l.w, paint(true, l.colour(text), text)+"\n"); err != nil {
			return err
		}
	}
}

// planColour colours a change of the plan: yellow what changes a host,
// a secret file or a machine, red what is refused and damaged secret
// files (to repair by hand).
func planColour(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 || !strings.HasPrefix(line, "  ") {
		return ""
	}
	switch {
	case len(f) > 2 && f[2] == "(refused)", f[0] == "!" && f[1] == "repair":
		return red
	case f[0] == "+" || f[0] == "~" || f[0] == "!" || f[0] == "-":
		return yellow
	}
	return ""
}

// outcomeColour colours a row of a deploy summary by its outcome: red
// what failed, yellow the machines whose system changed.
func outcomeColour(line string) string {
	f := strings.Fields(line)
	if len(f) < 2 {
		return ""
	}
	switch f[1] {
	case "failed", "rolled-back", "partial", "cancelled":
		return red
	case "ok", "degraded":
		return yellow
	}
	return ""
}
