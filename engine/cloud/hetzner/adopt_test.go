package hetzner

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
)

func TestAdopt(t *testing.T) {
	wantLabels := cloud.FleetLabels("ref", "pyrite", nil)
	for _, tc := range []struct {
		name string
		seed *hetznerfake.ServerSeed
		// fail is how many label updates answer 429 first.
		fail int
		// Outcomes of PlanAdoption: an error of this type, or what it says.
		notFound, owned, ours bool
		dropped               []string
		diffs                 []string // "key have -> want (in place|replace)"
	}{
		{
			name:    "namesake as declared",
			seed:    &hetznerfake.ServerSeed{Name: "pyrite", Type: "cax11", Location: "nbg1", Image: "ubuntu-24.04", Labels: map[string]string{"team": "ops", "env": "prod"}},
			dropped: []string{"env=prod", "team=ops"},
		},
		{
			name: "namesake that differs",
			seed: &hetznerfake.ServerSeed{Name: "pyrite", Type: "cx22", Location: "fsn1", Image: "debian-12", Status: "off"},
			diffs: []string{
				"image debian-12 -> ubuntu-24.04 replace",
				"location fsn1 -> nbg1 replace",
				"power off -> on in place",
				"type cx22 -> cax11 replace",
			},
		},
		{
			name: "label update rate limited",
			seed: &hetznerfake.ServerSeed{Name: "pyrite", Type: "cax11", Location: "nbg1", Image: "ubuntu-24.04"},
			fail: 2,
		},
		{
			name:     "not found",
			seed:     &hetznerfake.ServerSeed{Name: "pyrite-2", Type: "cax11", Location: "nbg1", Image: "ubuntu-24.04"},
			notFound: true,
		},
		{
			name: "already ours",
			seed: &hetznerfake.ServerSeed{Name: "pyrite", Type: "cax11", Location: "nbg1", Image: "ubuntu-24.04", Labels: wantLabels},
			ours: true,
		},
		{
			name:  "another fleet's",
			seed:  &hetznerfake.ServerSeed{Name: "pyrite", Type: "cax11", Location: "nbg1", Image: "ubuntu-24.04", Labels: cloud.FleetLabels("prod", "pyrite", nil)},
			owned: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, p := newTest(t)
			fake.SeedServer(*tc.seed)
			f := testFleet()
			rs, err := p.Desired(f)
			if err != nil {
				t.Fatal(err)
			}
			want := find(rs, KindServer, "pyrite")
			a, err := p.PlanAdoption(ctx(t), want)
			var nf *cloud.NotFoundError
			var owned *cloud.OwnedError
			switch {
			case tc.notFound:
				if !errors.As(err, &nf) || !strings.Contains(err.Error(), `no server "pyrite" in the Hetzner Cloud project`) {
					t.Fatalf("err = %v, want a NotFoundError", err)
				}
			case tc.owned:
				if !errors.As(err, &owned) || owned.Fleet != "prod" || !strings.Contains(err.Error(), "belongs to fleet prod") {
					t.Fatalf("err = %v, want an OwnedError naming fleet prod", err)
				}
			case err != nil:
				t.Fatal(err)
			}
			if err != nil {
				if n := fake.Mutations(); n != 0 {
					t.Errorf("%d mutating requests", n)
				}
				return
			}
			if a.AlreadyOurs != tc.ours {
				t.Fatalf("AlreadyOurs = %v", a.AlreadyOurs)
			}
			if !tc.ours {
				if !maps.Equal(a.Labels, wantLabels) || !slices.Equal(a.Dropped, tc.dropped) || len(a.Recorded) != 0 {
					t.Errorf("labels %v, dropped %v, recorded %v", a.Labels, a.Dropped, a.Recorded)
				}
				var diffs []string
				for _, d := range a.Differences {
					how := "replace"
					if d.InPlace {
						how = "in place"
					}
					diffs = append(diffs, d.String()+" "+how)
				}
				if !slices.Equal(diffs, tc.diffs) {
					t.Errorf("differences:\n%s\nwant\n%s", strings.Join(diffs, "\n"), strings.Join(tc.diffs, "\n"))
				}
			}
			fake.FailNext(http.MethodPut, "/servers/", tc.fail, http.StatusTooManyRequests)
			fake.ResetRequests()
			got, err := p.Adopt(ctx(t), a)
			if err != nil {
				t.Fatal(err)
			}
			if puts := count(fake.Requests(), http.MethodPut, "/servers/"+a.Have.ID); tc.ours && puts != 0 || !tc.ours && puts != tc.fail+1 {
				t.Errorf("%d label updates (%d answered 429)", puts, tc.fail)
			}
			if !got.Ours("ref") || got.Machine != "pyrite" {
				t.Errorf("adopted: %+v", got)
			}
			// The next plan lists it as the fleet's: no create, no namesake.
			have, err := p.List(ctx(t), "ref", nil)
			if err != nil {
				t.Fatal(err)
			}
			if s := find(have, KindServer, "pyrite"); s == nil || !s.Ours("ref") || !maps.Equal(s.Labels, wantLabels) {
				t.Fatalf("listed after adopting: %+v", s)
			}
			plan, err := cloud.MakePlan(ctx(t), f, []cloud.Provider{p}, cloud.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range plan.Changes {
				if ch.Name != "pyrite" {
					continue
				}
				if len(tc.diffs) == 0 && ch.Action != cloud.NoOp || len(tc.diffs) > 0 && ch.Action != cloud.Replace {
					t.Errorf("plan after adopting: %s %s (%s)", ch.Action, ch.Name, ch.Reason)
				}
			}
		})
	}
}

