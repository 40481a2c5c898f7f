package startest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fleet-nix/fleet/engine/model"
)

// Report writes results as they come, go test's way: failures in full,
// passes only when Verbose, and counts for the summary.
type Report struct {
	W       io.Writer
	Verbose bool

	Passed, Failed int
	Files          int
}

// Add writes the outcome of one file and counts it. A file with anything
// to show gets a "# path" header, as go build names a package: positions
// are root-relative labels, which alone do not say which folder's
// fleet_test.star failed.
func (r *Report) Add(f *FileResult) {
	r.Files++
	p, n := f.Counts()
	r.Passed += p
	r.Failed += n
	if n == 0 && !r.Verbose {
		return
	}
	header := "# " + f.Path
	if f.Root != "" && filepath.ToSlash(f.Path) != f.Label {
		header += " (root " + display(f.Root) + ")"
	}
	fmt.Fprintln(r.W, header)
	if f.Err != nil {
		fmt.Fprintf(r.W, "FAIL %s: the file did not run\n", f.Label)
		writeError(r.W, f.Err)
	}
	writeOutput(r.W, f.Output)
	for _, t := range f.Tests {
		if t.Passed() && !r.Verbose {
			continue
		}
		status := "PASS"
		if !t.Passed() {
			status = "FAIL"
		}
		fmt.Fprintf(r.W, "%s %s (%s:%d) %s\n", status, t.Name, t.Pos.File, t.Pos.Line, duration(t.Duration))
		for _, e := range t.Failures {
			writeError(r.W, e)
		}
		writeOutput(r.W, t.Output)
	}
}

// display shows a folder relative to the working directory when it is
// below it.
func display(dir string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, dir); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return dir
}

// Summary is the last line: "N passed, M failed".
func (r *Report) Summary() string {
	return fmt.Sprintf("%d passed, %d failed", r.Passed, r.Failed)
}

// writeError writes a positioned error indented under its test, notes
// (the calls that led to it) one level further.
func writeError(w io.Writer, err error) {
	var one *model.Error
	var many model.Errors
	switch {
	case errors.As(err, &one):
		writeModelError(w, one)
	case errors.As(err, &many):
		for _, e := range many {
			writeModelError(w, e)
		}
	default:
		fmt.Fprintln(w, indent(err.Error(), "    "))
	}
}

func writeModelError(w io.Writer, e *model.Error) {
	head := e.Msg
	if e.Pos.File != "" {
		head = e.Pos.String() + ": " + e.Msg
	}
	fmt.Fprintln(w, indent(head, "    "))
	for _, n := range e.Notes {
		fmt.Fprintf(w, "        %s: %s\n", n.Pos, n.Msg)
	}
}

func writeOutput(w io.Writer, out string) {
	if out = strings.TrimSuffix(out, "\n"); out != "" {
		fmt.Fprintln(w, indent(out, "    "))
	}
}

// duration is short and fixed-precision: "0.3ms", "1.25s".
func duration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
