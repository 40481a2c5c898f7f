// Package repl is fleet's interactive Starlark session (fleet repl): the
// fleet file evaluated once, its globals in scope, and helpers to look at
// what it produced — machines(), features(), show(), nix(), deps(),
// rdeps(), plan(), reload().
//
// # Design
//
// The fleet file is evaluated by the engine exactly as fleet run does
// (same loader, strict dialect, step budget); engine.Options.Entry hands
// over the entry file's frozen globals. A Session keeps that evaluation (a
// state: model, graph, globals) and one global dictionary for the
// session, made of the fleet builtins, the fleet file's globals, the
// helpers (which win over a fleet global of the same name, with a note),
// and whatever the user binds; user bindings survive reload().
//
// The model is seen through read-only views: machines() returns machine
// values (<machine cinnabar x86_64-linux nixos>) whose attributes are the
// model's fields (name, system, kind, tags, features, users, host,
// target, secrets ...), features() and secrets() likewise; they compare
// and hash by kind and name. Declaring is for fleet files: machine(...)
// in the REPL fails saying to edit the file and reload(), and load() is
// refused the same way. A fleet that fails to evaluate when the session
// starts ends it (exit code 1); a reload() that fails keeps the previous
// evaluation.
//
// Input is cut into chunks the way go.starlark.net/repl does, but by our
// own loop: lines accumulate while the parser reports that the input ends
// too early (an open bracket, a string, a block), and a compound statement
// (def, if, for) ends at a blank line on a terminal or, when reading a
// script, at the first line that is not indented. A chunk that is one
// expression is evaluated and its value printed with repr (None is not
// printed, _ keeps it); anything else runs as statements. The dialect is
// the fleet's (no while, no recursion) except that the REPL's top level
// may use if/for and rebind names.
//
// Every chunk runs in a fresh thread with the session's step limit
// (--max-steps), so a runaway comprehension stops with an error, and with
// the interrupt channel (SIGINT) wired to thread.Cancel and to the
// context helpers use (plan, reload), so Ctrl-C stops the evaluation and
// the session goes on. Errors print their position and Starlark
// backtrace to stderr and never end the session.
//
// On a terminal, input is read with github.com/chzyer/readline: history
// in a file (HistoryPath), Ctrl-C clears the line, Ctrl-D exits, TAB
// completes names in scope and attributes of dotted names (ssh_key.na →
// ssh_key.name). Otherwise (a pipe, a file) statements are read line by
// line without prompts, results go to stdout and errors to stderr, and
// Run fails (exit code 1) if any statement failed, so scripts can rely on
// it; a Ctrl-C while waiting for input ends the session.
//
// The package lives under cmd/fleet because it owns a terminal; what it
// shows comes from the engine (model, graph, nixgen) and, for plan(), from
// a function the command supplies.
//
// nix(x) and plan() return strings; when such a call is the whole input,
// its text is printed as it is rather than quoted, so the Nix reads as
// Nix. show(x) prints and returns None, like print, so it works in loops.
package repl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Config configures a session.
type Config struct {
	// File is the fleet file; empty for a session without a fleet (the
	// builtins only).
	File string
	// Options returns the engine options of each evaluation of File
	// (root, step budget, dependency resolver, stderr for print); it is
	// called again by reload() so that it sees edits. Entry is set by the
	// session.
	Options func() (engine.Options, error)
	// MaxSteps bounds each statement's Starlark work (0: the engine's
	// default).
	MaxSteps uint64
	// MaxMemory bounds the heap while a statement runs (0: the engine's
	// default).
	MaxMemory uint64
	// Plan returns the whole plan of a fleet as text; nil: plan() says it
	// is not available.
	Plan func(ctx context.Context, f *model.Fleet) (string, error)

	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal makes the session interactive: Stdin must then be the
	// terminal (*os.File); prompts, line editing, history, completion.
	Terminal bool
	// HistoryFile keeps the terminal's history ("" keeps none).
	HistoryFile string
	// Interrupt delivers Ctrl-C (SIGINT) while a statement runs.
	Interrupt <-chan os.Signal
}

// ErrFailed is returned by Run when reading a script and some statement
// failed (each error was printed when it happened).
var ErrFailed = errors.New("a statement failed")

// errInterrupted is Ctrl-C while reading input (not while evaluating).
var errInterrupted = errors.New("interrupted")

