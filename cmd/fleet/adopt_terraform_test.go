package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
)

// terraformState copies a fixture of testdata/terraform, replacing the
// ids it records with the ones the fakes gave the hosts seeded for it.
func terraformState(t *testing.T, fixture string, ids map[string]string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata/terraform", fixture))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	for old, nw := range ids {
		if !strings.Contains(s, `"`+old+`"`) {
			t.Fatalf("%s has no id %s", fixture, old)
		}
		s = strings.ReplaceAll(s, `"`+old+`"`, `"`+nw+`"`)
	}
	p := filepath.Join(t.TempDir(), fixture)
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// seedTerraformed seeds the hosts the fixtures describe, as Terraform
// made them, and returns the fake's id of each by name.
func (c *clouds) seedTerraformed(names ...string) map[string]string {
	ids := map[string]string{}
	for _, name := range names {
		switch name {
		case "gpu":
			c.seedGPU(map[string]string{"owner": "ml-team", "goog-terraform-provisioned": "true"})
			ids[name] = strconv.FormatUint(c.gce.Instance("proj", "us-central1-f", "gpu").Id, 10)
		case "web":
			ids[name] = fmt.Sprint(c.hz.SeedServer(hetznerfake.ServerSeed{Name: "web", Type: "cx22", Location: "fsn1", Image: "debian-12",
				Status: "off", Labels: map[string]string{"team": "other"}}))
		case "db":
			ids[name] = fmt.Sprint(c.hz.SeedServer(hetznerfake.ServerSeed{Name: "db", Type: "cx32", Location: "nbg1", Image: "debian-12",
				Labels: map[string]string{"role": "database"}}))
		default:
			ids[name] = fmt.Sprint(c.hz.SeedServer(hetznerfake.ServerSeed{Name: name, Location: "hel1", Image: "ubuntu-24.04"}))
		}
	}
	return ids
}

// fleetLabelled returns the Hetzner servers and GCE instance gpu that
// carry the test fleet's labels.
func (c *clouds) fleetLabelled() []string {
	var out []string
	for _, s := range c.hz.Servers() {
		if maps.Equal(s.Labels, cloud.FleetLabels("cloudtest", s.Name, nil)) {
			out = append(out, s.Name)
		}
	}
	if in := c.gce.Instance("proj", "us-central1-f", "gpu"); in != nil && maps.Equal(in.Labels, cloud.FleetLabels("cloudtest", "gpu", nil)) {
		out = append(out, "gpu")
	}
	return out
}

