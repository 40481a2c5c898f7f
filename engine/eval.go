package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/stdlib"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// DefaultMaxSteps bounds a run's Starlark computation. A 10,000-machine
// fleet takes a few million steps; the limit is there to stop mistakes
// (an endless comprehension), not real fleets.
const DefaultMaxSteps = 100_000_000

// Options configure one evaluation.
type Options struct {
	// Root is the fleet root; loads and paths may not leave it. Default:
	// the directory of the entry file.
	Root string
	// MaxSteps is the step budget of the whole run (0: DefaultMaxSteps).
	MaxSteps uint64
	// MaxMemory bounds the heap during the run, in bytes (0:
	// DefaultMaxMemory). See MemoryGuard.
	MaxMemory uint64
	// Stderr receives print() output, prefixed with file:line (default os.Stderr).
	Stderr io.Writer
	// Stdlib replaces the embedded @stdlib tree (tests).
	Stdlib fs.FS
	// Deps resolves a pinned dependency: the local directory holding the
	// files of @name (a verified cache entry or an override). Nil: every
	// @name// load is an "unknown dependency" error.
	Deps func(name string) (dir string, err error)
	// Files are in-memory files by label ("tests/x.star"); they take
	// precedence over the disk (fleet test's snippets, the REPL).
	Files map[string][]byte
	// Entry, if set, receives the entry file's frozen globals after it
	// ran (the REPL puts them in scope).
	Entry func(globals starlark.StringDict)
}

// fileOptions are the strict dialect every fleet file is compiled with.
var fileOptions = syntax.FileOptions{}

// Eval evaluates the fleet whose entry file is file and returns the
// checked model.
func Eval(ctx context.Context, file string, opts Options) (*model.Fleet, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	root := opts.Root
	if root == "" {
		root = filepath.Dir(abs)
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%s is outside the fleet root %s", file, root)
	}
	e, err := newEvaluator(ctx, root, opts, builtins.Predeclared())
	if err != nil {
		return nil, err
	}
	ctx, stopGuard := e.memory.Context(ctx)
	defer stopGuard()
	stop := context.AfterFunc(ctx, func() { e.cancelAll(context.Cause(ctx)) })
	defer stop()

	entry := filepath.ToSlash(rel)
	if model.NeedsEscape(entry) {
		return nil, labelError(entry)
	}
	e.included[entry] = model.Pos{}
	globals, err := e.exec(entry, builtins.FleetModule, nil)
	if err == nil && (Exceeded(ctx) || e.memory.Over()) {
		// Crossed by the last statement, with no step left to stop.
		err = &model.Error{Pos: model.Pos{File: entry}, Msg: e.memory.MemoryLimitMessage("evaluation")}
	}
	if err != nil {
		return nil, err
	}
	if opts.Entry != nil {
		opts.Entry(globals)
	}
	f, err := e.rec.Build(entry)
	if err != nil {
		return nil, err
	}
	f.Root = root
	f.Deps = e.depDirs
	return f, nil
}

// newEvaluator is the state of a run over the fleet rooted at root (an
// absolute path), with env predeclared in every file (plus include).
func newEvaluator(ctx context.Context, root string, opts Options, env starlark.StringDict) (*evaluator, error) {
	e := &evaluator{
		ctx:      ctx,
		root:     root,
		maxSteps: opts.MaxSteps,
		memory:   NewMemoryGuard(opts.MaxMemory),
		stderr:   opts.Stderr,
		stdlib:   opts.Stdlib,
		deps:     opts.Deps,
		files:    opts.Files,
		modules:  map[string]*module{},
		included: map[string]model.Pos{},
	}
	if e.maxSteps == 0 {
		e.maxSteps = DefaultMaxSteps
	}
	if e.stderr == nil {
		e.stderr = os.Stderr
	}
	if e.stdlib == nil {
		e.stdlib = stdlib.FS
	}
	var err error
	if e.realRoot, err = filepath.EvalSymlinks(root); err != nil {
		return nil, err
	}
	e.rec = builtins.NewRecorder(e.resolveFilePath)
	e.predeclared = withInclude(env, e.include)
	return e, nil
}

// evaluator is the state of one run. Evaluation is sequential (a load or
// include runs to completion before its caller continues), so the stack of
// active modules is a plain slice; only cancellation comes from another
// goroutine, hence the mutex.
type evaluator struct {
	ctx         context.Context
	root        string
	realRoot    string
	maxSteps    uint64
	memory      *MemoryGuard
	stderr      io.Writer
	stdlib      fs.FS
	deps        func(name string) (string, error)
	depDirs     map[string]string // dependencies whose files the fleet names
	files       map[string][]byte
	rec         *builtins.Recorder
	predeclared starlark.StringDict

	modules  map[string]*module   // loaded libraries by label
	included map[string]model.Pos // included fleet files by label -> include site
	stack    []frame              // modules being evaluated, outermost first
	spent    uint64               // steps of finished threads

	mu      sync.Mutex
	cancel  error
	threads []*starlark.Thread
}

