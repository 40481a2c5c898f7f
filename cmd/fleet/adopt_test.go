package main

import (
	"maps"
	"slices"
	"strings"
	"testing"

	compute "google.golang.org/api/compute/v1"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
)

// seedGPU adds an instance called gpu where the test fleet wants one, as
// someone made it before the fleet: the declared shape, no fleet labels.
func (c *clouds) seedGPU(labels map[string]string) {
	c.gce.Seed("proj", "us-central1-f", &compute.Instance{
		Name: "gpu", MachineType: "n1-standard-8", Labels: labels,
		Disks:             []*compute.AttachedDisk{{Boot: true, DiskSizeGb: 100}},
		GuestAccelerators: []*compute.AcceleratorConfig{{AcceleratorType: "nvidia-tesla-t4", AcceleratorCount: 1}},
		Scheduling:        &compute.Scheduling{OnHostMaintenance: "TERMINATE"},
	})
}

// Hosts made before the fleet: apply refuses them, adopt makes them the
// fleet's, and from then on plans treat them like hosts fleet created.
func TestCloudAdopt(t *testing.T) {
	c := newClouds(t)
	c.hz.SeedServer(hetznerfake.ServerSeed{Name: "web", Type: "cx22", Location: "fsn1", Image: "debian-12", Status: "off",
		Labels: map[string]string{"team": "other"}})
	c.seedGPU(map[string]string{"owner": "ml-team"})

	code, out, stderr := c.fleet(t, "apply", c.file, "--yes", "--no-deploy")
	if code != exitError || !strings.Contains(stderr, `server "web" exists but was not created by this fleet`) ||
		!strings.Contains(stderr, "fleet adopt FILE web") || !strings.Contains(stderr, "fleet adopt FILE gpu") {
		t.Fatalf("apply with namesakes: exit %d\n%s%s", code, out, stderr)
	}

	// Without a terminal to ask on, adopt needs --yes, and changes nothing.
	before := c.mutations()
	code, out, stderr = c.fleet(t, "adopt", c.file, "web", "gpu")
	if code != exitError || !strings.Contains(stderr, "refusing to adopt 2 hosts without --yes") || c.mutations() != before {
		t.Fatalf("adopt without --yes: exit %d, %d mutations\n%s%s", code, c.mutations()-before, out, stderr)
	}
	if !strings.Contains(out, "hetzner server web: found") {
		t.Errorf("adopt without --yes should still show what it would do:\n%s", out)
	}

	out = c.apply(t, "adopt", c.file, "web", "gpu")
	for _, want := range []string{
		"adopting into fleet cloudtest:\n",
		"hetzner server web: found, id ",
		"  labels set:     fleet=cloudtest, machine=web, managed-by=fleet\n",
		"  labels dropped: team=other (fleet owns the labels of the hosts it manages)\n",
		"  differs from the declaration (fleet.star:7:",
		"    power off -> on: the next plan will update it in place\n",
		"gcp instance gpu in proj/us-central1-f: found, id ",
		"  labels dropped: owner=ml-team ",
		"  recorded:       image projects/debian-cloud/global/images/family/debian-12 (the cloud does not report it; as declared)\n",
		"    tags (none) -> fleet-cloudtest: the next plan will update it in place\n",
		"hetzner server web: adopted\n",
		"gcp instance gpu in proj/us-central1-f: adopted\n",
		"adopted 2 hosts: fleet plan " + c.file + " shows what the next apply changes on them\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("adopt output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "allow-replace") {
		t.Errorf("nothing needs replacing:\n%s", out)
	}
	t.Logf("adopt:\n%s", out)
	for _, s := range c.hz.Servers() {
		if s.Name == "web" && !maps.Equal(s.Labels, cloud.FleetLabels("cloudtest", "web", nil)) {
			t.Errorf("web's labels: %v", s.Labels)
		}
	}
	if l := c.gce.Instance("proj", "us-central1-f", "gpu").Labels; !maps.Equal(l, cloud.FleetLabels("cloudtest", "gpu", nil)) {
		t.Errorf("gpu's labels: %v", l)
	}

	// The plan sees them as the fleet's: updated in place, not created.
	p, _ := c.plan(t, c.file)
	actions := map[string]cloud.Action{}
	for _, ch := range p.Changes {
		if ch.Machine != "" {
			actions[ch.Machine] = ch.Action
		}
	}
	if actions["web"] != cloud.Update || actions["gpu"] != cloud.Update {
		t.Fatalf("plan after adopting: %v", actions)
	}
	c.apply(t, "apply", c.file, "--no-deploy")
	if _, changes := c.plan(t, c.file); len(changes) != 0 {
		t.Fatalf("not converged: %v", changes)
	}
	for _, s := range c.hz.Servers() {
		if s.Name == "web" && s.Status != "running" {
			t.Errorf("the apply after adopting did not switch web on: %s", s.Status)
		}
	}

	// Adopting again (or what fleet created) changes nothing.
	before = c.mutations()
	code, out, stderr = c.fleet(t, "adopt", c.file, "web", "db", "gpu")
	if code != exitOK || c.mutations() != before || strings.Count(out, "already managed by fleet cloudtest; nothing to do") != 3 ||
		!strings.HasSuffix(out, "nothing to adopt\n") {
		t.Fatalf("adopt again: exit %d, %d mutations\n%s%s", code, c.mutations()-before, out, stderr)
	}
}

