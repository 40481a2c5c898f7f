package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/outdir"
	"github.com/urfave/cli/v2"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // evaluation, validation or operation failed
	exitUsage = 2 // the command line itself is wrong
)

// writeJSON writes v as indented JSON with a final newline, leaving <, >
// and & as they are (not \u003c, \u003e, \u0026): people read it too.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// usageError marks mistakes in the command line (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// deps are what the commands reach outside the process: the environment
// the clouds' credentials come from, and the clouds. Tests substitute a
// map for the environment and providers pointed at local fakes with fast
// polling.
type deps struct {
	getenv    func(string) string
	providers func(getenv func(string) string) []cloud.Provider
	// wd is the folder relative paths of the command line are read
	// from, the default fleet.star's included; "" is the process's.
	// Tests set it instead of changing the process's folder.
	wd string
}

// run executes the command line and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(ctx, deps{getenv: os.Getenv, providers: providers}, args, stdin, stdout, stderr)
}

// runWith is run with explicit dependencies.
func runWith(ctx context.Context, d deps, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(d, stdin, stdout, stderr)
	err := app.RunContext(ctx, permuteArgs(app, args))
	if err == nil {
		return exitOK
	}
	var ec exitCode
	if errors.As(err, &ec) {
		return int(ec)
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "fleet: %s\nRun '%s' for usage.\n", ue.msg, helpFor(app, ue.msg))
		if detailedExitcode(args) {
			return exitError // 2 means "changes" there
		}
		return exitUsage
	}
	fmt.Fprintln(stderr, err)
	return exitError
}

func newApp(d deps, stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "fleet",
		Usage: "describe a fleet of machines in Starlark; get Nix, cloud hosts and deploys",
		Description: `fleet evaluates a fleet file (fleet.star) into a typed model and dependency graph,
and from it the Nix configuration of every machine, the cloud changes that create or
remove their hosts, and the deploy actions that build and activate them.

FILE, where a command takes one, is optional: ./fleet.star by default, and a folder
means the fleet.star in it. fleet help COMMAND shows a command's flags;
fleet completion bash|zsh|fish prints a shell completion script.

Exit codes: 0 success, 1 evaluation, validation or operation error, 2 usage error
(found before anything is evaluated or asked of a cloud), 130 on Ctrl-C, 143 on SIGTERM.`,
		Version:         version,
		Reader:          stdin,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		Suggest:         true,
		ExitErrHandler:  func(*cli.Context, error) {}, // run() maps errors to exit codes
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return flagError("", []cli.Flag{cli.HelpFlag, cli.VersionFlag}, err)
		},
		Metadata: map[string]any{"wd": d.wd, "getenv": d.getenv},
		// fleet's own help command (fleet help secrets generate) hides
		// urfave/cli's, and with it the --help flag it would add.
		Flags: []cli.Flag{cli.HelpFlag},
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return noCommand("", c.Args().First(), c.App.Commands)
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			initCommand(),
			runCommand(d),
			evalCommand(),
			nixCommand(),
			overlaysCommand(),
			planCommand(d),
			applyCommand(d),
			toggleCommand(d, true),
			toggleCommand(d, false),
			adoptCommand(d),
			hostsCommand(d),
			secretsCommand(),
			buildCommand(),
			deployCommand(d),
			execCommand(d),
			diffCommand(d),
			graphCommand(),
			replCommand(d),
			depsCommand(),
			testCommand(),
			fmtCommand(),
			lintCommand(),
			docCommand(),
			versionCommand(),
			helpCommand(),
			completionCommand(),
			completeCommand(),
		},
	}
	setupUsage("", app.Commands)
	return app
}

// evalFlags are the flags of every command that evaluates a fleet.
func evalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "root", Usage: "fleet root: loads and paths may not leave it (default: the directory of FILE)"},
		&cli.Uint64Flag{Name: "max-steps", Value: engine.DefaultMaxSteps, Usage: "Starlark step budget of the whole evaluation"},
		&cli.StringFlag{Name: "max-memory", Value: engine.FormatBytes(engine.DefaultMaxMemory), Usage: "stop an evaluation whose values take more than `SIZE` of memory (KiB, MiB, GiB)"},
		&cli.BoolFlag{Name: "offline", Usage: "use only pinned dependencies already in the cache; fetch nothing"},
		&cli.StringSliceFlag{Name: "override", Usage: "use a local folder for a dependency: NAME=DIR (repeatable; for developing a library)"},
	}
}

