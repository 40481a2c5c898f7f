package deploy_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
)

// Options.Deployed hears of a machine exactly when its deploy completes
// running the system built with the switch goal: activated and checked
// (outcome ok), or found running it already (unchanged). A degraded, a
// rolled-back deploy, and the other goals report nothing.
func TestDeployedReported(t *testing.T) {
	for _, tc := range []struct {
		name     string
		goal     deploy.Goal
		check    string // a command check; "" none
		rollback bool
		units    bool   // switch-to-configuration exits 4 (units failed)
		running  string // with OnlyChanged: what readlink prints ("self": the system built)
		outcome  deploy.Outcome
		reported bool
	}{
		{name: "switch", goal: deploy.Switch, outcome: deploy.OutcomeOK, reported: true},
		{name: "switch, check passes", goal: deploy.Switch, check: "true", rollback: true, outcome: deploy.OutcomeOK, reported: true},
		{name: "switch, check fails", goal: deploy.Switch, check: "exit 3", rollback: true, outcome: deploy.OutcomeRolledBack},
		{name: "switch, units failed", goal: deploy.Switch, check: "true", units: true, outcome: deploy.OutcomeDegraded},
		{name: "switch, units failed, no check", goal: deploy.Switch, units: true, outcome: deploy.OutcomeDegraded},
		{name: "only-changed, running it", goal: deploy.Switch, running: "self", outcome: deploy.OutcomeUnchanged, reported: true},
		{name: "only-changed, running another", goal: deploy.Switch, running: "/nix/store/old-web", outcome: deploy.OutcomeOK, reported: true},
		{name: "boot", goal: deploy.Boot, outcome: deploy.OutcomeOK},
		{name: "test", goal: deploy.Test, outcome: deploy.OutcomeOK},
		{name: "dry-activate", goal: deploy.DryActivate, outcome: deploy.OutcomeOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			web := nixos("web")
			web.Rollback = tc.rollback
			if tc.check != "" {
				web.Checks = []model.Check{{Kind: "command", Command: tc.check}}
			}
			r := newRig(t, web)
			profile, _ := r.previousProfile(t)
			if tc.units {
				r.srv.Fail("switch-to-configuration", 4)
				r.srv.FailedUnits("nginx.service")
			}
			if tc.running != "" {
				r.srv.Record("readlink")
				running := tc.running
				if running == "self" {
					running = r.srv.StorePath("web")
				}
				r.srv.Output("readlink", running+"\n")
			}
			var mu sync.Mutex
			var got []string
			// Checks that pass get time to, on a loaded machine; the
			// failing one is not retried for long.
			confirm := 20 * time.Second
			if tc.outcome == deploy.OutcomeRolledBack {
				confirm = 500 * time.Millisecond
			}
			o := deploy.Options{Goal: tc.goal, Profile: profile, OnlyChanged: tc.running != "", ConfirmTimeout: confirm,
				Deployed: func(machine, system string) {
					mu.Lock()
					got = append(got, machine+" "+system)
					mu.Unlock()
				}}
			sum := r.deploy(t, context.Background(), o)
			if m := sum.Machines[0]; m.Outcome != tc.outcome {
				t.Fatalf("outcome %s (%v), want %s", m.Outcome, m.Err, tc.outcome)
			}
			want := ""
			if tc.reported {
				want = "web " + r.srv.StorePath("web")
			}
			if strings.Join(got, "|") != want {
				t.Errorf("Deployed heard %q, want %q", got, want)
			}
		})
	}
}
