package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// trace records when steps start and end, on one sequence, and how many
// run at once.
type trace struct {
	mu      sync.Mutex
	seq     int
	starts  map[string]int
	ends    map[string]int
	cur     int
	maxSeen int
}

func newTrace() *trace {
	return &trace{starts: map[string]int{}, ends: map[string]int{}}
}

// wrap makes a step's Run that records itself around body (nil: succeed).
func (tr *trace) wrap(id string, body func(ctx context.Context, out io.Writer) error) func(context.Context, io.Writer) error {
	return func(ctx context.Context, out io.Writer) error {
		tr.mu.Lock()
		tr.seq++
		tr.starts[id] = tr.seq
		tr.cur++
		tr.maxSeen = max(tr.maxSeen, tr.cur)
		tr.mu.Unlock()
		defer func() {
			tr.mu.Lock()
			tr.seq++
			tr.ends[id] = tr.seq
			tr.cur--
			tr.mu.Unlock()
		}()
		if body == nil {
			return nil
		}
		return body(ctx, out)
	}
}

func (tr *trace) ran(id string) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	_, ok := tr.starts[id]
	return ok
}

// spec is a step in a test: "machine/action" needing others.
type spec struct {
	id    string
	needs []string
	run   func(ctx context.Context, out io.Writer) error
}

func makeSteps(tr *trace, specs []spec) []Step {
	steps := make([]Step, len(specs))
	for i, s := range specs {
		machine, action, _ := strings.Cut(s.id, "/")
		steps[i] = Step{ID: s.id, Machine: machine, Action: action, Needs: s.needs, Run: tr.wrap(s.id, s.run)}
	}
	return steps
}

// chain is a machine's steps, each needing the one before.
func chain(machine string, actions ...string) []spec {
	var specs []spec
	for i, a := range actions {
		s := spec{id: machine + "/" + a}
		if i > 0 {
			s.needs = []string{machine + "/" + actions[i-1]}
		}
		specs = append(specs, s)
	}
	return specs
}

func sleepFor(d time.Duration) func(context.Context, io.Writer) error {
	return func(context.Context, io.Writer) error {
		time.Sleep(d)
		return nil
	}
}

func fail(msg string) func(context.Context, io.Writer) error {
	return func(context.Context, io.Writer) error { return errors.New(msg) }
}

// with sets the run of the step id in specs.
func with(specs []spec, id string, run func(context.Context, io.Writer) error) []spec {
	for i := range specs {
		if specs[i].id == id {
			specs[i].run = run
			return specs
		}
	}
	panic("no step " + id)
}

// checkEvents checks what Execute promises about events: never two calls
// at once, a step's start before its end, one final event per step, and
// a machine's done after all its steps' events.
type eventLog struct {
	t        *testing.T
	inFlight atomic.Int32
	mu       sync.Mutex
	events   []Event
}

func (l *eventLog) record(e Event) {
	if l.inFlight.Add(1) != 1 {
		l.t.Errorf("Events called concurrently")
	}
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	l.inFlight.Add(-1)
}

func (l *eventLog) check(steps []Step) {
	t := l.t
	t.Helper()
	started := map[string]bool{}
	final := map[string]EventKind{}
	done := map[string]bool{}
	for _, e := range l.events {
		if done[e.Machine] {
			t.Errorf("event %s %s after its machine was done", e.Step, e.Kind)
		}
		switch e.Kind {
		case EventStarted:
			if started[e.Step] {
				t.Errorf("%s started twice", e.Step)
			}
			started[e.Step] = true
		case EventSucceeded, EventFailed:
			if !started[e.Step] {
				t.Errorf("%s %s before it started", e.Step, e.Kind)
			}
			fallthrough
		case EventSkipped, EventNotStarted, EventUnneeded:
			if k, ok := final[e.Step]; ok {
				t.Errorf("%s ended twice: %s, %s", e.Step, k, e.Kind)
			}
			final[e.Step] = e.Kind
		case EventDone:
			done[e.Machine] = true
		default:
			t.Errorf("unknown event kind %q", e.Kind)
		}
	}
	for _, s := range steps {
		if _, ok := final[s.ID]; !ok {
			t.Errorf("no final event for %s", s.ID)
		}
		if !done[s.Machine] {
			t.Errorf("no done event for %s", s.Machine)
		}
	}
}

