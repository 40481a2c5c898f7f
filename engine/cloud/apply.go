package cloud

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ApplyOptions adjust an apply.
type ApplyOptions struct {
	// Parallel bounds the changes in flight (default 10).
	Parallel int
	// Progress, if set, is called as each change starts (Err and Done
	// zero) and when it ends. It may be called from several goroutines.
	Progress func(Event)
}

// Event reports a change starting or ending.
type Event struct {
	Change   *Change
	Done     bool
	Err      error
	Result   *Resource // the resource as the cloud has it after the change
	Duration time.Duration
}

// Outcome is how one change ended.
type Outcome struct {
	Change *Change
	Err    error
	Result *Resource
}

// Result is the outcome of every change an apply attempted.
type Result struct {
	Outcomes []Outcome
}

// Failed returns the changes that failed.
func (r *Result) Failed() []Outcome {
	var out []Outcome
	for _, o := range r.Outcomes {
		if o.Err != nil {
			out = append(out, o)
		}
	}
	return out
}

// Apply carries out a plan's mutating changes. Fleet-wide resources (ssh
// keys, firewalls) are created first, then the machines' hosts change in
// parallel, then fleet-wide resources no longer needed are deleted. A
// failed change does not stop the others; it is in the result. When ctx
// ends, no further change starts; those in flight end as the cloud lets
// them, and the next plan sees whatever exists, by its labels.
func Apply(ctx context.Context, plan *Plan, providers []Provider, opts ApplyOptions) *Result {
	byName := map[string]Provider{}
	for _, p := range providers {
		byName[p.Name()] = p
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 10
	}
	var first, hosts, last []*Change
	for _, c := range plan.Changes {
		switch {
		case !c.Mutating():
		case c.Machine != "":
			hosts = append(hosts, c)
		case c.Action == Delete:
			last = append(last, c)
		default:
			first = append(first, c)
		}
	}
	res := &Result{}
	var mu sync.Mutex
	run := func(phase []*Change) {
		sem := make(chan struct{}, parallel)
		var wg sync.WaitGroup
		for _, c := range phase {
			select {
			case <-ctx.Done():
				mu.Lock()
				res.Outcomes = append(res.Outcomes, Outcome{Change: c, Err: fmt.Errorf("not started: %w", context.Cause(ctx))})
				mu.Unlock()
				continue
			case sem <- struct{}{}:
			}
			wg.Go(func() {
				defer func() { <-sem }()
				if opts.Progress != nil {
					opts.Progress(Event{Change: c})
				}
				start := time.Now()
				r, err := applyOne(ctx, byName[c.Provider], c)
				if opts.Progress != nil {
					opts.Progress(Event{Change: c, Done: true, Err: err, Result: r, Duration: time.Since(start)})
				}
				mu.Lock()
				res.Outcomes = append(res.Outcomes, Outcome{Change: c, Err: err, Result: r})
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	run(first)
	run(hosts)
	run(last)
	return res
}

// ApplyChange carries out one mutating change with its provider (nil:
// an error saying so), with the provider's retries: what Apply does for
// each change, for callers that schedule changes themselves (fleet
// apply's one graph, engine/apply).
func ApplyChange(ctx context.Context, p Provider, c *Change) (*Resource, error) {
	return applyOne(ctx, p, c)
}

func applyOne(ctx context.Context, p Provider, c *Change) (*Resource, error) {
	if p == nil {
		return nil, fmt.Errorf("no provider %q", c.Provider)
	}
	if err := p.Credentials(); err != nil {
		return nil, err
	}
	switch c.Action {
	case Create:
		return p.Create(ctx, c.Want)
	case Update:
		return p.Update(ctx, c.Want, c.Have, c.Fields)
	case Delete:
		return nil, p.Delete(ctx, c.Have)
	case Replace:
		if err := p.Delete(ctx, c.Have); err != nil {
			return nil, fmt.Errorf("replace: deleting the old %s: %w", c.Resource, err)
		}
		r, err := p.Create(ctx, c.Want)
		if err != nil {
			return nil, fmt.Errorf("replace: the old %s is deleted, creating the new one failed (the next apply creates it): %w", c.Resource, err)
		}
		return r, nil
	}
	return nil, errors.New("nothing to do")
}
