package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine/apply"
	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/outdir"
	"github.com/fleet-nix/fleet/engine/plaintext"
	"github.com/fleet-nix/fleet/engine/secrets"
	"github.com/urfave/cli/v2"
)

func deployCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "deploy",
		Usage:     "build, copy and activate machines, in parallel, with health checks and rollback",
		ArgsUsage: "[FILE]",
		Description: `Writes the Nix tree, then per machine: checks its secrets are in place, asks the
machine whether the deploy can work there (preflight: nix-daemon; for a non-root target
sudo without a password and Nix's trusted-users), builds its system, copies the closure
(nix copy over ssh-ng), sets the system profile (switch, boot), activates it
(switch-to-configuration in fleet-activate.service through systemd-run, waiting for an
earlier activation still running; or nix-darwin's activate) and runs its checks; machines
with rollback = True whose checks fail are switched back. An activation that switched but
left units failed is "degraded": the checks decide. Machines deploy in parallel
(--parallel); one failing does not stop the others. --only-changed first asks each machine
what it runs and leaves those already running the system built alone: a re-run after a
failure or Ctrl-C resumes. A machine whose cloud host is switched off (enabled = False,
and not switched on by fleet up) is skipped with a line saying so, unless --on names it.
Machines are evaluated in batches, several per nix process, as many as --eval-memory
allows (or --batch); each machine's build and copy go on as soon as its own system is built.
With fleet(cache = ...), each system built is pushed to the binary cache once (signed)
before the copies, which then let the machines substitute from the cache; with
fleet(builders = ...), local builds also use those remote builders.
--dry-run prints the exact commands and runs nothing. Needs Nix 2.8 or newer.
The steps are fleet apply's graph without its cloud part (engine/apply).`,
		Flags: append(append(evalFlags(), evalBatchFlags()...), outFlag(),
			&cli.StringSliceFlag{Name: "on", Usage: "machines to deploy (name, @tag, glob, all; default all); repeatable"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "machines to leave out; repeatable"},
			choiceFlag("goal", "switch", "switch", "boot", "test", "dry-activate"),
			&cli.IntFlag{Name: "parallel", Value: 10, Usage: "steps in flight at once"},
			choiceFlag("build-on", "local", "local", "target"),
			&cli.DurationFlag{Name: "confirm-timeout", Value: 30 * time.Second, Usage: "how long checks may take to pass"},
			&cli.BoolFlag{Name: "fail-fast", Usage: "start nothing new after the first failure"},
			&cli.BoolFlag{Name: "only-changed", Usage: "leave machines already running the system built alone (no copy, no activation)"},
			rebuildFlag(),
			&cli.BoolFlag{Name: "dry-run", Usage: "print the commands per machine and run none"},
			&cli.BoolFlag{Name: "json", Usage: "print a stream of JSON events (one per line) instead of progress"},
		),
		Action: func(c *cli.Context) error {
			opts, err := deployOptions(c)
			if err != nil {
				return err
			}
			l, files, machines, tree, err := loadSelected(c)
			if err != nil {
				return err
			}
			var skipEvents func(deploy.Event)
			if c.Bool("json") && !c.Bool("dry-run") {
				skipEvents = deploy.JSONEvents(c.App.Writer)
			}
			machines, targets, err := reachable(c, d, l, machines, c.Bool("dry-run"), skipEvents)
			if err != nil {
				return err
			}
			opts.Tree, opts.Secrets, opts.Targets = tree, secretsReady(l.fleet), targets
			if c.Bool("dry-run") {
				opts.Cached = dryRunCached(c, l, tree, machines)
			}
			g, err := apply.New(l.fleet, nil, machines, apply.Options{Deploy: opts})
			if err != nil {
				return err
			}
			if c.Bool("dry-run") {
				writeDryRun(c.App.Writer, g.Steps)
				return nil
			}
			return runDeploy(c, l, files, tree, machines, opts)
		},
	}
}

// deployOptions are the engine options that deploy's flags name: --goal,
// --build-on, --confirm-timeout, --only-changed, --eval-memory and --batch. The caller adds the
// tree, targets, secrets and runner.
// --build-on and --goal are choice flags: their values were checked when
// the flags were parsed.
func deployOptions(c *cli.Context) (deploy.Options, error) {
	batch, err := evalBatch(c)
	if err != nil {
		return deploy.Options{}, err
	}
	return deploy.Options{Goal: deploy.Goal(c.String("goal")), BuildOn: c.String("build-on"),
		ConfirmTimeout: c.Duration("confirm-timeout"), OnlyChanged: c.Bool("only-changed"), EvalBatch: batch}, nil
}

