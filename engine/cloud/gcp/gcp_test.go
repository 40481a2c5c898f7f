package gcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/gcp/gcpfake"
	"github.com/fleet-nix/fleet/engine/model"
)

const (
	project  = "demo-project"
	zoneB    = "us-central1-b"
	zoneF    = "us-central1-f"
	aliceSSH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice alice@home"
	rawSSH   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOps ops@laptop"
)

// referenceFleet has the GCE hosts of the reference fleet: galena, an
// e2-standard-8 with a 100 GB disk, and scheelite, an n1-standard-8 with
// one T4, next to a Hetzner host the provider must ignore.
func referenceFleet() *model.Fleet {
	f := &model.Fleet{
		Name:   "demo",
		Admins: []string{"alice", rawSSH, "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq"},
		Users:  []*model.User{{Name: "alice", SSHKeys: []string{aliceSSH}}, {Name: "bob", SSHKeys: []string{"ssh-ed25519 AAAABob bob@x"}}},
		Machines: []*model.Machine{
			{Name: "cinnabar", Host: &model.Host{Provider: model.Hetzner, Enabled: true,
				Hetzner: &model.HetznerServer{Type: "cx43", Location: "fsn1", Image: "debian-12"}}},
			{Name: "galena", Host: &model.Host{Provider: model.GCP, Enabled: true,
				GCP: &model.GCPInstance{Project: project, Zone: zoneB, Type: "e2-standard-8", DiskGB: 100,
					Tags: []string{"builder"}, Labels: map[string]string{"role": "build"}}}},
			{Name: "scheelite", Host: &model.Host{Provider: model.GCP, Enabled: true,
				GCP: &model.GCPInstance{Project: project, Zone: zoneF, Type: "n1-standard-8", DiskGB: 100,
					GPU: "nvidia-tesla-t4", GPUs: 1}}},
		},
	}
	f.Sort()
	return f
}

type env struct {
	fake *gcpfake.Server
	p    *Provider
	vars map[string]string
}

// newEnv is a provider wired to a fresh fake through a service-account
// key file, with tiny backoff and poll intervals.
func newEnv(t *testing.T) *env {
	t.Helper()
	fake := gcpfake.New()
	t.Cleanup(fake.Close)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(keyFile, fake.ServiceAccountJSON(t, project), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{EnvCredentials: keyFile, EnvEndpoint: fake.Endpoint(), "HOME": dir}
	return &env{fake: fake, p: newProvider(t, vars), vars: vars}
}

func newProvider(t *testing.T, vars map[string]string) *Provider {
	p := New(cloud.Config{
		Getenv:  func(k string) string { return vars[k] },
		Backoff: cloud.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 5},
	})
	p.MaxResults = 50
	p.PollInterval = time.Millisecond
	p.transport = loopbackOnly(t)
	return p
}

