package engine

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/fleet-nix/fleet/builtins"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// FileOptions returns the strict dialect fleet files are compiled with, for
// programs that run Starlark of their own next to fleet files (fleet test)
// and must accept exactly what a fleet accepts.
func FileOptions() *syntax.FileOptions {
	o := fileOptions
	return &o
}

// Libraries loads .star libraries for Starlark that is not a fleet file:
// the _test.star files of fleet test. Their load() statements must mean what
// they mean in a fleet (the same labels, root confinement, @stdlib and @dep
// resolution, strict dialect, once-per-label caching, cycle reports), so
// rather than reimplement the loader they borrow the engine's.
//
// Libraries are evaluated as in a fleet: with the builtins predeclared and a
// recorder attached, so a library declaring at its top level gets the same
// error it gets in a fleet. Nothing they record is ever built. The caller
// may predeclare more names (fleet test's assert), so that helper libraries
// of its programs can use them.
type Libraries struct {
	e    *evaluator
	stop func() bool
}

// NewLibraries returns a loader for the fleet rooted at opts.Root (which
// must be set). Of opts, Root, MaxSteps (shared by every library loaded),
// Stderr, Stdlib, Deps and Files apply; extra names are predeclared in
// every library, over the builtins. Cancelling ctx cancels a load in
// progress; Close releases the context.
func NewLibraries(ctx context.Context, opts Options, extra starlark.StringDict) (*Libraries, error) {
	if opts.Root == "" {
		return nil, fmt.Errorf("engine.NewLibraries: no root")
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	env := builtins.Predeclared()
	if len(extra) > 0 {
		env = starlark.StringDict{}
		for k, v := range builtins.Predeclared() {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
	}
	e, err := newEvaluator(ctx, root, opts, env)
	if err != nil {
		return nil, err
	}
	l := &Libraries{e: e}
	ctx, stopGuard := e.memory.Context(ctx)
	stop := context.AfterFunc(ctx, func() { e.cancelAll(context.Cause(ctx)) })
	l.stop = func() bool {
		stopGuard()
		return stop()
	}
	return l, nil
}

// Close stops watching the context.
func (l *Libraries) Close() { l.stop() }

// Load is a starlark.Thread's Load: path is resolved against thread.Name,
// which must be the label of the file doing the load ("lib/x_test.star").
// Errors are positioned (*model.Error). Loads are sequential, as in a
// fleet: a Libraries is not for concurrent use.
func (l *Libraries) Load(thread *starlark.Thread, path string) (starlark.StringDict, error) {
	return l.e.load(thread, path)
}

// Label returns the label of path as written in a load() of the file
// labelled from, with the same rules as load: relative to from, //path from
// the root, never outside it.
func Label(from, path string) (string, error) { return resolveLabel(from, path) }

// Error converts an error of Starlark code run next to these libraries
// (a syntax error, a refused dialect feature, a failed load) into fleet's
// positioned errors, as a fleet evaluation reports them.
func (l *Libraries) Error(err error) error { return l.e.convert(err) }