// deployExecOptions are the executor's options that deploy's flags name:
// --parallel, --fail-fast, and --json (JSON events instead of progress).
// done ends the progress display.
func deployExecOptions(c *cli.Context, logDir string) (o deploy.ExecOptions, done func()) {
	events, done := deploy.Progress(c.App.Writer, isTerminal(c.App.Writer))
	if c.Bool("json") {
		events, done = deploy.JSONEvents(c.App.Writer), func() {}
	}
	return deploy.ExecOptions{Parallel: c.Int("parallel"), FailFast: c.Bool("fail-fast"), LogDir: logDir, Events: events}, done
}

// parseSelectors checks the values of a selector flag (--on, --exclude):
// a bad one is a usage error naming the flag.
func parseSelectors(flag string, xs []string) ([]model.Selector, error) {
	var out []model.Selector
	for _, x := range xs {
		s := model.Selector(x)
		if err := s.Validate(); err != nil {
			return nil, usageError{flag + ": " + err.Error()}
		}
		out = append(out, s)
	}
	return out, nil
}

// selectMachines applies --on and --exclude.
func selectMachines(f *model.Fleet, on, exclude []string) ([]*model.Machine, error) {
	ons, err := parseSelectors("--on", on)
	if err != nil {
		return nil, err
	}
	if len(ons) == 0 {
		ons = []model.Selector{"all"}
	}
	excl, err := parseSelectors("--exclude", exclude)
	if err != nil {
		return nil, err
	}
	for _, sel := range []struct {
		flag string
		sels []model.Selector
	}{{"--on", ons}, {"--exclude", excl}} {
		for _, x := range sel.sels {
			if err := selectsNothing(f, sel.flag, x); err != nil {
				return nil, err
			}
		}
	}
	var out []*model.Machine
	for _, m := range f.Select(ons...) {
		if !slices.ContainsFunc(excl, func(s model.Selector) bool { return s.Match(m) }) {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no machine selected (--on %s, --exclude %s)", strings.Join(on, ","), strings.Join(exclude, ","))
	}
	return out, nil
}

// selectsNothing refuses a machine name or tag that no machine has: a
// typo, which would otherwise leave a machine out (or in) silently. A
// glob matching nothing is not one.
func selectsNothing(f *model.Fleet, flag string, s model.Selector) error {
	if len(f.Select(s)) > 0 {
		return nil
	}
	str := string(s)
	if tag, ok := strings.CutPrefix(str, "@"); ok {
		var tags []string
		for _, m := range f.Machines {
			tags = append(tags, m.Tags...)
		}
		return fmt.Errorf("%s %s: no machine has the tag %q%s", flag, str, tag, builtins.DidYouMean(tag, tags))
	}
	if s.IsPattern() {
		return nil
	}
	var names []string
	for _, m := range f.Machines {
		names = append(names, m.Name)
	}
	return fmt.Errorf("%s %s: no machine is called %q%s", flag, str, str, builtins.DidYouMean(str, names))
}

// writeDryRun prints each machine's steps and the commands they run.
func writeDryRun(w io.Writer, steps []deploy.Step) {
	machine := ""
	for _, s := range steps {
		if s.Machine != machine {
			machine = s.Machine
			fmt.Fprintf(w, "%s:\n", machine)
		}
		for i, cmd := range s.Commands {
			label := s.Action
			if i > 0 {
				label = ""
			}
			fmt.Fprintf(w, "  %-9s %s\n", label, cmd)
		}
	}
}

// secretsReady makes the deploy's secrets step: every secret file a
// machine reads must exist, be encrypted to the current recipients and be
// the file fleet wrote (the sha256 in the recipients record), so that a
// damaged or foreign file never reaches a machine. It judges as `fleet
// secrets check` does (Report.NotReady of the same Check).
func secretsReady(f *model.Fleet) func(m *model.Machine) error {
	st := &secrets.Store{Root: f.Root}
	rep, err := checkSecrets(st, f)
	return func(m *model.Machine) error {
		if err != nil {
			return err
		}
		return rep.NotReady(f, m.Name)
	}
}

// runDeploy writes the tree and executes the steps.
func runDeploy(c *cli.Context, l *loaded, files []outdir.File, tree string, machines []*model.Machine, opts deploy.Options) error {
	treeOut := c.App.Writer
	if c.Bool("json") {
		treeOut = c.App.ErrWriter // stdout is the JSON events' alone
	}
	if err := writeTree(treeOut, tree, files); err != nil {
		return err
	}
	lockNote(c.App.ErrWriter, tree)
	runner, closeRunner, err := newRunner()
	if err != nil {
		return err
	}
	defer closeRunner()
	if err := checkNix(c, runner); err != nil {
		return err
	}
	opts.Runner = runner
	if l.tree != nil {
		bc, err := newBuildCache(l, tree, c.App.ErrWriter)
		if err != nil {
			return err
		}
		opts.Cached, opts.Built = bc.cached(c, machines), bc.built
		opts.Deployed = bc.deployed
	}
	g, err := apply.New(l.fleet, nil, machines, apply.Options{Deploy: opts})
	if err != nil {
		return err
	}
	logDir, err := runLogDir(l.fleet.Root, "", time.Now())
	if err != nil {
		return err
	}
	execOpts, done := deployExecOptions(c, logDir)
	sum := g.Run(c.Context, execOpts).Summary
	done()
	if !c.Bool("json") {
		w, done := colourLines(c, c.App.Writer, outcomeColour)
		sum.WriteTable(w)
		done()
		fmt.Fprintf(c.App.Writer, "logs: %s\n", logDir)
	}
	if sum.Failed() {
		if c.Bool("json") {
			return fmt.Errorf("deploy failed on some machines (see their events)")
		}
		return fmt.Errorf("deploy failed on some machines (see the table above)")
	}
	return nil
}

func execCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "exec",
		Usage:     "run a command on many machines in parallel, with output prefixed by machine",
		ArgsUsage: "[FILE] -- COMMAND...",
		Description: `How the command reaches the remote machine:

  One argument is a shell command line, run by sh -c on each machine, as
  ssh and colmena exec run theirs: pipes, ;, && and $VARS work, expanded
  remotely.
    fleet exec fleet.star -- 'systemctl is-active nginx && uptime'
    fleet exec fleet.star -- 'echo a; sleep 1'

  Several arguments are an argv, passed exactly: each argument is one
  word on the remote side, nothing in it is expanded or split.
    fleet exec fleet.star -- echo 'hello world;' '$HOME'   (prints: hello world; $HOME)

  A lone program name works either way: fleet exec -- uptime.

FILE defaults to ./fleet.star (a folder means its fleet.star).`,
		Flags: append(evalFlags(),
			&cli.StringSliceFlag{Name: "on", Usage: "machines (name, @tag, glob, all; default all); repeatable"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "machines to leave out; repeatable"},
			&cli.IntFlag{Name: "parallel", Value: 10, Usage: "machines at once"},
		),
		Action: func(c *cli.Context) error {
			file, argv, err := execArgs(c.Args().Slice())
			if err != nil {
				return err
			}
			argv = execArgv(argv)
			l, err := loadPath(c, file)
			if err != nil {
				return err
			}
			machines, err := selectMachines(l.fleet, c.StringSlice("on"), c.StringSlice("exclude"))
			if err != nil {
				return err
			}
			machines, targets, err := reachable(c, d, l, machines, false, nil)
			if err != nil {
				return err
			}
			runner, done, err := newRunner()
			if err != nil {
				return err
			}
			defer done()
			var mu sync.Mutex
			var steps []deploy.Step
			for _, m := range machines {
				target, err := deploy.Target(l.fleet, m, targets)
				if err != nil {
					return err
				}
				out := &prefixWriter{w: c.App.Writer, prefix: m.Name + ": ", mu: &mu}
				steps = append(steps, deploy.Step{ID: m.Name + "/exec", Machine: m.Name, Action: "exec",
					Commands: []string{"ssh " + target + " " + deploy.ShellJoin(argv)},
					Run: func(ctx context.Context, log io.Writer) error {
						defer out.flush()
						w := io.MultiWriter(out, log)
						return runner.Remote(ctx, target, argv, deploy.IO{Stdout: w, Stderr: w})
					}})
			}
			logDir, err := runLogDir(l.fleet.Root, "exec-", time.Now())
			if err != nil {
				return err
			}
			sum := deploy.Execute(c.Context, steps, deploy.ExecOptions{Parallel: c.Int("parallel"), LogDir: logDir})
			if sum.Failed() {
				sum.WriteTable(c.App.ErrWriter)
				return fmt.Errorf("the command failed on some machines")
			}
			return nil
		},
	}
}