// loopbackOnly carries requests to 127.0.0.1 and ::1 and fails the test
// on anything else: the metadata server, Google's token endpoint or API.
func loopbackOnly(t *testing.T) http.RoundTripper {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.Proxy = nil
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if ip := net.ParseIP(r.URL.Hostname()); ip == nil || !ip.IsLoopback() {
			t.Errorf("request to %s: only the fake may be contacted", r.URL)
			return nil, fmt.Errorf("test: %s is not loopback", r.URL.Host)
		}
		return base.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (e *env) desired(t *testing.T) []*cloud.Resource {
	t.Helper()
	want, err := e.p.Desired(referenceFleet())
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func find(rs []*cloud.Resource, kind, name string) *cloud.Resource {
	for _, r := range rs {
		if r.Kind == kind && r.Name == name {
			return r
		}
	}
	return nil
}

func TestDesired(t *testing.T) {
	p := New(cloud.Config{})
	want, err := p.Desired(referenceFleet())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range want {
		keys = append(keys, r.Key())
	}
	wantKeys := []string{
		"gcp/instance/demo-project/us-central1-b/galena",
		"gcp/instance/demo-project/us-central1-f/scheelite",
		"gcp/firewall/demo-project/demo-fleet",
	}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Fatalf("keys = %q, want %q", keys, wantKeys)
	}

	g := want[0]
	if got, w := g.Spec, map[string]string{"type": "e2-standard-8", "image": DefaultImage, "disk_gb": "100",
		"gpu": "", "gpus": "0", "power": "on", "tags": "builder,fleet-demo",
		"ssh_keys": "2 keys, sha256 fbbe6cb5"}; !reflect.DeepEqual(got, w) {
		t.Errorf("galena spec = %v, want %v", got, w)
	}
	if got, w := g.Labels, map[string]string{"managed-by": "fleet", "fleet": "demo", "machine": "galena", "role": "build"}; !reflect.DeepEqual(got, w) {
		t.Errorf("galena labels = %v, want %v", got, w)
	}
	if g.Machine != "galena" || !reflect.DeepEqual(g.Mutable, []string{"power", "tags", "ssh_keys"}) {
		t.Errorf("galena machine %q mutable %q", g.Machine, g.Mutable)
	}
	if got, w := g.Extra[extraTags], []string{"builder", "fleet-demo"}; !reflect.DeepEqual(got, w) {
		t.Errorf("galena tags = %v, want %v", got, w)
	}
	// alice by name, the raw key as it is; bob is no admin, the age
	// recipient is for secrets.
	if got, w := g.Extra[extraSSHKeys], []string{"root:" + aliceSSH, "root:" + rawSSH}; !reflect.DeepEqual(got, w) {
		t.Errorf("ssh keys = %q, want %q", got, w)
	}

	s := want[1]
	if s.Spec["gpu"] != "nvidia-tesla-t4" || s.Spec["gpus"] != "1" || s.Spec["type"] != "n1-standard-8" {
		t.Errorf("scheelite spec = %v", s.Spec)
	}

	fw := want[2]
	if fw.Machine != "" || fw.Scope != project || fw.Spec["allow"] != "tcp:22,udp:9993" ||
		fw.Spec["source"] != "0.0.0.0/0" || fw.Spec["target_tag"] != "fleet-demo" {
		t.Errorf("firewall = %+v", fw)
	}
	if !fw.Ours("demo") || fw.Labels[cloud.LabelMachine] != "" {
		t.Errorf("firewall labels = %v", fw.Labels)
	}

	// Switched off: no instance; all off: no firewall either.
	f := referenceFleet()
	f.Machine("galena").Host.Enabled = false
	if want, _ := p.Desired(f); len(want) != 2 || find(want, KindInstance, "galena") != nil {
		t.Errorf("galena off: %d resources", len(want))
	}
	f.Machine("scheelite").Host.Enabled = false
	if want, _ := p.Desired(f); len(want) != 0 {
		t.Errorf("all off: %d resources, want none", len(want))
	}
}

func TestDesiredRejectsWhatGCEWould(t *testing.T) {
	p := New(cloud.Config{})
	for name, mutate := range map[string]func(f *model.Fleet){
		"upper-case machine": func(f *model.Fleet) { f.Machine("galena").Name = "Galena" },
		"label value":        func(f *model.Fleet) { f.Machine("galena").Host.GCP.Labels["role"] = "Build Box" },
		"no zone":            func(f *model.Fleet) { f.Machine("galena").Host.GCP.Zone = "" },
		"gpus without gpu":   func(f *model.Fleet) { f.Machine("galena").Host.GCP.GPUs = 2 },
		"bad tag":            func(f *model.Fleet) { f.Machine("galena").Host.GCP.Tags = []string{"Web"} },
		"fleet name":         func(f *model.Fleet) { f.Name = "Demo_Fleet" },
		// Only N1 takes attached GPUs, in the counts GCE sells.
		"a T4 on an E2": func(f *model.Fleet) {
			f.Machine("galena").Host.GCP.GPU, f.Machine("galena").Host.GCP.GPUs = "nvidia-tesla-t4", 1
		},
		"three T4s": func(f *model.Fleet) { f.Machine("scheelite").Host.GCP.GPUs = 3 },
	} {
		f := referenceFleet()
		mutate(f)
		if _, err := p.Desired(f); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// Every machine type with built-in GPUs (https://cloud.google.com/compute/docs/gpus)
// is asked for with onHostMaintenance TERMINATE, which GCE demands of any
// instance with GPUs, and without guestAccelerators, which such types
// refuse; its Spec says the GPUs it comes with, as a listed one reports them.
func TestDesiredBuiltinGPUs(t *testing.T) {
	for _, c := range []struct {
		typ, gpu string
		gpus     string
	}{
		{"g2-standard-8", "nvidia-l4", "1"},
		{"g2-standard-24", "nvidia-l4", "2"},
		{"a2-highgpu-1g", "nvidia-tesla-a100", "1"},
		{"a2-highgpu-8g", "nvidia-tesla-a100", "8"},
		{"a2-megagpu-16g", "nvidia-tesla-a100", "16"},
		{"a2-ultragpu-4g", "nvidia-a100-80gb", "4"},
		{"a3-highgpu-1g", "nvidia-h100-80gb", "1"},
		{"a3-highgpu-8g", "nvidia-h100-80gb", "8"},
		{"a3-megagpu-8g", "nvidia-h100-mega-80gb", "8"},
		{"a3-edgegpu-8g", "nvidia-h100-80gb", "8"},
		{"a3-ultragpu-8g", "nvidia-h200-141gb", "8"},
		{"a4-highgpu-8g", "nvidia-b200", "8"},
	} {
		f := referenceFleet()
		f.Machine("galena").Host.GCP.Type = c.typ
		want, err := New(cloud.Config{}).Desired(f)
		if err != nil {
			t.Fatalf("%s: %v", c.typ, err)
		}
		g := find(want, KindInstance, "galena")
		if g.Spec["gpu"] != c.gpu || g.Spec["gpus"] != c.gpus {
			t.Errorf("%s: spec gpu %q gpus %q, want %s x %s", c.typ, g.Spec["gpu"], g.Spec["gpus"], c.gpus, c.gpu)
		}
		inst, err := instanceFor(g)
		if err != nil {
			t.Fatal(err)
		}
		if len(inst.GuestAccelerators) != 0 || inst.Scheduling == nil || inst.Scheduling.OnHostMaintenance != "TERMINATE" {
			t.Errorf("%s insert: accelerators %v scheduling %+v", c.typ, inst.GuestAccelerators, inst.Scheduling)
		}
	}
	// Types without GPUs keep GCE's default (live migration).
	for _, typ := range []string{"e2-standard-8", "n1-standard-8", "n2-standard-4", "a2x-standard-4", "g2"} {
		f := referenceFleet()
		f.Machine("galena").Host.GCP.Type = typ
		want, _ := New(cloud.Config{}).Desired(f)
		g := find(want, KindInstance, "galena")
		inst, _ := instanceFor(g)
		if inst.Scheduling != nil || g.Spec["gpus"] != "0" {
			t.Errorf("%s: scheduling %+v, gpus %s", typ, inst.Scheduling, g.Spec["gpus"])
		}
	}
	// Declaring a built-in GPU other than the type's is an error.
	f := referenceFleet()
	f.Machine("galena").Host.GCP.Type = "a2-highgpu-2g"
	f.Machine("galena").Host.GCP.GPU, f.Machine("galena").Host.GCP.GPUs = "nvidia-tesla-t4", 1
	if _, err := New(cloud.Config{}).Desired(f); err == nil || !strings.Contains(err.Error(), "a2-highgpu-2g comes with 2 nvidia-tesla-a100") {
		t.Errorf("a2 with a T4: %v", err)
	}
}

func TestInsertRequest(t *testing.T) {
	want, _ := New(cloud.Config{}).Desired(referenceFleet())
	g, err := instanceFor(want[0])
	if err != nil {
		t.Fatal(err)
	}
	d := g.Disks[0]
	if !d.Boot || !d.AutoDelete || d.InitializeParams.SourceImage != DefaultImage ||
		d.InitializeParams.DiskSizeGb != 100 || d.InitializeParams.DiskType != "zones/us-central1-b/diskTypes/pd-balanced" {
		t.Errorf("boot disk = %+v %+v", d, d.InitializeParams)
	}
	if g.MachineType != "zones/us-central1-b/machineTypes/e2-standard-8" || g.Scheduling != nil || g.GuestAccelerators != nil {
		t.Errorf("galena: %s %+v %v", g.MachineType, g.Scheduling, g.GuestAccelerators)
	}
	ac := g.NetworkInterfaces[0].AccessConfigs
	if g.NetworkInterfaces[0].Network != "global/networks/default" || len(ac) != 1 || ac[0].Type != "ONE_TO_ONE_NAT" {
		t.Errorf("network: %+v", g.NetworkInterfaces[0])
	}
	s, _ := instanceFor(want[1])
	if s.Scheduling == nil || s.Scheduling.OnHostMaintenance != "TERMINATE" || s.Scheduling.AutomaticRestart == nil || !*s.Scheduling.AutomaticRestart {
		t.Errorf("scheelite scheduling = %+v", s.Scheduling)
	}
	if len(s.GuestAccelerators) != 1 || s.GuestAccelerators[0].AcceleratorType != "zones/us-central1-f/acceleratorTypes/nvidia-tesla-t4" ||
		s.GuestAccelerators[0].AcceleratorCount != 1 {
		t.Errorf("scheelite accelerators = %+v", s.GuestAccelerators)
	}
}

// createAll creates what the fleet wants, firewall first, as apply would.
func (e *env) createAll(t *testing.T, want []*cloud.Resource) map[string]*cloud.Resource {
	t.Helper()
	got := map[string]*cloud.Resource{}
	for _, kind := range []string{KindFirewall, KindInstance} {
		for _, w := range want {
			if w.Kind != kind {
				continue
			}
			r, err := e.p.Create(context.Background(), w)
			if err != nil {
				t.Fatalf("create %s: %v", w.Key(), err)
			}
			got[w.Key()] = r
		}
	}
	return got
}

// sameAsWanted is what a plan checks for a no-op: every Spec key and the
// labels agree.
func sameAsWanted(t *testing.T, want, have *cloud.Resource) {
	t.Helper()
	if have == nil {
		t.Errorf("%s: not listed", want.Key())
		return
	}
	for k, v := range want.Spec {
		if have.Spec[k] != v {
			t.Errorf("%s: spec %s = %q, want %q", want.Key(), k, have.Spec[k], v)
		}
	}
	if !reflect.DeepEqual(want.Labels, have.Labels) {
		t.Errorf("%s: labels %v, want %v", want.Key(), have.Labels, want.Labels)
	}
}

func TestCreateAndList(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Someone else's instance, another fleet's, and another fleet's
	// firewall whose name our name filter also matches.
	e.fake.Seed(project, zoneB, &compute.Instance{Name: "web"})
	e.fake.Seed(project, zoneB, &compute.Instance{Name: "other", Labels: cloud.FleetLabels("staging", "other", nil)})
	e.fake.SeedFirewall(project, &compute.Firewall{Name: "demo-staging-fleet", Description: "managed-by=fleet fleet=demo-staging",
		Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}})
	e.fake.SeedFirewall(project, &compute.Firewall{Name: "demo-manual",
		Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"80"}}}})

	want := e.desired(t)
	created := e.createAll(t, want)
	g := created["gcp/instance/demo-project/us-central1-b/galena"]
	if g == nil || g.IPv4 == "" || g.Status != "RUNNING" || g.ID == "" {
		t.Fatalf("created galena = %+v", g)
	}

	// What GCE holds is what was asked for.
	inst := e.fake.Instance(project, zoneF, "scheelite")
	if inst.Scheduling.OnHostMaintenance != "TERMINATE" || len(inst.GuestAccelerators) != 1 ||
		!strings.HasSuffix(inst.GuestAccelerators[0].AcceleratorType, "/acceleratorTypes/nvidia-tesla-t4") {
		t.Errorf("scheelite in GCE: %+v %+v", inst.Scheduling, inst.GuestAccelerators)
	}
	if got := strings.Join(inst.Tags.Items, ","); got != "fleet-demo" {
		t.Errorf("scheelite tags = %s", got)
	}
	if got := metadataValue(inst.Metadata, "ssh-keys"); got != "root:"+aliceSSH+"\nroot:"+rawSSH {
		t.Errorf("ssh-keys metadata = %q", got)
	}
	fw := e.fake.Firewall(project, "demo-fleet")
	if fw == nil || fw.Description != "managed-by=fleet fleet=demo" || len(fw.Allowed) != 2 ||
		!reflect.DeepEqual(fw.TargetTags, []string{"fleet-demo"}) || !reflect.DeepEqual(fw.SourceRanges, []string{"0.0.0.0/0"}) {
		t.Errorf("firewall in GCE = %+v", fw)
	}

	e.fake.ResetRequests()
	have, err := e.p.List(ctx, "demo", cloud.Scopes(want))
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != 3 {
		for _, h := range have {
			t.Log(h.Key())
		}
		t.Fatalf("listed %d resources, want 3", len(have))
	}
	for _, w := range want {
		sameAsWanted(t, w, find(have, w.Kind, w.Name))
	}
	// Tags and ssh keys are read back from GCE, not copied from the plan.
	if h := find(have, KindInstance, "galena"); h.Spec["tags"] != "builder,fleet-demo" || h.Spec["ssh_keys"] != "2 keys, sha256 fbbe6cb5" {
		t.Errorf("listed galena: tags %q, ssh_keys %q", h.Spec["tags"], h.Spec["ssh_keys"])
	}
	if h := find(have, KindInstance, "galena"); h.IPv4 != g.IPv4 || h.Status != "RUNNING" || h.Machine != "galena" {
		t.Errorf("listed galena = %+v", h)
	}
	// One aggregated instance list and one firewall list for the one
	// project, with the label filter on the server, and nothing else.
	if n := len(e.fake.Requests()); n != 2 {
		t.Errorf("%d requests for the list, want 2", n)
	}
	if n := e.fake.Count("GET", aggregated); n != 1 {
		t.Errorf("%d aggregated instance lists, want 1", n)
	}
	for _, r := range e.fake.Requests() {
		if strings.HasSuffix(r.Path, "/instances") && r.Query.Get("filter") != `(labels.managed-by = "fleet") AND (labels.fleet = "demo")` {
			t.Errorf("instance filter = %q", r.Query.Get("filter"))
		}
		if strings.HasSuffix(r.Path, "/firewalls") && r.Query.Get("filter") != `name eq "demo-.*"` {
			t.Errorf("firewall filter = %q", r.Query.Get("filter"))
		}
		if r.Query.Get("maxResults") != "50" {
			t.Errorf("%s without maxResults", r.Path)
		}
	}
	if e.fake.Mutations() != 0 {
		t.Errorf("listing mutated")
	}
}