// Session is one REPL: the current evaluation of the fleet and the
// session's globals.
type Session struct {
	cfg  Config
	cur  *state
	opts syntax.FileOptions

	predeclared starlark.StringDict // the fleet builtins
	helpers     starlark.StringDict
	textFns     map[starlark.Value]bool // calls whose str result prints raw
	globals     starlark.StringDict     // what statements see and bind
	userNames   map[string]bool         // names statements bound: kept across reload()
	reloaded    bool                    // reload() ran during the current chunk

	filename   string // "<repl>" on a terminal, "<stdin>" otherwise
	line       int    // lines read so far (scripts: positions are lines of the script)
	statements int
	failed     int
}

// New evaluates the fleet file and returns the session.
func New(ctx context.Context, cfg Config) (*Session, error) {
	if cfg.Stdout == nil {
		cfg.Stdout = io.Discard
	}
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.MaxSteps == 0 {
		cfg.MaxSteps = engine.DefaultMaxSteps
	}
	s := &Session{
		cfg: cfg,
		// The fleet's strict dialect, except that a REPL's top level
		// needs if/for and rebinding (x = machines(); x = x[0]).
		opts:        syntax.FileOptions{TopLevelControl: true, GlobalReassign: true},
		predeclared: builtins.Predeclared(),
		userNames:   map[string]bool{},
		filename:    "<stdin>",
	}
	if cfg.Terminal {
		s.filename = "<repl>"
	}
	s.helpers = s.makeHelpers(s.predeclared)
	var st *state
	err := s.interruptible(ctx, nil, func(ctx context.Context) error {
		var err error
		st, err = evaluate(ctx, cfg.File, cfg.Options)
		return err
	})
	if err != nil {
		if !cfg.Terminal || errors.Is(err, context.Canceled) || ctx.Err() != nil {
			return nil, err
		}
		// On a terminal, a fleet file that does not evaluate is what one
		// comes to fix: start without it, and let reload() pick up the
		// fix. (A script stops: its statements would all fail.)
		fmt.Fprintf(cfg.Stderr, "%v\n%s does not evaluate: the session starts without it; fix it and reload()\n", err, cfg.File)
		if st, err = evaluate(ctx, "", nil); err != nil {
			return nil, err
		}
	}
	s.cur = st
	s.rebuild()
	return s, nil
}

// Run evaluates the fleet file and runs the session until end of input.
func Run(ctx context.Context, cfg Config) error {
	s, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	return s.Loop(ctx)
}

// rebuild makes the globals of a new evaluation: builtins, the fleet's
// globals, the helpers, then what the user bound.
func (s *Session) rebuild() {
	g := starlark.StringDict{}
	for k, v := range s.predeclared {
		g[k] = v
	}
	for k, v := range s.cur.globals {
		g[k] = v
	}
	var hidden []string
	for k, v := range s.helpers {
		if _, ok := s.cur.globals[k]; ok {
			hidden = append(hidden, k)
		}
		g[k] = v
	}
	switch len(hidden) {
	case 0:
	case 1:
		fmt.Fprintf(s.cfg.Stderr, "note: the REPL's %s hides the fleet file's global of the same name\n", hidden[0])
	default:
		fmt.Fprintf(s.cfg.Stderr, "note: the REPL's %s hide the fleet file's globals of the same names\n",
			strings.Join(sortedCopy(hidden), ", "))
	}
	for k := range s.userNames {
		if v, ok := s.globals[k]; ok {
			g[k] = v
		}
	}
	s.globals = g
	s.reloaded = false
}

// Loop reads, evaluates and prints until end of input (Ctrl-D).
func (s *Session) Loop(ctx context.Context) error {
	var src lineSource
	if s.cfg.Terminal {
		in, ok := s.cfg.Stdin.(*os.File)
		if !ok {
			return fmt.Errorf("repl: a terminal session needs the terminal as standard input")
		}
		t, err := newTerminal(s, in)
		if err != nil {
			return err
		}
		defer t.close()
		src = t
		fmt.Fprintf(s.cfg.Stdout, "fleet repl: %s. help() lists the helpers; Ctrl-D exits.\n", s.describe())
	} else {
		src = newScript(s.cfg.Stdin, s.cfg.Interrupt)
	}
	for {
		lines, first, err := s.readChunk(src)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		s.statements++
		if err := s.exec(ctx, lines, first); err != nil {
			s.failed++
			s.printError(err)
		}
	}
	if s.cfg.Terminal {
		return nil
	}
	if s.failed > 0 {
		return fmt.Errorf("%w: %d of %s", ErrFailed, s.failed, count(s.statements, "statement"))
	}
	return nil
}

