package startest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Options configure a run.
type Options struct {
	// Root, if set, is the fleet root of every test file (--root);
	// otherwise each file's is found by RootOf.
	Root string
	// Run selects tests by function name (nil: all).
	Run *regexp.Regexp
	// MaxSteps is the step budget of each test, of a file's top level and
	// the libraries it loads, and the most any fleet.eval may use
	// (0: engine.DefaultMaxSteps).
	MaxSteps uint64
	// MaxMemory bounds the heap while tests run (0:
	// engine.DefaultMaxMemory).
	MaxMemory uint64
	// Deps returns the resolver of @name// loads for a fleet root (nil, or
	// a nil resolver: such loads are "unknown dependency" errors).
	Deps func(root string) (func(name string) (string, error), error)
	// Stdlib replaces the embedded @stdlib tree (tests).
	Stdlib fs.FS

	// extra are more predeclared names, for this package's tests (a
	// builtin that panics, to check a panic fails only its test).
	extra starlark.StringDict
}

// FileResult is the outcome of one test file.
type FileResult struct {
	// Path is the file as discovered; Label its root-relative label, which
	// positions use.
	Path  string
	Label string
	// Root is the fleet root the file ran against (absolute).
	Root string
	// Err is set when the file could not be run (a syntax error, a failed
	// load, an error at its top level). It counts as one failure.
	Err error
	// Output is what print() wrote at the file's top level.
	Output string
	// Tests are the selected tests, in source order.
	Tests []*Result
}

// Result is the outcome of one test.
type Result struct {
	Name string
	Pos  model.Pos // the def
	// Failures are the assertions that did not hold, in order, then the
	// error that stopped the test, if one did.
	Failures []*model.Error
	// Output is what print() wrote, each line prefixed with file:line.
	Output   string
	Duration time.Duration
}

// Passed reports whether the test passed.
func (r *Result) Passed() bool { return len(r.Failures) == 0 }

// Counts returns how many tests passed and failed (a file that could not
// be run is one failure).
func (f *FileResult) Counts() (passed, failed int) {
	if f.Err != nil {
		failed++
	}
	for _, t := range f.Tests {
		if t.Passed() {
			passed++
		} else {
			failed++
		}
	}
	return passed, failed
}

// Thread locals: the file being run (every thread) and the test (test
// threads only).
const (
	localFile = "fleet.startest.file"
	localTest = "fleet.startest.test"
)

// fileRun is the state shared by the threads of one test file.
type fileRun struct {
	ctx      context.Context
	opts     Options
	root     string
	label    string
	maxSteps uint64
	memory   *engine.MemoryGuard
	libs     *engine.Libraries
	// predeclared are the names test files see.
	predeclared starlark.StringDict
	deps        func(string) (string, error)
	output      bytes.Buffer // top-level print() output
}

// testState is what assert and fleet record about the running test.
type testState struct {
	failures []*model.Error
	output   bytes.Buffer
	shown    map[string]bool // long strings a failure already showed
}