// aggregated is the path, relative to the API root, of the aggregated
// instance list of the test project.
const aggregated = "projects/" + project + "/aggregated/instances"

// 120 of the fleet's instances over three zones, one of which no scope
// names, among others' instances: ceil(120/50) aggregated lists find them
// all, each in its own zone.
func TestPagination(t *testing.T) {
	e := newEnv(t)
	zones := []string{zoneB, zoneF, "europe-west1-b"}
	for i := range 120 {
		name := fmt.Sprintf("m%03d", i)
		e.fake.Seed(project, zones[i%3], &compute.Instance{Name: name, Labels: cloud.FleetLabels("demo", name, nil)})
	}
	for i := range 30 {
		e.fake.Seed(project, zones[i%3], &compute.Instance{Name: fmt.Sprintf("z%03d", i)})
	}
	have, err := e.p.List(context.Background(), "demo", []string{project + "/" + zoneB})
	if err != nil {
		t.Fatal(err)
	}
	if len(have) != 120 {
		t.Fatalf("listed %d instances, want 120", len(have))
	}
	seen := map[string]bool{}
	for _, h := range have {
		if seen[h.Name] {
			t.Errorf("%s listed twice", h.Name)
		}
		seen[h.Name] = true
		var i int
		fmt.Sscanf(h.Name, "m%03d", &i)
		if want := project + "/" + zones[i%3]; h.Scope != want || h.Kind != KindInstance {
			t.Errorf("%s: %s in %s, want an instance in %s", h.Name, h.Kind, h.Scope, want)
		}
	}
	if n := e.fake.Count("GET", aggregated); n != 3 {
		t.Errorf("%d aggregated list requests, want ceil(120/50) = 3", n)
	}
	if n := e.fake.Count("GET", "projects/demo-project/zones/"); n != 0 {
		t.Errorf("%d per-zone list requests, want none", n)
	}
	tokens := 0
	for _, r := range e.fake.Requests() {
		if strings.HasSuffix(r.Path, "/aggregated/instances") {
			if r.Query.Get("maxResults") != "50" {
				t.Errorf("aggregated list with maxResults %q", r.Query.Get("maxResults"))
			}
			if r.Query.Get("pageToken") != "" {
				tokens++
			}
		}
	}
	if tokens != 2 {
		t.Errorf("%d requests followed a page token, want 2", tokens)
	}
}

