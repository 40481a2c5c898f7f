package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
	"github.com/fleet-nix/fleet/engine/model"
)

// rig is a real sshd on 127.0.0.1 whose nix, nix-env, systemd-run and
// switch-to-configuration are recording stubs, and the runner for it.
type rig struct {
	srv    *sshtest.Server
	runner *deploy.SSHRunner
	fleet  *model.Fleet
}

func newRig(t testing.TB, machines ...*model.Machine) *rig {
	t.Helper()
	srv := sshtest.Start(t)
	srv.RecordDeploy()
	r := &rig{srv: srv, fleet: &model.Fleet{Name: "t", Machines: machines}}
	r.runner = &deploy.SSHRunner{Options: srv.ClientOptions(), ControlDir: srv.ControlDir(), Env: srv.Env()}
	t.Cleanup(r.runner.Close)
	// Each machine is a host of its own (a port of the server's), as
	// its systemd is its own: one's activation does not block another's.
	targets := []string{srv.Target()}
	if len(machines) > 1 {
		targets = append(targets, srv.AddHosts(len(machines)-1)...)
	}
	for i, m := range machines {
		m.Target = targets[i]
	}
	// nix build prints the machine's fake system (from the attribute).
	var cases strings.Builder
	for _, m := range machines {
		fmt.Fprintf(&cases, "*.%s.*) %s ;;\n", m.Name, builtJSON(srv.StorePath(m.Name)))
	}
	// nix copy records the NIX_SSHOPTS it got: the port is there, not in
	// the store URL.
	srv.RecordScript("nix", nixPrelude+`if [ "$1" = build ]; then for a; do case "$a" in
`+cases.String()+`esac; done; fi
if [ "$1" = copy ]; then printf '%s\n' "$NIX_SSHOPTS" >> `+srv.StubDir+`/../nix-sshopts; fi
`)
	return r
}

// nixPrelude starts a stand-in nix: it checks that fleet asked for the
// experimental features it uses, as the real nix would, and leaves the
// subcommand in $1.
const nixPrelude = `if [ "$1" != --extra-experimental-features ] || [ "$2" != "nix-command flakes" ]; then
	echo "error: experimental Nix feature 'nix-command' is disabled; use '--extra-experimental-features nix-command' to override" >&2
	exit 1
fi
shift 2
`

// builtJSON is the shell command printing what nix build --json prints
// for a system built at path.
func builtJSON(path string) string {
	return `echo '[{"drvPath":"/nix/store/00000000000000000000000000000000-system.drv","outputs":{"out":"` + path + `"}}]'`
}

// nixCalls are a stand-in nix's calls, without the features every call
// starts with.
func (r *rig) nixCalls(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, c := range r.calls("nix") {
		rest, ok := strings.CutPrefix(c, "--extra-experimental-features nix-command flakes ")
		if !ok {
			t.Errorf("nix %s: without --extra-experimental-features 'nix-command flakes'", c)
		}
		out = append(out, rest)
	}
	return out
}

func (r *rig) deploy(t *testing.T, ctx context.Context, o deploy.Options, machines ...*model.Machine) *deploy.Summary {
	t.Helper()
	return r.deployLogs(t, ctx, o, t.TempDir(), machines...)
}

// deployLogs is deploy, logging to logs.
func (r *rig) deployLogs(t *testing.T, ctx context.Context, o deploy.Options, logs string, machines ...*model.Machine) *deploy.Summary {
	t.Helper()
	o.Runner, o.Tree = r.runner, "/tree"
	if o.ConfirmTimeout == 0 {
		o.ConfirmTimeout = 2 * time.Second
	}
	if len(machines) == 0 {
		machines = r.fleet.Machines
	}
	steps, err := deploy.Steps(r.fleet, machines, o)
	if err != nil {
		t.Fatal(err)
	}
	return deploy.Execute(ctx, steps, deploy.ExecOptions{Parallel: 4, LogDir: logs})
}

