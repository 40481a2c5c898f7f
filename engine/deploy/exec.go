package deploy

// The executor is one coordinator goroutine that owns all scheduling
// state and one goroutine per running step. A step that finishes sends
// its result on a channel; the coordinator marks it, makes the steps
// waiting only on it ready, and starts ready steps while fewer than
// Parallel run. There is no polling and no level-by-level walk: a step
// starts the moment its last need succeeds and a slot is free, so a fast
// machine never waits for a slow machine's earlier step.
//
// Because only the coordinator touches the state and calls Events, the
// callback is serial without a lock, and a step's events are always in
// order (started before succeeded or failed, a machine's done last).

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// DefaultParallel is how many steps run at once unless told otherwise.
const DefaultParallel = 10

// ExecOptions say how Execute runs steps.
type ExecOptions struct {
	// Parallel bounds how many steps run at once (DefaultParallel when
	// zero or negative).
	Parallel int
	// FailFast stops starting steps after the first failure. Steps that
	// are running finish; the rest are reported as not started.
	FailFast bool
	// LogDir is the run's log folder, created 0700 if missing:
	// <LogDir>/<machine>.log (0600) receives every step's command lines,
	// its output and its outcome, each line with a timestamp. Empty: no
	// logs.
	LogDir string
	// Events receives what happens as it happens. Execute calls it from
	// one goroutine, never concurrently, so it needs no lock; it should
	// be quick, since no step starts while it runs.
	Events func(Event)
}

// Validate reports what makes steps unrunnable: an empty or duplicate
// ID, a machine name that is not a plain file name (it names the log),
// a step without Run, a need that is not a step or is the step itself,
// and dependency cycles (with the cycle spelled out). Execute validates
// too and reports the error in Summary.Err without running anything, so
// calling Validate first is only for failing before anything else
// happens (a --dry-run, say).
func Validate(steps []Step) error {
	_, err := newExecGraph(steps)
	return err
}

// Execute runs steps, at most opts.Parallel at once, each only after
// every step it needs succeeded. When a step fails, the steps that
// (transitively) need it are skipped, with it as their cause, and the
// rest carry on, unless opts.FailFast says to stop starting steps. When
// ctx is done, no step starts any more; running steps have ctx (the
// Runner kills their commands) and are waited for, and one that fails
// then counts as interrupted (OutcomeCancelled), not as broken.
//
// Execute returns when no step runs any more. Problems with the steps
// themselves (see Validate) or the log folder are in Summary.Err, and
// then nothing ran.
func Execute(ctx context.Context, steps []Step, opts ExecOptions) *Summary {
	start := time.Now()
	g, err := newExecGraph(steps)
	if err != nil {
		return &Summary{Err: err, Start: start}
	}
	logs, err := openMachineLogs(opts.LogDir, g.machines)
	if err != nil {
		return &Summary{Err: err, Start: start}
	}
	defer closeMachineLogs(logs)

	r := newExecRun(ctx, g, opts, logs)
	r.loop()
	s := r.summary()
	s.Start = start
	s.LogDir = opts.LogDir
	s.Duration = time.Since(start)
	return s
}

// execGraph is the validated steps by index.
type execGraph struct {
	steps      []Step
	needs      [][]int32 // distinct, by index
	dependents [][]int32 // the steps that need this one
	after      [][]int32 // Step.After, distinct, by index
	followers  [][]int32 // the steps that come after this one
	machines   []string  // sorted, distinct
	machineOf  []int32   // step -> machine
	stepsOf    [][]int32 // machine -> steps, in the order given
}