// The credentials' project is listed besides the hosts' projects; if it
// refuses (no access, no Compute API, no such project) it is skipped, but
// a hosts' project that refuses, or a rate limit that does not end, fails
// the list.
func TestListCredentialsProject(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const other = "other-project"
	if err := os.WriteFile(e.vars[EnvCredentials], e.fake.ServiceAccountJSON(t, other), 0o600); err != nil {
		t.Fatal(err)
	}
	e.fake.Seed(project, zoneB, &compute.Instance{Name: "galena", Labels: cloud.FleetLabels("demo", "galena", nil)})
	e.fake.Seed(other, zoneF, &compute.Instance{Name: "lost", Labels: cloud.FleetLabels("demo", "lost", nil)})
	scopes := []string{project + "/" + zoneB, project}

	have, err := e.p.List(ctx, "demo", scopes)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, h := range have {
		keys = append(keys, h.Key())
	}
	if want := []string{"gcp/instance/demo-project/us-central1-b/galena", "gcp/instance/other-project/us-central1-f/lost"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("listed %q, want %q", keys, want)
	}
	if a, b := e.fake.Count("GET", aggregated), e.fake.Count("GET", "projects/"+other+"/aggregated/instances"); a != 1 || b != 1 {
		t.Errorf("%d and %d aggregated lists, want one per project", a, b)
	}

	for _, status := range []int{http.StatusForbidden, http.StatusNotFound} {
		e.fake.FailNext("GET", "projects/"+other+"/", 2, status)
		have, err = e.p.List(ctx, "demo", scopes)
		if err != nil || len(have) != 1 || have[0].Name != "galena" {
			t.Errorf("credentials' project answering %d: %v %v", status, have, err)
		}
	}
	// Named by a host, the same refusal is an error.
	e.fake.FailNext("GET", "projects/"+other+"/", 2, http.StatusForbidden)
	if _, err := e.p.List(ctx, "demo", append(scopes, other+"/"+zoneF)); err == nil || !strings.Contains(err.Error(), other) {
		t.Errorf("a hosts' project answering 403: err = %v", err)
	}
	// A lasting rate limit is not a refusal.
	e.fake.FailNext("GET", "projects/"+other+"/aggregated/", 100, http.StatusTooManyRequests)
	if _, err := e.p.List(ctx, "demo", scopes); !cloud.IsTransient(err) {
		t.Errorf("credentials' project rate-limited: err = %v", err)
	}
}

func TestDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	want := e.desired(t)
	e.createAll(t, want)
	for _, w := range want {
		if err := e.p.Delete(ctx, w); err != nil {
			t.Fatalf("delete %s: %v", w.Key(), err)
		}
	}
	if names := e.fake.InstanceNames(); len(names) != 0 || e.fake.Firewall(project, "demo-fleet") != nil {
		t.Errorf("left after delete: %v", names)
	}
	// Gone already is deleted.
	if err := e.p.Delete(ctx, want[0]); err != nil {
		t.Errorf("deleting what is gone: %v", err)
	}
	if err := e.p.Delete(ctx, want[2]); err != nil {
		t.Errorf("deleting a firewall that is gone: %v", err)
	}
}

func TestStartTerminated(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	want := find(e.desired(t), KindInstance, "scheelite")
	image := want.Spec["image"]
	e.fake.Seed(project, zoneF, &compute.Instance{Name: "scheelite", Status: "TERMINATED", MachineType: "n1-standard-8",
		Labels: want.Labels, Metadata: &compute.Metadata{Items: []*compute.MetadataItems{{Key: metaImage, Value: &image}}}})
	have, err := e.p.List(ctx, "demo", []string{project + "/" + zoneF})
	if err != nil || len(have) != 1 {
		t.Fatalf("list: %v %v", have, err)
	}
	h := have[0]
	if h.Spec["power"] != "off" || h.Status != "TERMINATED" || h.IPv4 != "" {
		t.Fatalf("terminated instance listed as %+v", h)
	}
	got, err := e.p.Update(ctx, want, h, []string{"power"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec["power"] != "on" || got.Status != "RUNNING" || got.IPv4 == "" {
		t.Errorf("after start: %+v", got)
	}
	if e.fake.Instance(project, zoneF, "scheelite").Status != "RUNNING" {
		t.Error("not running in GCE")
	}
	// And off again.
	want.Spec["power"] = "off"
	if got, err = e.p.Update(ctx, want, got, []string{"power"}); err != nil || got.Status != "TERMINATED" {
		t.Errorf("after stop: %+v %v", got, err)
	}
}

func TestUpdateLabels(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	want := find(e.desired(t), KindInstance, "galena")
	old := cloud.FleetLabels("demo", "galena", map[string]string{"role": "old", "extra": "x"})
	e.fake.Seed(project, zoneB, &compute.Instance{Name: "galena", Labels: old})
	have, err := e.p.List(ctx, "demo", []string{project + "/" + zoneB})
	if err != nil || len(have) != 1 {
		t.Fatalf("list: %v %v", have, err)
	}
	// Someone changes the labels after the plan: the fingerprint the plan
	// saw is stale, and the provider must fetch the current one.
	e.fake.Seed(project, zoneB, &compute.Instance{Name: "galena", Labels: cloud.FleetLabels("demo", "galena", map[string]string{"role": "newer"})})
	got, err := e.p.Update(ctx, want, have[0], []string{"labels"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Labels, want.Labels) || !reflect.DeepEqual(e.fake.Instance(project, zoneB, "galena").Labels, want.Labels) {
		t.Errorf("labels after update: %v", got.Labels)
	}
	if n := e.fake.Count("POST", "projects/demo-project/zones/us-central1-b/instances/galena/setLabels"); n != 2 {
		t.Errorf("%d setLabels requests, want 2 (stale fingerprint, then current)", n)
	}
}

func TestSSHKeysSpec(t *testing.T) {
	alice, raw := "root:"+aliceSSH, "root:"+rawSSH
	for _, c := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"none", nil, ""},
		{"only blanks", []string{"", "  ", "\r"}, ""},
		{"one", []string{alice}, "1 key, sha256 67b359cb"},
		{"two", []string{alice, raw}, "2 keys, sha256 fbbe6cb5"},
		{"any order", []string{raw, alice}, "2 keys, sha256 fbbe6cb5"},
		{"blanks and repeats", []string{" " + raw + "\r", "", alice, alice}, "2 keys, sha256 fbbe6cb5"},
		{"others", []string{"root:y", "root:x"}, "2 keys, sha256 2c0036e2"},
	} {
		if got := sshKeysSpec(c.lines); got != c.want {
			t.Errorf("%s: sshKeysSpec(%q) = %q, want %q", c.name, c.lines, got, c.want)
		}
	}
	if got, want := sshKeyLines("root:a\r\n\n  root:b \n"), []string{"root:a", "root:b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sshKeyLines = %q, want %q", got, want)
	}
	if got := tagsSpec([]string{"web", "fleet-demo", "web"}); got != "fleet-demo,web" {
		t.Errorf("tagsSpec = %q", got)
	}
}