func TestExecuteOrdering(t *testing.T) {
	var fleet []spec
	for _, m := range []string{"a", "b", "c", "d", "e"} {
		fleet = append(fleet, chain(m, "build", "copy", "profile", "activate")...)
	}
	cross := append(append(chain("a", "build", "copy"), chain("b", "build", "copy")...),
		spec{id: "c/activate", needs: []string{"a/copy", "b/copy"}},
		spec{id: "a/check", needs: []string{"c/activate", "a/copy"}},
		spec{id: "b/check", needs: []string{"c/activate"}},
	)
	// A random DAG: each step needs up to three earlier ones, on any
	// machine, and sleeps a little so that runs overlap.
	rng := rand.New(rand.NewPCG(1, 2))
	var random []spec
	for i := range 200 {
		s := spec{id: fmt.Sprintf("m%d/s%d", i%13, i), run: sleepFor(time.Duration(rng.IntN(300)) * time.Microsecond)}
		for range rng.IntN(4) {
			if i > 0 {
				s.needs = append(s.needs, random[rng.IntN(i)].id)
			}
		}
		random = append(random, s)
	}
	// Given in reverse: ordering must come from needs, not from the list.
	reversed := slices.Clone(fleet)
	slices.Reverse(reversed)

	for _, tc := range []struct {
		name  string
		specs []spec
	}{
		{"chains", fleet},
		{"reversed", reversed},
		{"cross-machine", cross},
		{"random", random},
	} {
		for _, parallel := range []int{1, 3, 10, 1000} {
			t.Run(fmt.Sprintf("%s/parallel=%d", tc.name, parallel), func(t *testing.T) {
				tr := newTrace()
				steps := makeSteps(tr, tc.specs)
				events := &eventLog{t: t}
				s := Execute(context.Background(), steps, ExecOptions{Parallel: parallel, Events: events.record})
				if s.Err != nil || s.Failed() {
					t.Fatalf("failed: %v", s.Err)
				}
				events.check(steps)
				for _, st := range steps {
					if !tr.ran(st.ID) {
						t.Errorf("%s did not run", st.ID)
					}
					for _, n := range st.Needs {
						if tr.starts[st.ID] < tr.ends[n] {
							t.Errorf("%s started before %s, which it needs, ended", st.ID, n)
						}
					}
				}
				if tr.maxSeen > parallel {
					t.Errorf("%d steps ran at once, want at most %d", tr.maxSeen, parallel)
				}
				for _, m := range s.Machines {
					if m.Outcome != OutcomeOK {
						t.Errorf("%s: %s", m.Machine, m.Outcome)
					}
				}
			})
		}
	}
}

func TestExecuteParallelBound(t *testing.T) {
	for _, tc := range []struct {
		steps, parallel, want int
	}{
		{steps: 30, parallel: 1, want: 1},
		{steps: 30, parallel: 4, want: 4},
		{steps: 30, parallel: 10, want: 10},
		{steps: 40, parallel: 40, want: 40},
		{steps: 5, parallel: 10, want: 5},
		{steps: 30, parallel: 0, want: DefaultParallel},
		{steps: 30, parallel: -3, want: DefaultParallel},
	} {
		t.Run(fmt.Sprintf("steps=%d/parallel=%d", tc.steps, tc.parallel), func(t *testing.T) {
			tr := newTrace()
			// The first steps wait until want of them run at once (or
			// time out): the maximum is reached whenever the executor
			// allows it, and never passed if it does not.
			full := make(chan struct{})
			var once sync.Once
			var specs []spec
			for i := range tc.steps {
				specs = append(specs, spec{id: fmt.Sprintf("m%d/build", i), run: func(context.Context, io.Writer) error {
					tr.mu.Lock()
					reached := tr.cur >= tc.want
					tr.mu.Unlock()
					if reached {
						once.Do(func() { close(full) })
					}
					// Hold the step until the wanted number run at once;
					// the minute only ends a test that never gets there.
					select {
					case <-full:
					case <-time.After(time.Minute):
					}
					return nil
				}})
			}
			s := Execute(context.Background(), makeSteps(tr, specs), ExecOptions{Parallel: tc.parallel})
			if s.Failed() {
				t.Fatalf("failed: %v", s.Err)
			}
			if tr.maxSeen != tc.want {
				t.Errorf("at most %d steps ran at once, want %d", tr.maxSeen, tc.want)
			}
		})
	}
}

