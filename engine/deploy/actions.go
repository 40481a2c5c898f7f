package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fleet-nix/fleet/engine/model"
)

// Options say how to deploy.
type Options struct {
	// Tree is the folder of the generated flake (absolute).
	Tree string
	Goal Goal
	// BuildOn is "local" (build here, copy the closure) or "target" (the
	// machine builds its own system; nothing is copied).
	BuildOn string
	// Targets override machines' ssh destinations (a cloud host's address).
	Targets map[string]string
	Runner  Runner
	// ConfirmTimeout bounds how long checks may take to pass (default 30s).
	ConfirmTimeout time.Duration
	// Install lists machines on a fresh host: nixos-anywhere installs them.
	Install map[string]bool
	// ExtraFiles prepares the files nixos-anywhere copies onto a fresh
	// host (its ssh host key, so it decrypts its secrets on first boot);
	// cleanup removes them.
	ExtraFiles func(m *model.Machine) (dir string, cleanup func(), err error)
	// Secrets fails when a machine's secrets are not ready (missing or
	// stale): they must exist before activation.
	Secrets func(m *model.Machine) error
	// HTTP is the client of http checks (default: 10 s timeout).
	HTTP *http.Client
	// Profile is the system profile on the machines (default
	// /nix/var/nix/profiles/system).
	Profile string
	// OnlyChanged adds a compare step after the build: a machine already
	// running the system built (or, for boot, with it as its profile) is
	// up to date, and nothing is copied or activated there.
	OnlyChanged bool
	// WatchdogGrace is how long, after the confirm timeout, a NixOS
	// machine with rollback waits for fleet's confirmation before it
	// switches back by itself (default 30s). See watchdog.
	WatchdogGrace time.Duration
	// ActivationWait bounds how long activation waits for an earlier
	// activation still running on the machine (default 10m; see
	// activateArgv).
	ActivationWait time.Duration
	// Cached are the machines whose fingerprint (engine/fingerprint) has
	// a store path recorded: their build step evaluates nothing when nix
	// path-info says the path is still in the local store, and builds as
	// usual when it is not. Ignored with BuildOn "target".
	Cached map[string]CachedBuild
	// Built, when set, is told each system evaluated and built here
	// (BuildOn "local"), to record it under the machine's fingerprint.
	Built func(machine, path string)
	// Builders are remote builders for local builds, nix machine lines
	// (fleet(builders = ...)), given after nix.conf's own (see
	// cache.go). Steps and DiffSteps take the fleet's when nil.
	Builders []string
	// Deployed, when set, is told each machine whose deploy completed
	// with the switch goal and the system it now runs: activated and
	// its checks passed (not degraded), or found already running it by
	// the compare step (OnlyChanged). fleet records it (engine/fingerprint
	// deploy records). See reportDeployed.
	Deployed func(machine, system string)
	// LateTargets are machines whose target is known only when their
	// first step runs (a host created in the same run): resolve returns
	// it then. Their commands show AddressPlaceholder (see late.go).
	LateTargets map[string]func() (string, error)
	// EvalBatch is how many machines one nix process evaluates (see
	// batch.go; EvalBatchSize sizes it from a memory budget). Below 2,
	// each machine's build step evaluates and builds alone. Ignored with
	// BuildOn "target" and for cached machines.
	EvalBatch int
}

// CachedBuild is a store path recorded for a machine's fingerprint.
type CachedBuild struct {
	Path        string
	Fingerprint string
}

// WatchdogUnit is the systemd unit of the rollback watchdog (a transient
// timer, fleet-watchdog.timer, and its service).
const WatchdogUnit = "fleet-watchdog"

// ActivationUnit is the transient service that activates a NixOS
// system (fleet-activate.service): switch-to-configuration runs there,
// under systemd, so that a dropped ssh session does not kill it.
const ActivationUnit = "fleet-activate"

// DefaultProfile is where NixOS and nix-darwin keep system generations.
const DefaultProfile = "/nix/var/nix/profiles/system"

// Target is where a machine is reached: an override (the public address
// of its cloud host, looked up by the caller), machine(target = ...), or,
// for a NixOS machine without a cloud host, root@<name>.<domain>. A
// machine with a cloud host and no target is reached at its host's public
// address, so without an override it has no target yet.
//
// The target is validated (ValidateTarget): a bad one is an error naming
// the machine, before any command is built from it. The one exception is
// AddressPlaceholder, which --dry-run shows for an address not known yet
// and which nothing runs with (Remote rejects it).
func Target(f *model.Fleet, m *model.Machine, overrides map[string]string) (string, error) {
	t, err := target(f, m, overrides)
	if err != nil {
		return "", err
	}
	if t == AddressPlaceholder(m.Name) && overrides[m.Name] == t {
		return t, nil
	}
	if err := ValidateTarget(t); err != nil {
		return "", fmt.Errorf("machine %s (%s): %w", m.Name, m.Pos, err)
	}
	return t, nil
}

