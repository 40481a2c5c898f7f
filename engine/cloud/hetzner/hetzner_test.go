package hetzner

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
	"github.com/fleet-nix/fleet/engine/model"
)

// testKey is a valid ssh-ed25519 public key, different for each seed.
func testKey(seed byte) string {
	priv := ed25519.NewKeyFromSeed(slices.Repeat([]byte{seed}, ed25519.SeedSize))
	var blob []byte
	for _, part := range [][]byte{[]byte("ssh-ed25519"), priv.Public().(ed25519.PublicKey)} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(part)))
		blob = append(blob, part...)
	}
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob)
}

// testFleet is a small fleet in the shape of the reference one.
func testFleet() *model.Fleet {
	f := &model.Fleet{
		Name:   "ref",
		Admins: []string{"alice", testKey(2) + " ops@ci", "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq", "bob"},
		Users: []*model.User{
			{Name: "alice", SSHKeys: []string{testKey(1) + " alice@laptop", testKey(2)}},
			{Name: "bob", Age: "age1..."},
		},
		Machines: []*model.Machine{
			{Name: "cinnabar", Host: &model.Host{Provider: model.Hetzner, Enabled: true, Hetzner: &model.HetznerServer{
				Type: "cx43", Location: "fsn1", Image: "ubuntu-24.04", IPv4: true, IPv6: true,
				Labels: map[string]string{"role": "web"}, Firewalls: []string{"web"},
			}}},
			{Name: "electrum", Host: &model.Host{Provider: model.Hetzner, Enabled: false, Hetzner: &model.HetznerServer{
				Type: "ccx23", Location: "fsn1", Image: "ubuntu-24.04", IPv4: true, IPv6: true,
			}}},
			{Name: "galena", Host: &model.Host{Provider: model.GCP, Enabled: true, GCP: &model.GCPInstance{
				Project: "p", Zone: "us-central1-b", Type: "e2-standard-8", Image: "nixos", DiskGB: 100,
			}}},
			{Name: "pyrite", Host: &model.Host{Provider: model.Hetzner, Enabled: true, Hetzner: &model.HetznerServer{
				Type: "cax11", Location: "nbg1", Image: "ubuntu-24.04", IPv6: true,
			}}},
			{Name: "laptop"},
		},
	}
	f.Sort()
	return f
}

// fast is a backoff for tests: a few milliseconds in all.
var fast = cloud.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Attempts: 5}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// newTest starts a fake and a provider that talks to it.
func newTest(t *testing.T) (*hetznerfake.Server, *Provider) {
	t.Helper()
	fake := hetznerfake.New()
	t.Cleanup(fake.Close)
	return fake, newProvider(fake, fast)
}

