package graph

import (
	"fmt"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
)

// bigFleet generates a fleet of n machines, each with 20 of 200 features
// (the features form requires chains of ten), 5 users with home features,
// a host on every other machine, one secret per machine that depends on a
// shared one used by all machines, and a few channels, inputs and overlays.
func bigFleet(n int) *model.Fleet {
	const nFeatures, perMachine, nUsers = 200, 20, 5
	f := &model.Fleet{
		Name: "big",
		Channels: []*model.Channel{
			{Name: "nixpkgs", Pos: pos(1)},
			{Name: "stable", Pos: pos(2)},
		},
		Inputs: []*model.Input{
			{Name: "home-manager", Follows: map[string]string{"nixpkgs": "nixpkgs"}, Pos: pos(3)},
		},
		Overlays: []*model.Overlay{
			{Kind: model.OverlayFallback, Name: "atuin", Channel: "stable", Pos: pos(4)},
			{Kind: model.OverlayFlake, Name: "hm", Input: "home-manager", Pos: pos(5)},
		},
	}
	feature := func(i int) string { return fmt.Sprintf("f%03d", i) }
	for i := 0; i < nFeatures; i++ {
		x := &model.Feature{Name: feature(i), Pos: pos(10 + i)}
		if i%10 != 0 {
			x.Requires = []string{feature(i - 1)}
		}
		f.Features = append(f.Features, x)
	}
	var users []string
	for u := 0; u < nUsers; u++ {
		name := fmt.Sprintf("u%d", u)
		users = append(users, name)
		f.Users = append(f.Users, &model.User{Name: name, Home: []string{feature(u), feature(u + 10), feature(u + 20)}, Pos: pos(300 + u)})
	}
	shared := &model.Secret{Name: "ca", Shared: true, Pos: pos(400)}
	for i := 0; i < n; i++ {
		m := &model.Machine{Name: fmt.Sprintf("m%06d", i), System: "x86_64-linux", Class: model.NixOS, Users: users, Pos: pos(1000 + i)}
		for k := 0; k < perMachine; k++ {
			m.Features = append(m.Features, feature(k*(nFeatures/perMachine)+i%10))
		}
		if i%2 == 0 {
			m.Host = &model.Host{Provider: model.Hetzner, Enabled: true, Pos: pos(1000 + i)}
		}
		f.Machines = append(f.Machines, m)
		shared.Machines = append(shared.Machines, m.Name)
		f.Secrets = append(f.Secrets, &model.Secret{Name: "s-" + m.Name, Machines: []string{m.Name}, Depends: []string{"ca"}, Pos: pos(1000 + i)})
	}
	f.Secrets = append(f.Secrets, shared)
	f.Sort()
	return f
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		f := bigFleet(n)
		b.Run(fmt.Sprintf("machines=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var g *Graph
			for b.Loop() {
				var err error
				if g, err = Build(f); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(g.nodes)), "nodes")
			b.ReportMetric(float64(len(g.edges)), "edges")
		})
	}
}

// TestBigFleet checks the generated fleet builds into a correctly ordered
// graph, so the benchmark measures the real work.
func TestBigFleet(t *testing.T) {
	g := mustBuild(t, bigFleet(100))
	checkTopo(t, g)
	if got := len(g.DependsOn("machine:m000000")); got != 20+5+1+2 {
		t.Errorf("machine has %d dependencies, want 28", got)
	}
}