// RunFile runs the tests of one file. Cancelling ctx stops the test
// running (as a failure) and skips the rest.
func RunFile(ctx context.Context, file string, opts Options) *FileResult {
	res := &FileResult{Path: file, Label: filepath.ToSlash(file)}
	fr := &fileRun{opts: opts, maxSteps: opts.MaxSteps, memory: engine.NewMemoryGuard(opts.MaxMemory)}
	// Every thread of the file stops when this context is done, so the
	// guard reaches them all.
	ctx, stopGuard := fr.memory.Context(ctx)
	defer stopGuard()
	fr.ctx = ctx
	if fr.maxSteps == 0 {
		fr.maxSteps = engine.DefaultMaxSteps
	}
	defer func() { res.Output = fr.output.String() }()

	root := opts.Root
	if root == "" {
		var err error
		if root, err = RootOf(file); err != nil {
			res.Err = err
			return res
		}
	}
	root, err := filepath.Abs(root)
	if err != nil {
		res.Err = err
		return res
	}
	fr.root, res.Root = root, root
	if fr.label, err = labelOf(root, file); err != nil {
		res.Err = err
		return res
	}
	res.Label = fr.label
	if opts.Deps != nil {
		if fr.deps, err = opts.Deps(root); err != nil {
			res.Err = err
			return res
		}
	}
	src, err := os.ReadFile(file)
	if err != nil {
		res.Err = err
		return res
	}
	// Libraries loaded by tests see assert and the fixture too, so that
	// helpers shared by test files can use them.
	fr.predeclared = predeclared(opts.extra)
	fr.libs, err = engine.NewLibraries(ctx, engine.Options{
		Root: root, MaxSteps: fr.maxSteps, MaxMemory: opts.MaxMemory, Stderr: &fr.output, Stdlib: opts.Stdlib, Deps: fr.deps,
	}, starlark.StringDict{"assert": fr.predeclared["assert"], "fleet": fr.predeclared["fleet"]})
	if err != nil {
		res.Err = err
		return res
	}
	defer fr.libs.Close()

	globals, err := fr.exec(src)
	if err != nil {
		res.Err = err
		return res
	}
	for _, t := range testsOf(globals, fr.label) {
		if opts.Run != nil && !opts.Run.MatchString(t.name) {
			continue
		}
		if ctx.Err() != nil {
			res.Err = fmt.Errorf("%s: cancelled before %s: %v", fr.label, t.name, context.Cause(ctx))
			break
		}
		res.Tests = append(res.Tests, fr.runTest(t.name, t.fn))
	}
	return res
}

// predeclared is what a test file sees: the builtins (values such as
// nix.force are useful in expectations) with assert and the fleet fixture,
// which takes the place of the fleet() declaration.
func predeclared(extra starlark.StringDict) starlark.StringDict {
	env := starlark.StringDict{}
	for k, v := range builtins.Predeclared() {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	env["assert"] = assertModule()
	env["fleet"] = fleetModule()
	env.Freeze()
	return env
}

// exec runs the test file's top level and returns its frozen globals.
func (fr *fileRun) exec(src []byte) (starlark.StringDict, error) {
	thread := fr.thread(nil)
	stop := context.AfterFunc(fr.ctx, func() { thread.Cancel(context.Cause(fr.ctx).Error()) })
	defer stop()
	globals, err := starlark.ExecFileOptions(engine.FileOptions(), thread, fr.label, src, fr.predeclared)
	if err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) && !isLoadError(ee) {
			// Positioned in the file; keep fixture messages intact.
			return nil, fr.evalError(ee, "the file")
		}
		return nil, fr.libs.Error(err)
	}
	globals.Freeze()
	return globals, nil
}

// isLoadError reports a failed load(), whose cause already carries the
// innermost position (the engine reports it as such).
func isLoadError(ee *starlark.EvalError) bool {
	var me *model.Error
	var mes model.Errors
	return strings.HasPrefix(ee.Msg, "cannot load ") && (errors.As(ee, &me) || errors.As(ee, &mes))
}

// thread returns a new thread of the file; st is nil at the top level.
func (fr *fileRun) thread(st *testState) *starlark.Thread {
	out := &fr.output
	if st != nil {
		out = &st.output
	}
	thread := &starlark.Thread{
		Name: fr.label,
		Load: fr.libs.Load,
		Print: func(thread *starlark.Thread, msg string) {
			p := thread.CallFrame(1).Pos
			fmt.Fprintf(out, "%s:%d: %s\n", p.Filename(), p.Line, msg)
		},
	}
	thread.SetLocal(localFile, fr)
	if st != nil {
		thread.SetLocal(localTest, st)
	}
	thread.SetMaxExecutionSteps(fr.maxSteps)
	return thread
}

// test is one test function.
type test struct {
	name string
	fn   *starlark.Function
}

// testsOf returns the test functions defined in the file labelled label,
// in source order (ties, an alias test_b = test_a, by name).
func testsOf(globals starlark.StringDict, label string) []test {
	var out []test
	for name, v := range globals {
		fn, ok := v.(*starlark.Function)
		if !ok || !strings.HasPrefix(name, "test_") || fn.Position().Filename() != label {
			continue
		}
		out = append(out, test{name, fn})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].fn.Position(), out[j].fn.Position()
		if a.Line != b.Line || a.Col != b.Col {
			return a.Line < b.Line || (a.Line == b.Line && a.Col < b.Col)
		}
		return out[i].name < out[j].name
	})
	return out
}