// AddressPlaceholder is what a dry run shows as the target of a machine
// whose cloud host's address is not known here. It is no valid target.
func AddressPlaceholder(machine string) string {
	return "root@<public address of " + machine + "'s host>"
}

func target(f *model.Fleet, m *model.Machine, overrides map[string]string) (string, error) {
	if t := overrides[m.Name]; t != "" {
		return t, nil
	}
	if m.Target != "" {
		return m.Target, nil
	}
	if m.Host != nil {
		return "", fmt.Errorf("machine %s (%s): deploys go to its %s host's public address, which is not known (the host does not exist, or its cloud was not asked); set machine(target = \"root@host\") to reach it another way", m.Name, m.Pos, m.Host.Provider)
	}
	if f.Domain != "" && m.Class == model.NixOS {
		return "root@" + m.Name + "." + f.Domain, nil
	}
	return "", fmt.Errorf("machine %s (%s): no ssh target: set machine(target = \"root@host\")", m.Name, m.Pos)
}

// Steps returns the deploy of machines: per machine a chain
// secrets -> preflight -> build -> copy -> profile -> activate -> check
// (install -> check on a fresh host), each step needing the one before.
func Steps(f *model.Fleet, machines []*model.Machine, opts Options) ([]Step, error) {
	if opts.Goal == "" {
		opts.Goal = Switch
	}
	switch opts.Goal {
	case Switch, Boot, Test, DryActivate:
	default:
		return nil, fmt.Errorf("goal %q: use switch, boot, test or dry-activate", opts.Goal)
	}
	if opts.ConfirmTimeout <= 0 {
		opts.ConfirmTimeout = 30 * time.Second
	}
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Profile == "" {
		opts.Profile = DefaultProfile
	}
	if opts.WatchdogGrace <= 0 {
		opts.WatchdogGrace = 30 * time.Second
	}
	if opts.ActivationWait <= 0 {
		opts.ActivationWait = 10 * time.Minute
	}
	flake, err := FlakeRef(opts.Tree)
	if err != nil {
		return nil, err
	}
	var steps []Step
	signing := &localSigning{}
	if opts.Builders == nil {
		opts.Builders = f.Builders
	}
	push, builders := newPushes(f.Cache), newBuilderSet(opts.Builders)
	batches := planBatches(machines, opts, flake, builders)
	for _, m := range machines {
		resolve := opts.LateTargets[m.Name]
		target := AddressPlaceholder(m.Name)
		if resolve == nil {
			if target, err = Target(f, m, opts.Targets); err != nil {
				return nil, err
			}
		}
		d := &machineDeploy{m: m, target: target, o: opts, flake: flake, signing: signing, batcher: batches, batch: batches.batch(m.Name),
			push: push, builders: builders}
		ms := machineSteps(d)
		if resolve != nil {
			lateTarget(ms, d, resolve)
		}
		steps = append(steps, ms...)
	}
	return steps, nil
}

// machineSteps chains one machine's steps.
func machineSteps(d *machineDeploy) []Step {
	m, target, o := d.m, d.target, d.o
	// What --dry-run shows for the path nix build prints.
	system := "/nix/store/HASH-" + string(m.Class) + "-system-" + m.Name
	var steps []Step
	add := func(action string, cmds []string, run func(context.Context, io.Writer) error) {
		s := Step{ID: m.Name + "/" + action, Machine: m.Name, Action: action, Commands: cmds, Run: run}
		if n := len(steps); n > 0 {
			s.Needs = []string{steps[n-1].ID}
		}
		steps = append(steps, s)
	}
	if o.Secrets != nil {
		add("secrets", []string{"fleet secrets check (this machine's files)"}, func(ctx context.Context, w io.Writer) error {
			return o.Secrets(m)
		})
	}
	if o.Install[m.Name] {
		add("install", []string{ShellJoin(d.installArgv("$EXTRA_FILES"))}, d.install)
	} else {
		add("preflight", []string{"ssh " + target + " " + ShellJoin(d.preflightNeeds().argv())}, d.preflight)
		cmds, run := d.buildStep()
		add("build", cmds, run)
		if o.OnlyChanged {
			add("compare", []string{"ssh " + target + " " + ShellJoin(d.currentArgv()),
				"(when it prints " + system + ", the machine is up to date: nothing more runs)"}, d.compare)
		}
		if o.BuildOn != "target" {
			if d.push != nil {
				add("push", []string{d.push.command(system)}, d.pushSystem)
			}
			add("copy", []string{nixCommand(target, ShellJoin(d.copyArgv("STORE", system)))}, d.copy)
		}
		if o.Goal == Switch || o.Goal == Boot {
			add("profile", []string{"ssh " + target + " " + ShellJoin(d.profileArgv(system))}, d.profile)
		}
		activate := []string{"ssh " + target + " " + ShellJoin(d.activateArgv(system, o.Goal))}
		if m.Class == model.NixOS {
			activate = append(activate, "on exit 4 (switched, units failed): ssh "+target+" "+ShellJoin(failedUnitsArgv))
		}
		add("activate", activate, d.activate)
	}
	// With rollback on, the check step runs even without checks: the
	// machine must answer again after activation.
	activates := o.Goal == Switch || o.Goal == Test
	if o.Goal != DryActivate && (len(m.Checks) > 0 || m.Rollback && activates) {
		var cmds []string
		if m.Rollback && activates {
			cmds = append(cmds, "ssh "+target+" true")
		}
		for _, c := range m.Checks {
			cmds = append(cmds, describeCheck(c, target))
		}
		if d.watchdog() {
			cmds = append(cmds, "on success: ssh "+target+" "+ShellJoin(d.confirmArgv()))
		}
		if m.Rollback {
			cmds = append(cmds, "on failure: ssh "+target+" "+ShellJoin(d.rollbackArgv()))
		}
		if d.watchdog() {
			cmds = append(cmds, fmt.Sprintf("unreachable: the machine switches back by itself %s after activation", d.watchdogDelay()))
		}
		add("check", cmds, d.check)
	}
	d.reportDeployed(steps)
	return steps
}