// module is a loaded library: its frozen globals or its error.
type module struct {
	globals starlark.StringDict
	err     error
}

// frame is one module under evaluation and the statement that started it.
type frame struct {
	label  string
	thread *starlark.Thread
	via    model.Pos // position of the load/include that started it
	kind   builtins.ModuleKind
}

// exec evaluates one file in a new thread. via is the load or include
// statement responsible (nil for the entry file).
func (e *evaluator) exec(label string, kind builtins.ModuleKind, via *model.Pos) (starlark.StringDict, error) {
	src, err := e.read(label)
	if err != nil {
		if via != nil {
			return nil, &model.Error{Pos: *via, Msg: err.Error()}
		}
		return nil, err
	}
	thread := &starlark.Thread{
		Name:  label,
		Load:  e.load,
		Print: e.print,
	}
	builtins.Attach(thread, e.rec, kind)
	if err := e.register(thread); err != nil {
		return nil, err
	}
	thread.SetMaxExecutionSteps(e.budget())
	f := frame{label: label, thread: thread, kind: kind}
	if via != nil {
		f.via = *via
	}
	e.stack = append(e.stack, f)
	globals, err := starlark.ExecFileOptions(&fileOptions, thread, label, src, e.predeclared)
	e.stack = e.stack[:len(e.stack)-1]
	e.spent += thread.ExecutionSteps()
	e.unregister(thread)
	if len(e.stack) > 0 {
		parent := e.stack[len(e.stack)-1].thread
		parent.SetMaxExecutionSteps(parent.ExecutionSteps() + e.budget())
	}
	if err != nil {
		return nil, e.convert(err)
	}
	globals.Freeze()
	return globals, nil
}

// budget is what is left of the step limit for the next stretch of work.
func (e *evaluator) budget() uint64 {
	used := e.spent
	for _, f := range e.stack {
		used += f.thread.ExecutionSteps()
	}
	if used >= e.maxSteps {
		return 1 // zero would mean "no limit"
	}
	return e.maxSteps - used
}

func (e *evaluator) register(t *starlark.Thread) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cancel != nil {
		if errors.Is(e.cancel, errMemoryLimit) {
			return errors.New(e.memory.MemoryLimitMessage("evaluation"))
		}
		return fmt.Errorf("evaluation cancelled: %v", e.cancel)
	}
	e.threads = append(e.threads, t)
	return nil
}

func (e *evaluator) unregister(t *starlark.Thread) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.threads {
		if x == t {
			e.threads = append(e.threads[:i], e.threads[i+1:]...)
			break
		}
	}
}

func (e *evaluator) cancelAll(cause error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if cause == nil {
		cause = context.Canceled
	}
	e.cancel = cause
	for _, t := range e.threads {
		t.Cancel(cause.Error())
	}
}

// read returns the source of a labelled file.
func (e *evaluator) read(label string) ([]byte, error) {
	if strings.HasPrefix(label, stdlibPrefix) {
		b, err := fs.ReadFile(e.stdlib, strings.TrimPrefix(label, stdlibPrefix))
		if err != nil {
			return nil, fmt.Errorf("%s: no such file in the standard library", label)
		}
		return b, nil
	}
	if b, ok := e.files[label]; ok {
		return b, nil
	}
	if repo, rest, ok := splitRepo(label); ok {
		if e.deps == nil {
			return nil, fmt.Errorf("unknown dependency %q in %s: declare it in fleet.deps next to the fleet file (dep(%q, git = \"...\", ref = \"...\")) and run fleet deps lock", "@"+repo, label, repo)
		}
		dir, err := e.deps(repo)
		if err != nil {
			return nil, err
		}
		p, err := insidePath(dir, rest, label)
		if err != nil {
			return nil, err
		}
		return readLabelled(p, label)
	}
	p, err := e.localPath(label)
	if err != nil {
		return nil, err
	}
	return readLabelled(p, label)
}

// localPath maps a local label to a file path, refusing symlinks that
// lead outside the root.
func (e *evaluator) localPath(label string) (string, error) {
	p := filepath.Join(e.root, filepath.FromSlash(label))
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: no such file", label)
		}
		return "", err
	}
	if !within(e.realRoot, real) {
		return "", fmt.Errorf("%s: a symlink leads outside the fleet root", label)
	}
	return real, nil
}

// insidePath maps rest (a cleaned slash path) inside the directory dir
// of a dependency, refusing symlinks that lead out of it: a dependency's
// files cannot reach the fleet's or another dependency's.
func insidePath(dir, rest, label string) (string, error) {
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("%s: %w", label, err)
	}
	real, err := filepath.EvalSymlinks(filepath.Join(realDir, filepath.FromSlash(rest)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%s: no such file", label)
		}
		return "", err
	}
	if real == realDir || !within(realDir, real) {
		return "", fmt.Errorf("%s: a symlink leads outside the dependency", label)
	}
	return real, nil
}