func (s *Session) describe() string {
	if s.cfg.File == "" {
		return "no fleet file (the builtins only)"
	}
	return s.cfg.File + ", " + summary(s.cur)
}

// A lineSource gives input lines without their line ends.
type lineSource interface {
	// next returns the next line; io.EOF at the end, errInterrupted on
	// Ctrl-C.
	next(prompt string) (string, error)
	// peek returns the n-th line after the ones read, if the source can
	// look ahead (a script can, a person typing cannot).
	peek(n int) (string, bool)
}

const (
	ps1 = ">>> "
	ps2 = "... "
)

// readChunk reads the lines of the next chunk to evaluate and returns
// them with the line number of the first one.
func (s *Session) readChunk(src lineSource) ([]string, int, error) {
	var lines []string
	first := 0
	for {
		prompt := ps1
		if len(lines) > 0 {
			prompt = ps2
		}
		line, err := src.next(prompt)
		if errors.Is(err, errInterrupted) && s.cfg.Terminal {
			lines = nil // Ctrl-C at the prompt drops what was typed
			continue
		}
		if errors.Is(err, io.EOF) && len(lines) > 0 && !s.cfg.Terminal {
			return lines, first, nil // the end of a script ends its last statement
		}
		if err != nil {
			return nil, 0, err
		}
		s.line++
		blank := strings.TrimSpace(line) == ""
		if len(lines) == 0 {
			if blank {
				continue
			}
			first = s.line
			if s.cfg.Terminal {
				first = 1
			}
		} else if blank {
			if s.cfg.Terminal {
				return lines, first, nil // a blank line ends a block (or gives up on an open one)
			}
			// In a script a blank line ends nothing: the lookahead
			// decided that the block goes on.
			lines = append(lines, line)
			continue
		}
		lines = append(lines, line)
		f, err := s.opts.Parse(s.filename, strings.Join(lines, "\n")+"\n", 0)
		if err != nil {
			if incomplete(err, len(lines)) {
				continue
			}
			return lines, first, nil // exec reports the error
		}
		if !compound(f) {
			return lines, first, nil
		}
		if s.cfg.Terminal || continues(src) {
			continue
		}
		return lines, first, nil
	}
}

// incomplete reports a parse error that more input could fix: one found
// at the end of the input (an open bracket or block: "got end of file",
// or the outdent that closes the blocks there) or an unfinished string.
func incomplete(err error, lines int) bool {
	var se syntax.Error
	if errors.As(err, &se) && int(se.Pos.Line) > lines {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "got end of file") || strings.Contains(msg, "unexpected EOF")
}

// compound reports a chunk holding a block statement, which may go on.
func compound(f *syntax.File) bool {
	for _, st := range f.Stmts {
		switch st.(type) {
		case *syntax.DefStmt, *syntax.IfStmt, *syntax.ForStmt, *syntax.WhileStmt:
			return true
		}
	}
	return false
}

// continues looks ahead in a script: the block goes on if the next line
// that is not blank is indented or an else/elif.
func continues(src lineSource) bool {
	for n := 0; ; n++ {
		line, ok := src.peek(n)
		if !ok {
			return false
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return true
		}
		word := strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ':' || r == '\t' })
		return len(word) > 0 && (word[0] == "else" || word[0] == "elif")
	}
}

// exec evaluates one chunk.
func (s *Session) exec(ctx context.Context, lines []string, first int) error {
	// Leading newlines put positions on the script's own lines.
	src := strings.Repeat("\n", first-1) + strings.Join(lines, "\n") + "\n"
	f, err := s.opts.Parse(s.filename, src, 0)
	if err != nil {
		return err
	}
	thread := &starlark.Thread{
		Name:  "repl",
		Print: func(_ *starlark.Thread, msg string) { fmt.Fprintln(s.cfg.Stdout, msg) },
		Load: func(*starlark.Thread, string) (starlark.StringDict, error) {
			return nil, fmt.Errorf("the REPL does not load files: load them in the fleet file, where their globals reach the REPL, and reload()")
		},
	}
	thread.SetMaxExecutionSteps(s.cfg.MaxSteps)
	defer func() {
		if s.reloaded {
			s.rebuild()
		}
	}()
	return s.interruptible(ctx, thread, func(ctx context.Context) error {
		thread.SetLocal("context", ctx)
		if expr := soleExpr(f); expr != nil {
			v, err := starlark.EvalExprOptions(f.Options, thread, expr, s.globals)
			if err != nil {
				return err
			}
			if v != starlark.None {
				s.globals["_"] = v
				s.userNames["_"] = true
				s.printValue(expr, v)
			}
			return nil
		}
		err := starlark.ExecREPLChunk(f, thread, s.globals)
		boundNames(f.Stmts, s.userNames)
		return err
	})
}