// machineDeploy is one machine's deploy: its steps share the system path.
type machineDeploy struct {
	m      *model.Machine
	target string
	o      Options
	flake  string // the tree's flake reference (FlakeRef)
	// signing is shared by the run's machines (see preflight).
	signing *localSigning
	// batch is the machine's evaluation batch (batch.go); nil: the build
	// step evaluates alone. batcher is the run's batches, nil without
	// batching.
	batcher *evalBatcher
	batch   *evalNode
	// push is the fleet's binary cache, shared by the run's machines;
	// builders its remote builders (cache.go). Nil without them.
	push     *pushes
	builders *builderSet
	system   string // the store path built
	// activated is when activation ended: the watchdog's delay runs
	// from there.
	activated time.Time
	// unitsFailed is set when activation switched but left units
	// failed: the checks decide, and their errors say it too.
	unitsFailed *UnitsFailedError
}

// watchdog reports whether activation arms a rollback watchdog on the
// machine: a systemd timer that switches the previous generation back
// unless fleet confirms the deploy in time. It is what makes rollback
// work when the new system cuts the machine off (a broken network or
// sshd): fleet cannot reach it to switch back, but the machine can. The
// timer is armed by the activation unit itself, after
// switch-to-configuration, so a dropped ssh session does not stop it.
// nix-darwin has no systemd: there, rollback is fleet's alone.
func (d *machineDeploy) watchdog() bool {
	return d.m.Rollback && d.m.Class == model.NixOS && (d.o.Goal == Switch || d.o.Goal == Test)
}

// watchdogDelay is how long the machine waits for the confirmation.
func (d *machineDeploy) watchdogDelay() time.Duration {
	return d.o.ConfirmTimeout + d.o.WatchdogGrace
}

// confirmArgv disarms the watchdog after the checks passed.
func (d *machineDeploy) confirmArgv() []string {
	return d.sudo([]string{"systemctl", "stop", WatchdogUnit + ".timer"})
}

func (d *machineDeploy) attr() string {
	if d.m.Class == model.Darwin {
		return d.flake + "#darwinConfigurations." + d.m.Name + ".system"
	}
	return d.flake + "#nixosConfigurations." + d.m.Name + ".config.system.build.toplevel"
}

// buildArgv builds the machine's system and prints it as JSON (nix 2.8
// has no --print-out-paths).
func (d *machineDeploy) buildArgv() []string {
	argv := nixArgv("build", "--no-link", "--json")
	if d.o.BuildOn == "target" {
		url, _ := storeOf(d.target)
		argv = append(argv, "--eval-store", "auto", "--store", url)
	} else if d.builders != nil {
		argv = append(argv, "--builders", d.builders.arg())
	}
	return append(argv, d.attr())
}

// storeOf is target's ssh-ng:// store and the ssh options nix needs for
// it (see NixStoreURL). A target that does not parse is kept as written:
// the step's ssh fails on it with the reason.
func storeOf(target string) (string, []string) {
	url, opts, err := NixStoreURL(target)
	if err != nil {
		return "ssh-ng://" + target, nil
	}
	return url, opts
}

// nixCommand shows a nix command on target's store (STORE in cmd) as it
// runs, with the NIX_SSHOPTS it adds.
func nixCommand(target, cmd string) string {
	url, opts := storeOf(target)
	cmd = strings.Replace(cmd, "STORE", url, 1)
	if len(opts) > 0 {
		cmd = "NIX_SSHOPTS+=" + ShellQuote(strings.Join(opts, " ")) + " " + cmd
	}
	return cmd
}

func (d *machineDeploy) buildCommand() string {
	if d.o.BuildOn == "target" {
		return nixCommand(d.target, ShellJoin(d.buildArgv()))
	}
	return ShellJoin(d.buildArgv())
}