func newProvider(fake *hetznerfake.Server, b cloud.Backoff) *Provider {
	return New(cloud.Config{
		Getenv:  env(map[string]string{"HCLOUD_TOKEN": fake.Token, "HCLOUD_ENDPOINT": fake.URL()}),
		Backoff: b,
	}, WithPollInterval(time.Millisecond))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// count counts the requests with method whose path is path.
func count(reqs []hetznerfake.Request, method, path string) int {
	n := 0
	for _, r := range reqs {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
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
	p := New(cloud.Config{Getenv: env(nil)})
	rs, err := p.Desired(testFleet())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rs {
		names = append(names, r.Kind+"/"+r.Name)
	}
	k1, k2 := keyName("ref", testKey(1)), keyName("ref", testKey(2))
	keys := []string{"ssh_key/" + min(k1, k2), "ssh_key/" + max(k1, k2)}
	want := append(keys, "server/cinnabar", "server/pyrite")
	if !slices.Equal(names, want) {
		t.Fatalf("resources %v, want %v (disabled, GCP and hostless machines have none; keys once each, first)", names, want)
	}

	s := find(rs, KindServer, "cinnabar")
	// "web" is not declared by the fleet: an existing firewall, attached
	// at create but not compared.
	if got, want := s.Spec, map[string]string{"type": "cx43", "location": "fsn1", "image": "ubuntu-24.04", "power": "on", "firewalls": ""}; !maps.Equal(got, want) {
		t.Errorf("spec %v, want %v", got, want)
	}
	if got, want := s.Labels, map[string]string{"managed-by": "fleet", "fleet": "ref", "machine": "cinnabar", "role": "web"}; !maps.Equal(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	if s.Provider != "hetzner" || s.Scope != "" || s.Machine != "cinnabar" || !slices.Equal(s.Mutable, []string{"power", "firewalls"}) {
		t.Errorf("server %+v", s)
	}
	if got := s.Extra[extraSSHKeys].([]*cloud.Resource); len(got) != 2 {
		t.Errorf("server carries %d ssh keys, want 2", len(got))
	}
	if got := s.Extra[extraFirewalls].([]string); !slices.Equal(got, []string{"web"}) {
		t.Errorf("firewalls %v", got)
	}
	if s.Extra[extraIPv4] != true || find(rs, KindServer, "pyrite").Extra[extraIPv4] != false {
		t.Errorf("ipv4 not carried over")
	}

	for _, tc := range []struct {
		seed byte
		user string
	}{{1, "alice"}, {2, "alice"}} { // key 2 is alice's and a raw admin key: alice names it, first
		k := find(rs, KindSSHKey, keyName("ref", testKey(tc.seed)))
		if k == nil {
			t.Fatalf("no ssh key for key %d", tc.seed)
		}
		if !strings.HasPrefix(k.Name, "ref-") || len(k.Name) != len("ref-")+12 {
			t.Errorf("key name %q, want ref-<12 hex>", k.Name)
		}
		if k.Spec["public_key"] != testKey(tc.seed) {
			t.Errorf("public key %q: the comment must go", k.Spec["public_key"])
		}
		if got, want := k.Labels, map[string]string{"managed-by": "fleet", "fleet": "ref", labelUser: tc.user}; !maps.Equal(got, want) {
			t.Errorf("key labels %v, want %v", got, want)
		}
		if k.Machine != "" || len(k.Mutable) != 0 {
			t.Errorf("key %+v", k)
		}
	}
}

func TestDesiredEdges(t *testing.T) {
	p := New(cloud.Config{Getenv: env(nil)})
	for _, tc := range []struct {
		name    string
		edit    func(f *model.Fleet)
		wantErr string
		wantN   int
	}{
		{name: "no hetzner host enabled: no keys either", wantN: 0, edit: func(f *model.Fleet) {
			for _, m := range f.Machines {
				if m.Host != nil && m.Host.Provider == model.Hetzner {
					m.Host.Enabled = false
				}
			}
		}},
		{name: "raw admin key only", wantN: 3, edit: func(f *model.Fleet) { f.Admins = []string{testKey(9)} }},
		{name: "missing location", wantErr: "needs a location", edit: func(f *model.Fleet) { f.Machine("cinnabar").Host.Hetzner.Location = "" }},
		{name: "bad label", wantErr: "label", edit: func(f *model.Fleet) { f.Machine("cinnabar").Host.Hetzner.Labels = map[string]string{"bad key": "x"} }},
		{name: "bad user key", wantErr: "admin alice", edit: func(f *model.Fleet) { f.User("alice").SSHKeys = []string{"ssh-ed25519 !!!"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testFleet()
			tc.edit(f)
			rs, err := p.Desired(f)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
			case err != nil:
				t.Fatal(err)
			case len(rs) != tc.wantN:
				t.Fatalf("%d resources, want %d", len(rs), tc.wantN)
			}
		})
	}
}

func TestMissingToken(t *testing.T) {
	p := New(cloud.Config{Getenv: env(map[string]string{"HCLOUD_ENDPOINT": "http://127.0.0.1:1/v1"})})
	check := func(what string, err error) {
		t.Helper()
		var mc *cloud.MissingCredentialsError
		if !errors.As(err, &mc) || mc.Provider != "hetzner" || !slices.Equal(mc.Variables, []string{"HCLOUD_TOKEN"}) {
			t.Errorf("%s: %v, want a MissingCredentialsError for HCLOUD_TOKEN", what, err)
		}
	}
	check("Credentials", p.Credentials())
	_, err := p.List(ctx(t), "ref", nil)
	check("List", err)
	_, err = p.Create(ctx(t), &cloud.Resource{Kind: KindServer, Name: "x"})
	check("Create", err)
	check("Delete", p.Delete(ctx(t), &cloud.Resource{Kind: KindServer, Name: "x", ID: "1"}))
	// Desired and prices work without.
	if rs, err := p.Desired(testFleet()); err != nil || len(rs) == 0 {
		t.Errorf("Desired without a token: %d, %v", len(rs), err)
	}
}

// TestApplyConverges drives the provider through cloud.MakePlan and
// cloud.Apply: the first apply creates everything, a second plan finds it
// all as wanted and changes nothing.
func TestApplyConverges(t *testing.T) {
	fake, p := newTest(t)
	web := fake.SeedFirewall("web", nil)
	other := fake.SeedServer(hetznerfake.ServerSeed{Name: "other-fleet", Labels: map[string]string{"managed-by": "fleet", "fleet": "other", "machine": "x"}})
	unlabelled := fake.SeedServer(hetznerfake.ServerSeed{Name: "handmade"})
	f := testFleet()

	plan, err := cloud.MakePlan(ctx(t), f, []cloud.Provider{p}, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := cloud.Apply(ctx(t), plan, []cloud.Provider{p}, cloud.ApplyOptions{})
	if failed := res.Failed(); len(failed) > 0 {
		t.Fatalf("apply failed: %v", failed[0].Err)
	}
	if len(res.Outcomes) != 4 {
		t.Errorf("%d changes applied, want 4 (2 keys, 2 servers)", len(res.Outcomes))
	}
	for _, o := range res.Outcomes {
		if o.Result == nil || o.Result.ID == "" {
			t.Errorf("%s %s: no resource with an ID after create", o.Change.Resource, o.Change.Name)
		}
		if o.Change.Name == "cinnabar" && (o.Result.IPv4 == "" || !strings.HasSuffix(o.Result.IPv6, "::1") || o.Result.Status != "running") {
			t.Errorf("cinnabar after create: %+v", o.Result)
		}
	}

	servers := map[string]hetznerfake.ServerInfo{}
	for _, s := range fake.Servers() {
		servers[s.Name] = s
	}
	c := servers["cinnabar"]
	if c.Status != "running" || c.Type != "cx43" || c.Location != "fsn1" || c.Image != "ubuntu-24.04" || c.IPv4 == "" || c.IPv6 == "" {
		t.Errorf("cinnabar in the cloud: %+v", c)
	}
	if len(c.SSHKeys) != 2 || !slices.Equal(c.Firewalls, []int64{web}) {
		t.Errorf("cinnabar has ssh keys %v and firewalls %v, want both keys and firewall %d", c.SSHKeys, c.Firewalls, web)
	}
	if py := servers["pyrite"]; py.IPv4 != "" || py.IPv6 == "" {
		t.Errorf("pyrite wants IPv6 only: %+v", py)
	}
	if len(fake.SSHKeys()) != 2 {
		t.Errorf("%d ssh keys in the project, want 2", len(fake.SSHKeys()))
	}

	// List finds ours, not the other fleet's or the handmade server.
	have, err := p.List(ctx(t), "ref", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range have {
		if r.ID == fmt.Sprint(other) || r.ID == fmt.Sprint(unlabelled) {
			t.Errorf("List returned %s, which is not this fleet's", r.Name)
		}
	}
	if len(have) != 4 {
		t.Errorf("List found %d resources, want 4", len(have))
	}

	fake.ResetRequests()
	again, err := cloud.MakePlan(ctx(t), f, []cloud.Provider{p}, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range again.Changes {
		if c.Action != cloud.NoOp {
			t.Errorf("second plan: %s %s %s: %s", c.Action, c.Resource, c.Name, c.Reason)
		}
	}
	res = cloud.Apply(ctx(t), again, []cloud.Provider{p}, cloud.ApplyOptions{})
	if n := fake.Mutations(); n != 0 {
		t.Errorf("second plan and apply made %d mutating requests, want 0", n)
	}
	reqs := fake.Requests()
	if n := count(reqs, "GET", "/servers") + count(reqs, "GET", "/ssh_keys") + count(reqs, "GET", "/firewalls"); n != 3 || len(reqs) != 3 {
		t.Errorf("second plan: %d list requests of %d, want 3 (servers, ssh keys, firewalls): %v", n, len(reqs), reqs)
	}

	// Switching cinnabar off deletes its server; the keys stay for pyrite.
	f.Machine("cinnabar").Host.Enabled = false
	plan, err = cloud.MakePlan(ctx(t), f, []cloud.Provider{p}, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res = cloud.Apply(ctx(t), plan, []cloud.Provider{p}, cloud.ApplyOptions{})
	if failed := res.Failed(); len(failed) > 0 {
		t.Fatalf("apply failed: %v", failed[0].Err)
	}
	for _, s := range fake.Servers() {
		if s.Name == "cinnabar" {
			t.Errorf("cinnabar still exists after switching it off")
		}
	}
	if len(fake.Servers()) != 3 {
		t.Errorf("%d servers left, want pyrite and the two that are not ours", len(fake.Servers()))
	}
}

func TestCreateAndDelete(t *testing.T) {
	fake, p := newTest(t)
	fake.SeedFirewall("web", nil)
	want, err := p.Desired(testFleet())
	if err != nil {
		t.Fatal(err)
	}
	// Servers first: the keys they need are created on the way.
	for _, r := range slices.Backward(want) {
		if _, err := p.Create(ctx(t), r); err != nil {
			t.Fatalf("create %s %s: %v", r.Kind, r.Name, err)
		}
	}
	if n := len(fake.SSHKeys()); n != 2 {
		t.Fatalf("%d keys, want 2", n)
	}
	have, err := p.List(ctx(t), "ref", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		h := find(have, w.Kind, w.Name)
		if h == nil {
			t.Fatalf("%s %s not listed", w.Kind, w.Name)
		}
		if !maps.Equal(w.Spec, h.Spec) || !maps.Equal(w.Labels, h.Labels) {
			t.Errorf("%s %s: listed %v %v, want %v %v", w.Kind, w.Name, h.Spec, h.Labels, w.Spec, w.Labels)
		}
	}
	for _, h := range have {
		if err := p.Delete(ctx(t), h); err != nil {
			t.Fatalf("delete %s: %v", h.Name, err)
		}
	}
	if len(fake.Servers())+len(fake.SSHKeys()) != 0 {
		t.Fatalf("left after delete: %v %v", fake.Servers(), fake.SSHKeys())
	}
	// Deleting what is gone is done.
	for _, h := range have {
		if err := p.Delete(ctx(t), h); err != nil {
			t.Errorf("deleting %s again: %v", h.Name, err)
		}
	}
}

func TestListPagination(t *testing.T) {
	fake, p := newTest(t)
	for i := range 120 {
		fake.SeedServer(hetznerfake.ServerSeed{Name: fmt.Sprintf("m%03d", i),
			Labels: map[string]string{"managed-by": "fleet", "fleet": "ref", "machine": fmt.Sprintf("m%03d", i)}})
	}
	for i := range 30 {
		fake.SeedServer(hetznerfake.ServerSeed{Name: fmt.Sprintf("other%03d", i), Labels: map[string]string{"managed-by": "fleet", "fleet": "other"}})
	}
	page2 := func(r hetznerfake.Request) bool { return r.Path == "/servers" && r.Query.Get("page") == "2" }
	for _, tc := range []struct {
		name   string
		inject func()
		pages  string
	}{
		{name: "plain", pages: "1,2,3"},
		// A failure on page 2 retries page 2, not the whole list.
		{name: "page 2 answers 503 twice", inject: func() { fake.FailMatching(page2, 2, 503) }, pages: "1,2,2,2,3"},
		{name: "page 2 answers 429 once", inject: func() { fake.FailMatching(page2, 1, 429) }, pages: "1,2,2,3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.ResetRequests()
			if tc.inject != nil {
				tc.inject()
			}
			rs, err := p.List(ctx(t), "ref", nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 120 {
				t.Errorf("%d resources, want 120", len(rs))
			}
			var pages []string
			for _, r := range fake.Requests() {
				if r.Path == "/servers" {
					pages = append(pages, r.Query.Get("page"))
					if r.Query.Get("per_page") != "50" || r.Query.Get("label_selector") != "managed-by=fleet,fleet=ref" {
						t.Errorf("list request %s", r)
					}
				}
			}
			if got := strings.Join(pages, ","); got != tc.pages {
				t.Errorf("server pages requested: %s, want %s (ceil(120/50) = 3 pages)", got, tc.pages)
			}
			if n := count(fake.Requests(), "GET", "/ssh_keys"); n != 1 {
				t.Errorf("%d ssh key list requests, want 1", n)
			}
		})
	}
}

// BenchmarkList500 lists a fleet of 500 servers: 10 server pages and one
// page of ssh keys per List.
func BenchmarkList500(b *testing.B) {
	fake := hetznerfake.New()
	defer fake.Close()
	for i := range 500 {
		name := fmt.Sprintf("m%03d", i)
		fake.SeedServer(hetznerfake.ServerSeed{Name: name, Labels: cloud.FleetLabels("ref", name, nil)})
	}
	p := newProvider(fake, fast)
	fake.ResetRequests()
	for b.Loop() {
		rs, err := p.List(context.Background(), "ref", nil)
		if err != nil || len(rs) != 500 {
			b.Fatalf("%d, %v", len(rs), err)
		}
	}
	b.ReportMetric(float64(len(fake.Requests()))/float64(b.N), "requests/op")
}
