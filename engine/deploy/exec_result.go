package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Outcome is how a machine's deploy ended.
type Outcome string

const (
	// OutcomeOK: every step succeeded.
	OutcomeOK Outcome = "ok"
	// OutcomeUnchanged: a step found the machine already running what
	// the deploy would activate (ErrUpToDate); the rest were not needed.
	OutcomeUnchanged Outcome = "unchanged"
	// OutcomeFailed: a step failed (FailedStep, Err).
	OutcomeFailed Outcome = "failed"
	// OutcomeDegraded: every step ran, but one left the machine
	// degraded (FailedStep, Err): activation switched to the new system
	// and units failed to start (UnitsFailedError). The new system is
	// active; its checks, if any, passed. It counts as a failure.
	OutcomeDegraded Outcome = "degraded"
	// OutcomeRolledBack: the checks failed after activation and the
	// previous generation was switched back (a RolledBackError).
	OutcomeRolledBack Outcome = "rolled-back"
	// OutcomeCancelled: a step was interrupted because the run was
	// cancelled (FailedStep, Err); the steps before it succeeded.
	OutcomeCancelled Outcome = "cancelled"
	// OutcomeSkipped: a step needed a step that failed, on another
	// machine (FailedStep names it); none of this machine's steps failed.
	OutcomeSkipped Outcome = "skipped"
	// OutcomePartial: some steps succeeded, the rest were not started
	// (fail-fast or cancellation stopped the run in between).
	OutcomePartial Outcome = "partial"
	// OutcomeNotStarted: no step ran (fail-fast or cancellation stopped
	// the run first).
	OutcomeNotStarted Outcome = "not-started"
	// OutcomeSwitchedOff: the machine was left out before the run, as
	// its cloud host is switched off (enabled = False) and has no
	// address. Not a failure. Only in a machine's EventSkipped, which
	// fleet's commands send; Execute never reports it.
	OutcomeSwitchedOff Outcome = "switched-off"
)

// Summary is what Execute did.
type Summary struct {
	// Err is why nothing ran: the steps are invalid (see Validate) or the
	// log folder could not be made. Machines is empty then.
	Err error
	// Cancelled: the run's context was done before every step ended.
	Cancelled bool
	Start     time.Time
	Duration  time.Duration
	// Machines, sorted by name.
	Machines []MachineResult
	// LogDir is ExecOptions.LogDir: each machine's log is
	// <LogDir>/<machine>.log.
	LogDir string
}

// MachineResult is one machine's deploy.
type MachineResult struct {
	Machine string
	Outcome Outcome
	// FailedStep is the ID of the step that failed or was interrupted,
	// or for a skipped machine, of the other machine's step that failed.
	FailedStep string
	Err        error
	// Duration runs from the machine's first step starting to its last
	// step ending; zero when no step ran.
	Duration time.Duration
	// Steps, in the order given to Execute.
	Steps []StepResult

	start, end time.Time
}

// StepResult is how one step ended.
type StepResult struct {
	ID     string
	Action string
	// Kind is EventSucceeded, EventFailed, EventSkipped, EventUnneeded
	// or EventNotStarted.
	Kind EventKind
	Err  error
	// UpToDate: the step succeeded by finding the machine up to date
	// (ErrUpToDate).
	UpToDate bool
	// Degraded: the step is done, but left the machine degraded (Err
	// says how; Kind is EventSucceeded): the steps after it ran.
	Degraded bool
	// Interrupted: the step failed while the run was being cancelled.
	Interrupted bool
	// Cause is the ID of the failed step that made this one skipped, or
	// of the up-to-date step that made it not needed.
	Cause string
	// Start is zero, and Duration too, when the step did not run.
	Start    time.Time
	Duration time.Duration
}

// Failed reports whether the deploy is anything short of every machine
// ok: the exit status is 1 then.
func (s *Summary) Failed() bool {
	if s.Err != nil || s.Cancelled {
		return true
	}
	for i := range s.Machines {
		if o := s.Machines[i].Outcome; o != OutcomeOK && o != OutcomeUnchanged {
			return true
		}
	}
	return false
}