// runTest runs one test in a thread of its own. Whatever happens in it
// (a failed assert, an error, a panic, the step limit) ends up in its
// Result and nowhere else.
func (fr *fileRun) runTest(name string, fn *starlark.Function) *Result {
	p := fn.Position()
	res := &Result{Name: name, Pos: posOf(p)}
	st := &testState{}
	thread := fr.thread(st)
	stop := context.AfterFunc(fr.ctx, func() { thread.Cancel(context.Cause(fr.ctx).Error()) })
	start := time.Now()
	func() {
		defer func() {
			if r := recover(); r != nil {
				// The Starlark stack is unwound by now: the def is
				// the best position left.
				st.failures = append(st.failures, &model.Error{Pos: res.Pos,
					Msg: fmt.Sprintf("panic: %v (a bug in fleet: please report it)\n%s", r, panicTrace())})
			}
		}()
		if _, err := starlark.Call(thread, fn, nil, nil); err != nil {
			var ee *starlark.EvalError
			if errors.As(err, &ee) {
				st.failures = append(st.failures, fr.evalError(ee, "the test"))
			} else {
				st.failures = append(st.failures, &model.Error{Pos: res.Pos, Msg: err.Error()})
			}
		}
	}()
	res.Duration = time.Since(start)
	stop()
	res.Failures = st.failures
	res.Output = st.output.String()
	return res
}

// panicTrace is the part of the Go stack a bug report needs: from the
// panic down, a few frames deep, indented.
func panicTrace() string {
	lines := strings.Split(strings.TrimSpace(string(debug.Stack())), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") {
			lines = lines[i+2:] // the frame that panicked comes next
			break
		}
	}
	if len(lines) > 12 {
		lines = append(lines[:12], "...")
	}
	return "\t" + strings.Join(lines, "\n\t")
}

// evalError positions a Starlark error at the innermost Starlark frame,
// with the calls that led there as notes, outermost first. Unlike a fleet
// evaluation it keeps the message whole: an uncaught fleet.eval error
// reads "file_test.star:12:20: fleet.eval: <eval>:3:1: ...", naming both the
// test line and the snippet line.
func (fr *fileRun) evalError(ee *starlark.EvalError, what string) *model.Error {
	msg := ee.Msg
	switch {
	case strings.Contains(msg, "too many steps"):
		msg = fmt.Sprintf("%s exceeded the step limit of %d steps: look for a runaway loop or comprehension, or raise --max-steps", what, fr.maxSteps)
	case engine.IsMemoryLimit(msg):
		msg = fr.memory.MemoryLimitMessage(what)
	case strings.Contains(msg, "Starlark computation cancelled"):
		msg = "cancelled: " + strings.TrimPrefix(msg, "Starlark computation cancelled: ")
	case strings.Contains(msg, "called outside a fleet evaluation"):
		msg += " (tests declare inside fleet.eval(...))"
	}
	return engine.PositionedError(msg, ee.CallStack)
}

// snippetLabel is the label fleet.eval gives its source: in the test
// file's folder, so that relative loads and paths resolve there, and named
// like no fleet file (it shadows a file on disk for that evaluation only).
func (fr *fileRun) snippetLabel() string {
	dir := path.Dir(fr.label)
	if dir == "." {
		return "<eval>"
	}
	return dir + "/<eval>"
}

// writer returns where a thread's print() output (and that of the fleets
// it evaluates) goes.
func writerOf(thread *starlark.Thread) io.Writer {
	if st, ok := thread.Local(localTest).(*testState); ok {
		return &st.output
	}
	if fr, ok := thread.Local(localFile).(*fileRun); ok {
		return &fr.output
	}
	return io.Discard
}

func posOf(p syntax.Position) model.Pos {
	return model.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
}