func nixos(name string) *model.Machine {
	return &model.Machine{Name: name, System: "x86_64-linux", Class: model.NixOS}
}

// previousProfile is a system profile whose current generation is a
// previous system (nix-env is a stub, so it stays there after --rollback).
func (r *rig) previousProfile(t *testing.T) (profile, previous string) {
	t.Helper()
	profile = t.TempDir() + "/system"
	previous = r.srv.StorePath("previous")
	if err := os.Symlink(previous, profile); err != nil {
		t.Fatal(err)
	}
	return profile, previous
}

// calls renders a stub's calls as command lines, paths relative to the
// fake store so they read like the commands.
func (r *rig) calls(name string) []string {
	var out []string
	for _, c := range r.srv.Calls(name) {
		out = append(out, strings.Join(c[1:], " "))
	}
	return out
}

// TestGoalsNixOS checks the exact command sequence of each goal.
func TestGoalsNixOS(t *testing.T) {
	for _, tc := range []struct {
		goal    deploy.Goal
		profile bool
	}{
		{deploy.Switch, true}, {deploy.Boot, true}, {deploy.Test, false}, {deploy.DryActivate, false},
	} {
		t.Run(string(tc.goal), func(t *testing.T) {
			web := nixos("web")
			r := newRig(t, web)
			sum := r.deploy(t, context.Background(), deploy.Options{Goal: tc.goal})
			if sum.Failed() {
				t.Fatalf("deploy failed: %+v", sum.Machines)
			}
			system := r.srv.StorePath("web")
			nix := r.nixCalls(t)
			want := []string{
				"build --no-link --json path:/tree#nixosConfigurations.web.config.system.build.toplevel",
				"copy --no-check-sigs --to ssh-ng://" + r.srv.User + "@127.0.0.1 " + system,
			}
			if strings.Join(nix, "\n") != strings.Join(want, "\n") {
				t.Errorf("nix calls:\n%s\nwant\n%s", strings.Join(nix, "\n"), strings.Join(want, "\n"))
			}
			opts, _ := os.ReadFile(r.srv.StubDir + "/../nix-sshopts")
			if !strings.HasSuffix(strings.TrimSpace(string(opts)), fmt.Sprintf(" -p %d", r.srv.Port)) {
				t.Errorf("nix copy's NIX_SSHOPTS do not end with the port: %q", opts)
			}
			env := r.calls("nix-env")
			if tc.profile && (len(env) != 1 || env[0] != "-p /nix/var/nix/profiles/system --set "+system) {
				t.Errorf("nix-env: %q", env)
			}
			if !tc.profile && len(env) != 0 {
				t.Errorf("goal %s must not set the profile: %q", tc.goal, env)
			}
			stc := r.srv.Calls("switch-to-configuration")
			if len(stc) != 1 || stc[0][0] != system+"/bin/switch-to-configuration" || stc[0][1] != string(tc.goal) {
				t.Errorf("switch-to-configuration: %q", stc)
			}
			if sr := r.calls("systemd-run"); len(sr) != 1 || !strings.Contains(sr[0], "--wait") {
				t.Errorf("activation must go through systemd-run --wait: %q", sr)
			}
		})
	}
}

func TestDarwin(t *testing.T) {
	mac := &model.Machine{Name: "mac", System: "aarch64-darwin", Class: model.Darwin}
	r := newRig(t, mac)
	sum := r.deploy(t, context.Background(), deploy.Options{})
	if sum.Failed() {
		t.Fatalf("deploy failed: %+v", sum.Machines)
	}
	system := r.srv.StorePath("mac")
	if nix := r.nixCalls(t); len(nix) != 2 || nix[0] != "build --no-link --json path:/tree#darwinConfigurations.mac.system" {
		t.Errorf("nix: %q", nix)
	}
	if env := r.calls("nix-env"); len(env) != 1 || env[0] != "-p /nix/var/nix/profiles/system --set "+system {
		t.Errorf("nix-env: %q", env)
	}
	act := r.srv.Calls("activate")
	if len(act) != 1 || act[0][0] != system+"/activate" {
		t.Errorf("activate: %q", act)
	}
	if len(r.srv.Calls("switch-to-configuration")) != 0 {
		t.Error("nix-darwin has no switch-to-configuration")
	}
}

