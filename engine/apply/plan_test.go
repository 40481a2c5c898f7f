package apply_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/apply"
	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
	"github.com/fleet-nix/fleet/engine/model"
)

// The whole plan: one action per machine, by name, with --on keeping
// the selected machines' cloud changes (the others skipped) and
// --no-deploy turning installs
// into skips that say why.
func TestPlanMachines(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts apply.PlanOptions
		want string // machine=action, by name
	}{
		{"all", apply.PlanOptions{}, "db=install web=install"},
		{"on web", apply.PlanOptions{On: []model.Selector{"web"}}, "db=skip web=install"},
		{"no deploy", apply.PlanOptions{NoDeploy: true}, "db=skip web=skip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := hetznerfake.New()
			t.Cleanup(fake.Close)
			p := hetzner.New(cloud.Config{Getenv: func(k string) string {
				return map[string]string{"HCLOUD_TOKEN": fake.Token, "HCLOUD_ENDPOINT": fake.URL()}[k]
			}}, hetzner.WithPollInterval(time.Millisecond))
			plan, err := apply.Plan(context.Background(), testFleet(t), []cloud.Provider{p}, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range plan.Machines {
				got = append(got, m.Machine+"="+m.Action)
				if m.Action == cloud.MachineSkip && !strings.Contains(m.Reason, "--no-deploy") && m.Reason != "not selected by --on" {
					t.Errorf("%s skipped for %q", m.Machine, m.Reason)
				}
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("machines %s, want %s", strings.Join(got, " "), tc.want)
			}
			if fake.Mutations() != 0 {
				t.Errorf("the plan changed the cloud (%d mutating requests)", fake.Mutations())
			}
		})
	}
}