// A machine whose steps are quick goes through all of them while a slow
// machine is still on its first: no level-by-level walk.
func TestExecuteFastMachineDoesNotWait(t *testing.T) {
	bDone := make(chan struct{})
	specs := append(chain("a", "build", "copy", "activate"), chain("b", "build", "copy", "activate")...)
	specs = with(specs, "a/build", func(context.Context, io.Writer) error {
		select {
		case <-bDone:
			return nil
		case <-time.After(time.Minute):
			return errors.New("b/activate did not run while a/build did")
		}
	})
	specs = with(specs, "b/activate", func(context.Context, io.Writer) error {
		close(bDone)
		return nil
	})
	s := Execute(context.Background(), makeSteps(newTrace(), specs), ExecOptions{Parallel: 2})
	if s.Failed() {
		var b strings.Builder
		s.WriteTable(&b)
		t.Fatalf("failed:\n%s", b.String())
	}
}

func TestExecuteFailure(t *testing.T) {
	type want struct {
		outcome Outcome
		step    string // FailedStep
		err     string // in Err
	}
	for _, tc := range []struct {
		name     string
		specs    []spec
		parallel int
		want     map[string]want
		kinds    map[string]EventKind // of some steps
	}{
		{
			name: "copy fails",
			specs: with(append(append(append(
				chain("a", "build", "copy", "activate", "check"),
				chain("b", "build", "copy", "activate")...),
				chain("c", "build", "activate")...),
				spec{id: "d/activate", needs: []string{"b/activate"}}),
				"a/copy", fail("copy: connection refused")),
			want: map[string]want{
				"a": {OutcomeFailed, "a/copy", "connection refused"},
				"b": {OutcomeOK, "", ""},
				"c": {OutcomeOK, "", ""},
				"d": {OutcomeOK, "", ""},
			},
			kinds: map[string]EventKind{
				"a/build": EventSucceeded, "a/copy": EventFailed,
				"a/activate": EventSkipped, "a/check": EventSkipped,
			},
		},
		{
			name: "other machines need the failed step",
			specs: with(append(append(
				chain("a", "build", "copy"),
				chain("b", "build", "activate")...),
				spec{id: "b/check", needs: []string{"a/copy", "b/activate"}},
				spec{id: "c/activate", needs: []string{"a/copy"}},
				spec{id: "c/check", needs: []string{"c/activate"}}),
				"a/build", fail("build: exit status 1")),
			want: map[string]want{
				"a": {OutcomeFailed, "a/build", "exit status 1"},
				"b": {OutcomeSkipped, "a/build", "b/check needs a/build, which failed"},
				"c": {OutcomeSkipped, "a/build", "c/activate needs a/build"},
			},
			kinds: map[string]EventKind{
				"a/copy": EventSkipped, "b/build": EventSucceeded, "b/activate": EventSucceeded,
				"b/check": EventSkipped, "c/activate": EventSkipped, "c/check": EventSkipped,
			},
		},
		{
			name: "panic",
			specs: with(append(chain("a", "build", "copy"), chain("b", "build")...),
				"a/build", func(context.Context, io.Writer) error { panic("oops") }),
			want: map[string]want{
				"a": {OutcomeFailed, "a/build", "panic: oops"},
				"b": {OutcomeOK, "", ""},
			},
			kinds: map[string]EventKind{"a/copy": EventSkipped},
		},
		{
			name: "every machine fails, serially",
			specs: with(with(append(chain("a", "build", "copy"), chain("b", "build", "copy")...),
				"a/copy", fail("a down")), "b/build", fail("b down")),
			parallel: 1,
			want: map[string]want{
				"a": {OutcomeFailed, "a/copy", "a down"},
				"b": {OutcomeFailed, "b/build", "b down"},
			},
			kinds: map[string]EventKind{"b/copy": EventSkipped},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrace()
			steps := makeSteps(tr, tc.specs)
			events := &eventLog{t: t}
			s := Execute(context.Background(), steps, ExecOptions{Parallel: tc.parallel, Events: events.record})
			events.check(steps)
			if !s.Failed() {
				t.Errorf("Failed() = false")
			}
			if len(s.Machines) != len(tc.want) {
				t.Fatalf("%d machines, want %d", len(s.Machines), len(tc.want))
			}
			kinds := map[string]StepResult{}
			for _, m := range s.Machines {
				w := tc.want[m.Machine]
				if m.Outcome != w.outcome || m.FailedStep != w.step {
					t.Errorf("%s: %s at %q, want %s at %q", m.Machine, m.Outcome, m.FailedStep, w.outcome, w.step)
				}
				if got := fmt.Sprint(m.Err); (w.err == "") != (m.Err == nil) || !strings.Contains(got, w.err) {
					t.Errorf("%s: error %v, want %q", m.Machine, m.Err, w.err)
				}
				for _, st := range m.Steps {
					kinds[st.ID] = st
				}
			}
			for id, k := range tc.kinds {
				st := kinds[id]
				if st.Kind != k {
					t.Errorf("%s: %s, want %s", id, st.Kind, k)
				}
				if k == EventSkipped {
					if tr.ran(id) {
						t.Errorf("%s ran, but was skipped", id)
					}
					if st.Cause == "" {
						t.Errorf("%s skipped without a cause", id)
					}
				}
			}
		})
	}
}