// A host that differs from its declaration in what cannot change in
// place is adopted all the same; the output says what the next plan
// would do, and how to keep the host instead.
func TestCloudAdoptShowsReplacements(t *testing.T) {
	c := newClouds(t)
	c.hz.SeedServer(hetznerfake.ServerSeed{Name: "db", Type: "cx22", Location: "nbg1", Image: "ubuntu-22.04"})
	out := c.apply(t, "adopt", c.file, "db")
	for _, want := range []string{
		"  differs from the declaration (fleet.star:8:",
		`    image ubuntu-22.04 -> debian-12: needs --allow-replace (the next plan replaces the host, deleting it and its disk); to keep the host, declare image = "ubuntu-22.04"` + "\n",
		`    type cx22 -> cx32: needs --allow-replace (the next plan replaces the host, deleting it and its disk); to keep the host, declare type = "cx22"` + "\n",
		"hetzner server db: adopted\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("adopt output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "labels dropped") {
		t.Errorf("no label to drop:\n%s", out)
	}
	p, _ := c.plan(t, c.file)
	for _, ch := range p.Changes {
		if ch.Name == "db" && (ch.Action != cloud.Replace || ch.Refused == "") {
			t.Errorf("plan for db: %s %q", ch.Action, ch.Refused)
		}
	}
}

// What adopt refuses, and why: before asking any cloud when the command
// line is wrong, and per host when the cloud says no. Hosts that can be
// adopted still are.
func TestCloudAdoptRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		setup func(c *clouds)
		code  int
		want  []string // in stderr
		out   []string // in stdout
		// asked: the clouds were asked; adopted: these servers carry the
		// fleet's labels after.
		asked   bool
		adopted []string
	}{
		{name: "no machine", args: nil, code: exitUsage, want: []string{"adopt: name the machines whose hosts to adopt"}},
		{name: "unknown machine", args: []string{"wbe"}, code: exitError,
			want: []string{`fleet.star: no machine "wbe" in the fleet (did you mean "web"?)`}},
		{name: "switched off", args: []string{"batch"}, code: exitError,
			want: []string{"fleet.star:9:", "machine batch: its host is switched off (enabled = False)"}},
		{name: "no host", args: []string{"laptop"}, code: exitError,
			want: []string{"machine laptop has no cloud host to adopt"}},
		{name: "bad selector", args: []string{"[w"}, code: exitUsage, want: []string{"is not a valid glob"}},
		{name: "pattern without hosts", args: []string{"lap*"}, code: exitError,
			want: []string{"lap* selects no machine with an enabled cloud host"}},
		{name: "not found", args: []string{"web", "db"}, code: exitError, asked: true, adopted: []string{"web"},
			setup: func(c *clouds) { c.hz.SeedServer(hetznerfake.ServerSeed{Name: "web", Image: "debian-12"}) },
			want:  []string{"1 host not adopted:", "fleet.star:8:", `machine db: hetzner: no server "db" in the Hetzner Cloud project of HCLOUD_TOKEN`},
			out:   []string{"hetzner server web: adopted", "adopted 1 host"}},
		{name: "another fleet's", args: []string{"db"}, code: exitError, asked: true,
			setup: func(c *clouds) {
				c.hz.SeedServer(hetznerfake.ServerSeed{Name: "db", Type: "cx32", Location: "nbg1", Image: "debian-12",
					Labels: cloud.FleetLabels("prod", "db", nil)})
			},
			want: []string{`machine db: hetzner server "db" belongs to fleet prod (machine db)`, "will not take it from another fleet"}},
		{name: "in another zone", args: []string{"gpu"}, code: exitError, asked: true,
			setup: func(c *clouds) {
				c.gce.Seed("proj", "europe-west4-a", &compute.Instance{Name: "gpu"})
			},
			want: []string{`gcp: no instance "gpu" in project proj, zone us-central1-f; there is one in zone europe-west4-a`}},
		{name: "a pattern skips hosts switched off", args: []string{"@cloud"}, code: exitError, asked: true, adopted: []string{"web"},
			setup: func(c *clouds) { c.hz.SeedServer(hetznerfake.ServerSeed{Name: "web", Image: "debian-12"}) },
			out:   []string{"skipping batch: its host is switched off", "skipping train: its host is switched off", "adopted 1 host"},
			want:  []string{"2 hosts not adopted:", `no server "db"`, `no instance "gpu"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClouds(t)
			c.file = copyFleet(t, c.file, map[string]string{`disk_gb = 100, enabled = False))`: `disk_gb = 100, enabled = False))
machine("laptop", system = "x86_64-linux", state_version = "26.05")`})
			if tc.setup != nil {
				tc.setup(c)
			}
			c.hz.ResetRequests()
			c.gce.ResetRequests()
			code, out, stderr := c.fleet(t, append([]string{"adopt", c.file, "--yes"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q", w)
				}
			}
			if asked := len(c.hz.Requests())+len(c.gce.Requests()) > 0; asked != tc.asked {
				t.Errorf("the clouds were asked: %v", asked)
			}
			var adopted []string
			for _, s := range c.hz.Servers() {
				if s.Labels[cloud.LabelFleet] == "cloudtest" {
					adopted = append(adopted, s.Name)
				}
			}
			if !slices.Equal(adopted, tc.adopted) {
				t.Errorf("adopted %v, want %v", adopted, tc.adopted)
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr)
			}
		})
	}
}