// Secrets come before everything: a machine whose secrets are not ready
// is not built, let alone activated.
func TestSecretsBeforeActivation(t *testing.T) {
	a, b := nixos("a"), nixos("b")
	r := newRig(t, a, b)
	sum := r.deploy(t, context.Background(), deploy.Options{Secrets: func(m *model.Machine) error {
		if m.Name == "a" {
			return errors.New("secrets/a/host-key/key.age is missing")
		}
		return nil
	}})
	res := map[string]deploy.MachineResult{}
	for _, m := range sum.Machines {
		res[m.Machine] = m
	}
	if res["a"].Outcome != deploy.OutcomeFailed || res["a"].FailedStep != "a/secrets" || res["b"].Outcome != deploy.OutcomeOK {
		t.Fatalf("outcomes: %+v", sum.Machines)
	}
	for _, c := range r.calls("nix") {
		if strings.Contains(c, ".a.") || strings.Contains(c, "-a ") {
			t.Errorf("a was built without its secrets: %s", c)
		}
	}
}

func TestFailingCheckRollsBack(t *testing.T) {
	web := nixos("web")
	web.Checks = []model.Check{{Kind: "command", Command: "exit 3"}}
	web.Rollback = true
	r := newRig(t, web)
	profile, _ := r.previousProfile(t)
	sum := r.deploy(t, context.Background(), deploy.Options{ConfirmTimeout: 300 * time.Millisecond, Profile: profile})
	m := sum.Machines[0]
	var rb *deploy.RolledBackError
	if m.Outcome != deploy.OutcomeRolledBack || !errors.As(m.Err, &rb) {
		t.Fatalf("outcome %s, err %v", m.Outcome, m.Err)
	}
	env := r.calls("nix-env")
	if len(env) != 2 || env[1] != "-p "+profile+" --rollback" {
		t.Fatalf("nix-env calls: %q", env)
	}
	stc := r.srv.Calls("switch-to-configuration")
	if len(stc) != 2 || !strings.HasPrefix(stc[0][0], r.srv.StorePath("web")) || stc[1][0] != profile+"/bin/switch-to-configuration" || stc[1][1] != "switch" {
		t.Fatalf("activation then rollback: %q", stc)
	}
}

func TestPassingCheckNoRollback(t *testing.T) {
	web := nixos("web")
	web.Checks = []model.Check{{Kind: "command", Command: "true"}}
	web.Rollback = true
	r := newRig(t, web)
	if sum := r.deploy(t, context.Background(), deploy.Options{}); sum.Failed() {
		t.Fatalf("%+v", sum.Machines)
	}
	if env := r.calls("nix-env"); len(env) != 1 {
		t.Fatalf("a passing check must not roll back: %q", env)
	}
}

// One machine's failed copy skips its own later steps; the others finish.
func TestFailedCopySkipsDependents(t *testing.T) {
	a, b, c := nixos("a"), nixos("b"), nixos("c")
	r := newRig(t, a, b, c)
	bad := r.srv.StorePath("b")
	r.srv.RecordScript("nix", nixPrelude+fmt.Sprintf(`if [ "$1" = build ]; then for x; do case "$x" in
*.a.*) %s ;; *.b.*) %s ;; *.c.*) %s ;; esac; done; fi
if [ "$1" = copy ] && [ "$5" = %s ]; then echo "copy failed" >&2; exit 1; fi
`, builtJSON(r.srv.StorePath("a")), builtJSON(bad), builtJSON(r.srv.StorePath("c")), bad))
	sum := r.deploy(t, context.Background(), deploy.Options{})
	res := map[string]deploy.MachineResult{}
	for _, m := range sum.Machines {
		res[m.Machine] = m
	}
	if res["b"].Outcome != deploy.OutcomeFailed || res["b"].FailedStep != "b/copy" {
		t.Errorf("b: %+v", res["b"])
	}
	if res["a"].Outcome != deploy.OutcomeOK || res["c"].Outcome != deploy.OutcomeOK {
		t.Errorf("a and c should finish: %+v", sum.Machines)
	}
	for _, call := range r.srv.Calls("switch-to-configuration") {
		if strings.HasPrefix(call[0], bad) {
			t.Error("b was activated after its copy failed")
		}
	}
	if !sum.Failed() {
		t.Error("the summary must say the deploy failed")
	}
}