func TestExecuteFailFast(t *testing.T) {
	for _, tc := range []struct {
		failFast bool
		want     map[string]Outcome
	}{
		{true, map[string]Outcome{"a": OutcomeFailed, "b": OutcomePartial, "c": OutcomeNotStarted}},
		{false, map[string]Outcome{"a": OutcomeFailed, "b": OutcomeOK, "c": OutcomeOK}},
	} {
		t.Run(fmt.Sprintf("fail-fast=%v", tc.failFast), func(t *testing.T) {
			tr := newTrace()
			bStarted := make(chan struct{})
			aFailed := make(chan struct{})
			specs := append(append(chain("a", "build", "copy"), chain("b", "build", "copy")...), chain("c", "build")...)
			// a/build fails while b/build runs; b/build ends only once
			// the executor saw the failure.
			specs = with(specs, "a/build", func(context.Context, io.Writer) error {
				<-bStarted
				return errors.New("build failed")
			})
			specs = with(specs, "b/build", func(context.Context, io.Writer) error {
				close(bStarted)
				<-aFailed
				return nil
			})
			steps := makeSteps(tr, specs)
			events := &eventLog{t: t}
			s := Execute(context.Background(), steps, ExecOptions{Parallel: 2, FailFast: tc.failFast, Events: func(e Event) {
				events.record(e)
				if e.Step == "a/build" && e.Kind == EventFailed {
					close(aFailed)
				}
			}})
			events.check(steps)
			if !s.Failed() {
				t.Errorf("Failed() = false")
			}
			for _, m := range s.Machines {
				if m.Outcome != tc.want[m.Machine] {
					t.Errorf("%s: %s, want %s", m.Machine, m.Outcome, tc.want[m.Machine])
				}
			}
			if tc.failFast {
				for _, id := range []string{"b/copy", "c/build"} {
					if tr.ran(id) {
						t.Errorf("%s ran after the first failure", id)
					}
				}
				if st := s.Machines[1].Steps[1]; st.ID != "b/copy" || st.Kind != EventNotStarted {
					t.Errorf("b/copy: %+v, want not started", st)
				}
				if st := s.Machines[0].Steps[1]; st.ID != "a/copy" || st.Kind != EventSkipped || st.Cause != "a/build" {
					t.Errorf("a/copy: %+v, want skipped because of a/build", st)
				}
			}
		})
	}
}

func TestExecuteCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := newTrace()
	var sawDone sync.Map
	bCopyStarted := make(chan struct{})
	untilCancelled := func(id string) func(context.Context, io.Writer) error {
		return func(ctx context.Context, _ io.Writer) error {
			if id == "b/copy" {
				close(bCopyStarted)
			}
			select {
			case <-ctx.Done():
				sawDone.Store(id, true)
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return errors.New("not cancelled")
			}
		}
	}
	var cancelled atomic.Bool
	specs := append(append(append(append(
		chain("a", "build", "copy"),
		chain("b", "build", "copy", "activate")...),
		chain("c", "build", "copy")...),
		chain("d", "build", "copy")...),
		chain("e", "build")...)
	specs = with(specs, "a/build", untilCancelled("a/build"))
	specs = with(specs, "b/copy", untilCancelled("b/copy"))
	// Three slots: a/build and b/copy hold two until cancelled; c goes
	// through the third, then d/build cancels the run (Ctrl-C) and
	// succeeds.
	specs = with(specs, "d/build", func(context.Context, io.Writer) error {
		<-bCopyStarted
		cancelled.Store(true)
		cancel()
		return nil
	})
	steps := makeSteps(tr, specs)
	events := &eventLog{t: t}
	s := Execute(ctx, steps, ExecOptions{Parallel: 3, Events: func(e Event) {
		events.record(e)
		if e.Kind == EventStarted && cancelled.Load() {
			t.Errorf("%s started after cancellation", e.Step)
		}
	}})
	events.check(steps)

	for _, id := range []string{"a/build", "b/copy"} {
		if _, ok := sawDone.Load(id); !ok {
			t.Errorf("%s did not see its context done", id)
		}
	}
	for _, id := range []string{"a/copy", "b/activate", "d/copy", "e/build"} {
		if tr.ran(id) {
			t.Errorf("%s ran", id)
		}
	}
	if !s.Cancelled || !s.Failed() {
		t.Errorf("Cancelled = %v, Failed() = %v, want both", s.Cancelled, s.Failed())
	}
	want := map[string]struct {
		outcome Outcome
		step    string
		kinds   []EventKind
	}{
		"a": {OutcomeCancelled, "a/build", []EventKind{EventFailed, EventNotStarted}},
		"b": {OutcomeCancelled, "b/copy", []EventKind{EventSucceeded, EventFailed, EventNotStarted}},
		"c": {OutcomeOK, "", []EventKind{EventSucceeded, EventSucceeded}},
		"d": {OutcomePartial, "", []EventKind{EventSucceeded, EventNotStarted}},
		"e": {OutcomeNotStarted, "", []EventKind{EventNotStarted}},
	}
	for _, m := range s.Machines {
		w := want[m.Machine]
		var kinds []EventKind
		for _, st := range m.Steps {
			kinds = append(kinds, st.Kind)
		}
		if m.Outcome != w.outcome || m.FailedStep != w.step || !slices.Equal(kinds, w.kinds) {
			t.Errorf("%s: %s at %q, steps %v; want %s at %q, steps %v", m.Machine, m.Outcome, m.FailedStep, kinds, w.outcome, w.step, w.kinds)
		}
		if m.Outcome == OutcomeCancelled && !errors.Is(m.Err, context.Canceled) {
			t.Errorf("%s: error %v, want context.Canceled", m.Machine, m.Err)
		}
	}
}

func TestExecuteCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr := newTrace()
	s := Execute(ctx, makeSteps(tr, append(chain("a", "build", "copy"), chain("b", "build")...)), ExecOptions{})
	if len(tr.starts) > 0 {
		t.Errorf("steps ran: %v", tr.starts)
	}
	if !s.Cancelled || !s.Failed() {
		t.Errorf("Cancelled = %v, Failed() = %v, want both", s.Cancelled, s.Failed())
	}
	for _, m := range s.Machines {
		if m.Outcome != OutcomeNotStarted {
			t.Errorf("%s: %s, want not started", m.Machine, m.Outcome)
		}
	}
}

func TestExecuteNoSteps(t *testing.T) {
	s := Execute(context.Background(), nil, ExecOptions{})
	if s.Err != nil || s.Failed() || len(s.Machines) != 0 {
		t.Errorf("Execute(nil) = %+v", s)
	}
}

func TestValidate(t *testing.T) {
	ok := func(context.Context, io.Writer) error { return nil }
	step := func(id string, needs ...string) Step {
		machine, action, _ := strings.Cut(id, "/")
		return Step{ID: id, Machine: machine, Action: action, Needs: needs, Run: ok}
	}
	for _, tc := range []struct {
		name  string
		steps []Step
		err   string // "" for valid
	}{
		{"valid", []Step{step("a/build"), step("a/copy", "a/build"), step("b/build", "a/build", "a/build")}, ""},
		{"duplicate", []Step{step("a/build"), step("a/build")}, "step a/build is there twice"},
		{"unknown need", []Step{step("a/build"), step("a/copy", "a/biuld")}, "step a/copy needs a/biuld, which is not a step"},
		{"self", []Step{step("a/build", "a/build")}, "step a/build needs itself"},
		{"cycle", []Step{
			step("z/ok"),
			step("a/build", "c/check", "z/ok"),
			step("b/copy", "a/build"),
			step("c/check", "b/copy"),
			step("d/after", "c/check"),
		}, "dependency cycle: a/build needs c/check needs b/copy needs a/build"},
		{"two-cycle", []Step{step("a/x", "a/y"), step("a/y", "a/x")}, "dependency cycle: a/x needs a/y needs a/x"},
		{"no ID", []Step{{Machine: "a", Action: "build", Run: ok}}, `step 0 (machine "a", action "build") has no ID`},
		{"no run", []Step{{ID: "a/build", Machine: "a"}}, "step a/build has nothing to run"},
		{"no machine", []Step{{ID: "build", Run: ok}}, "step build: no machine"},
		{"machine is a path", []Step{{ID: "../x/build", Machine: "../x", Run: ok}}, `machine "../x" is not a plain name`},
		{"several", []Step{step("a/build", "nope"), step("a/build")}, "needs nope, which is not a step"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.steps)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate: %v, want %q", err, tc.err)
			}
			ran := false
			for i := range tc.steps {
				if tc.steps[i].Run != nil {
					tc.steps[i].Run = func(context.Context, io.Writer) error { ran = true; return nil }
				}
			}
			s := Execute(context.Background(), tc.steps, ExecOptions{Events: func(e Event) { t.Errorf("event %+v", e) }})
			if s.Err == nil || s.Err.Error() != err.Error() || !s.Failed() || len(s.Machines) > 0 || ran {
				t.Errorf("Execute: Err %v, Failed %v, %d machines, ran %v", s.Err, s.Failed(), len(s.Machines), ran)
			}
			var b strings.Builder
			s.WriteTable(&b)
			if !strings.HasPrefix(b.String(), "deploy did not start: ") {
				t.Errorf("WriteTable: %q", b.String())
			}
		})
	}
}