// buildStep is the build step's commands and action: the build, or for a
// machine with a cached system, a check that it is still there.
func (d *machineDeploy) buildStep() ([]string, func(context.Context, io.Writer) error) {
	if d.batch != nil {
		return d.batch.commands(d.m.Name, d.realiseArgv("DRV")), d.buildBatched
	}
	c, ok := d.o.Cached[d.m.Name]
	if !ok || d.o.BuildOn == "target" {
		return []string{d.buildCommand()}, d.build
	}
	short := c.Fingerprint
	if len(short) > 12 {
		short = short[:12]
	}
	fallback := d.buildCommand()
	if d.batcher != nil {
		fallback = strings.Join(d.batcher.alone(d.m.Class, d.m.Name).commands(d.m.Name, d.realiseArgv("DRV")), ", then ")
	}
	return []string{"cached " + c.Path + " (fingerprint " + short + ")",
			ShellJoin(pathInfoArgv(c.Path)) + "; when it fails: " + fallback},
		func(ctx context.Context, w io.Writer) error { return d.cached(ctx, w, c) }
}

// pathInfoArgv succeeds when path is valid in the local store.
func pathInfoArgv(path string) []string { return nixArgv("path-info", path) }

// cached uses the system recorded for the machine's fingerprint when the
// local store still has it (nix path-info fails on a path
// garbage-collected since), and builds otherwise.
func (d *machineDeploy) cached(ctx context.Context, w io.Writer, c CachedBuild) error {
	err := d.o.Runner.Local(ctx, pathInfoArgv(c.Path), IO{Stdout: w, Stderr: w})
	if err == nil {
		d.system = c.Path
		fmt.Fprintf(w, "cached %s (fingerprint %s): nothing evaluated\n", c.Path, c.Fingerprint)
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	fmt.Fprintf(w, "cached %s is not in the store any more (%v): building\n", c.Path, err)
	if d.batcher != nil {
		// Evaluated within the run's evaluation budget, as a batch of one.
		d.batch = d.batcher.alone(d.m.Class, d.m.Name)
		return d.buildBatched(ctx, w)
	}
	return d.build(ctx, w)
}

func (d *machineDeploy) build(ctx context.Context, w io.Writer) error {
	var out bytes.Buffer
	stdio := IO{Stdout: io.MultiWriter(&out, w), Stderr: w}
	if d.o.BuildOn == "target" {
		_, stdio.NixSSHOpts = storeOf(d.target)
	} else if d.builders != nil {
		if _, err := d.builders.resolve(ctx, d.o.Runner); err != nil {
			return err
		}
	}
	if err := d.o.Runner.Local(ctx, d.buildArgv(), stdio); err != nil {
		return err
	}
	system, err := nixBuildOutput(out.Bytes())
	if err != nil {
		return err
	}
	d.system = system
	fmt.Fprintf(w, "built %s\n", system)
	if d.o.Built != nil && d.o.BuildOn != "target" {
		d.o.Built(d.m.Name, system)
	}
	return nil
}

// currentArgv prints the system the machine runs, or for the boot goal
// the one it boots next.
func (d *machineDeploy) currentArgv() []string {
	current := "/run/current-system"
	if d.o.Goal == Boot {
		current = d.o.Profile
	}
	return []string{"readlink", "-f", current}
}

// compare ends the machine's deploy (ErrUpToDate) when it already runs
// the system built. A machine that cannot say (no current system yet,
// readlink failing) is deployed.
func (d *machineDeploy) compare(ctx context.Context, w io.Writer) error {
	var out bytes.Buffer
	if err := d.o.Runner.Remote(ctx, d.target, d.currentArgv(), IO{Stdout: &out, Stderr: w}); err != nil {
		var ce *CommandError
		if errors.As(err, &ce) && ce.ExitCode > 0 && ce.ExitCode != 255 {
			fmt.Fprintf(w, "no current system to compare with: deploying\n")
			return nil
		}
		return err
	}
	current := strings.TrimSpace(out.String())
	fmt.Fprintf(w, "running: %s\nbuilt:   %s\n", current, d.system)
	if current == d.system {
		return ErrUpToDate
	}
	return nil
}

// copyArgv copies the system's closure to the machine's store. The
// paths built here are unsigned: --no-check-sigs lets the machine's
// nix-daemon take them from a trusted user (see preflight).
// With a binary cache, the machine substitutes what it can from it (see
// cache.go).
func (d *machineDeploy) copyArgv(url, system string) []string {
	if d.push != nil {
		return nixArgv("copy", "--no-check-sigs", "--substitute-on-destination", "--builders-use-substitutes", "--to", url, system)
	}
	return nixArgv("copy", "--no-check-sigs", "--to", url, system)
}

func (d *machineDeploy) copy(ctx context.Context, w io.Writer) error {
	url, opts := storeOf(d.target)
	return d.o.Runner.Local(ctx, d.copyArgv(url, d.system), IO{Stdout: w, Stderr: w, NixSSHOpts: opts})
}

// sudo prefixes a command for a target that does not log in as root
// (nix-darwin machines are reached as their admin user).
func (d *machineDeploy) sudo(argv []string) []string {
	if user, _, ok := strings.Cut(d.target, "@"); ok && user != "root" {
		return append([]string{"sudo", "-H", "--"}, argv...)
	}
	return argv
}

func (d *machineDeploy) profileArgv(system string) []string {
	return d.sudo([]string{"nix-env", "-p", d.o.Profile, "--set", system})
}

func (d *machineDeploy) profile(ctx context.Context, w io.Writer) error {
	return d.o.Runner.Remote(ctx, d.target, d.profileArgv(d.system), IO{Stdout: w, Stderr: w})
}

// activateArgv runs switch-to-configuration in a transient service,
// fleet-activate.service (systemd-run --wait), so that a dropped ssh
// session (the network restarting) does not kill it; nix-darwin's
// activate script instead.
//
// Because the activation outlives its ssh session, the next deploy may
// find it still running, and systemd-run refuses to start a unit that
// exists ("Unit fleet-activate.service already exists."). So the
// service is started by a shell that first waits, up to ActivationWait,
// for an earlier fleet-activate.service to end, saying what it runs
// (the unit's description names the goal and the system), and clears a
// failed one (reset-failed; --collect normally unloads it). One name,
// not one per run, keeps activations on a machine one at a time.
func (d *machineDeploy) activateArgv(system string, goal Goal) []string {
	if d.m.Class == model.Darwin {
		return d.sudo([]string{system + "/activate"})
	}
	stc := []string{system + "/bin/switch-to-configuration", string(goal)}
	description := "switch-to-configuration " + string(goal) + " of " + system
	if d.watchdog() {
		// Switch, then arm the watchdog whatever the switch did (a failed
		// switch may have half-activated), keeping the switch's status.
		arm := ShellJoin([]string{"systemd-run", "--unit=" + WatchdogUnit, "--collect", "--quiet",
			fmt.Sprintf("--on-active=%ds", int(d.watchdogDelay().Round(time.Second)/time.Second)),
			"--timer-property=AccuracySec=1s", "--", "sh", "-c", d.rollbackScript()})
		stc = []string{"sh", "-c", ShellJoin(stc) + "; rc=$?; systemctl stop " + WatchdogUnit + ".timer 2>/dev/null; " + arm + "; exit $rc"}
	}
	run := append([]string{"systemd-run", "--wait", "--collect", "--quiet", "--service-type=exec",
		"--unit=" + ActivationUnit, "--description=" + description, "--"}, stc...)
	wait := d.o.ActivationWait
	if wait <= 0 {
		wait = 10 * time.Minute
	}
	seconds := int(wait.Round(time.Second) / time.Second)
	u := ActivationUnit + ".service"
	// One line, so that logs and --dry-run show it as one command.
	script := `u=` + u + `; i=0; ` +
		`while case $(systemctl is-active "$u" 2>/dev/null) in active|activating|deactivating|reloading|refreshing) true ;; *) false ;; esac; do ` +
		`what=$(systemctl show -p Description --value "$u" 2>/dev/null); ` +
		`[ $i != 0 ] || echo "fleet: an earlier activation still runs ($u: $what): waiting for it to end" >&2; ` +
		`if [ $i -ge ` + strconv.Itoa(seconds) + ` ]; then echo "fleet: $u ($what) still runs after ` + wait.String() + `: see journalctl -u $u there; if it hangs, stop it (systemctl stop $u) and deploy again" >&2; exit 1; fi; ` +
		`sleep 1; i=$((i+1)); done; ` +
		`systemctl reset-failed "$u" 2>/dev/null; ` +
		`exec ` + ShellJoin(run)
	return d.sudo([]string{"sh", "-c", script})
}

// failedUnitsArgv lists the machine's failed units, one a line, the
// unit first.
var failedUnitsArgv = []string{"systemctl", "--failed", "--no-legend", "--plain", "--full"}

func (d *machineDeploy) activate(ctx context.Context, w io.Writer) error {
	err := d.o.Runner.Remote(ctx, d.target, d.activateArgv(d.system, d.o.Goal), IO{Stdout: w, Stderr: w})
	d.activated = time.Now()
	var ce *CommandError
	if d.m.Class == model.NixOS && errors.As(err, &ce) && ce.ExitCode == 4 {
		d.unitsFailed = d.failedUnits(ctx, w)
		return d.unitsFailed
	}
	return err
}

// failedUnits asks the machine which units failed, after
// switch-to-configuration exited 4.
func (d *machineDeploy) failedUnits(ctx context.Context, w io.Writer) *UnitsFailedError {
	e := &UnitsFailedError{}
	var out bytes.Buffer
	if err := d.remote(ctx, 30*time.Second, failedUnitsArgv, &out); err != nil {
		fmt.Fprintf(w, "listing the failed units: %v\n", err)
		return e
	}
	w.Write(out.Bytes())
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) > 0 {
			e.Units = append(e.Units, strings.TrimPrefix(f[0], "●"))
		}
	}
	return e
}