// Ctrl-C: every machine is either untouched or activated, and the
// summary says which.
func TestCancelLeavesMachinesUntouchedOrActivated(t *testing.T) {
	fast, slow := nixos("fast"), nixos("slow")
	r := newRig(t, fast, slow)
	r.srv.RecordScript("nix", nixPrelude+fmt.Sprintf(`if [ "$1" = build ]; then for x; do case "$x" in
*.fast.*) %s ;; *.slow.*) sleep 30; %s ;; esac; done; fi
`, builtJSON(r.srv.StorePath("fast")), builtJSON(r.srv.StorePath("slow"))))
	// Ctrl-C once fast is done (by its event: a fixed delay raced fast's
	// ssh steps on a loaded machine), while slow still builds; at the
	// latest after 20 s, well before slow's build would end.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled atomic.Int64
	stop := func() { cancelled.CompareAndSwap(0, time.Now().UnixNano()); cancel() }
	fallback := time.AfterFunc(20*time.Second, stop)
	defer fallback.Stop()
	steps, err := deploy.Steps(r.fleet, r.fleet.Machines, deploy.Options{Runner: r.runner, Tree: "/tree", ConfirmTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sum := deploy.Execute(ctx, steps, deploy.ExecOptions{Parallel: 4, LogDir: t.TempDir(), Events: func(e deploy.Event) {
		if e.Kind == deploy.EventDone && e.Machine == "fast" {
			stop()
		}
	}})
	if at := cancelled.Load(); at == 0 || time.Since(time.Unix(0, at)) > 10*time.Second {
		t.Fatal("cancellation did not stop the slow build")
	}
	res := map[string]deploy.MachineResult{}
	for _, m := range sum.Machines {
		res[m.Machine] = m
	}
	if res["fast"].Outcome != deploy.OutcomeOK {
		t.Errorf("fast: %+v", res["fast"])
	}
	if o := res["slow"].Outcome; o != deploy.OutcomeCancelled && o != deploy.OutcomePartial {
		t.Errorf("slow: %+v", res["slow"])
	}
	for _, call := range r.srv.Calls("switch-to-configuration") {
		if strings.Contains(call[0], "-slow") {
			t.Error("slow was activated after Ctrl-C")
		}
	}
}

func TestTargets(t *testing.T) {
	f := &model.Fleet{Name: "t", Domain: "zt"}
	for _, tc := range []struct {
		m    *model.Machine
		over map[string]string
		want string
		err  string
	}{
		{&model.Machine{Name: "a", Class: model.NixOS, Target: "root@a.example"}, nil, "root@a.example", ""},
		{&model.Machine{Name: "a", Class: model.NixOS}, nil, "root@a.zt", ""},
		{&model.Machine{Name: "a", Class: model.NixOS}, map[string]string{"a": "root@203.0.113.7"}, "root@203.0.113.7", ""},
		{&model.Machine{Name: "mac", Class: model.Darwin}, nil, "", "no ssh target"},
		{&model.Machine{Name: "a", Class: model.NixOS, Target: "root@-oProxyCommand=x"}, nil, "", `machine a (<unknown>): target "root@-oProxyCommand=x": host and user must not start with -`},
		{&model.Machine{Name: "a", Class: model.NixOS, Target: "root@a;id"}, nil, "", `machine a (<unknown>): target "root@a;id"`},
		{&model.Machine{Name: "a", Class: model.NixOS}, map[string]string{"a": "-oProxyCommand=x"}, "", `machine a (<unknown>): target "-oProxyCommand=x"`},
		{&model.Machine{Name: "a", Class: model.NixOS}, map[string]string{"a": deploy.AddressPlaceholder("a")}, deploy.AddressPlaceholder("a"), ""},
		{&model.Machine{Name: "a", Class: model.NixOS, Target: deploy.AddressPlaceholder("a")}, nil, "", "shell metacharacters"},
	} {
		got, err := deploy.Target(f, tc.m, tc.over)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Target(%s) = %q, %v", tc.m.Name, got, err)
			}
			continue
		}
		if got != tc.want || err != nil {
			t.Errorf("Target(%s) = %q, %v; want %q", tc.m.Name, got, err, tc.want)
		}
	}
}

