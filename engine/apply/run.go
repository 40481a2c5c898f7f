package apply

import (
	"context"
	"fmt"
	"strings"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/plural"
)

// Result is how an apply's graph ended.
type Result struct {
	// Summary is the executor's, one row per machine (and CloudRow,
	// SecretsRow).
	Summary *deploy.Summary
	// Cloud is how each mutating cloud change ended, as cloud.Apply
	// reports it.
	Cloud *cloud.Result
	// DeployFailed is set when an install or a deploy failed (not a
	// cloud change: those are in Cloud), or the run was stopped.
	DeployFailed bool
	// LogDir is the run's log folder (ExecOptions.LogDir).
	LogDir string
}

// Run executes the graph in one executor (deploy.Execute, with opts'
// parallelism, log folder and events) and sorts out what ended how.
func (g *Graph) Run(ctx context.Context, opts deploy.ExecOptions) *Result {
	sum := deploy.Execute(ctx, g.Steps, opts)
	res := &Result{Summary: sum, Cloud: g.CloudResult(sum), DeployFailed: sum.Err != nil, LogDir: opts.LogDir}
	for _, m := range sum.Machines {
		if m.Outcome == deploy.OutcomeOK || m.Outcome == deploy.OutcomeUnchanged || g.CloudStep(m.FailedStep) {
			continue
		}
		// A row whose steps are all cloud changes (--no-deploy, or a
		// host deleted) did not deploy anything: its failure is the
		// cloud's, in Cloud.
		for _, s := range m.Steps {
			if !g.CloudStep(s.ID) {
				res.DeployFailed = true
				break
			}
		}
	}
	return res
}

// Err is the apply's error, nil when everything went as planned: the
// cloud changes that failed (what was created is found again by its
// labels, so running apply again converges), the installs and deploys
// that failed (with the log folder), and the clouds that were not
// compared at all (Unreached).
func (r *Result) Err(plan *cloud.Plan) error {
	var deployErr error
	if r.DeployFailed {
		deployErr = fmt.Errorf("deploying the hosts failed (logs: %s); run fleet apply again to retry, or fleet deploy", r.LogDir)
	}
	if failed := r.Cloud.Failed(); len(failed) > 0 {
		var b strings.Builder
		fmt.Fprintf(&b, "%s failed:", plural.Count(len(failed), "change"))
		for _, o := range failed {
			fmt.Fprintf(&b, "\n  %s %s %s %s: %v", o.Change.Action, o.Change.Provider, o.Change.Resource, o.Change.Name, o.Err)
		}
		b.WriteString("\nrun fleet apply again to retry: what was created is found by its labels")
		if deployErr != nil {
			b.WriteString("\n" + deployErr.Error())
		}
		return fmt.Errorf("%s", b.String())
	}
	if deployErr != nil {
		return deployErr
	}
	return Unreached(plan)
}

// Unreached fails an apply whose plan could not compare a cloud it
// needed (no credentials, or the cloud did not answer): what is there
// was not changed, whatever else went well.
func Unreached(plan *cloud.Plan) error {
	for _, ch := range plan.Changes {
		if ch.Action == cloud.Unknown {
			var names []string
			for _, u := range plan.Unreachable {
				names = append(names, u.Error)
			}
			return fmt.Errorf("not applied to every cloud: %s", strings.Join(names, "; "))
		}
	}
	return nil
}