// A listed instance has the Spec values Desired computes from the same
// tags and keys, however GCE orders and spaces them, and keeps what an
// update needs in Extra.
func TestListedTagsAndSSHKeys(t *testing.T) {
	image := DefaultImage
	keys := "root:y\n\n root:x\n"
	note := "hello"
	items := []*compute.MetadataItems{{Key: metaImage, Value: &image}, {Key: metaSSHKeys, Value: &keys}, {Key: "user-note", Value: &note}}
	for _, c := range []struct {
		name          string
		inst          *compute.Instance
		tags, sshKeys string
		tagFP, mdFP   string
		metadataItems []*compute.MetadataItems
		image         string
	}{
		{"tags and keys", &compute.Instance{Name: "galena",
			Tags:     &compute.Tags{Items: []string{"web", "fleet-demo"}, Fingerprint: "tfp"},
			Metadata: &compute.Metadata{Items: items, Fingerprint: "mfp"}},
			"fleet-demo,web", "2 keys, sha256 2c0036e2", "tfp", "mfp", items, DefaultImage},
		{"nothing", &compute.Instance{Name: "galena"}, "", "", "", "", nil, ""},
	} {
		r := instanceToResource(project, zoneB, c.inst)
		if r.Spec["tags"] != c.tags || r.Spec["ssh_keys"] != c.sshKeys || r.Spec["image"] != c.image {
			t.Errorf("%s: spec %v", c.name, r.Spec)
		}
		if r.Extra[extraTagsFingerprint] != c.tagFP || r.Extra[extraMetadataFingerprint] != c.mdFP ||
			!reflect.DeepEqual(r.Extra[extraMetadataItems], c.metadataItems) {
			t.Errorf("%s: extra %v", c.name, r.Extra)
		}
		if !reflect.DeepEqual(r.Mutable, []string{"power", "tags", "ssh_keys"}) {
			t.Errorf("%s: mutable %q", c.name, r.Mutable)
		}
	}
	// Desired says the same of the same keys and tags.
	w := sshKeysSpec([]string{"root:x", "root:y"})
	if r := instanceToResource(project, zoneB, &compute.Instance{Metadata: &compute.Metadata{Items: items}}); r.Spec["ssh_keys"] != w {
		t.Errorf("listed %q, desired %q", r.Spec["ssh_keys"], w)
	}
}

