package deploy_test

import (
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// countingRunner is a runner that records every local command.
type countingRunner struct {
	deploy.Runner
	mu    sync.Mutex
	local [][]string
}

func (r *countingRunner) Local(ctx context.Context, argv []string, stdio deploy.IO) error {
	r.mu.Lock()
	r.local = append(r.local, argv)
	r.mu.Unlock()
	return r.Runner.Local(ctx, argv, stdio)
}

// evaluations are the recorded nix processes that evaluate (nix eval,
// nix build of an attribute), as "subcommand installable".
func (r *countingRunner) evaluations() []string {
	var out []string
	for _, argv := range r.local {
		if len(argv) > 4 && argv[0] == "nix" && (argv[3] == "eval" || argv[3] == "build") {
			out = append(out, argv[3]+" "+argv[len(argv)-1])
		}
	}
	return out
}

// TestRealNixBatch: with the real nix 2.8, one nix eval evaluates the
// batch's NixOS machines (another the nix-darwin machine, alone in its
// batch), each one's own nix-store --realise builds its system, and
// each gets its path;
// a machine whose evaluation fails gets nix's error, and its
// batch-mates are built all the same.
func TestRealNixBatch(t *testing.T) {
	n := newRealNix(t)
	r := &countingRunner{Runner: n.runner(nil)}
	var mu sync.Mutex
	paths := map[string]string{}
	machines := []*model.Machine{
		{Name: "web", System: "x86_64-linux", Class: model.NixOS},
		{Name: "prev", System: "x86_64-linux", Class: model.NixOS},
		{Name: "mac", System: "aarch64-darwin", Class: model.Darwin},
	}
	steps, err := deploy.BuildSteps(machines, deploy.Options{Tree: n.tree, Runner: r, EvalBatch: 10},
		func(m, p string) { mu.Lock(); paths[m] = p; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	execute(t, steps)
	evals := r.evaluations()
	slices.Sort(evals)
	if len(evals) != 2 || !strings.HasSuffix(evals[0], `[ "web" "prev" ])`) || !strings.HasSuffix(evals[1], `[ "mac" ])`) {
		t.Errorf("nix processes that evaluate: %q, want one nix eval of web and prev, one of mac", evals)
	}
	realised := 0
	for _, argv := range r.local {
		if argv[0] == "nix-store" {
			realised++
		}
	}
	if realised != 3 {
		t.Errorf("%d nix-store --realise, want 3 (web, prev, mac)", realised)
	}
	for _, m := range []string{"web", "prev", "mac"} {
		if !strings.HasPrefix(paths[m], "/nix/store/") || !strings.HasSuffix(paths[m], "-"+m+"-system-1") {
			t.Errorf("%s built %q", m, paths[m])
		}
		if _, err := os.Stat(paths[m] + "/bin/switch-to-configuration"); err != nil {
			t.Errorf("%s: the path printed is not the system built: %v", m, err)
		}
	}

	r = &countingRunner{Runner: n.runner(nil)}
	broken := []*model.Machine{machines[0], {Name: "broken", System: "x86_64-linux", Class: model.NixOS}, machines[1]}
	steps, err = deploy.BuildSteps(broken, deploy.Options{Tree: n.tree, Runner: r, EvalBatch: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{})
	for _, m := range sum.Machines {
		var ce *deploy.CommandError
		switch {
		case m.Machine == "broken" && (m.Outcome != deploy.OutcomeFailed || !errors.As(m.Err, &ce) || !strings.Contains(ce.Stderr, "broken on purpose")):
			t.Errorf("broken: %s %v, want nix's error", m.Outcome, m.Err)
		case m.Machine != "broken" && m.Outcome != deploy.OutcomeOK:
			t.Errorf("%s: %s %v: failed with its broken batch-mate", m.Machine, m.Outcome, m.Err)
		}
	}
	if evals := r.evaluations(); len(evals) != 5 {
		t.Errorf("nix processes that evaluate: %q, want 5 (the batch of 3; its halves, web and broken+prev; then broken and prev alone)", evals)
	}
}

// collectingRunner deletes a machine's batch-written .drv just before
// its realisation, as a garbage collection (nix-collect-garbage, or
// min-free's automatic one) between the two would.
type collectingRunner struct {
	deploy.Runner
	machine string
}

func (r collectingRunner) Local(ctx context.Context, argv []string, stdio deploy.IO) error {
	if argv[0] == "nix-store" && argv[len(argv)-2] == "--realise" && strings.HasSuffix(argv[len(argv)-1], "-"+r.machine+"-system-1.drv") {
		if err := r.Runner.Local(ctx, []string{"nix-store", "--delete", argv[len(argv)-1]}, deploy.IO{}); err != nil {
			return err
		}
	}
	return r.Runner.Local(ctx, argv, stdio)
}

// TestRealNixBatchDrvCollected: with the real nix 2.8, a machine whose
// .drv is garbage-collected between its batch's evaluation and its
// realisation (nix-store: "cannot build missing derivation") is built
// alone with nix build, and says so in its log.
func TestRealNixBatchDrvCollected(t *testing.T) {
	n := newRealNix(t)
	r := &countingRunner{Runner: collectingRunner{Runner: n.runner(nil), machine: "web"}}
	var mu sync.Mutex
	paths := map[string]string{}
	steps, err := deploy.BuildSteps([]*model.Machine{
		{Name: "web", System: "x86_64-linux", Class: model.NixOS},
		{Name: "prev", System: "x86_64-linux", Class: model.NixOS},
	}, deploy.Options{Tree: n.tree, Runner: r, EvalBatch: 10}, func(m, p string) { mu.Lock(); paths[m] = p; mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	var log testtool.SyncBuffer // nix's stdout and stderr are copied into it at once
	if err := steps[0].Run(context.Background(), &log); err != nil {
		t.Fatalf("web: %v\n%s", err, log.String())
	}
	if err := steps[1].Run(context.Background(), io.Discard); err != nil {
		t.Fatalf("prev: %v", err)
	}
	if !strings.Contains(log.String(), "cannot build missing derivation") || !strings.Contains(log.String(), "is not in the store any more (garbage-collected since its batch's evaluation") {
		t.Errorf("web's log does not say its derivation was collected:\n%s", log.String())
	}
	if evals := r.evaluations(); len(evals) != 2 || !strings.HasSuffix(evals[1], "#nixosConfigurations.web.config.system.build.toplevel") {
		t.Errorf("nix processes that evaluate: %q, want the batch's nix eval, then web's nix build", evals)
	}
	for _, m := range []string{"web", "prev"} {
		if !strings.HasSuffix(paths[m], "-"+m+"-system-1") {
			t.Errorf("%s built %q", m, paths[m])
		}
	}
}
