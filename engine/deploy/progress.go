package deploy

// Progress turns Execute's events into what a person watches. On a
// terminal that is one live line per machine (mpb), redrawn in place:
// the machine, what it runs now and for how long; a machine that is done
// leaves a final line above the live ones. Elsewhere (CI, a pipe) it is
// plain lines prefixed with the machine, one per event, which read well
// interleaved and in a log.

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress returns an ExecOptions.Events that shows progress on w, and a
// done to call once Execute returned (it draws the last lines and stops
// redrawing). terminal says w is a terminal (live lines); otherwise
// each event is a line:
//
//	cinnabar: build started
//	cinnabar: build ok 12.3s
//	cinnabar: copy failed 1.2s: exit status 1
//	cinnabar: activate skipped: needs cinnabar/copy, which failed
//	cinnabar: done: failed at copy 13.5s: exit status 1
//
// events is safe to call from any goroutine, one call at a time or not.
func Progress(w io.Writer, terminal bool) (events func(Event), done func()) {
	if !terminal {
		p := &lineProgress{w: w}
		return p.event, func() {}
	}
	p := newBarProgress(w)
	return p.event, p.done
}

type lineProgress struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (p *lineProgress) event(e Event) {
	line := progressLine(e)
	if line == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(append(append(append(p.buf[:0], e.Machine...), ": "...), line...), '\n')
	_, _ = p.w.Write(p.buf)
}

// progressLine is what an event says after the machine's name.
func progressLine(e Event) string {
	step := stepLabel(e.Machine, e.Step, e.Action)
	switch e.Kind {
	case EventStarted:
		return step + " started"
	case EventSucceeded:
		if e.Err != nil {
			return step + " done " + formatDuration(e.Duration) + ", but: " + errorLine(e.Err)
		}
		return step + " ok " + formatDuration(e.Duration)
	case EventFailed:
		return step + " failed " + formatDuration(e.Duration) + ": " + errorLine(e.Err)
	case EventSkipped:
		return step + " skipped: needs " + e.Cause + ", which failed"
	case EventUnneeded:
		// The machine's done line says it is unchanged; a line per step
		// not run would only repeat it.
		return ""
	case EventNotStarted:
		return step + " not started"
	case EventDone:
		return "done: " + machineLine(e)
	}
	return ""
}

// machineLine says how a machine ended, from its EventDone.
func machineLine(e Event) string {
	step := stepLabel(e.Machine, e.Step, "")
	switch e.Outcome {
	case OutcomeOK, OutcomePartial, OutcomeUnchanged:
		return string(e.Outcome) + " " + formatDuration(e.Duration)
	case OutcomeFailed, OutcomeRolledBack, OutcomeCancelled, OutcomeDegraded:
		return fmt.Sprintf("%s at %s %s: %s", e.Outcome, step, formatDuration(e.Duration), errorLine(e.Err))
	case OutcomeSkipped:
		return "skipped: " + e.Step + " failed"
	case OutcomeNotStarted:
		return "not started"
	}
	return string(e.Outcome)
}

// barProgress keeps one mpb bar per machine, made when its first step
// starts (or when it is done without having run anything).
type barProgress struct {
	mu       sync.Mutex
	p        *mpb.Progress
	bars     map[string]*machineBar
	finished bool
}

// machineBar is what a machine's line shows. mpb draws it from its own
// goroutine, hence the lock.
type machineBar struct {
	bar     *mpb.Bar
	mu      sync.Mutex
	start   time.Time
	running []string // the labels of its running steps
	final   string
}

func newBarProgress(w io.Writer) *barProgress {
	return &barProgress{
		p: mpb.New(
			mpb.WithOutput(w),
			// The caller knows w is a terminal even when it is wrapped
			// and mpb cannot tell.
			mpb.ForceTTY(),
			mpb.WithAutoRefresh(),
			// Done machines leave their line above the live ones.
			mpb.PopCompletedMode(),
		),
		bars: map[string]*machineBar{},
	}
}

func (p *barProgress) event(e Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	switch e.Kind {
	case EventStarted:
		mb := p.machine(e.Machine, e.Time)
		mb.mu.Lock()
		mb.running = append(mb.running, stepLabel(e.Machine, e.Step, e.Action))
		mb.mu.Unlock()
	case EventSucceeded, EventFailed:
		if mb := p.bars[e.Machine]; mb != nil {
			label := stepLabel(e.Machine, e.Step, e.Action)
			mb.mu.Lock()
			if k := slices.Index(mb.running, label); k >= 0 {
				mb.running = slices.Delete(mb.running, k, k+1)
			}
			mb.mu.Unlock()
		}
	case EventDone:
		mb := p.machine(e.Machine, e.Time)
		mb.mu.Lock()
		mb.final = machineLine(e)
		mb.running = nil
		mb.mu.Unlock()
		mb.bar.SetTotal(-1, true)
	}
}

func (p *barProgress) machine(name string, start time.Time) *machineBar {
	if mb := p.bars[name]; mb != nil {
		return mb
	}
	mb := &machineBar{start: start}
	mb.bar = p.p.New(0, mpb.NopStyle(),
		mpb.PrependDecorators(
			decor.Name(name, decor.WCSyncSpaceR),
			decor.Any(mb.text),
		),
	)
	p.bars[name] = mb
	return mb
}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (mb *machineBar) text(decor.Statistics) string {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.final != "" {
		return mb.final
	}
	elapsed := time.Since(mb.start)
	frame := spinnerFrames[int(elapsed/(100*time.Millisecond))%len(spinnerFrames)]
	doing := "waiting"
	if len(mb.running) > 0 {
		doing = strings.Join(mb.running, ", ")
	}
	return fmt.Sprintf("%s %s %s", frame, doing, formatDuration(elapsed))
}

func (p *barProgress) done() {
	p.mu.Lock()
	if p.finished {
		p.mu.Unlock()
		return
	}
	p.finished = true
	// Machines that never got their EventDone (Execute still running, or
	// events dropped) end their line where they are.
	for _, mb := range p.bars {
		mb.bar.Abort(false)
	}
	p.mu.Unlock()
	p.p.Wait()
}