func TestWriteTable(t *testing.T) {
	s := &Summary{
		Duration: 75 * time.Second,
		Machines: []MachineResult{
			{Machine: "blackphos", Outcome: OutcomeOK, Duration: 14040 * time.Millisecond},
			{Machine: "cinnabar", Outcome: OutcomeFailed, FailedStep: "cinnabar/copy", Duration: 3100 * time.Millisecond,
				Err: errors.New("nix copy: exit status 1\nerror: cannot connect to 'root@cinnabar.zt'")},
			{Machine: "electrum", Outcome: OutcomeNotStarted},
			{Machine: "galena", Outcome: OutcomeSkipped, FailedStep: "cinnabar/copy",
				Err: errors.New("galena/activate needs cinnabar/copy, which failed")},
			{Machine: "scheelite", Outcome: OutcomeCancelled, FailedStep: "scheelite/activate", Duration: 65 * time.Second,
				Err: context.Canceled},
		},
	}
	want := `MACHINE    OUTCOME      DURATION  STEP           ERROR
blackphos  ok           14.0s
cinnabar   failed       3.1s      copy           nix copy: exit status 1 …
electrum   not-started  -
galena     skipped      -         cinnabar/copy  galena/activate needs cinnabar/copy, which failed
scheelite  cancelled    1m5s      activate       context canceled
5 machines: 1 ok, 1 failed, 1 cancelled, 1 skipped, 1 not-started in 1m15s

cinnabar: copy failed: nix copy: exit status 1
    error: cannot connect to 'root@cinnabar.zt'
`
	var b strings.Builder
	s.WriteTable(&b)
	if b.String() != want {
		t.Errorf("WriteTable:\n%s\nwant:\n%s", b.String(), want)
	}
}

// Rows of no machine (fleet apply's _cloud and _secrets) are listed but
// not counted as machines.
func TestWriteTableOtherRows(t *testing.T) {
	s := &Summary{Duration: 2 * time.Second, Machines: []MachineResult{
		{Machine: "_cloud", Outcome: OutcomeOK, Duration: time.Second},
		{Machine: "_secrets", Outcome: OutcomeOK, Duration: time.Second},
		{Machine: "web", Outcome: OutcomeOK, Duration: time.Second},
	}}
	var b strings.Builder
	s.WriteTable(&b)
	if want := "1 machine: 1 ok; _cloud ok, _secrets ok in 2.0s\n"; !strings.HasSuffix(b.String(), want) {
		t.Errorf("WriteTable:\n%s\nwant it to end with %q", b.String(), want)
	}
}

// A step returning ErrUpToDate succeeds: the rest of its machine is not
// needed (and does not run), while another machine's step needing it
// runs as if the machine had been deployed.
func TestUpToDate(t *testing.T) {
	tr := newTrace()
	specs := chain("a", "build", "compare", "copy", "activate")
	specs = with(specs, "a/compare", func(context.Context, io.Writer) error { return fmt.Errorf("compared: %w", ErrUpToDate) })
	specs = append(specs, chain("b", "build", "activate")...)
	specs[len(specs)-1].needs = append(specs[len(specs)-1].needs, "a/activate")
	steps := makeSteps(tr, specs)
	l := &eventLog{t: t}
	sum := Execute(context.Background(), steps, ExecOptions{Parallel: 2, Events: l.record})
	l.check(steps)
	if sum.Failed() {
		t.Fatalf("failed: %+v", sum.Machines)
	}
	if got := []Outcome{sum.Machines[0].Outcome, sum.Machines[1].Outcome}; !slices.Equal(got, []Outcome{OutcomeUnchanged, OutcomeOK}) {
		t.Fatalf("outcomes %v", got)
	}
	for _, id := range []string{"a/copy", "a/activate"} {
		if tr.ran(id) {
			t.Errorf("%s ran", id)
		}
	}
	if !tr.ran("b/activate") {
		t.Errorf("b/activate, which needs a/activate, did not run")
	}
	for _, s := range sum.Machines[0].Steps {
		if want := map[string]EventKind{"build": EventSucceeded, "compare": EventSucceeded}[s.Action]; want != "" && s.Kind != want ||
			want == "" && (s.Kind != EventUnneeded || s.Cause != "a/compare") {
			t.Errorf("step %s: %s (cause %q)", s.ID, s.Kind, s.Cause)
		}
	}
}