func TestWithSSHKeys(t *testing.T) {
	str := func(s string) *string { return &s }
	image := &compute.MetadataItems{Key: metaImage, Value: str(DefaultImage)}
	note := &compute.MetadataItems{Key: "user-note", Value: str("hello")}
	old := &compute.MetadataItems{Key: metaSSHKeys, Value: str("root:old")}
	show := func(items []*compute.MetadataItems) string {
		var parts []string
		for _, it := range items {
			v := "<nil>"
			if it.Value != nil {
				v = *it.Value
			}
			parts = append(parts, it.Key+"="+v)
		}
		return strings.Join(parts, " | ")
	}
	for _, c := range []struct {
		name  string
		items []*compute.MetadataItems
		keys  []string
		want  string
	}{
		{"replaced in place", []*compute.MetadataItems{image, old, note}, []string{"root:a", "root:b"},
			"fleet-image=" + DefaultImage + " | ssh-keys=root:a\nroot:b | user-note=hello"},
		{"removed", []*compute.MetadataItems{image, old, note}, nil,
			"fleet-image=" + DefaultImage + " | user-note=hello"},
		{"added", []*compute.MetadataItems{image, note}, []string{"root:a"},
			"fleet-image=" + DefaultImage + " | user-note=hello | ssh-keys=root:a"},
		{"once", []*compute.MetadataItems{old, image, old}, []string{"root:a"},
			"ssh-keys=root:a | fleet-image=" + DefaultImage},
		{"nothing at all", nil, nil, ""},
	} {
		if got := show(withSSHKeys(c.items, c.keys)); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if *old.Value != "root:old" {
		t.Errorf("withSSHKeys changed its input: %q", *old.Value)
	}
}

// Changing the network tags or the ssh keys of an instance: one SetTags or
// SetMetadata with the listed fingerprint; when someone changed the
// instance after the plan listed it, a 412, a fresh read and a second
// request; a rate limit is retried. The metadata items fleet does not own
// (the image marker, a user's item, one added after the plan) stay.
func TestUpdateTagsAndSSHKeys(t *testing.T) {
	const galena = "projects/" + project + "/zones/" + zoneB + "/instances/galena/"
	str := func(s string) *string { return &s }
	for _, c := range []struct {
		name     string
		field    string
		mutate   func(f *model.Fleet)
		stale    bool
		fail     int   // status injected once on the set request
		statuses []int // the fake's answers to the set requests
	}{
		{name: "ssh key added", field: "ssh_keys", statuses: []int{200},
			mutate: func(f *model.Fleet) { f.Admins = append(f.Admins, "bob") }},
		{name: "all ssh keys removed", field: "ssh_keys", statuses: []int{200},
			mutate: func(f *model.Fleet) { f.Admins = nil }},
		{name: "ssh keys, stale fingerprint", field: "ssh_keys", stale: true, statuses: []int{412, 200},
			mutate: func(f *model.Fleet) { f.Admins = append(f.Admins, "bob") }},
		{name: "ssh keys, rate limited", field: "ssh_keys", fail: http.StatusTooManyRequests, statuses: []int{429, 200},
			mutate: func(f *model.Fleet) { f.Admins = append(f.Admins, "bob") }},
		{name: "tag added", field: "tags", statuses: []int{200},
			mutate: func(f *model.Fleet) { f.Machine("galena").Host.GCP.Tags = []string{"builder", "web"} }},
		{name: "tags, stale fingerprint", field: "tags", stale: true, statuses: []int{412, 200},
			mutate: func(f *model.Fleet) { f.Machine("galena").Host.GCP.Tags = nil }},
		{name: "tags, rate limited", field: "tags", fail: http.StatusServiceUnavailable, statuses: []int{503, 200},
			mutate: func(f *model.Fleet) { f.Machine("galena").Host.GCP.Tags = []string{"web"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if _, err := e.p.Create(ctx, find(e.desired(t), KindInstance, "galena")); err != nil {
				t.Fatal(err)
			}
			e.fake.Edit(project, zoneB, "galena", func(in *compute.Instance) {
				in.Metadata.Items = append(in.Metadata.Items, &compute.MetadataItems{Key: "user-note", Value: str("hello")})
			})
			have, err := e.p.List(ctx, "demo", []string{project + "/" + zoneB})
			if err != nil || len(have) != 1 {
				t.Fatalf("list: %v %v", have, err)
			}
			h := have[0]
			f := referenceFleet()
			c.mutate(f)
			want, err := e.p.Desired(f)
			if err != nil {
				t.Fatal(err)
			}
			w := find(want, KindInstance, "galena")
			// Only the field differs: the plan's update is of it alone.
			for k, v := range w.Spec {
				if differs := h.Spec[k] != v; differs != (k == c.field) {
					t.Errorf("spec %s: listed %q, wanted %q", k, h.Spec[k], v)
				}
			}
			late := false
			if c.stale {
				e.fake.Edit(project, zoneB, "galena", func(in *compute.Instance) {
					if c.field == "tags" {
						in.Tags.Items = append(in.Tags.Items, "manual")
					} else {
						in.Metadata.Items = append(in.Metadata.Items, &compute.MetadataItems{Key: "late-note", Value: str("later")})
						late = true
					}
				})
			}
			setter := map[string]string{"tags": "setTags", "ssh_keys": "setMetadata"}[c.field]
			other := map[string]string{"tags": "setMetadata", "ssh_keys": "setTags"}[c.field]
			if c.fail != 0 {
				e.fake.FailNext("POST", galena+setter, 1, c.fail)
			}
			before := e.fake.Instance(project, zoneB, "galena")
			got, err := e.p.Update(ctx, w, h, []string{c.field})
			if err != nil {
				t.Fatal(err)
			}
			var statuses []int
			for _, r := range e.fake.Requests() {
				if r.Method == "POST" && strings.HasSuffix(r.Path, "/galena/"+setter) {
					statuses = append(statuses, r.Status)
				}
			}
			if !reflect.DeepEqual(statuses, c.statuses) {
				t.Errorf("%s answered %v, want %v", setter, statuses, c.statuses)
			}
			if n := e.fake.Count("POST", galena+other) + e.fake.Count("POST", galena+"setLabels"); n != 0 {
				t.Errorf("%d other set requests", n)
			}
			if got.Spec[c.field] != w.Spec[c.field] {
				t.Errorf("after update: %s = %q, want %q", c.field, got.Spec[c.field], w.Spec[c.field])
			}
			inst := e.fake.Instance(project, zoneB, "galena")
			wantTags, _ := w.Extra[extraTags].([]string)
			wantKeys, _ := w.Extra[extraSSHKeys].([]string)
			if c.field == "tags" {
				if !reflect.DeepEqual(inst.Tags.Items, wantTags) {
					t.Errorf("tags in GCE = %q, want %q", inst.Tags.Items, wantTags)
				}
				if !reflect.DeepEqual(inst.Metadata, before.Metadata) {
					t.Errorf("metadata changed by a tags update")
				}
			} else {
				v, ok := metadataItem(inst.Metadata, metaSSHKeys)
				if len(wantKeys) == 0 && ok || len(wantKeys) > 0 && v != strings.Join(wantKeys, "\n") {
					t.Errorf("ssh-keys in GCE = %q (present %v), want %q", v, ok, wantKeys)
				}
				if !reflect.DeepEqual(inst.Tags, before.Tags) {
					t.Errorf("tags changed by an ssh keys update")
				}
			}
			// What fleet does not own is kept, even what came after the plan.
			if v := metadataValue(inst.Metadata, metaImage); v != DefaultImage {
				t.Errorf("image item = %q", v)
			}
			if v := metadataValue(inst.Metadata, "user-note"); v != "hello" {
				t.Errorf("user's item = %q", v)
			}
			if v := metadataValue(inst.Metadata, "late-note"); late && v != "later" {
				t.Errorf("item added after the plan = %q", v)
			}
			have, _ = e.p.List(ctx, "demo", []string{project + "/" + zoneB})
			sameAsWanted(t, w, have[0])
		})
	}
}

func metadataItem(md *compute.Metadata, key string) (string, bool) {
	for _, it := range md.Items {
		if it.Key == key {
			return metadataValue(md, key), true
		}
	}
	return "", false
}

// Labels, tags, ssh keys, then power, whatever order the plan lists the
// fields in: the host comes up with the keys the fleet wants.
func TestUpdateOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.p.Create(ctx, find(e.desired(t), KindInstance, "galena")); err != nil {
		t.Fatal(err)
	}
	off := find(e.desired(t), KindInstance, "galena")
	off.Spec["power"] = "off"
	have, _ := e.p.List(ctx, "demo", []string{project + "/" + zoneB})
	if _, err := e.p.Update(ctx, off, have[0], []string{"power"}); err != nil {
		t.Fatal(err)
	}
	f := referenceFleet()
	f.Admins = append(f.Admins, "bob")
	g := f.Machine("galena").Host.GCP
	g.Tags, g.Labels = []string{"web"}, map[string]string{"role": "web"}
	want, _ := e.p.Desired(f)
	w := find(want, KindInstance, "galena")
	have, _ = e.p.List(ctx, "demo", []string{project + "/" + zoneB})
	e.fake.ResetRequests()
	if _, err := e.p.Update(ctx, w, have[0], []string{"power", "ssh_keys", "tags", "labels"}); err != nil {
		t.Fatal(err)
	}
	var calls []string
	for _, r := range e.fake.Requests() {
		if r.Method == "POST" && !strings.HasSuffix(r.Path, "/wait") {
			calls = append(calls, r.Path[strings.LastIndex(r.Path, "/")+1:])
		}
	}
	if want := []string{"setLabels", "setTags", "setMetadata", "start"}; !reflect.DeepEqual(calls, want) {
		t.Errorf("requests %q, want %q", calls, want)
	}
	have, _ = e.p.List(ctx, "demo", []string{project + "/" + zoneB})
	sameAsWanted(t, w, have[0])
}

func TestUpdateFirewall(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.fake.SeedFirewall(project, &compute.Firewall{Name: "demo-fleet", Description: "managed-by=fleet fleet=demo",
		TargetTags: []string{"fleet-demo"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}})
	have, err := e.p.List(ctx, "demo", []string{project})
	if err != nil || len(have) != 1 {
		t.Fatalf("list: %v %v", have, err)
	}
	if have[0].Spec["allow"] != "tcp:22" {
		t.Fatalf("listed allow = %q", have[0].Spec["allow"])
	}
	want := find(e.desired(t), KindFirewall, "demo-fleet")
	if _, err := e.p.Update(ctx, want, have[0], []string{"allow"}); err != nil {
		t.Fatal(err)
	}
	have, _ = e.p.List(ctx, "demo", []string{project})
	sameAsWanted(t, want, have[0])
}

func TestNamesake(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	seeded := e.fake.Seed(project, zoneB, &compute.Instance{Name: "galena", MachineType: "n2-standard-2", Labels: map[string]string{"owner": "someone"}})
	e.fake.SeedFirewall(project, &compute.Firewall{Name: "demo-fleet", Description: "hand-made",
		Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"443"}}}})
	want := e.desired(t)

	_, err := e.p.Create(ctx, find(want, KindInstance, "galena"))
	var ne *cloud.NamesakeError
	if !errors.As(err, &ne) || ne.Kind != KindInstance || ne.Name != "galena" || ne.Scope != project+"/"+zoneB ||
		ne.Machine != "galena" || !strings.Contains(err.Error(), "fleet adopt FILE galena") {
		t.Fatalf("err = %v, want a NamesakeError for galena", err)
	}
	if now := e.fake.Instance(project, zoneB, "galena"); !reflect.DeepEqual(now, seeded) {
		t.Errorf("namesake changed:\n%+v\n%+v", now, seeded)
	}
	if _, err := e.p.Create(ctx, find(want, KindFirewall, "demo-fleet")); !errors.As(err, &ne) || ne.Kind != KindFirewall {
		t.Errorf("firewall err = %v, want a NamesakeError", err)
	}
	if fw := e.fake.Firewall(project, "demo-fleet"); fw.Description != "hand-made" {
		t.Errorf("namesake firewall changed: %+v", fw)
	}
	// Two inserts, refused; nothing else changed.
	if n := e.fake.Mutations(); n != 2 {
		t.Errorf("%d mutating requests, want the 2 refused inserts", n)
	}
}