func newExecGraph(steps []Step) (*execGraph, error) {
	g := &execGraph{
		steps:      steps,
		needs:      make([][]int32, len(steps)),
		dependents: make([][]int32, len(steps)),
		after:      make([][]int32, len(steps)),
		followers:  make([][]int32, len(steps)),
		machineOf:  make([]int32, len(steps)),
	}
	var errs []error
	index := make(map[string]int32, len(steps))
	machines := map[string]int32{}
	for i := range steps {
		s := &steps[i]
		switch _, dup := index[s.ID]; {
		case s.ID == "":
			errs = append(errs, fmt.Errorf("step %d (machine %q, action %q) has no ID", i, s.Machine, s.Action))
		case dup:
			errs = append(errs, fmt.Errorf("step %s is there twice", s.ID))
		default:
			index[s.ID] = int32(i)
		}
		if err := checkMachineName(s.Machine); err != nil {
			errs = append(errs, fmt.Errorf("step %s: %v", s.ID, err))
		}
		if s.Run == nil {
			errs = append(errs, fmt.Errorf("step %s has nothing to run", s.ID))
		}
		machines[s.Machine] = 0
	}
	for i := range steps {
		s := &steps[i]
		for _, id := range s.Needs {
			j, ok := index[id]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("step %s needs %s, which is not a step", s.ID, id))
			case j == int32(i) || id == s.ID:
				errs = append(errs, fmt.Errorf("step %s needs itself", s.ID))
			case !slices.Contains(g.needs[i], j):
				g.needs[i] = append(g.needs[i], j)
				g.dependents[j] = append(g.dependents[j], int32(i))
			}
		}
		for _, id := range s.After {
			j, ok := index[id]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("step %s comes after %s, which is not a step", s.ID, id))
			case j == int32(i):
				errs = append(errs, fmt.Errorf("step %s comes after itself", s.ID))
			case !slices.Contains(g.after[i], j) && !slices.Contains(g.needs[i], j):
				g.after[i] = append(g.after[i], j)
				g.followers[j] = append(g.followers[j], int32(i))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("deploy steps: %w", errors.Join(errs...))
	}
	if err := g.checkCycles(); err != nil {
		return nil, err
	}

	for m := range machines {
		g.machines = append(g.machines, m)
	}
	slices.Sort(g.machines)
	for i, m := range g.machines {
		machines[m] = int32(i)
	}
	g.stepsOf = make([][]int32, len(g.machines))
	for i := range steps {
		m := machines[steps[i].Machine]
		g.machineOf[i] = m
		g.stepsOf[m] = append(g.stepsOf[m], int32(i))
	}
	return g, nil
}

// checkMachineName rejects names that would put a log outside the run's
// folder.
func checkMachineName(name string) error {
	switch {
	case name == "":
		return errors.New("no machine")
	case name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("machine %q is not a plain name", name)
	}
	return nil
}

// checkCycles peels off steps whose needs are all peeled (Kahn); what is
// left holds a cycle, found by following unpeeled needs until one
// repeats.
func (g *execGraph) checkCycles() error {
	left := make([]int32, len(g.steps))
	var queue []int32
	for i := range g.steps {
		left[i] = int32(len(g.needs[i]) + len(g.after[i]))
		if left[i] == 0 {
			queue = append(queue, int32(i))
		}
	}
	peeled := 0
	for len(queue) > 0 {
		i := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		peeled++
		for _, d := range slices.Concat(g.dependents[i], g.followers[i]) {
			if left[d]--; left[d] == 0 {
				queue = append(queue, d)
			}
		}
	}
	if peeled == len(g.steps) {
		return nil
	}
	start := slices.IndexFunc(left, func(n int32) bool { return n > 0 })
	seen := map[int32]int{}
	var path []int32
	for i := int32(start); ; {
		if at, ok := seen[i]; ok {
			path = append(path[at:], i)
			break
		}
		seen[i] = len(path)
		path = append(path, i)
		for _, j := range slices.Concat(g.needs[i], g.after[i]) {
			if left[j] > 0 {
				i = j
				break
			}
		}
	}
	ids := make([]string, len(path))
	for k, i := range path {
		ids[k] = g.steps[i].ID
	}
	return fmt.Errorf("deploy steps: dependency cycle: %s", strings.Join(ids, " needs "))
}

// Step states. Pending steps have not started and may still run; the
// final states are the EventKinds a step can end in.
const (
	statePending EventKind = ""
	stateRunning EventKind = EventStarted
)

// execRun is one Execute's state, owned by the coordinator goroutine.
type execRun struct {
	ctx      context.Context
	g        *execGraph
	opts     ExecOptions
	parallel int
	logs     []*machineLog // by machine; nil entries without LogDir

	state    []EventKind
	steps    []StepResult
	left     []int32 // needs not yet succeeded, and afters not yet ended
	machLeft []int32 // steps not yet in a final state
	machines []MachineResult
	ready    readyHeap
	running  int
	stopped  bool
	stopCtx  bool // stopped because ctx is done
	done     chan execDone
}

// execDone is a finished step, sent by its goroutine.
type execDone struct {
	i   int32
	err error
	end time.Time
}

