package apply_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/apply"
	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
)

const aliceKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEULM3YKQXjnkoYQmMS2X/ci65qw/4u1Ppln4/b26+S2 alice@laptop"

func testFleet(t *testing.T) *model.Fleet {
	server := func(name, typ string) *model.Machine {
		return &model.Machine{Name: name, Class: model.NixOS, Host: &model.Host{Provider: model.Hetzner, Enabled: true,
			Hetzner: &model.HetznerServer{Type: typ, Location: "fsn1", Image: "ubuntu-24.04", IPv4: true}}}
	}
	f := &model.Fleet{Name: "t", Root: t.TempDir(), Admins: []string{"alice"},
		Users:    []*model.User{{Name: "alice", SSHKeys: []string{aliceKey}}},
		Machines: []*model.Machine{server("web", "cx22"), server("db", "cx32")}}
	f.Sort()
	return f
}

// The cloud part of the graph keeps cloud.Apply's guarantees: the
// fleet's ssh key is created before any server, a failed change stops
// no other (a server create after a failed key create is still tried),
// retries absorb rate limits, and a second plan after a clean run has
// nothing to do.
func TestCloudStepsKeepApplySemantics(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fail       func(*hetznerfake.Server)
		wantFailed []string // changes that fail, as "action resource name"
	}{
		{"clean, through rate limits", func(s *hetznerfake.Server) { s.FailNext("POST", "/servers", 3, 429) }, nil},
		{"a server fails", func(s *hetznerfake.Server) { s.FailCreate("db", "no capacity") }, []string{"create server db"}},
		// The servers then fail too (the provider needs the key), but
		// they are tried, not skipped.
		{"the ssh key fails", func(s *hetznerfake.Server) { s.FailNext("POST", "/ssh_keys", 100, 422) },
			[]string{"create ssh_key t-483aafeb529e", "create server db", "create server web"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := hetznerfake.New()
			t.Cleanup(fake.Close)
			p := hetzner.New(cloud.Config{Getenv: func(k string) string {
				return map[string]string{"HCLOUD_TOKEN": fake.Token, "HCLOUD_ENDPOINT": fake.URL()}[k]
			}, Backoff: cloud.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 5}}, hetzner.WithPollInterval(time.Millisecond))
			provs := []cloud.Provider{p}
			f := testFleet(t)
			ctx := context.Background()
			plan, err := apply.Plan(ctx, f, provs, apply.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			tc.fail(fake)
			fake.ResetRequests()
			g, err := apply.New(f, plan, nil, apply.Options{Providers: provs, NoDeploy: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Steps) != 3 {
				t.Fatalf("%d steps, want 3 (the key, two servers)", len(g.Steps))
			}
			sum := deploy.Execute(ctx, g.Steps, deploy.ExecOptions{Parallel: 10})
			var failed []string
			for _, o := range g.CloudResult(sum).Failed() {
				failed = append(failed, string(o.Change.Action)+" "+o.Change.Resource+" "+o.Change.Name)
			}
			if strings.Join(failed, "|") != strings.Join(tc.wantFailed, "|") {
				t.Errorf("failed %q, want %q", failed, tc.wantFailed)
			}
			for _, m := range sum.Machines {
				for _, s := range m.Steps {
					if s.Kind != deploy.EventSucceeded && s.Kind != deploy.EventFailed {
						t.Errorf("%s: %s, want it tried", s.ID, s.Kind)
					}
				}
			}
			lastKey, firstServer := -1, -1
			servers := 0
			for i, r := range fake.Requests() {
				switch {
				case r.Method == "POST" && r.Path == "/ssh_keys":
					lastKey = i
				case r.Method == "POST" && r.Path == "/servers":
					servers++
					if firstServer < 0 {
						firstServer = i
					}
				}
			}
			if lastKey < 0 || lastKey > firstServer && firstServer >= 0 {
				t.Errorf("ssh key created at request %d, first server at %d: the key must come first", lastKey, firstServer)
			}
			if servers < 2 && len(tc.wantFailed) < 3 {
				t.Errorf("%d server creates sent, want both", servers)
			}
			if len(tc.wantFailed) == 0 {
				again, err := cloud.MakePlan(ctx, f, provs, cloud.PlanOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range again.Changes {
					if c.Action != cloud.NoOp {
						t.Errorf("after the run: %s %s %s", c.Action, c.Resource, c.Name)
					}
				}
			}
		})
	}
}

// fleet deploy's graph is the machines' deploy chains alone, as
// deploy.Steps makes them.
func TestDeployGraphIsDeploySteps(t *testing.T) {
	f := testFleet(t)
	for _, m := range f.Machines {
		m.Target = "root@" + m.Name
	}
	opts := deploy.Options{Tree: "/tree", OnlyChanged: true}
	g, err := apply.New(f, nil, f.Machines, apply.Options{Deploy: opts})
	if err != nil {
		t.Fatal(err)
	}
	want, err := deploy.Steps(f, f.Machines, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Steps) != len(want) || len(g.Cloud) != 0 {
		t.Fatalf("%d steps (%d cloud), want %d", len(g.Steps), len(g.Cloud), len(want))
	}
	for i := range want {
		if g.Steps[i].ID != want[i].ID || strings.Join(g.Steps[i].Needs, ",") != strings.Join(want[i].Needs, ",") {
			t.Errorf("step %d: %s needs %v, want %s needs %v", i, g.Steps[i].ID, g.Steps[i].Needs, want[i].ID, want[i].Needs)
		}
	}
}

// A machine whose host does not change still comes after the fleet-wide
// changes (a firewall opening ssh): its deploy starts when they ended.
func TestDeploysComeAfterFleetWideChanges(t *testing.T) {
	f := testFleet(t)
	web := &cloud.Resource{Provider: "hetzner", Kind: "server", Name: "web", Machine: "web", Spec: map[string]string{"power": "on"}, IPv4: "198.51.100.7"}
	fw := &cloud.Resource{Provider: "hetzner", Kind: "firewall", Name: "ssh"}
	plan := &cloud.Plan{Changes: []*cloud.Change{
		{Action: cloud.Update, Provider: "hetzner", Resource: "firewall", Name: "ssh", Want: fw, Have: fw, Fields: []string{"rules"}},
		{Action: cloud.NoOp, Provider: "hetzner", Resource: "server", Name: "web", Machine: "web", Want: web, Have: web},
	}}
	g, err := apply.New(f, plan, nil, apply.Options{Deploy: deploy.Options{Tree: t.TempDir(), Goal: deploy.Switch}})
	if err != nil {
		t.Fatal(err)
	}
	var first *deploy.Step
	for i := range g.Steps {
		if g.Steps[i].Machine == "web" {
			first = &g.Steps[i]
			break
		}
	}
	if first == nil || !slices.Contains(first.After, "_cloud/update-firewall-ssh") {
		t.Fatalf("web's first step %+v does not come after the firewall's update", first)
	}
}