// UnitsFailedError is activation that switched to the new system but
// left units failed: switch-to-configuration's exit status 4. The new
// system is active, so the step counts as done: the machine's checks
// run and, with rollback, decide whether to switch back. Unless they
// fail, the machine's outcome is OutcomeDegraded with this error.
type UnitsFailedError struct {
	// Units are those systemctl --failed listed afterwards (failed
	// before the deploy or not); none when it listed none or could not
	// be asked.
	Units []string
}

func (e *UnitsFailedError) Error() string {
	if len(e.Units) == 0 {
		return "the new system is active, but switch-to-configuration exited 4 (units failed, and systemctl --failed lists none now): see journalctl -u " + ActivationUnit + ".service on the machine"
	}
	return "the new system is active, but units failed: " + strings.Join(e.Units, ", ") + " (see systemctl status " + e.Units[0] + " on the machine)"
}

func (d *machineDeploy) installArgv(extraFiles string) []string {
	host := d.target
	if !strings.Contains(host, "@") {
		host = "root@" + host
	}
	argv := []string{"nixos-anywhere", "--flake", d.flake + "#" + d.m.Name, "--target-host", host}
	if extraFiles != "" {
		argv = append(argv, "--extra-files", extraFiles)
	}
	return argv
}

func (d *machineDeploy) install(ctx context.Context, w io.Writer) error {
	dir := ""
	if d.o.ExtraFiles != nil {
		var cleanup func()
		var err error
		dir, cleanup, err = d.o.ExtraFiles(d.m)
		if err != nil {
			return err
		}
		defer cleanup()
	}
	return d.o.Runner.Local(ctx, d.installArgv(dir), IO{Stdout: w, Stderr: w})
}

