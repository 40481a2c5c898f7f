// Package deploy turns machines into running systems: it builds each
// machine's configuration from the generated flake tree, copies the
// closure to the machine, sets the system profile, activates it and runs
// health checks, rolling back when they fail.
//
// A deploy is a set of Steps, each one action on one machine (install,
// build, copy, profile, activate, check), with dependencies between them.
// The executor (exec.go) walks them with bounded parallelism: a step
// starts only when every step it needs succeeded; when one fails, the
// steps that need it are skipped and the other machines carry on.
//
// Every command runs through a Runner: OpenSSH and nix as subprocesses,
// so the user's ssh config, agent, ProxyJump and NIX_SSHOPTS keep
// working, and tests substitute the programs (a real sshd on 127.0.0.1
// whose nix-env, systemd-run and switch-to-configuration are stubs that
// behave as the real ones do). The nix commands are those the real nix
// takes from MinNixVersion on, whatever nix.conf enables (nix.go), and
// their tests run them with the real nix. Before anything is built, a
// preflight step asks each machine what its deploy needs of it
// (preflight.go).
//
// Builds evaluate several machines per nix process (Options.EvalBatch,
// batch.go): a batcher behind the machines' build steps evaluates each
// batch once, by the first of its steps to run, and every machine then
// builds its own derivation, so steps, events, logs and the summary
// stay per machine, and each copy starts when its own system is built.
// The batch size comes from a memory budget (EvalBatchSize), and the
// batcher never has more machines evaluated at once, whatever the
// executor's parallelism.
//
// A command that fails is a CommandError that keeps what it said last:
// nix's "error:" block without its progress, else the last lines of its
// stderr (runner.go). Table cells and progress lines show it in one line
// (CommandError.Short); the summary (Summary.WriteTable) ends with each
// failed machine's whole error and the path of its log.
package deploy

import (
	"context"
	"errors"
	"io"
)

// IO is where a command's streams go.
type IO struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// NixSSHOpts are ssh options a local nix command's own ssh needs on
	// top of the runner's (NIX_SSHOPTS), such as the target's port.
	NixSSHOpts []string
}

// Runner runs programs here or on a machine.
type Runner interface {
	// Local runs argv on this machine.
	Local(ctx context.Context, argv []string, stdio IO) error
	// Remote runs argv on target ("user@host" or "user@host:port") over
	// ssh, as one shell-quoted command line.
	Remote(ctx context.Context, target string, argv []string, stdio IO) error
}

// Goal is what activation does, as switch-to-configuration names it.
type Goal string

const (
	Switch      Goal = "switch"
	Boot        Goal = "boot"
	Test        Goal = "test"
	DryActivate Goal = "dry-activate"
)

// ErrUpToDate is what a step returns when it finds its machine already
// as the deploy would leave it (the system built is the one running).
// The step counts as succeeded; the machine's steps that need it are not
// needed and do not run (EventUnneeded), and the machine's outcome is
// OutcomeUnchanged.
var ErrUpToDate = errors.New("the machine is up to date")

// Step is one action of one machine.
type Step struct {
	// ID is unique in a deploy: "<machine>/<action>".
	ID      string
	Machine string
	Action  string // install, build, copy, profile, activate, check, rollback
	// Needs are the IDs of the steps that must succeed first.
	Needs []string
	// After are the IDs of steps that must end first, in whatever way:
	// an ordering only (fleet apply's fleet-wide cloud resources before
	// the hosts). Unlike a need, one failing does not skip this step.
	After []string
	// Commands describe what the step runs, for --dry-run and logs.
	Commands []string
	// Run does the step. out receives its output (the machine's log).
	Run func(ctx context.Context, out io.Writer) error
}
