package apply_test

import (
	"fmt"
	"testing"

	"github.com/fleet-nix/fleet/engine/apply"
	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
)

// BenchmarkNew lowers the plan of a 1,000-machine fleet, half of whose
// hosts are new (create + secrets + install) and half existing (the
// deploy chain), to one graph and validates it: the work apply does
// before its first step, and what apply --dry-run prints.
func BenchmarkNew(b *testing.B) {
	const n = 1000
	f := &model.Fleet{Name: "bench", Root: b.TempDir()}
	plan := &cloud.Plan{Fleet: "bench"}
	plan.Changes = append(plan.Changes, &cloud.Change{Provider: "hetzner", Resource: "ssh_key", Name: "bench-key", Action: cloud.Create,
		Want: &cloud.Resource{Provider: "hetzner", Kind: "ssh_key", Name: "bench-key"}})
	for i := range n {
		name := fmt.Sprintf("m%04d", i)
		m := &model.Machine{Name: name, Class: model.NixOS, Host: &model.Host{Provider: model.Hetzner, Enabled: true}}
		f.Machines = append(f.Machines, m)
		want := &cloud.Resource{Provider: "hetzner", Kind: "server", Name: name, Machine: name, Spec: map[string]string{"type": "cx22"}}
		ch := &cloud.Change{Provider: "hetzner", Resource: "server", Name: name, Machine: name, Action: cloud.Create, Want: want}
		if i%2 == 1 {
			ch.Action, ch.Have = cloud.NoOp, &cloud.Resource{Provider: "hetzner", Kind: "server", Name: name, IPv4: fmt.Sprintf("192.0.2.%d", i%250+1)}
		}
		plan.Changes = append(plan.Changes, ch)
	}
	f.Sort()
	b.ReportAllocs()
	for b.Loop() {
		g, err := apply.New(f, plan, nil, apply.Options{Deploy: deploy.Options{Tree: "/tree"}})
		if err != nil {
			b.Fatal(err)
		}
		if err := deploy.Validate(g.Steps); err != nil {
			b.Fatal(err)
		}
		if len(g.Install) != n/2 || len(g.Deploy) != n/2 {
			b.Fatalf("%d installs, %d deploys", len(g.Install), len(g.Deploy))
		}
	}
}