// rollbackArgv switches the previous generation back (disarming the
// watchdog first, so that it does not switch back a second time).
func (d *machineDeploy) rollbackArgv() []string {
	script := d.rollbackScript()
	if d.watchdog() {
		script = "systemctl stop " + WatchdogUnit + ".timer 2>/dev/null; " + script
	}
	return d.sudo([]string{"sh", "-c", script})
}

// rollbackScript is the shell script that switches back.
func (d *machineDeploy) rollbackScript() string {
	p := ShellQuote(d.o.Profile)
	script := "nix-env -p " + p + " --rollback && " + p + "/bin/switch-to-configuration switch"
	if d.o.Goal == Test {
		// test never set the profile: activating it again is the rollback.
		script = p + "/bin/switch-to-configuration test"
	}
	if d.m.Class == model.Darwin {
		script = "nix-env -p " + p + " --rollback && " + p + "/activate"
	}
	return script
}

func describeCheck(c model.Check, target string) string {
	switch c.Kind {
	case "command":
		return "ssh " + target + " sh -c " + ShellQuote(c.Command)
	case "http":
		return fmt.Sprintf("GET %s (want %d)", c.URL, c.Status)
	}
	return "connect " + c.Address
}

// check runs the machine's checks until all pass or the confirm timeout
// ends. Passing, it disarms the watchdog. Failing, with rollback, it
// switches the previous generation back over ssh; when the machine does
// not answer any more, it waits for the machine's watchdog to have done
// so and looks again.
func (d *machineDeploy) check(ctx context.Context, w io.Writer) error {
	deadline := time.Now().Add(d.o.ConfirmTimeout)
	// A check that hangs (a command, a connection) ends at the deadline:
	// past it, the watchdog's grace is all that is left.
	checkCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var last error
	for {
		err := d.runChecks(checkCtx, w)
		if err == nil {
			last = nil
			break
		}
		// A check cut off by the deadline keeps the reason before it.
		// Past the deadline is cut off too: the dialer or client sees it
		// before the context's timer has fired and set checkCtx.Err().
		if cutOff := checkCtx.Err() != nil || !time.Now().Before(deadline); last == nil || !cutOff {
			last = err
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Second, time.Until(deadline)+time.Millisecond)):
		}
	}
	if last == nil {
		if !d.watchdog() {
			return nil
		}
		// Disarming must reach the machine before the timer fires, with
		// room for the ssh round trip.
		if left := time.Until(d.activated.Add(d.watchdogDelay())); left < min(2*time.Second, d.o.WatchdogGrace/2) {
			return fmt.Errorf("checks passed only %s after activation, too close to the watchdog's %s: the machine may have switched back by itself; look at it (fleet diff) and deploy again",
				time.Since(d.activated).Round(time.Second), d.watchdogDelay())
		}
		if err := d.remote(ctx, 30*time.Second, d.confirmArgv(), w); err != nil {
			return fmt.Errorf("checks passed, but the watchdog could not be disarmed (%w): the machine switches back %s after activation unless you run: ssh %s %s",
				err, d.watchdogDelay(), d.target, ShellJoin(d.confirmArgv()))
		}
		return nil
	}
	if !d.m.Rollback {
		if d.unitsFailed != nil {
			return fmt.Errorf("checks did not pass within %s: %w; and %w", d.o.ConfirmTimeout, last, d.unitsFailed)
		}
		return fmt.Errorf("checks did not pass within %s: %w", d.o.ConfirmTimeout, last)
	}
	fmt.Fprintf(w, "checks failed (%v): rolling back\n", last)
	err := d.remote(context.WithoutCancel(ctx), 5*time.Minute, d.rollbackArgv(), w)
	var ce *CommandError
	if err == nil || d.m.Class == model.NixOS && errors.As(err, &ce) && ce.ExitCode == 4 {
		// Exit 4: switched back, with units failed there too.
		return &RolledBackError{Machine: d.m.Name, Cause: last, UnitsFailed: d.unitsFailed}
	}
	if !d.watchdog() || !unreachable(err) {
		return fmt.Errorf("checks did not pass (%v), and rolling back failed: %w", last, err)
	}
	return d.awaitWatchdog(ctx, w, last)
}

