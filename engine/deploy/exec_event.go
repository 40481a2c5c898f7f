package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"sync"
	"time"
)

// EventKind is what happened to a step, or EventDone to a machine.
type EventKind string

const (
	EventStarted   EventKind = "started"
	EventSucceeded EventKind = "succeeded"
	EventFailed    EventKind = "failed"
	// EventSkipped: a step it needs failed (Event.Cause). Without a
	// Step, the whole machine was left out before the run (fleet's
	// commands send it, not Execute): Outcome says why
	// (OutcomeSwitchedOff) and Reason says it in words.
	EventSkipped EventKind = "skipped"
	// EventUnneeded: a step of the same machine it needs found the
	// machine already up to date (ErrUpToDate, Event.Cause names it).
	EventUnneeded EventKind = "not-needed"
	// EventNotStarted: fail-fast or cancellation stopped the run first.
	EventNotStarted EventKind = "not-started"
	// EventDone: every step of the machine has ended. Outcome, Err and
	// Duration are the machine's (MachineResult), Step is its
	// FailedStep.
	EventDone EventKind = "done"
)

// Event is one thing that happened during Execute.
type Event struct {
	Time    time.Time
	Machine string
	Step    string // the step's ID
	Action  string
	Kind    EventKind
	// Cause is, for EventSkipped, the ID of the failed step.
	Cause string
	// Err is, for EventFailed and EventDone, what went wrong.
	Err error
	// Duration is how long the step ran (EventSucceeded, EventFailed) or
	// the machine took (EventDone).
	Duration time.Duration
	// Outcome is the machine's, for EventDone and a machine's
	// EventSkipped.
	Outcome Outcome
	// Reason is, for a machine's EventSkipped, why it is left out and
	// what would change that.
	Reason string
}

// eventJSON is an Event on the wire: the error as its message, the
// duration in seconds.
type eventJSON struct {
	Time     time.Time `json:"time"`
	Machine  string    `json:"machine"`
	Step     string    `json:"step,omitempty"`
	Action   string    `json:"action,omitempty"`
	Kind     EventKind `json:"kind"`
	Outcome  Outcome   `json:"outcome,omitempty"`
	Cause    string    `json:"cause,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Error    string    `json:"error,omitempty"`
	Duration float64   `json:"duration,omitempty"`
}

// MarshalJSON writes e as one object: time (RFC 3339), machine, step,
// action, kind, outcome, cause, reason, error (the message) and duration
// (in seconds), empty fields left out.
func (e Event) MarshalJSON() ([]byte, error) {
	// Errors quote commands: keep their <, > and & readable.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e.wire()); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func (e *Event) wire() eventJSON {
	w := eventJSON{
		Time: e.Time, Machine: e.Machine, Step: e.Step, Action: e.Action, Kind: e.Kind,
		Outcome: e.Outcome, Cause: e.Cause, Reason: e.Reason, Duration: e.Duration.Seconds(),
	}
	if e.Err != nil {
		w.Error = e.Err.Error()
	}
	return w
}

// UnmarshalJSON reads what MarshalJSON writes; the error comes back as
// its message only.
func (e *Event) UnmarshalJSON(b []byte) error {
	var w eventJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Event{
		Time: w.Time, Machine: w.Machine, Step: w.Step, Action: w.Action, Kind: w.Kind,
		Outcome: w.Outcome, Cause: w.Cause, Reason: w.Reason, Duration: time.Duration(math.Round(w.Duration * 1e9)),
	}
	if w.Error != "" {
		e.Err = errors.New(w.Error)
	}
	return nil
}

// JSONEvents returns an ExecOptions.Events that writes each event to w
// as one line of JSON (--json). After a write fails it writes no more.
func JSONEvents(w io.Writer) func(Event) {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	var failed bool
	return func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		if !failed {
			// The wire form directly: what MarshalJSON writes, without
			// compacting it a second time.
			failed = enc.Encode(e.wire()) != nil
		}
	}
}