// engineOptions are the evaluation flags of c as the engine takes them,
// for the fleet whose entry file is file.
func engineOptions(c *cli.Context, file string) (engine.Options, error) {
	memory, err := maxMemory(c)
	if err != nil {
		return engine.Options{}, err
	}
	resolve, err := depsFor(c, file)
	if err != nil {
		return engine.Options{}, err
	}
	return engine.Options{
		Root:      c.String("root"),
		MaxSteps:  c.Uint64("max-steps"),
		MaxMemory: memory,
		Stderr:    c.App.ErrWriter,
		Deps:      resolve,
	}, nil
}

// maxMemory is --max-memory in bytes.
func maxMemory(c *cli.Context) (uint64, error) {
	n, err := engine.ParseBytes(c.String("max-memory"))
	if err != nil {
		return 0, usagef("--max-memory: %v", err)
	}
	return n, nil
}

// loaded is an evaluated fleet and its graph.
type loaded struct {
	file  string
	fleet *model.Fleet
	graph *graph.Graph
	// tree is the generated tree, with what each machine reads (loadTree).
	tree *nixgen.Tree
}

// load evaluates the FILE argument of c and builds its graph: every
// command starts here, so every command reports the same errors.
func load(c *cli.Context) (*loaded, error) {
	file, err := fileArg(c)
	if err != nil {
		return nil, err
	}
	return loadPath(c, file)
}

// loadPath evaluates file (a FILE argument: "" is ./fleet.star, a folder
// its fleet.star) with the command's evaluation flags.
func loadPath(c *cli.Context, file string) (*loaded, error) {
	file, err := fleetFile(c, file)
	if err != nil {
		return nil, err
	}
	opts, err := engineOptions(c, file)
	if err != nil {
		return nil, err
	}
	f, err := engine.Eval(c.Context, file, opts)
	if err != nil {
		return nil, err
	}
	g, err := graph.Build(f)
	if err != nil {
		return nil, err
	}
	return &loaded{file: file, fleet: f, graph: g}, nil
}

// loadTree is load plus the Nix tree lowered from the fleet.
func loadTree(c *cli.Context) (*loaded, []outdir.File, error) {
	l, err := load(c)
	if err != nil {
		return nil, nil, err
	}
	t, err := nixgen.GenerateTree(l.fleet)
	if err != nil {
		return l, nil, err
	}
	l.tree = t
	return l, t.Files, nil
}

// fileArg returns the optional FILE argument, "" when there is none
// (loadPath and fleetFile make that ./fleet.star).
func fileArg(c *cli.Context) (string, error) {
	switch c.NArg() {
	case 0:
		return "", nil
	case 1:
		return c.Args().First(), nil
	}
	return "", usagef("%s: takes one FILE, got %s", c.Command.Name, strings.Join(c.Args().Slice(), " "))
}

// permuteArgs moves flags written after positional arguments in front of
// them, so that `fleet graph fleet.star --format dot` works as people type
// it (urfave/cli, like the flag package, stops at the first argument).
// Everything after "--" is left alone.
func permuteArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	for i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "--" {
		out = append(out, args[i]) // global flags (--help, --version)
		i++
	}
	if i >= len(args) {
		return out
	}
	cmd := app.Command(args[i])
	if cmd == nil || cmd.SkipFlagParsing {
		return args
	}
	out = append(out, args[i])
	i++
	// Descend into subcommands (fleet secrets generate ...): the flags
	// belong to the innermost one.
	for i < len(args) && len(cmd.Subcommands) > 0 {
		sub := findCommand(cmd.Subcommands, args[i])
		if sub == nil {
			break
		}
		cmd = sub
		out = append(out, args[i])
		i++
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	var flags, positional []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			positional = append(positional, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		positional = append(positional, a)
	}
	out = append(out, flags...)
	if len(positional) > 0 {
		// "--" ends the flags: a positional argument is never read as
		// one, and one of the command's own (exec's) stays.
		out = append(out, "--")
	}
	return append(out, positional...)
}

func findCommand(cs []*cli.Command, name string) *cli.Command {
	for _, c := range cs {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
