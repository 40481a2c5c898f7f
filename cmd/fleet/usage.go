package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/urfave/cli/v2"
)

// Usage errors are found before any work: unknown commands, subcommands
// and flags, flag values of the wrong type or outside their choices, and
// malformed --on/--exclude selectors all stop the command before it
// evaluates anything or talks to a network, with exit code 2 and, where
// the mistake is a typo, a "did you mean" from builtins.Nearest (the one
// spelling helper of fleet).

// orList joins xs as "a, b or c".
func orList(xs []string) string {
	if len(xs) <= 1 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

// commandNames are the names (and aliases) of the visible commands.
func commandNames(cs []*cli.Command) []string {
	var out []string
	for _, c := range cs {
		if !c.Hidden {
			out = append(out, c.Names()...)
		}
	}
	return out
}

// noCommand is the usage error for an unknown command or subcommand.
// path is "" for fleet's own commands, "secrets" for its subcommands.
func noCommand(path, name string, cs []*cli.Command) error {
	prefix := ""
	if path != "" {
		prefix = path + ": "
	}
	var visible []string
	for _, c := range cs {
		if !c.Hidden {
			visible = append(visible, c.Name)
		}
	}
	if path == "" {
		return usagef("no command %q%s", name, builtins.DidYouMean(name, commandNames(cs)))
	}
	return usagef("%sno command %q%s: use %s", prefix, name, builtins.DidYouMean(name, commandNames(cs)), orList(visible))
}

// commandPath is the command c runs, as typed: "secrets generate".
func commandPath(c *cli.Context) string {
	var names []string
	for _, x := range c.Lineage() {
		if x.Command != nil && x.Command.Name != "" && x.Command.Name != c.App.Name {
			names = append([]string{x.Command.Name}, names...)
		}
	}
	return strings.Join(names, " ")
}

// helpFor is the help command for a usage error's message: fleet help
// deploy for "deploy: ...", fleet --help when it names no command.
func helpFor(app *cli.App, msg string) string {
	path, _, ok := strings.Cut(msg, ": ")
	if !ok {
		return "fleet --help"
	}
	cs := app.Commands
	for _, name := range strings.Fields(path) {
		cmd := findCommand(cs, name)
		if cmd == nil || cmd.Hidden {
			return "fleet --help"
		}
		cs = cmd.Subcommands
	}
	return "fleet help " + path
}

// subcommandAction is the action of a command that only groups
// subcommands (fleet secrets, fleet deps): without one it shows its help;
// an unknown one is a usage error.
func subcommandAction(path string, cmd *cli.Command) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.Args().Present() {
			return noCommand(path, c.Args().First(), cmd.Subcommands)
		}
		return cli.ShowSubcommandHelp(c)
	}
}

// flagNames are the names of flags, without dashes.
func flagNames(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		out = append(out, f.Names()...)
	}
	return out
}

// didYouMeanFlag is builtins.DidYouMean for a flag name (without its
// dashes, so that they do not count as letters in common).
func didYouMeanFlag(name string, flags []cli.Flag) string {
	if n := builtins.Nearest(name, flagNames(flags)); n != "" {
		return fmt.Sprintf(" (did you mean %s?)", dashed(n))
	}
	return ""
}

func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	invalidValue  = regexp.MustCompile(`^invalid value "(.*)" for flag -+([^:]+): (.*)$`)
	needsArgument = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
	invalidBool   = regexp.MustCompile(`^invalid boolean value "(.*)" for -+([^:]+): `)
)

// flagError rewrites the flag parser's error for the command at path
// (whose flags are flags) as fleet says it.
func flagError(path string, flags []cli.Flag, err error) error {
	msg := err.Error()
	prefix := ""
	if path != "" {
		prefix = path + ": "
	}
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		return usagef("%sunknown flag %s%s", prefix, dashed(m[1]), didYouMeanFlag(m[1], flags))
	}
	if m := needsArgument.FindStringSubmatch(msg); m != nil {
		return usagef("%s%s needs a value", prefix, dashed(m[1]))
	}
	if m := invalidBool.FindStringSubmatch(msg); m != nil {
		name := dashed(m[2])
		return usagef("%s%s=%s: write %s alone (or %s=true, %s=false)", prefix, name, m[1], name, name, name)
	}
	if m := invalidValue.FindStringSubmatch(msg); m != nil {
		value, name := m[1], dashed(m[2])
		switch findFlag(flags, m[2]).(type) {
		case *cli.DurationFlag:
			if _, err := strconv.ParseFloat(value, 64); err == nil {
				return usagef("%s%s %s: durations need a unit, like %ss or 2m", prefix, name, value, value)
			}
			return usagef("%s%s %q: not a duration (like 30s, 2m or 1h30m)", prefix, name, value)
		case *cli.IntFlag, *cli.Int64Flag, *cli.UintFlag, *cli.Uint64Flag:
			return usagef("%s%s %q: not a whole number", prefix, name, value)
		case *cli.BoolFlag:
			return usagef("%s%s=%s: use %s=true or %s=false, or just %s", prefix, name, value, name, name, name)
		}
		return usagef("%s%s %q: %s", prefix, name, value, m[3])
	}
	return usageError{prefix + msg}
}