// A terraform.tfstate chooses the hosts to adopt: those of the fleet's
// machines it has, in modules too, in one go; what the fleet does not
// declare and what the state lacks are listed and left alone.
func TestCloudAdoptTerraformState(t *testing.T) {
	c := newClouds(t)
	ids := c.seedTerraformed("web", "gpu", "bastion", "db")
	state := terraformState(t, "terraform.tfstate", map[string]string{
		"48213917": ids["web"], "4532018843170386512": ids["gpu"], "48213921": ids["bastion"]})

	listing := []string{
		state + ", read as terraform.tfstate (format version 4):\n" +
			"  hcloud_server.web (name web): machine web\n" +
			"  module.gpu.google_compute_instance.this (name gpu): machine gpu\n" +
			"  not in the fleet: hcloud_server.bastion (name bastion)\n" +
			"  no resource in the state: machine db (a Hetzner server)\n" +
			"adopting into fleet cloudtest:\n",
		"hetzner server web: found, id " + ids["web"] + ", off",
		"  labels dropped: team=other (fleet owns the labels of the hosts it manages)\n",
		"gcp instance gpu in proj/us-central1-f: found, id " + ids["gpu"],
		"  labels dropped: goog-terraform-provisioned=true, owner=ml-team ",
	}

	// Without a terminal to ask on: shown, not adopted.
	before := c.mutations()
	code, out, stderr := c.fleet(t, "adopt", "--terraform", state, c.file)
	if code != exitError || !strings.Contains(stderr, "refusing to adopt 2 hosts without --yes") || c.mutations() != before {
		t.Fatalf("without --yes: exit %d, %d mutations\n%s%s", code, c.mutations()-before, out, stderr)
	}
	for _, want := range listing {
		if !strings.Contains(out, want) {
			t.Errorf("output without --yes lacks %q:\n%s", want, out)
		}
	}

	out = c.apply(t, "adopt", "--terraform", state, c.file)
	for _, want := range append(listing,
		"hetzner server web: adopted\n",
		"gcp instance gpu in proj/us-central1-f: adopted\n",
		"adopted 2 hosts: fleet plan "+c.file) {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("adopt --terraform:\n%s", out)
	if got := c.fleetLabelled(); strings.Join(got, " ") != "web gpu" {
		t.Errorf("adopted %v, want web and gpu (not bastion, not db, which the state lacks)", got)
	}
	for _, s := range c.hz.Servers() {
		if s.Name == "bastion" && len(s.Labels) != 0 || s.Name == "db" && s.Labels["role"] != "database" {
			t.Errorf("%s was touched: %v", s.Name, s.Labels)
		}
	}

	// Again: nothing to do.
	before = c.mutations()
	code, out, stderr = c.fleet(t, "adopt", "--terraform", state, c.file)
	if code != exitOK || c.mutations() != before || strings.Count(out, "already managed by fleet cloudtest") != 2 {
		t.Fatalf("again: exit %d, %d mutations\n%s%s", code, c.mutations()-before, out, stderr)
	}
}

// terraform show -json, from standard input: resources of for_each and
// count and of nested modules; MACHINE narrows the choice.
func TestCloudAdoptTerraformShowJSON(t *testing.T) {
	c := newClouds(t)
	ids := c.seedTerraformed("web", "db", "gpu", "jump")
	state := terraformState(t, "show.json", map[string]string{
		"48213917": ids["web"], "48214402": ids["db"], "4532018843170386999": ids["gpu"], "48214410": ids["jump"]})
	doc, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runWith(context.Background(), c.deps(), append([]string{"fleet", "adopt", "--terraform", "-"}, args...),
			bytes.NewReader(doc), &out, &errb)
		return code, out.String(), errb.String()
	}

	code, out, stderr := run(c.file, "web", "--yes")
	if code != exitOK || !strings.Contains(out, "standard input, read as terraform show -json:\n"+
		"  hcloud_server.hosts[\"web\"] (name web): machine web\n"+
		"  left out: hcloud_server.hosts[\"db\"] (name db): machine db is not among the machines named\n"+
		"  left out: module.ml.google_compute_instance.trainer[0] (name gpu): machine gpu is not among the machines named\n"+
		"  not in the fleet: module.ml.module.jump.hcloud_server.this (name jump)\n") ||
		!strings.Contains(out, "adopted 1 host") {
		t.Fatalf("adopt web: exit %d\n%s%s", code, out, stderr)
	}
	if got := c.fleetLabelled(); strings.Join(got, " ") != "web" {
		t.Fatalf("adopted %v, want web", got)
	}

	// Without --yes, and standard input the state: not asked, not adopted.
	before := c.mutations()
	if code, out, stderr = run(c.file); code != exitError || !strings.Contains(stderr, "refusing to adopt 2 hosts without --yes") || c.mutations() != before {
		t.Fatalf("without --yes: exit %d\n%s%s", code, out, stderr)
	}

	code, out, stderr = run(c.file, "--yes")
	for _, want := range []string{
		"  hcloud_server.hosts[\"db\"] (name db): machine db\n",
		"  module.ml.google_compute_instance.trainer[0] (name gpu): machine gpu\n",
		"hetzner server web: already managed by fleet cloudtest; nothing to do\n",
		"  labels dropped: role=database ",
		"hetzner server db: adopted\n",
		"gcp instance gpu in proj/us-central1-f: adopted\n",
		"adopted 2 hosts",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "no resource in the state") {
		t.Errorf("the state has every enabled host")
	}
	if code != exitOK || t.Failed() {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	if got := c.fleetLabelled(); strings.Join(got, " ") != "web db gpu" {
		t.Errorf("adopted %v", got)
	}
}

// A host whose id in the cloud is not the state's is not adopted (the
// state is stale, or from another project); the others are.
func TestCloudAdoptTerraformIDMismatch(t *testing.T) {
	c := newClouds(t)
	ids := c.seedTerraformed("web", "gpu")
	state := terraformState(t, "terraform.tfstate", map[string]string{"4532018843170386512": ids["gpu"]})
	code, out, stderr := c.fleet(t, "adopt", "--terraform", state, c.file, "--yes")
	if code != exitError ||
		!strings.Contains(out, "hetzner server web: cannot adopt: the state's hcloud_server.web has id 48213917, but the cloud's server web has id "+ids["web"]+": the state is out of date") ||
		!strings.Contains(out, "gcp instance gpu in proj/us-central1-f: adopted") ||
		!strings.Contains(stderr, "1 host not adopted:\n  fleet.star:7:") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	if strings.Contains(out, "hetzner server web: found") {
		t.Errorf("a host of another id is not shown as found:\n%s", out)
	}
	if got := c.fleetLabelled(); strings.Join(got, " ") != "gpu" {
		t.Errorf("adopted %v, want gpu only", got)
	}
}

// What the state says that fleet cannot adopt is refused before any
// cloud is asked: a resource of another cloud than the declaration's,
// a machine switched off, an instance in another zone, two resources of
// one name; and a state that cannot be read adopts nothing.
func TestCloudAdoptTerraformRefusals(t *testing.T) {
	c := newClouds(t)
	c.seedTerraformed("web", "gpu")
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	res := func(module, typ, name string, attrs string) string {
		m := ""
		if module != "" {
			m = `"module":"` + module + `",`
		}
		return `{` + m + `"mode":"managed","type":"` + typ + `","name":"` + name + `","instances":[{"schema_version":0,"attributes":` + attrs + `}]}`
	}
	odd := write("odd.tfstate", `{"version":4,"terraform_version":"1.9.8","serial":3,"lineage":"x","outputs":{},"resources":[`+strings.Join([]string{
		res("", "google_compute_instance", "web", `{"id":"projects/proj/zones/us-central1-f/instances/web","instance_id":"1","name":"web","zone":"us-central1-f","project":"proj"}`),
		res("", "hcloud_server", "batch", `{"id":"7","name":"batch"}`),
		res("module.a", "google_compute_instance", "gpu", `{"id":"projects/proj/zones/europe-west4-a/instances/gpu","instance_id":"2","name":"gpu","zone":"europe-west4-a","project":"proj"}`),
		res("", "hcloud_server", "db", `{"id":"8","name":"db"}`),
		res("module.b", "hcloud_server", "db", `{"id":"9","name":"db"}`),
		res("", "hcloud_firewall", "db", `{"id":"10","name":"db"}`),
	}, ",")+`]}`)
	for _, tc := range []struct {
		name, state string
		want        []string // in stderr
	}{
		{"refused", odd, []string{"4 hosts not adopted:",
			"machine web: google_compute_instance.web is a google_compute_instance, but the machine declares a Hetzner server",
			"machine batch: hcloud_server.batch: its host is switched off (enabled = False)",
			"machine gpu: the state has it in zone europe-west4-a (declared us-central1-f)",
			"machine db: the state has 2 resources of its name (hcloud_server.db, module.b.hcloud_server.db): which is its host?"}},
		{"truncated", write("cut.tfstate", `{"version":4,"resources":[{"mode":"managed","type":"hcloud_server","name":"web","instances":[{"attributes":{"name":"web"`),
			[]string{"adopt --terraform " + dir + "/cut.tfstate: not a Terraform state: unexpected EOF"}},
		{"not a state", write("plan.json", `{"format_version":"1.2","planned_values":{"root_module":{}}}`),
			[]string{"this is a plan's JSON, not a state's"}},
		{"old format", write("old.tfstate", `{"version":3,"serial":1,"modules":[]}`),
			[]string{"terraform.tfstate format version 3: fleet reads version 4"}},
		{"missing", filepath.Join(dir, "nope.tfstate"), []string{"adopt --terraform: open " + dir + "/nope.tfstate: no such file or directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.hz.ResetRequests()
			c.gce.ResetRequests()
			code, out, stderr := c.fleet(t, "adopt", "--terraform", tc.state, c.file, "--yes")
			if code != exitError {
				t.Errorf("exit %d", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q", w)
				}
			}
			if n := len(c.hz.Requests()) + len(c.gce.Requests()); n != 0 {
				t.Errorf("the clouds were asked %d times", n)
			}
			if got := c.fleetLabelled(); len(got) != 0 {
				t.Errorf("adopted %v", got)
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, stderr)
			}
		})
	}
}