// WriteTable writes the summary as a table, one machine a row (machine,
// outcome, duration, failing step, error), then a count of outcomes,
// then, for each machine that failed, its whole error (the end of the
// failing command's stderr, nix's error block, indented under it) and
// where its log is. Write errors are ignored: the table goes to a
// terminal or a log.
func (s *Summary) WriteTable(w io.Writer) {
	if s.Err != nil {
		fmt.Fprintf(w, "deploy did not start: %v\n", s.Err)
		return
	}
	// Rows go through a buffer to lose the padding after the last
	// non-empty cell.
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tOUTCOME\tDURATION\tSTEP\tERROR")
	counts := map[Outcome]int{}
	machineRows := 0
	var others []string // rows of no machine (fleet apply's _cloud, _secrets)
	for i := range s.Machines {
		m := &s.Machines[i]
		if strings.HasPrefix(m.Machine, "_") {
			others = append(others, m.Machine+" "+string(m.Outcome))
		} else {
			counts[m.Outcome]++
			machineRows++
		}
		duration := "-"
		if m.Duration > 0 {
			duration = formatDuration(m.Duration)
		}
		step := m.FailedStep
		if rest, ok := strings.CutPrefix(step, m.Machine+"/"); ok {
			step = rest
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Machine, m.Outcome, duration, step, errorLine(m.Err))
	}
	tw.Flush()
	for line := range strings.Lines(table.String()) {
		io.WriteString(w, strings.TrimRight(line, " \n")+"\n")
	}
	var parts []string
	for _, o := range []Outcome{OutcomeOK, OutcomeUnchanged, OutcomeDegraded, OutcomeFailed, OutcomeRolledBack, OutcomeCancelled, OutcomeSkipped, OutcomePartial, OutcomeNotStarted} {
		if n := counts[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	machines := "machines"
	if machineRows == 1 {
		machines = "machine"
	}
	line := fmt.Sprintf("%d %s", machineRows, machines)
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	if len(others) > 0 {
		line += "; " + strings.Join(others, ", ")
	}
	if s.Cancelled {
		line += " (cancelled)"
	}
	fmt.Fprintf(w, "%s in %s\n", line, formatDuration(s.Duration))
	s.writeDetails(w)
}

// writeDetails writes, for each machine that failed, degraded or rolled
// back, its error whole and its log's path: a table cell holds only the
// error's first line, and what the failing command said (nix's
// "error: ..." lines) comes after.
func (s *Summary) writeDetails(w io.Writer) {
	for i := range s.Machines {
		m := &s.Machines[i]
		switch m.Outcome {
		case OutcomeFailed, OutcomeDegraded, OutcomeRolledBack:
		default:
			continue
		}
		if m.Err == nil {
			continue
		}
		what := string(m.Outcome)
		if step := stepLabel(m.Machine, m.FailedStep, ""); step != "" {
			what = step + " " + what
		}
		var b strings.Builder
		fmt.Fprintf(&b, "\n%s: %s: ", m.Machine, what)
		for i, line := range strings.Split(strings.TrimSpace(m.Err.Error()), "\n") {
			if i > 0 {
				b.WriteString("\n")
				if !strings.HasPrefix(line, " ") {
					b.WriteString("    ")
				}
			}
			b.WriteString(line)
		}
		b.WriteString("\n")
		if s.LogDir != "" {
			fmt.Fprintf(&b, "  log: %s\n", filepath.Join(s.LogDir, m.Machine+".log"))
		}
		io.WriteString(w, b.String())
	}
}

// errorLine is an error's first line, short enough for a table cell. A
// failed command in it is told shortly (CommandError.Short), so that
// what the command said, not the rest of its command line, is seen.
func errorLine(err error) string {
	if err == nil {
		return ""
	}
	msg := strings.TrimSpace(err.Error())
	var ce *CommandError
	if errors.As(err, &ce) {
		if full := ce.Error(); strings.Contains(msg, full) {
			msg = strings.Replace(msg, full, ce.Short(), 1)
			if strings.Contains(full, "\n") {
				// The rest is in the summary's details.
				msg += "\n"
			}
		}
	}
	s, _, more := strings.Cut(msg, "\n")
	const limit = 120
	if r := []rune(s); len(r) > limit {
		s, more = string(r[:limit]), true
	}
	if more {
		s += " …"
	}
	return s
}

// formatDuration is 12.3s under a minute, 2m5s above.
func formatDuration(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