// choiceFlag is a string flag whose value must be one of choices
// (--goal, --build-on, --format): anything else is a usage error before
// the command starts, with a "did you mean".
func choiceFlag(name, value string, choices ...string) *choiceStringFlag {
	return &choiceStringFlag{StringFlag: cli.StringFlag{Name: name, Value: value, Usage: orList(choices),
		Action: func(c *cli.Context, v string) error {
			if !slices.Contains(choices, v) {
				return usagef("%s: %s %q: use %s%s", commandPath(c), dashed(name), v, orList(choices), builtins.DidYouMean(v, choices))
			}
			return nil
		}}, values: choices}
}

// choiceStringFlag is a string flag that knows the values it takes, for
// completion; everything else is the StringFlag's.
type choiceStringFlag struct {
	cli.StringFlag
	values []string
}

// choices are the values a choiceFlag takes (for completion).
func choices(f cli.Flag) []string {
	if cf, ok := f.(*choiceStringFlag); ok {
		return cf.values
	}
	return nil
}

// selectorFlag reports whether f takes machine selectors (--on, --exclude).
func selectorFlag(f cli.Flag) bool {
	_, ok := f.(*cli.StringSliceFlag)
	return ok && (f.Names()[0] == "on" || f.Names()[0] == "exclude")
}

// checkSelectors is the action of --on and --exclude: each value must be
// a selector (a name, @tag, glob or all).
func checkSelectors(name string) func(*cli.Context, []string) error {
	return func(c *cli.Context, xs []string) error {
		for _, x := range xs {
			if err := model.Selector(x).Validate(); err != nil {
				return usagef("%s: --%s: %v", commandPath(c), name, err)
			}
		}
		return nil
	}
}

// setupUsage gives every command below cs (the subcommands of path) the
// usage checks: flag errors as fleet says them, an action for commands
// that only group subcommands, and selector checks on --on and --exclude.
func setupUsage(path string, cs []*cli.Command) {
	for _, cmd := range cs {
		cmdPath := strings.TrimSpace(path + " " + cmd.Name)
		flags := cmd.Flags
		cmd.OnUsageError = func(_ *cli.Context, err error, _ bool) error {
			return flagError(cmdPath, flags, err)
		}
		// fleet help secrets generate, not fleet secrets help generate
		// (and no FILE argument "help" taken for a command).
		cmd.HideHelpCommand = true
		if len(cmd.Subcommands) > 0 && cmd.Action == nil {
			cmd.Action = subcommandAction(cmdPath, cmd)
		}
		for _, f := range cmd.Flags {
			if s, ok := f.(*cli.StringSliceFlag); ok && selectorFlag(f) && s.Action == nil {
				s.Action = checkSelectors(s.Name)
			}
		}
		setupUsage(cmdPath, cmd.Subcommands)
	}
}

// workDir is the folder relative paths of the command line are read
// from: the process's, unless the app was made with another (tests).
func workDir(c *cli.Context) string {
	if wd, ok := c.App.Metadata["wd"].(string); ok {
		return wd
	}
	return ""
}

// fleetFile resolves a FILE argument (or a --file value): "" is
// fleet.star in the working folder, a folder is the fleet.star in it.
// When that fleet.star does not exist, the error says where it was
// looked for. Any other path is returned as it is (evaluation says if it
// does not exist).
func fleetFile(c *cli.Context, arg string) (string, error) {
	p := fleetPath(c, arg)
	if filepath.Base(p) == "fleet.star" {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			dir, _ := filepath.Abs(filepath.Dir(p))
			return "", usagef("no fleet.star in %s: name the fleet file or its folder, run fleet where fleet.star is, or make one with fleet init", dir)
		}
	}
	return p, nil
}

// fleetPath is fleetFile without the check that the file exists.
func fleetPath(c *cli.Context, arg string) string {
	p := arg
	if p == "" {
		p = "."
	}
	if wd := workDir(c); wd != "" && !filepath.IsAbs(p) {
		p = filepath.Join(wd, p)
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		p = filepath.Join(p, "fleet.star")
	}
	return p
}

// splitFile splits the arguments of a command that takes [FILE] and then
// names (adopt's machines): the first is the FILE when it looks like
// one (looksLikeFile).
func splitFile(args []string) (file string, rest []string) {
	if len(args) > 0 && looksLikeFile(args[0]) {
		return args[0], args[1:]
	}
	return "", args
}

// execArgs splits exec's arguments, [FILE] -- COMMAND...: permuteArgs
// keeps the "--" that ends the FILE part, when there was one.
func execArgs(args []string) (file string, argv []string, err error) {
	if i := slices.Index(args, "--"); i >= 0 {
		if i > 1 {
			return "", nil, usagef("exec: takes one FILE before --, got %s", strings.Join(args[:i], " "))
		}
		file, argv = strings.Join(args[:i], ""), args[i+1:]
	} else {
		file, argv = splitFile(args)
	}
	if len(argv) == 0 {
		return "", nil, usagef("exec: no command: fleet exec [FILE] -- COMMAND...")
	}
	return file, argv, nil
}

// looksLikeFile reports whether the first argument of a command that
// takes [FILE] and then names (adopt's machines) is the FILE: a path
// ending in .star, one with a slash, or "." and "..". Machine names have
// none of these.
func looksLikeFile(arg string) bool {
	return strings.HasSuffix(arg, ".star") || strings.ContainsRune(arg, filepath.Separator) || strings.ContainsRune(arg, '/') || arg == "." || arg == ".."
}