// within reports whether path p is dir or inside it. Both are clean
// absolute paths; dir may be the file system's root, which ends in a
// separator.
func within(dir, p string) bool {
	if p == dir {
		return true
	}
	if !strings.HasSuffix(dir, string(filepath.Separator)) {
		dir += string(filepath.Separator)
	}
	return strings.HasPrefix(p, dir)
}

// readLabelled reads the file of a label. Only regular files are read: a
// FIFO would block the run and /dev/zero would never end.
func readLabelled(p, label string) ([]byte, error) {
	if err := regular(p, label); err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// regular returns an error unless p, the file of label, is a regular
// file (or a symbolic link to one).
func regular(p, label string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such file", label)
	}
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		what := "a directory"
		if !fi.IsDir() {
			what = fmt.Sprintf("a %s", fileKind(fi.Mode()))
		}
		return fmt.Errorf("%s: not a regular file (%s); fleet reads only regular files", label, what)
	}
	return nil
}

// fileKind names the kind of a file that is not regular.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// load implements load(): resolve, detect cycles, evaluate once, cache.
func (e *evaluator) load(thread *starlark.Thread, p string) (starlark.StringDict, error) {
	from := thread.Name
	pos := posOf(thread.CallFrame(0).Pos)
	label, err := resolveLabel(from, p)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(label, ".star") {
		return nil, fmt.Errorf("%s: only .star files can be loaded", label)
	}
	if m, ok := e.modules[label]; ok {
		if m == nil {
			return nil, e.cycle(label, pos)
		}
		return m.globals, m.err
	}
	if site, ok := e.included[label]; ok {
		return nil, fmt.Errorf("%s is a fleet file (included at %s): a file is either included or loaded as a library, not both", label, site)
	}
	e.modules[label] = nil // loading: seeing it again is a cycle
	globals, err := e.exec(label, builtins.LibraryModule, &pos)
	e.modules[label] = &module{globals: globals, err: err}
	return globals, err
}

// cycle reports a load cycle with every load statement of the chain.
func (e *evaluator) cycle(label string, pos model.Pos) error {
	start := 0
	for i, f := range e.stack {
		if f.label == label {
			start = i
		}
	}
	chain := []string{}
	var notes []model.Note
	for _, f := range e.stack[start:] {
		chain = append(chain, f.label)
		if f.via.File != "" {
			notes = append(notes, model.Note{Pos: f.via, Msg: "loads " + f.label})
		}
	}
	chain = append(chain, label)
	notes = append(notes, model.Note{Pos: pos, Msg: "loads " + label + ", closing the cycle"})
	return &model.Error{Pos: pos, Msg: "load cycle: " + strings.Join(chain, " -> "), Notes: notes}
}

func (e *evaluator) print(thread *starlark.Thread, msg string) {
	p := thread.CallFrame(1).Pos
	fmt.Fprintf(e.stderr, "%s:%d: %s\n", p.Filename(), p.Line, msg)
}

// resolveFilePath resolves files named by modules =, overlay.package and
// nix.path: relative to the declaring file, existing, and inside its tree:
// the fleet root for fleet files, the dependency for a pinned library's
// files (a team's feature may come with its hand-written module). A
// dependency whose files are named is recorded, so the lowering can read
// them (model.Fleet.Deps).
func (e *evaluator) resolveFilePath(from, p string) (string, error) {
	if strings.HasPrefix(from, stdlibPrefix) || strings.HasPrefix(p, stdlibPrefix) {
		return "", fmt.Errorf("%q: the standard library has no files to name; declare the module in the fleet", p)
	}
	label, err := resolveLabel(from, p)
	if err != nil {
		return "", err
	}
	if repo, rest, ok := splitRepo(label); ok {
		if e.deps == nil {
			return "", fmt.Errorf("unknown dependency %q in %q: declare it in fleet.deps and run fleet deps lock", "@"+repo, p)
		}
		dir, err := e.deps(repo)
		if err != nil {
			return "", err
		}
		real, err := insidePath(dir, rest, label)
		if err != nil {
			return "", err
		}
		// fleet nix copies the file into the tree: refuse now, at the
		// call, what it could not copy then.
		if err := regular(real, label); err != nil {
			return "", err
		}
		if e.depDirs == nil {
			e.depDirs = map[string]string{}
		}
		e.depDirs[repo] = dir
		return label, nil
	}
	real, err := e.localPath(label)
	if err != nil {
		return "", err
	}
	if err := regular(real, label); err != nil {
		return "", err
	}
	return label, nil
}

func posOf(p syntax.Position) model.Pos {
	return model.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
}