// TestDiff builds, fetches what runs and diffs the closures.
func TestDiff(t *testing.T) {
	web := nixos("web")
	r := newRig(t, web)
	current := "/nix/store/0c6qz3z7dkkcd9f4xxbsjw3h8ga8ri2v-nixos-system-web-26.05"
	r.srv.Stub("readlink", "echo "+current+"\n")
	r.srv.RecordScript("nix", nixPrelude+fmt.Sprintf(`case "$1" in
build) %s ;;
store) echo "firefox: 120.0 → 121.0, +1.2 MiB" ;;
esac
`, builtJSON(r.srv.StorePath("web"))))
	var out strings.Builder
	steps, err := deploy.DiffSteps(r.fleet, r.fleet.Machines, deploy.Options{Runner: r.runner, Tree: "/tree"},
		func(string) io.Writer { return &out })
	if err != nil {
		t.Fatal(err)
	}
	if sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{LogDir: t.TempDir()}); sum.Failed() {
		t.Fatalf("%+v", sum.Machines)
	}
	nix := r.nixCalls(t)
	want := []string{
		"build --no-link --json path:/tree#nixosConfigurations.web.config.system.build.toplevel",
		"copy --no-check-sigs --from ssh-ng://" + r.srv.User + "@127.0.0.1 " + current,
		"store diff-closures " + current + " " + r.srv.StorePath("web"),
	}
	if strings.Join(nix, "\n") != strings.Join(want, "\n") {
		t.Errorf("nix calls:\n%s\nwant\n%s", strings.Join(nix, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(out.String(), "firefox: 120.0 → 121.0") {
		t.Errorf("diff output: %q", out.String())
	}
	if len(r.srv.Calls("switch-to-configuration")) != 0 || len(r.calls("nix-env")) != 0 {
		t.Error("diff must not activate anything")
	}
}

// TestDiffRejectsWhatIsNoStorePath: what the machine answers for
// /run/current-system reaches a local nix command line only when it is a
// store path; anything else fails the machine, naming it.
func TestDiffRejectsWhatIsNoStorePath(t *testing.T) {
	for _, answer := range []string{
		"--no-check-sigs",
		"/nix/store/0c6qz3z7dkkcd9f4xxbsjw3h8ga8ri2v-x --option",
		"/etc/passwd",
		"/nix/store/../../etc/passwd",
		"/nix/store/0c6qz3z7dkkcd9f4xxbsjw3h8ga8ri2v",
		"/nix/store/0c6qz3z7dkkcd9f4xxbsjw3h8ga8ri2e-x",
		"/nix/store/0c6qz3z7dkkcd9f4xxbsjw3h8ga8ri2v-x/bin",
		"/nix/store/0c6qz3z7dkkcd9f4xxbsjw3h8ga8ri2v-.x",
		"nix/store/0c6qz3z7dkkcd9f4xxbsjw3h8ga8ri2v-x",
		"/nix/store/0c6qz3z7dkkcd9f4xxbsjw3h8ga8ri2v-x\n--no-check-sigs",
	} {
		t.Run(answer, func(t *testing.T) {
			web := nixos("web")
			r := newRig(t, web)
			r.srv.Stub("readlink", "printf '%s\\n' "+deploy.ShellQuote(answer)+"\n")
			steps, err := deploy.DiffSteps(r.fleet, r.fleet.Machines, deploy.Options{Runner: r.runner, Tree: "/tree"},
				func(string) io.Writer { return io.Discard })
			if err != nil {
				t.Fatal(err)
			}
			sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{LogDir: t.TempDir()})
			res := sum.Machines[0]
			if !sum.Failed() || res.FailedStep != "web/fetch" || res.Err == nil ||
				!strings.Contains(res.Err.Error(), "machine web") || !strings.Contains(res.Err.Error(), "not a /nix/store/<hash>-<name> path") {
				t.Fatalf("%+v", res)
			}
			for _, call := range r.nixCalls(t) {
				if strings.HasPrefix(call, "copy") || strings.HasPrefix(call, "store") {
					t.Errorf("nix ran with the answer: %s", call)
				}
			}
		})
	}
}

// TestOnlyChanged: with OnlyChanged, a machine already running the
// system built is left alone (unchanged, nothing copied or activated);
// one running something else, or unable to say, is deployed.
func TestOnlyChanged(t *testing.T) {
	web := nixos("web")
	r := newRig(t, web)
	r.srv.Record("readlink")
	system := r.srv.StorePath("web")
	activations := func() int { return len(r.srv.Calls("switch-to-configuration")) }

	for _, tc := range []struct {
		name     string
		running  string // what readlink prints; "" fails
		goal     deploy.Goal
		outcome  deploy.Outcome
		activate bool
		current  string
	}{
		{"other system", "/nix/store/old-web\n", deploy.Switch, deploy.OutcomeOK, true, "/run/current-system"},
		{"same system", system + "\n", deploy.Switch, deploy.OutcomeUnchanged, false, "/run/current-system"},
		{"no current system", "", deploy.Switch, deploy.OutcomeOK, true, "/run/current-system"},
		{"boot compares the profile", system + "\n", deploy.Boot, deploy.OutcomeUnchanged, false, deploy.DefaultProfile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.srv.Reset("readlink")
			if tc.running == "" {
				r.srv.Fail("readlink", 1)
			} else {
				r.srv.Output("readlink", tc.running)
			}
			before, calls := activations(), len(r.srv.Calls("readlink"))
			sum := r.deploy(t, context.Background(), deploy.Options{Goal: tc.goal, OnlyChanged: true})
			if sum.Failed() || sum.Machines[0].Outcome != tc.outcome {
				t.Fatalf("outcome %+v, want %s", sum.Machines, tc.outcome)
			}
			if got := activations() > before; got != tc.activate {
				t.Errorf("activated: %v, want %v", got, tc.activate)
			}
			rl := r.calls("readlink")
			if len(rl) != calls+1 || rl[len(rl)-1] != "-f "+tc.current {
				t.Errorf("readlink calls %q, want one more of -f %s", rl, tc.current)
			}
			if tc.outcome == deploy.OutcomeUnchanged {
				for _, s := range sum.Machines[0].Steps {
					if (s.Action == "copy" || s.Action == "profile" || s.Action == "activate") && s.Kind != deploy.EventUnneeded {
						t.Errorf("step %s: %s, want not needed", s.ID, s.Kind)
					}
				}
			}
		})
	}
}