func TestAdoptOnlyServers(t *testing.T) {
	_, p := newTest(t)
	rs, err := p.Desired(testFleet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PlanAdoption(ctx(t), rs[0]); err == nil || !strings.Contains(err.Error(), "only servers") {
		t.Fatalf("adopting a %s: %v", rs[0].Kind, err)
	}
}

// A namesake's create error says how to adopt it.
func TestNamesakeNamesAdopt(t *testing.T) {
	fake, p := newTest(t)
	fake.SeedServer(hetznerfake.ServerSeed{Name: "pyrite"})
	rs, err := p.Desired(testFleet())
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Create(ctx(t), find(rs, KindServer, "pyrite"))
	var ne *cloud.NamesakeError
	if !errors.As(err, &ne) || ne.Machine != "pyrite" || !strings.Contains(err.Error(), "fleet adopt FILE pyrite") {
		t.Fatalf("err = %v", err)
	}
}

// The server's firewalls compare as in a plan: the fleet's firewall it
// already has counts, by name; one it lacks is an update in place.
func TestAdoptComparesFleetFirewalls(t *testing.T) {
	for _, applied := range []bool{true, false} {
		fake, p := newTest(t)
		id := fake.SeedServer(hetznerfake.ServerSeed{Name: "pyrite", Type: "cax11", Location: "nbg1", Image: "ubuntu-24.04"})
		seed := hetznerfake.FirewallSeed{Name: "base", Labels: cloud.FleetLabels("ref", "", map[string]string{"tier": "base"})}
		if applied {
			seed.Servers = []int64{id}
		}
		fake.SeedFirewallWith(seed)
		rs, err := p.Desired(fwFleet())
		if err != nil {
			t.Fatal(err)
		}
		a, err := p.PlanAdoption(ctx(t), find(rs, KindServer, "pyrite"))
		if err != nil {
			t.Fatal(err)
		}
		var diffs []string
		for _, d := range a.Differences {
			diffs = append(diffs, d.String())
		}
		want := []string{"firewalls (none) -> base"}
		if applied {
			want = nil
		}
		if !slices.Equal(diffs, want) {
			t.Errorf("applied %v: differences %q, want %q", applied, diffs, want)
		}
		if a.Replaces() {
			t.Errorf("applied %v: a firewall difference is in place", applied)
		}
	}
}