// interruptible runs fn with a context that Ctrl-C cancels, together with
// thread if there is one.
func (s *Session) interruptible(ctx context.Context, thread *starlark.Thread, fn func(context.Context) error) error {
	// A Ctrl-C that came after the last evaluation ended is not meant
	// for this one.
	for drained := false; !drained; {
		select {
		case <-s.cfg.Interrupt:
		default:
			drained = true
		}
	}
	guard := engine.NewMemoryGuard(s.cfg.MaxMemory)
	ctx, stopGuard := guard.Context(ctx)
	defer stopGuard()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The watcher is gone when this returns: one left behind would race
	// the next evaluation's watcher (or the script reader) for a Ctrl-C.
	done, gone := make(chan struct{}), make(chan struct{})
	defer func() {
		close(done)
		<-gone
	}()
	go func() {
		defer close(gone)
		select {
		case <-s.cfg.Interrupt:
			cancel(errors.New("interrupted (Ctrl-C)"))
			if thread != nil {
				thread.Cancel("interrupted")
			}
		case <-ctx.Done(): // the memory guard
			if thread != nil {
				thread.Cancel(context.Cause(ctx).Error())
			}
		case <-done:
		}
	}()
	err := fn(ctx)
	if err == nil && (engine.Exceeded(ctx) || guard.Over()) {
		// Crossed by the last step, with no step left to stop.
		err = errors.New(guard.MemoryLimitMessage("the statement"))
	}
	return err
}

func soleExpr(f *syntax.File) syntax.Expr {
	if len(f.Stmts) == 1 {
		if st, ok := f.Stmts[0].(*syntax.ExprStmt); ok {
			return st.X
		}
	}
	return nil
}

// printValue prints an expression's value: repr, except the text that
// nix() and plan() return, which is printed as it is.
func (s *Session) printValue(expr syntax.Expr, v starlark.Value) {
	if str, ok := v.(starlark.String); ok && s.isTextCall(expr) {
		text := string(str)
		if !strings.HasSuffix(text, "\n") {
			text += "\n"
		}
		io.WriteString(s.cfg.Stdout, text)
		return
	}
	fmt.Fprintln(s.cfg.Stdout, v.String())
}

func (s *Session) isTextCall(expr syntax.Expr) bool {
	call, ok := unparen(expr).(*syntax.CallExpr)
	if !ok {
		return false
	}
	id, ok := unparen(call.Fn).(*syntax.Ident)
	if !ok {
		return false
	}
	fn, ok := s.globals[id.Name]
	return ok && s.textFns[fn]
}

func unparen(e syntax.Expr) syntax.Expr {
	for {
		p, ok := e.(*syntax.ParenExpr)
		if !ok {
			return e
		}
		e = p.X
	}
}

// boundNames adds the global names statements bind (assignments, defs,
// for loops and loads at the top level, also inside top-level if/for).
func boundNames(stmts []syntax.Stmt, out map[string]bool) {
	for _, st := range stmts {
		switch st := st.(type) {
		case *syntax.AssignStmt:
			bindTargets(st.LHS, out)
		case *syntax.DefStmt:
			out[st.Name.Name] = true
		case *syntax.ForStmt:
			bindTargets(st.Vars, out)
			boundNames(st.Body, out)
		case *syntax.WhileStmt:
			boundNames(st.Body, out)
		case *syntax.IfStmt:
			boundNames(st.True, out)
			boundNames(st.False, out)
		case *syntax.LoadStmt:
			for _, id := range st.To {
				out[id.Name] = true
			}
		}
	}
}