// TestUnreachableAfterActivationWatchdogRollsBack: the new system cuts
// the machine off (here: its sshd goes away right after activation), so
// fleet cannot switch back over ssh. The watchdog that activation armed
// on the machine does, since nobody confirmed; when the machine answers
// again, fleet sees it runs something else and reports the rollback.
func TestUnreachableAfterActivationWatchdogRollsBack(t *testing.T) {
	web := nixos("web")
	web.Checks = []model.Check{{Kind: "command", Command: "true"}}
	web.Rollback = true
	r := newRig(t, web)
	profile, previous := r.previousProfile(t)
	// After the rollback, the machine runs the previous system.
	r.srv.RecordScript("readlink", "echo "+previous)
	steps, err := deploy.Steps(r.fleet, r.fleet.Machines, deploy.Options{Runner: r.runner, Tree: "/tree", Profile: profile,
		ConfirmTimeout: 500 * time.Millisecond, WatchdogGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	back := make(chan struct{})
	events := func(e deploy.Event) {
		if e.Action == "activate" && e.Kind == deploy.EventSucceeded {
			r.srv.Stop()
			// The host comes back once its watchdog switched back (fleet
			// keeps asking for a minute after it was due): when the
			// timer ended, not after a guess of how long that takes.
			go func() {
				defer close(back)
				for deadline := time.Now().Add(time.Minute); !r.srv.TimerEnded(deploy.WatchdogUnit); time.Sleep(20 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Error("the watchdog timer did not end within a minute")
						break
					}
				}
				r.srv.Restart()
			}()
		}
	}
	sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{Parallel: 4, LogDir: t.TempDir(), Events: events})
	m := sum.Machines[0]
	if m.FailedStep != "web/check" {
		t.Fatalf("the deploy did not reach its checks: %s at %s: %v", m.Outcome, m.FailedStep, m.Err)
	}
	<-back
	var rb *deploy.RolledBackError
	if m.Outcome != deploy.OutcomeRolledBack || !errors.As(m.Err, &rb) || !rb.ByWatchdog {
		t.Fatalf("outcome %s, err %v", m.Outcome, m.Err)
	}
	// The machine itself ran the rollback: nix-env --rollback, then the
	// previous generation's switch-to-configuration.
	env := r.calls("nix-env")
	if len(env) != 2 || env[1] != "-p "+profile+" --rollback" {
		t.Fatalf("nix-env calls: %q", env)
	}
	stc := r.srv.Calls("switch-to-configuration")
	if len(stc) != 2 || stc[1][0] != profile+"/bin/switch-to-configuration" || stc[1][1] != "switch" {
		t.Fatalf("activation then the watchdog's rollback: %q", stc)
	}
}