func newExecRun(ctx context.Context, g *execGraph, opts ExecOptions, logs []*machineLog) *execRun {
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	r := &execRun{
		ctx:      ctx,
		g:        g,
		opts:     opts,
		parallel: parallel,
		logs:     logs,
		state:    make([]EventKind, len(g.steps)),
		steps:    make([]StepResult, len(g.steps)),
		left:     make([]int32, len(g.steps)),
		machLeft: make([]int32, len(g.machines)),
		machines: make([]MachineResult, len(g.machines)),
		// Room for every running step: finishing never blocks.
		done: make(chan execDone, max(1, min(parallel, len(g.steps)))),
	}
	for i := range g.steps {
		s := &g.steps[i]
		r.steps[i] = StepResult{ID: s.ID, Action: s.Action}
		r.left[i] = int32(len(g.needs[i]) + len(g.after[i]))
		if r.left[i] == 0 {
			r.ready.push(int32(i))
		}
	}
	for m, name := range g.machines {
		r.machLeft[m] = int32(len(g.stepsOf[m]))
		r.machines[m].Machine = name
	}
	return r
}

func (r *execRun) loop() {
	ctxDone := r.ctx.Done()
	r.launch()
	for r.running > 0 {
		select {
		case d := <-r.done:
			r.finish(d)
		case <-ctxDone:
			ctxDone = nil
			r.stop(true)
		}
		r.launch()
	}
	// With an acyclic graph every step is final here; stop() is a no-op
	// unless something is left pending, which would be a bug.
	r.stop(false)
}

// launch starts ready steps while there is room. Ready steps start in
// the order they were given (a heap on the index): with steps listed
// machine by machine, a machine under way finishes before the next one
// starts, and runs are reproducible.
func (r *execRun) launch() {
	for !r.stopped && r.running < r.parallel && len(r.ready) > 0 {
		// Checked before every start, not only by the select in loop:
		// select picks among ready cases at random, and a step must not
		// start once ctx is done.
		if r.ctx.Err() != nil {
			r.stop(true)
			return
		}
		r.start(r.ready.pop())
	}
}

func (r *execRun) start(i int32) {
	s := &r.g.steps[i]
	now := time.Now()
	r.state[i] = stateRunning
	r.steps[i].Start = now
	r.running++
	m := r.g.machineOf[i]
	if r.machines[m].start.IsZero() {
		r.machines[m].start = now
	}
	r.emit(Event{Time: now, Machine: s.Machine, Step: s.ID, Action: s.Action, Kind: EventStarted})
	go r.runStep(i, s, r.logs[m], now)
}

// runStep runs on the step's own goroutine. It writes the step's log
// lines itself, keeping file writes off the coordinator.
func (r *execRun) runStep(i int32, s *Step, log *machineLog, start time.Time) {
	var out io.Writer = io.Discard
	var sw *stepWriter
	if log != nil {
		label := stepLabel(s.Machine, s.ID, s.Action)
		lines := make([]string, 0, 1+len(s.Commands))
		lines = append(lines, "started")
		for _, c := range s.Commands {
			lines = append(lines, "$ "+c)
		}
		log.line(start, label, lines...)
		sw = &stepWriter{log: log, label: label}
		out = sw
	}
	err := callStep(r.ctx, s.Run, out)
	end := time.Now()
	if sw != nil {
		sw.flush()
		if err == nil {
			log.line(end, sw.label, "ok "+formatDuration(end.Sub(start)))
		} else if degraded(err) {
			log.line(end, sw.label, "done "+formatDuration(end.Sub(start))+", but: "+err.Error())
		} else {
			log.line(end, sw.label, "failed "+formatDuration(end.Sub(start))+": "+err.Error())
		}
	}
	r.done <- execDone{i: i, err: err, end: end}
}

// callStep turns a panicking step into a failed one: one bad step must
// not take the other machines' deploys down with it.
func callStep(ctx context.Context, run func(context.Context, io.Writer) error, out io.Writer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(out, "panic: %v\n%s", p, debug.Stack())
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return run(ctx, out)
}