// awaitWatchdog waits until the machine's watchdog has switched back,
// then reaches the machine again (for up to a minute) to see that it no
// longer runs the system deployed.
func (d *machineDeploy) awaitWatchdog(ctx context.Context, w io.Writer, cause error) error {
	due := d.activated.Add(d.watchdogDelay() + 2*time.Second)
	fmt.Fprintf(w, "the machine does not answer: its watchdog switches back at %s\n", due.Format(time.TimeOnly))
	select {
	case <-ctx.Done():
		return fmt.Errorf("checks did not pass (%v) and the machine does not answer; its watchdog switches back at %s", cause, due.Format(time.TimeOnly))
	case <-time.After(time.Until(due)):
	}
	var err error
	for end := time.Now().Add(time.Minute); ; {
		var out bytes.Buffer
		if err = d.remote(ctx, 10*time.Second, []string{"readlink", "-f", "/run/current-system"}, &out); err == nil {
			current := strings.TrimSpace(out.String())
			if current == d.system {
				return fmt.Errorf("checks did not pass (%v) and the machine still runs %s after its watchdog was due: switch back by hand", cause, current)
			}
			fmt.Fprintf(w, "the machine answers again, running %s\n", current)
			return &RolledBackError{Machine: d.m.Name, Cause: cause, ByWatchdog: true}
		}
		if ctx.Err() != nil || time.Now().After(end) {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("checks did not pass (%v) and the machine does not answer (%v): its watchdog was due to switch back at %s; check it", cause, err, due.Format(time.TimeOnly))
}

// remote runs argv on the machine with a time limit.
func (d *machineDeploy) remote(ctx context.Context, limit time.Duration, argv []string, w io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	return d.o.Runner.Remote(ctx, d.target, argv, IO{Stdout: w, Stderr: w})
}

// unreachable reports whether a remote command failed because ssh could
// not reach the machine (ssh's status 255, or no answer in time).
func unreachable(err error) bool {
	var ce *CommandError
	return errors.As(err, &ce) && (ce.ExitCode == 255 || errors.Is(ce.Err, context.DeadlineExceeded))
}

// RolledBackError: the checks failed and the previous generation runs again.
type RolledBackError struct {
	Machine string
	Cause   error
	// ByWatchdog: the machine did not answer, and switched back by
	// itself when fleet did not confirm the deploy.
	ByWatchdog bool
	// UnitsFailed: the activation rolled back had left units failed.
	UnitsFailed *UnitsFailedError
}

func (e *RolledBackError) Error() string {
	msg := fmt.Sprintf("checks did not pass (%v): rolled back to the previous generation", e.Cause)
	if e.ByWatchdog {
		msg = fmt.Sprintf("checks did not pass (%v): the machine stopped answering and its watchdog rolled it back to the previous generation", e.Cause)
	}
	if e.UnitsFailed != nil {
		msg += "; the activation rolled back had left units failed: " + strings.Join(e.UnitsFailed.Units, ", ")
	}
	return msg
}

// Unwrap is the checks' failure, and the units that failed.
func (e *RolledBackError) Unwrap() []error {
	if e.UnitsFailed != nil {
		return []error{e.Cause, e.UnitsFailed}
	}
	return []error{e.Cause}
}

func (d *machineDeploy) runChecks(ctx context.Context, w io.Writer) error {
	if d.m.Rollback && d.o.Goal != Boot {
		// The machine must answer again after activation.
		if err := d.remote(ctx, 30*time.Second, []string{"true"}, w); err != nil {
			return fmt.Errorf("ssh %s true: %w", d.target, err)
		}
	}
	for _, c := range d.m.Checks {
		var err error
		switch c.Kind {
		case "command":
			err = d.o.Runner.Remote(ctx, d.target, []string{"sh", "-c", c.Command}, IO{Stdout: w, Stderr: w})
		case "http":
			err = httpCheck(ctx, d.o.HTTP, c)
		case "tcp":
			var conn net.Conn
			conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", c.Address)
			if err == nil {
				conn.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", describeCheck(c, d.target), err)
		}
	}
	return nil
}

func httpCheck(ctx context.Context, client *http.Client, c model.Check) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return err
	}
	// A check that wants a redirect (3xx) looks at the answer itself:
	// followed, it could never pass. Other checks follow redirects.
	if c.Status >= 300 && c.Status < 400 {
		noFollow := *client
		noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		client = &noFollow
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != c.Status {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// BuildSteps builds the selected machines' systems here, one step each
// (evaluated in batches with opts.EvalBatch: batch.go), and nothing else: no target, no secrets, no network beyond what nix
// fetches (fleet build, for CI). done receives each machine's store path.
func BuildSteps(machines []*model.Machine, opts Options, done func(machine, path string)) ([]Step, error) {
	flake, err := FlakeRef(opts.Tree)
	if err != nil {
		return nil, err
	}
	opts.BuildOn = "local"
	builders := newBuilderSet(opts.Builders)
	batches := planBatches(machines, opts, flake, builders)
	var steps []Step
	for _, m := range machines {
		d := &machineDeploy{m: m, o: opts, flake: flake, batcher: batches, batch: batches.batch(m.Name), builders: builders}
		cmds, run := d.buildStep()
		steps = append(steps, Step{ID: m.Name + "/build", Machine: m.Name, Action: "build",
			Commands: cmds,
			Run: func(ctx context.Context, w io.Writer) error {
				if err := run(ctx, w); err != nil {
					return err
				}
				if done != nil {
					done(m.Name, d.system)
				}
				return nil
			}})
	}
	return steps, nil
}

// DiffSteps shows, per machine, what a deploy would change: it builds the
// new system, fetches the one the machine runs (/run/current-system) into
// the local store, and prints nix store diff-closures between them to
// out(machine).
func DiffSteps(f *model.Fleet, machines []*model.Machine, opts Options, out func(machine string) io.Writer) ([]Step, error) {
	if opts.Profile == "" {
		opts.Profile = DefaultProfile
	}
	flake, err := FlakeRef(opts.Tree)
	if err != nil {
		return nil, err
	}
	var steps []Step
	if opts.Builders == nil {
		opts.Builders = f.Builders
	}
	builders := newBuilderSet(opts.Builders)
	for _, m := range machines {
		target, err := Target(f, m, opts.Targets)
		if err != nil {
			return nil, err
		}
		d := &machineDeploy{m: m, target: target, o: opts, flake: flake, builders: builders}
		d.o.BuildOn = "local"
		var current string
		build := Step{ID: m.Name + "/build", Machine: m.Name, Action: "build", Commands: []string{d.buildCommand()}, Run: d.build}
		fetch := Step{ID: m.Name + "/fetch", Machine: m.Name, Action: "fetch", Needs: []string{build.ID},
			Commands: []string{"ssh " + target + " readlink -f /run/current-system", nixCommand(target, ShellJoin(fetchArgv("STORE", "CURRENT")))},
			Run: func(ctx context.Context, w io.Writer) error {
				var b bytes.Buffer
				if err := opts.Runner.Remote(ctx, target, []string{"readlink", "-f", "/run/current-system"}, IO{Stdout: &b, Stderr: w}); err != nil {
					return err
				}
				current = strings.TrimSpace(b.String())
				if current == "" {
					return fmt.Errorf("%s runs no NixOS or nix-darwin system yet (/run/current-system is missing)", m.Name)
				}
				// What the machine says goes onto a local nix command
				// line: only a store path may.
				if !isStorePath(current) {
					return fmt.Errorf("machine %s: /run/current-system resolves to %q, not a /nix/store/<hash>-<name> path", m.Name, firstLine([]byte(current)))
				}
				url, sshOpts := storeOf(target)
				return opts.Runner.Local(ctx, fetchArgv(url, current), IO{Stdout: w, Stderr: w, NixSSHOpts: sshOpts})
			}}
		diff := Step{ID: m.Name + "/diff", Machine: m.Name, Action: "diff", Needs: []string{fetch.ID},
			Commands: []string{ShellJoin(diffArgv("CURRENT", "NEW"))},
			Run: func(ctx context.Context, w io.Writer) error {
				o := out(m.Name)
				return opts.Runner.Local(ctx, diffArgv(current, d.system), IO{Stdout: io.MultiWriter(o, w), Stderr: w})
			}}
		steps = append(steps, build, fetch, diff)
	}
	return steps, nil
}

// fetchArgv copies what a machine runs into the local store. The
// machine's system is not signed either (see copyArgv): only a trusted
// user (root, or one in trusted-users here) can take it.
func fetchArgv(url, path string) []string {
	return nixArgv("copy", "--no-check-sigs", "--from", url, path)
}

// diffArgv shows how the closure of new differs from that of current.
func diffArgv(current, new string) []string {
	return nixArgv("store", "diff-closures", current, new)
}

// isStorePath reports whether p is a store path: /nix/store/<hash>-<name>
// with a hash of 32 nix-base32 characters and a name of the characters
// Nix allows, not starting with a dot.
func isStorePath(p string) bool {
	rest, ok := strings.CutPrefix(p, "/nix/store/")
	if !ok || len(rest) < 34 || rest[32] != '-' {
		return false
	}
	hash, name := rest[:32], rest[33:]
	if strings.Trim(hash, "0123456789abcdfghijklmnpqrsvwxyz") != "" {
		return false
	}
	if len(name) > 211 || name[0] == '.' {
		return false
	}
	return strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-._?=") == ""
}