// A confirmed deploy disarms the watchdog: nothing switches back later.
func TestConfirmedDeployDisarmsWatchdog(t *testing.T) {
	web := nixos("web")
	web.Rollback = true
	r := newRig(t, web)
	sum := r.deploy(t, context.Background(), deploy.Options{ConfirmTimeout: 500 * time.Millisecond, WatchdogGrace: 500 * time.Millisecond})
	if sum.Failed() {
		t.Fatalf("%+v", sum.Machines)
	}
	if sc := r.calls("systemctl"); len(sc) == 0 || sc[len(sc)-1] != "stop "+deploy.WatchdogUnit+".timer" {
		t.Fatalf("systemctl calls: %q", sc)
	}
	// Past the watchdog's delay: its timer has ended, having found itself
	// stopped.
	sshtest.WaitFor(t, "the watchdog timer to end", func() bool { return r.srv.TimerEnded(deploy.WatchdogUnit) })
	if env := r.calls("nix-env"); len(env) != 1 {
		t.Fatalf("the disarmed watchdog rolled back: %q", env)
	}
}

// A check that hangs ends at the confirm timeout: the deploy does not
// wait for it (with a watchdog, past that point only its grace is left).
func TestHangingCheckEndsAtConfirmTimeout(t *testing.T) {
	web := nixos("web")
	web.Checks = []model.Check{{Kind: "command", Command: "sleep 30"}}
	r := newRig(t, web)
	start := time.Now()
	sum := r.deploy(t, context.Background(), deploy.Options{ConfirmTimeout: 500 * time.Millisecond})
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the deploy waited %s for a hanging check", took)
	}
	if m := sum.Machines[0]; m.Outcome != deploy.OutcomeFailed || m.FailedStep != "web/check" {
		t.Fatalf("%+v", m)
	}
}