func bindTargets(e syntax.Expr, out map[string]bool) {
	switch e := e.(type) {
	case *syntax.Ident:
		out[e.Name] = true
	case *syntax.TupleExpr:
		for _, x := range e.List {
			bindTargets(x, out)
		}
	case *syntax.ListExpr:
		for _, x := range e.List {
			bindTargets(x, out)
		}
	case *syntax.ParenExpr:
		bindTargets(e.X, out)
	}
}

// printError prints an error with its position and, for evaluation
// errors, the Starlark backtrace.
func (s *Session) printError(err error) {
	w := s.cfg.Stderr
	var ee *starlark.EvalError
	var se syntax.Error
	var re resolve.ErrorList
	switch {
	case errors.As(err, &ee):
		ee.Msg = s.explain(ee.Msg)
		bt := ee.Backtrace()
		// Builtins name themselves in their messages, and the backtrace
		// names them again: "Error in len: len: ...".
		if n := len(ee.CallStack); n > 0 {
			name := ee.CallStack[n-1].Name
			bt = strings.Replace(bt, "Error in "+name+": "+name+": ", "Error in "+name+": ", 1)
		}
		fmt.Fprintln(w, bt)
	case errors.As(err, &se):
		fmt.Fprintf(w, "%s: %s\n", se.Pos, se.Msg)
	case errors.As(err, &re):
		for _, e := range re {
			fmt.Fprintf(w, "%s: %s\n", e.Pos, explainResolve(e.Msg))
		}
	default:
		fmt.Fprintln(w, err)
	}
}

// explain rewrites go.starlark.net's messages into what to do.
func (s *Session) explain(msg string) string {
	switch {
	case strings.Contains(msg, "Starlark computation cancelled: too many steps"):
		return fmt.Sprintf("stopped after %d steps (--max-steps): look for a runaway loop or comprehension, or raise --max-steps", s.cfg.MaxSteps)
	case engine.IsMemoryLimit(msg):
		return engine.NewMemoryGuard(s.cfg.MaxMemory).MemoryLimitMessage("the statement")
	case strings.Contains(msg, "Starlark computation cancelled: interrupted"):
		return "interrupted (Ctrl-C)"
	case strings.Contains(msg, "called outside a fleet evaluation"):
		file := s.cfg.File
		if file == "" {
			file = "a fleet file"
		}
		return strings.Replace(msg, "called outside a fleet evaluation",
			"declarations are made by fleet files, not in the REPL: add it to "+file+" (or a file it includes) and reload()", 1)
	}
	return msg
}

func explainResolve(msg string) string {
	switch {
	case strings.Contains(msg, "does not support while loops"):
		return msg + ": fleet's dialect has no while; use a for loop over a range"
	case strings.Contains(msg, "undefined:"):
		return msg + " (help() lists the helpers)"
	}
	return msg
}

// script reads statements from a pipe or a file. Lines come from a
// goroutine so that a Ctrl-C while waiting for input is noticed.
type script struct {
	lines     chan scriptLine
	interrupt <-chan os.Signal
	ahead     []scriptLine
}

type scriptLine struct {
	text string
	err  error
}

func newScript(r io.Reader, interrupt <-chan os.Signal) *script {
	s := &script{lines: make(chan scriptLine), interrupt: interrupt}
	go func() {
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				s.lines <- scriptLine{text: strings.TrimRight(line, "\r\n")}
			}
			if err != nil {
				s.lines <- scriptLine{err: io.EOF}
				close(s.lines)
				return
			}
		}
	}()
	return s
}

func (s *script) receive() scriptLine {
	select {
	case l, ok := <-s.lines:
		if !ok {
			return scriptLine{err: io.EOF}
		}
		return l
	case <-s.interrupt:
		return scriptLine{err: errInterrupted}
	}
}

func (s *script) next(string) (string, error) {
	if len(s.ahead) > 0 {
		l := s.ahead[0]
		s.ahead = s.ahead[1:]
		return l.text, l.err
	}
	l := s.receive()
	return l.text, l.err
}

func (s *script) peek(n int) (string, bool) {
	for len(s.ahead) <= n {
		l := s.receive()
		if errors.Is(l.err, errInterrupted) {
			return "", false
		}
		s.ahead = append(s.ahead, l)
		if l.err != nil {
			break
		}
	}
	if n >= len(s.ahead) || s.ahead[n].err != nil {
		return "", false
	}
	return s.ahead[n].text, true
}