func TestCreateFindsOwnInstance(t *testing.T) {
	e := newEnv(t)
	want := find(e.desired(t), KindInstance, "galena")
	e.fake.Seed(project, zoneB, &compute.Instance{Name: "galena", MachineType: "e2-standard-8", Labels: want.Labels})
	got, err := e.p.Create(context.Background(), want)
	if err != nil {
		t.Fatalf("creating what an interrupted apply made: %v", err)
	}
	if got.IPv4 == "" || !got.Ours("demo") {
		t.Errorf("got %+v", got)
	}
}

func TestRateLimitRetried(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	insert := "projects/demo-project/zones/us-central1-b/instances"
	e.fake.FailNext("POST", insert, 2, http.StatusTooManyRequests)
	e.fake.FailNext("POST", "projects/demo-project/zones/us-central1-b/operations/", 1, http.StatusServiceUnavailable)
	if _, err := e.p.Create(ctx, find(e.desired(t), KindInstance, "galena")); err != nil {
		t.Fatal(err)
	}
	if n := e.fake.Count("POST", insert); n != 3 {
		t.Errorf("%d inserts, want 3 (two 429s, then success)", n)
	}
	if names := e.fake.InstanceNames(); len(names) != 1 {
		t.Errorf("instances = %v", names)
	}

	e.fake.FailNext("GET", aggregated, 1, http.StatusTooManyRequests)
	if have, err := e.p.List(ctx, "demo", []string{project + "/" + zoneB}); err != nil || len(have) != 1 {
		t.Errorf("list after a 429: %v %v", have, err)
	}
	if n := e.fake.Count("GET", aggregated); n != 2 {
		t.Errorf("%d aggregated lists, want 2 (a 429, then success)", n)
	}
}

// The compute client retries nothing by itself: with 3 attempts allowed,
// a lasting rate limit costs exactly 3 requests and ends in a
// TransientError carrying GCE's 429.
func TestRateLimitNotDoubled(t *testing.T) {
	e := newEnv(t)
	e.p.cfg.Backoff.Attempts = 3
	e.fake.FailNext("GET", "projects/", 100, http.StatusTooManyRequests)
	_, err := e.p.List(context.Background(), "demo", []string{project + "/" + zoneB})
	var ge *googleapi.Error
	if !cloud.IsTransient(err) || !errors.As(err, &ge) || ge.Code != 429 || ge.Errors[0].Reason != "rateLimitExceeded" {
		t.Fatalf("err = %v, want a transient 429", err)
	}
	instances := e.fake.Count("GET", aggregated)
	if instances != 3 {
		t.Errorf("%d instance list requests, want 3", instances)
	}
}

func TestFailedOperation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.fake.SetOperationPolls(3)
	e.fake.FailOperation("galena", "ZONE_RESOURCE_POOL_EXHAUSTED",
		"The zone 'projects/demo-project/zones/us-central1-b' does not have enough resources available to fulfill the request.")
	want := e.desired(t)
	_, err := e.p.Create(ctx, find(want, KindInstance, "galena"))
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"galena", "us-central1-b", "ZONE_RESOURCE_POOL_EXHAUSTED", "does not have enough resources"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if cloud.IsTransient(err) {
		t.Error("a failed operation is not retried")
	}
	if e.fake.Instance(project, zoneB, "galena") != nil {
		t.Error("failed insert left an instance")
	}
	// The others are not affected.
	if _, err := e.p.Create(ctx, find(want, KindInstance, "scheelite")); err != nil {
		t.Errorf("scheelite: %v", err)
	}
}

// Interrupted while waiting: the error is the context's, and a list shows
// what GCE did anyway.
func TestInterruptedWait(t *testing.T) {
	e := newEnv(t)
	e.fake.SetOperationPolls(1 << 30)
	// Interrupted once the insert was accepted and its operation polled:
	// an event, not a deadline that a busy machine might miss.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		defer cancel()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			for _, r := range e.fake.Requests() {
				if strings.Contains(r.Path, "/operations/") {
					return
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	want := find(e.desired(t), KindInstance, "galena")
	if _, err := e.p.Create(ctx, want); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want the cancellation", err)
	}
	have, err := e.p.List(context.Background(), "demo", []string{want.Scope})
	if err != nil || len(have) != 1 {
		t.Fatalf("list after interrupt: %v %v", have, err)
	}
	sameAsWanted(t, want, have[0])
}