func (r *execRun) finish(d execDone) {
	r.running--
	// A step failing because ctx is done is interrupted, not broken: stop
	// first, so the steps after it are "not started" rather than skipped
	// whichever of the two the select saw first.
	if !r.stopped && r.ctx.Err() != nil {
		r.stop(true)
	}
	res := &r.steps[d.i]
	res.Duration = d.end.Sub(res.Start)
	if errors.Is(d.err, ErrUpToDate) {
		res.UpToDate = true
		r.final(d.i, EventSucceeded, d.end)
		r.unneedDependents(d.i)
		return
	}
	if degraded(d.err) {
		// Done, though not cleanly: the steps after it run.
		res.Err, res.Degraded = d.err, true
		r.final(d.i, EventSucceeded, d.end)
		r.release(d.i)
		return
	}
	if d.err == nil {
		r.final(d.i, EventSucceeded, d.end)
		r.release(d.i)
		return
	}
	res.Err = d.err
	res.Interrupted = r.ctx.Err() != nil
	r.final(d.i, EventFailed, d.end)
	r.skipDependents(d.i)
	if r.opts.FailFast {
		r.stop(false)
	}
}

// release counts step i, which succeeded or is not needed, as done for
// the steps that need it, and makes ready those it was the last need of.
func (r *execRun) release(i int32) {
	for _, j := range r.g.dependents[i] {
		if r.state[j] == statePending {
			if r.left[j]--; r.left[j] == 0 {
				r.ready.push(j)
			}
		}
	}
}

// unneedDependents ends, without running them, the pending steps of the
// same machine that need step i (directly or not), which found the
// machine up to date. Steps of other machines that need them are
// released as if they had succeeded: the machine is as they expect.
func (r *execRun) unneedDependents(upToDate int32) {
	m := r.g.machineOf[upToDate]
	cause := r.g.steps[upToDate].ID
	stack := []int32{upToDate}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, j := range r.g.dependents[i] {
			if r.state[j] != statePending {
				continue
			}
			if r.g.machineOf[j] != m {
				if r.left[j]--; r.left[j] == 0 {
					r.ready.push(j)
				}
				continue
			}
			r.steps[j].Cause = cause
			now := time.Now()
			if log := r.logs[m]; log != nil {
				s := &r.g.steps[j]
				log.line(now, stepLabel(s.Machine, s.ID, s.Action), "not needed: "+cause+" found the machine up to date")
			}
			r.final(j, EventUnneeded, now)
			stack = append(stack, j)
		}
	}
}

// skipDependents skips every pending step that needs failed, directly or
// not, naming failed as the cause.
func (r *execRun) skipDependents(failed int32) {
	cause := r.g.steps[failed].ID
	stack := slices.Clone(r.g.dependents[failed])
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if r.state[i] != statePending {
			continue
		}
		r.steps[i].Cause = cause
		now := time.Now()
		if log := r.logs[r.g.machineOf[i]]; log != nil {
			s := &r.g.steps[i]
			log.line(now, stepLabel(s.Machine, s.ID, s.Action), "skipped: needs "+cause+", which failed")
		}
		r.final(i, EventSkipped, now)
		stack = append(stack, r.g.dependents[i]...)
	}
}

// stop ends starting steps: every pending step is not started.
func (r *execRun) stop(byCtx bool) {
	if !r.stopped {
		r.stopped = true
		r.stopCtx = byCtx
	}
	r.ready = r.ready[:0]
	now := time.Now()
	for i := range r.state {
		if r.state[i] != statePending {
			continue
		}
		if log := r.logs[r.g.machineOf[i]]; log != nil {
			s := &r.g.steps[i]
			log.line(now, stepLabel(s.Machine, s.ID, s.Action), "not started")
		}
		r.final(int32(i), EventNotStarted, now)
	}
}

// final records that step i ended in kind, and its machine's result once
// all of the machine's steps have ended.
func (r *execRun) final(i int32, kind EventKind, now time.Time) {
	r.state[i] = kind
	// The steps that come after this one (Step.After) only waited for
	// it to end.
	for _, j := range r.g.followers[i] {
		if r.state[j] == statePending && !r.stopped {
			if r.left[j]--; r.left[j] == 0 {
				r.ready.push(j)
			}
		}
	}
	res := &r.steps[i]
	res.Kind = kind
	s := &r.g.steps[i]
	if r.opts.Events != nil {
		r.emit(Event{Time: now, Machine: s.Machine, Step: s.ID, Action: s.Action, Kind: kind,
			Cause: res.Cause, Err: res.Err, Duration: res.Duration})
	}
	m := r.g.machineOf[i]
	if end := res.Start.Add(res.Duration); (kind == EventSucceeded || kind == EventFailed) && end.After(r.machines[m].end) {
		r.machines[m].end = end
	}
	if r.machLeft[m]--; r.machLeft[m] > 0 {
		return
	}
	mr := &r.machines[m]
	r.conclude(mr, r.g.stepsOf[m])
	r.emit(Event{Time: now, Machine: mr.Machine, Step: mr.FailedStep, Kind: EventDone,
		Outcome: mr.Outcome, Err: mr.Err, Duration: mr.Duration})
}