// execArgv is what fleet exec runs remotely for the arguments after --:
// one argument is a command line for the shell (sh -c LINE, as ssh and
// colmena exec treat theirs), several are an argv quoted exactly.
func execArgv(args []string) []string {
	if len(args) == 1 {
		return []string{"sh", "-c", args[0]}
	}
	return args
}

// prefixWriter writes whole lines, each prefixed, so that the output of
// machines running at once does not interleave within a line.
type prefixWriter struct {
	w      io.Writer
	prefix string
	mu     *sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		p.mu.Lock()
		fmt.Fprintf(p.w, "%s%s\n", p.prefix, p.buf[:i])
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
	}
}

func (p *prefixWriter) flush() {
	if len(p.buf) > 0 {
		p.Write([]byte("\n"))
	}
}

// lockNote says, when the tree has no flake.lock yet, that nix is about
// to pin the flake's inputs and write one there, and that it belongs in
// git: nix reads the tree as path:, on disk, so the lock is the only
// record of which nixpkgs the machines were built from.
func lockNote(w io.Writer, tree string) {
	if _, err := os.Stat(filepath.Join(tree, "flake.lock")); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(w, "nix: %s has no flake.lock yet: nix pins the flake's inputs on this first build and writes it there; commit it, so that later builds and other machines use the same inputs\n", tree)
	}
}

