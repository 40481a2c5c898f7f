package gcp

import (
	"context"
	"math"
	"testing"

	"github.com/fleet-nix/fleet/engine/cloud"
)

// Through the engine's own plan and apply: the first apply creates the
// firewall and both hosts, the plan after it has nothing to do and costs
// only lists; switching scheelite off deletes it, and the firewall stays
// for galena.
func TestPlanApplyConverges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	providers := []cloud.Provider{e.p}
	f := referenceFleet()

	plan, err := cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countActions(plan)[cloud.Create]; n != 3 {
		t.Fatalf("first plan: %d creates, want 3: %+v", n, plan.Changes)
	}
	// 189.20 + 499.47 EUR a month.
	if plan.MonthlyCost.Before != 0 || math.Abs(plan.MonthlyCost.After-688.67) > 0.005 {
		t.Errorf("monthly cost %v -> %v", plan.MonthlyCost.Before, plan.MonthlyCost.After)
	}
	res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{})
	if failed := res.Failed(); len(failed) != 0 {
		t.Fatalf("apply failed: %v", failed[0].Err)
	}
	for _, o := range res.Outcomes {
		if o.Change.Resource == KindInstance && (o.Result == nil || o.Result.IPv4 == "") {
			t.Errorf("%s: no address after create", o.Change.Name)
		}
	}

	e.fake.ResetRequests()
	plan, err = cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acts := countActions(plan); acts[cloud.NoOp] != 3 || len(plan.Changes) != 3 {
		for _, c := range plan.Changes {
			t.Logf("%s %s %s: %s", c.Action, c.Resource, c.Name, c.Reason)
		}
		t.Fatalf("second plan is not all no-op: %v", acts)
	}
	if res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{}); len(res.Outcomes) != 0 || e.fake.Mutations() != 0 {
		t.Errorf("second apply: %d outcomes, %d mutating requests", len(res.Outcomes), e.fake.Mutations())
	}
	// Two zones and one project: three lists, whatever the fleet's size.
	if n := len(e.fake.Requests()); n != 3 {
		t.Errorf("plan made %d requests, want 3", n)
	}

	f.Machine("scheelite").Host.Enabled = false
	plan, err = cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acts := countActions(plan); acts[cloud.Delete] != 1 || acts[cloud.NoOp] != 2 {
		t.Fatalf("toggle off: %v", acts)
	}
	if res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{}); len(res.Failed()) != 0 {
		t.Fatal(res.Failed()[0].Err)
	}
	if e.fake.Instance(project, zoneF, "scheelite") != nil || e.fake.Firewall(project, "demo-fleet") == nil {
		t.Errorf("after toggle off: %v", e.fake.InstanceNames())
	}
}

func countActions(p *cloud.Plan) map[cloud.Action]int {
	out := map[cloud.Action]int{}
	for _, c := range p.Changes {
		out[c.Action]++
	}
	return out
}