func TestMissingCredentials(t *testing.T) {
	fake := gcpfake.New()
	defer fake.Close()
	vars := map[string]string{EnvEndpoint: fake.Endpoint(), "HOME": t.TempDir()}
	p := newProvider(t, vars)
	var me *cloud.MissingCredentialsError
	if err := p.Credentials(); !errors.As(err, &me) || !reflect.DeepEqual(me.Variables, []string{"GOOGLE_APPLICATION_CREDENTIALS"}) ||
		me.Provider != "gcp" || !strings.Contains(me.Error(), "gcloud auth application-default login") {
		t.Fatalf("Credentials() = %v", err)
	}
	if _, err := p.List(context.Background(), "demo", []string{project + "/" + zoneB}); !errors.As(err, &me) {
		t.Errorf("List without credentials: %v", err)
	}
	// Planning what is wanted and its price needs no credentials.
	want, err := p.Desired(referenceFleet())
	if err != nil || len(want) != 3 {
		t.Fatalf("Desired: %v", err)
	}
	if eur, _, err := p.MonthlyPrice(context.Background(), want[0]); err != nil || eur == 0 {
		t.Errorf("price without credentials: %v %v", eur, err)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests without credentials", n)
	}

	// A nil Getenv reads nothing, not the process environment.
	if err := New(cloud.Config{}).Credentials(); !errors.As(err, &me) {
		t.Errorf("nil Getenv: %v", err)
	}
	// A set but broken variable is an error of its own, not "missing".
	vars[EnvCredentials] = filepath.Join(t.TempDir(), "nope.json")
	if err := p.Credentials(); err == nil || errors.As(err, &me) || !strings.Contains(err.Error(), EnvCredentials) {
		t.Errorf("unreadable file: %v", err)
	}
	external := filepath.Join(t.TempDir(), "ext.json")
	os.WriteFile(external, []byte(`{"type":"external_account","audience":"x","credential_source":{"executable":{"command":"/bin/evil"}}}`), 0o600)
	vars[EnvCredentials] = external
	if err := p.Credentials(); err == nil || !strings.Contains(err.Error(), "external_account") {
		t.Errorf("external_account: %v", err)
	}
}

func TestTokenEndpointUsed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	want := e.desired(t)
	e.createAll(t, want)
	if _, err := e.p.List(ctx, "demo", cloud.Scopes(want)); err != nil {
		t.Fatal(err)
	}
	// One JWT exchange, then the token is reused; every API request
	// carried it.
	if n := e.fake.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	for _, r := range e.fake.Requests() {
		if r.Status == http.StatusUnauthorized {
			t.Errorf("%s %s was unauthorized", r.Method, r.Path)
		}
	}
}

func TestTokenRejected(t *testing.T) {
	e := newEnv(t)
	// A key the token endpoint does not know.
	other := gcpfake.New()
	defer other.Close()
	json := strings.Replace(string(other.ServiceAccountJSON(t, project)), other.TokenURL(), e.fake.TokenURL(), 1)
	if err := os.WriteFile(e.vars[EnvCredentials], []byte(json), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := e.p.List(context.Background(), "demo", []string{project + "/" + zoneB})
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("err = %v, want invalid_grant", err)
	}
	if n := e.fake.Count("", ""); n != 0 {
		t.Errorf("%d API requests without a token", n)
	}
}

func TestAuthorizedUserFromWellKnownFile(t *testing.T) {
	for _, viaConfigDir := range []bool{false, true} {
		fake := gcpfake.New()
		defer fake.Close()
		home := t.TempDir()
		vars := map[string]string{EnvEndpoint: fake.Endpoint(), "HOME": home}
		dir := filepath.Join(home, ".config", "gcloud")
		if viaConfigDir {
			dir = t.TempDir()
			vars[EnvConfigDir] = dir
		}
		os.MkdirAll(dir, 0o700)
		if err := os.WriteFile(filepath.Join(dir, adcFile), fake.AuthorizedUserJSON(), 0o600); err != nil {
			t.Fatal(err)
		}
		p := newProvider(t, vars)
		if err := p.Credentials(); err != nil {
			t.Fatal(err)
		}
		if _, err := p.List(context.Background(), "demo", []string{project + "/" + zoneB}); err != nil {
			t.Fatalf("config dir %v: %v", viaConfigDir, err)
		}
		if fake.TokenRequests() != 1 {
			t.Errorf("%d token requests", fake.TokenRequests())
		}
	}
}

func TestPrices(t *testing.T) {
	p := New(cloud.Config{})
	ctx := context.Background()
	want, _ := p.Desired(referenceFleet())
	for _, c := range []struct {
		r   *cloud.Resource
		eur float64
	}{
		// (0.268024 USD/h * 730 h + 100 GB * 0.10 USD) * 0.92
		{find(want, KindInstance, "galena"), 189.20},
		// ((0.38 + 0.35) USD/h * 730 h + 100 GB * 0.10 USD) * 0.92
		{find(want, KindInstance, "scheelite"), 499.47},
		{find(want, KindFirewall, "demo-fleet"), 0},
	} {
		eur, src, err := p.MonthlyPrice(ctx, c.r)
		if err != nil || eur != c.eur {
			t.Errorf("%s: %v EUR (%v), want %v", c.r.Name, eur, err, c.eur)
		}
		if c.eur != 0 && (!strings.Contains(src, "2026-11-25") || !strings.Contains(src, "0.92")) {
			t.Errorf("source %q", src)
		}
	}
	// Stopped: the disk only.
	off := *find(want, KindInstance, "scheelite")
	off.Spec = map[string]string{"type": "n1-standard-8", "disk_gb": "100", "gpu": "nvidia-tesla-t4", "gpus": "1", "power": "off"}
	if eur, _, _ := p.MonthlyPrice(ctx, &off); eur != 9.20 {
		t.Errorf("stopped scheelite: %v EUR, want 9.20", eur)
	}
	unknown := &cloud.Resource{Kind: KindInstance, Name: "x", Spec: map[string]string{"type": "z9-mega-1024", "disk_gb": "10"}}
	if eur, src, err := p.MonthlyPrice(ctx, unknown); err != nil || eur != 0 || !strings.HasPrefix(src, "unknown machine type z9-mega-1024") {
		t.Errorf("unknown type: %v %q %v", eur, src, err)
	}
	for _, typ := range []string{"e2-standard-2", "e2-standard-4", "e2-standard-8", "e2-standard-16", "e2-medium",
		"n1-standard-1", "n1-standard-2", "n1-standard-4", "n1-standard-8", "n1-standard-16",
		"n2-standard-2", "n2-standard-4", "n2-standard-8", "g2-standard-4", "g2-standard-8"} {
		if machineUSDPerHour[typ] == 0 {
			t.Errorf("%s missing from the price table", typ)
		}
	}
	for _, gpu := range []string{"nvidia-tesla-t4", "nvidia-l4", "nvidia-tesla-v100"} {
		if gpuUSDPerHour[gpu] == 0 {
			t.Errorf("%s missing from the price table", gpu)
		}
	}
}