// checkNix asks nix for its version once per run, before anything is
// built: a missing or too old nix fails here, saying what to do, rather
// than with a flag nix does not know in every machine's log.
func checkNix(c *cli.Context, r deploy.Runner) error {
	_, err := deploy.CheckNix(c.Context, r)
	return err
}

// sshConfigFile is the runner's ssh -F: empty (the user's ssh
// configuration) in fleet; the package's tests set os.DevNull (TestMain),
// so the developer's ~/.ssh/config never applies to them.
var sshConfigFile string

// newRunner is the ssh runner of deploy, exec and diff: the user's ssh
// (config, agent, ProxyJump) plus FLEET_SSH_OPTS, extra ssh options
// separated by spaces (like nix's NIX_SSHOPTS), with one connection per
// host through control sockets in a private folder; done closes them.
func newRunner() (r *deploy.SSHRunner, done func(), err error) {
	control, err := plaintext.MkdirTempShort("fleet-ssh-")
	if err != nil {
		return nil, nil, err
	}
	r = &deploy.SSHRunner{ControlDir: control, ConfigFile: sshConfigFile, Options: strings.Fields(os.Getenv("FLEET_SSH_OPTS"))}
	return r, func() { r.Close(); os.RemoveAll(control) }, nil
}

// loadSelected is loadTree plus --on/--exclude and the tree's absolute path.
func loadSelected(c *cli.Context) (*loaded, []outdir.File, []*model.Machine, string, error) {
	l, files, err := loadTree(c)
	if err != nil {
		return nil, nil, nil, "", err
	}
	machines, err := selectMachines(l.fleet, c.StringSlice("on"), c.StringSlice("exclude"))
	if err != nil {
		return nil, nil, nil, "", err
	}
	tree := outDir(c, l)
	if abs, err := filepath.Abs(tree); err == nil {
		tree = abs
	}
	return l, files, machines, tree, nil
}

func diffCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "show, per machine, how the closure a deploy would activate differs from what runs",
		ArgsUsage: "[FILE]",
		Description: `Builds each selected machine's system, fetches the one it runs (/run/current-system)
and prints nix store diff-closures between them, prefixed by the machine's name. Machines
whose cloud host is switched off (enabled = False) are skipped, unless --on names them.`,
		Flags: append(evalFlags(), outFlag(),
			&cli.StringSliceFlag{Name: "on", Usage: "machines (name, @tag, glob, all; default all); repeatable"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "machines to leave out; repeatable"},
			&cli.IntFlag{Name: "parallel", Value: 10, Usage: "machines at once"},
		),
		Action: func(c *cli.Context) error {
			l, files, machines, tree, err := loadSelected(c)
			if err != nil {
				return err
			}
			machines, targets, err := reachable(c, d, l, machines, false, nil)
			if err != nil {
				return err
			}
			if err := checkTargets(l.fleet, machines, targets); err != nil {
				return err
			}
			if err := writeTree(c.App.ErrWriter, tree, files); err != nil {
				return err
			}
			lockNote(c.App.ErrWriter, tree)
			runner, done, err := newRunner()
			if err != nil {
				return err
			}
			defer done()
			if err := checkNix(c, runner); err != nil {
				return err
			}
			var mu sync.Mutex
			writers := map[string]*prefixWriter{}
			out := func(machine string) io.Writer {
				mu.Lock()
				defer mu.Unlock()
				if writers[machine] == nil {
					writers[machine] = &prefixWriter{w: c.App.Writer, prefix: machine + ": ", mu: &sync.Mutex{}}
				}
				return writers[machine]
			}
			steps, err := deploy.DiffSteps(l.fleet, machines, deploy.Options{Tree: tree, Runner: runner, Targets: targets}, out)
			if err != nil {
				return err
			}
			logDir, err := runLogDir(l.fleet.Root, "diff-", time.Now())
			if err != nil {
				return err
			}
			sum := deploy.Execute(c.Context, steps, deploy.ExecOptions{Parallel: c.Int("parallel"), LogDir: logDir})
			for _, w := range writers {
				w.flush()
			}
			if sum.Failed() {
				sum.WriteTable(c.App.ErrWriter)
				return fmt.Errorf("diff failed on some machines")
			}
			return nil
		},
	}
}

// checkTargets validates every machine's target (deploy.Target) before
// anything is written or run.
func checkTargets(f *model.Fleet, machines []*model.Machine, targets map[string]string) error {
	for _, m := range machines {
		if _, err := deploy.Target(f, m, targets); err != nil {
			return err
		}
	}
	return nil
}