// conclude sums up a machine whose steps have all ended.
func (r *execRun) conclude(mr *MachineResult, steps []int32) {
	mr.Steps = make([]StepResult, len(steps))
	var failed, interrupted, skipped, degraded *StepResult
	succeeded, upToDate := 0, false
	for k, i := range steps {
		mr.Steps[k] = r.steps[i]
		s := &mr.Steps[k]
		switch s.Kind {
		case EventSucceeded, EventUnneeded:
			succeeded++
			upToDate = upToDate || s.UpToDate
			if s.Degraded && degraded == nil {
				degraded = s
			}
		case EventFailed:
			if s.Interrupted {
				if interrupted == nil {
					interrupted = s
				}
			} else if failed == nil {
				failed = s
			}
		case EventSkipped:
			if skipped == nil {
				skipped = s
			}
		}
	}
	if !mr.start.IsZero() {
		mr.Duration = mr.end.Sub(mr.start)
	}
	switch {
	case failed != nil:
		mr.Outcome, mr.FailedStep, mr.Err = OutcomeFailed, failed.ID, failed.Err
		var rb *RolledBackError
		if errors.As(failed.Err, &rb) {
			mr.Outcome = OutcomeRolledBack
		}
	case interrupted != nil:
		mr.Outcome, mr.FailedStep, mr.Err = OutcomeCancelled, interrupted.ID, interrupted.Err
	case succeeded == len(steps) && degraded != nil:
		mr.Outcome, mr.FailedStep, mr.Err = OutcomeDegraded, degraded.ID, degraded.Err
	case succeeded == len(steps) && upToDate:
		mr.Outcome = OutcomeUnchanged
	case succeeded == len(steps):
		mr.Outcome = OutcomeOK
	case skipped != nil:
		mr.Outcome, mr.FailedStep = OutcomeSkipped, skipped.Cause
		mr.Err = fmt.Errorf("%s needs %s, which failed", skipped.ID, skipped.Cause)
	case succeeded > 0:
		mr.Outcome = OutcomePartial
	default:
		mr.Outcome = OutcomeNotStarted
	}
}

func (r *execRun) emit(e Event) {
	if r.opts.Events != nil {
		r.opts.Events(e)
	}
}

func (r *execRun) summary() *Summary {
	return &Summary{Machines: r.machines, Cancelled: r.stopCtx}
}

// stepLabel names a step within its machine: "build" for
// "cinnabar/build".
func stepLabel(machine, id, action string) string {
	if rest, ok := strings.CutPrefix(id, machine+"/"); ok && rest != "" {
		return rest
	}
	if action != "" {
		return action
	}
	return id
}

// readyHeap is a min-heap of step indices (container/heap): ready steps
// start in the order they were given.
type readyHeap []int32

func (h readyHeap) Len() int           { return len(h) }
func (h readyHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h readyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)        { *h = append(*h, x.(int32)) }
func (h *readyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h *readyHeap) push(i int32) { heap.Push(h, i) }
func (h *readyHeap) pop() int32   { return heap.Pop(h).(int32) }

// openMachineLogs creates the run's folder and one log per machine.
func openMachineLogs(dir string, machines []string) ([]*machineLog, error) {
	logs := make([]*machineLog, len(machines))
	if dir == "" {
		return logs, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("deploy logs: %w", err)
	}
	for i, m := range machines {
		f, err := os.OpenFile(filepath.Join(dir, m+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			closeMachineLogs(logs)
			return nil, fmt.Errorf("deploy logs: %w", err)
		}
		logs[i] = &machineLog{f: f}
	}
	return logs, nil
}

func closeMachineLogs(logs []*machineLog) {
	for _, l := range logs {
		if l != nil {
			l.close()
		}
	}
}

// degraded reports whether a step's error leaves it done, though not
// cleanly: an activation that switched but left units failed
// (UnitsFailedError itself; a later step's error that mentions it, such
// as a rollback's, is a failure).
func degraded(err error) bool {
	_, ok := err.(*UnitsFailedError)
	return ok
}
