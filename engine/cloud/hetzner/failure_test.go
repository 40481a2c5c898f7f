package hetzner

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
	"github.com/fleet-nix/fleet/engine/model"
)

// server returns the wanted server called name of the test fleet.
func server(t *testing.T, p *Provider, name string) *cloud.Resource {
	t.Helper()
	rs, err := p.Desired(testFleet())
	if err != nil {
		t.Fatal(err)
	}
	r := find(rs, KindServer, name)
	if r == nil {
		t.Fatalf("no server %s wanted", name)
	}
	return r
}

func ours(machine string) map[string]string {
	return cloud.FleetLabels("ref", machine, nil)
}

func TestNamesake(t *testing.T) {
	for _, tc := range []struct {
		name     string
		labels   map[string]string
		namesake bool
	}{
		{name: "unlabelled", labels: nil, namesake: true},
		{name: "another fleet's", labels: cloud.FleetLabels("other", "pyrite", nil), namesake: true},
		// An earlier, interrupted apply made it: it is the server wanted.
		{name: "ours", labels: cloud.FleetLabels("ref", "pyrite", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, p := newTest(t)
			id := fake.SeedServer(hetznerfake.ServerSeed{Name: "pyrite", Type: "cx22", Location: "nbg1", Image: "debian-12", Labels: tc.labels})
			before := fake.Servers()
			fake.ResetRequests()
			got, err := p.Create(ctx(t), server(t, p, "pyrite"))
			var ne *cloud.NamesakeError
			if tc.namesake {
				if !errors.As(err, &ne) || ne.Kind != KindServer || ne.Name != "pyrite" || ne.Provider != "hetzner" {
					t.Fatalf("err %v, want a NamesakeError for server pyrite", err)
				}
			} else if err != nil || got.ID == "" || got.Name != "pyrite" {
				t.Fatalf("create over our own server: %+v, %v", got, err)
			}
			after := fake.Servers()
			if len(after) != 1 || after[0].ID != id || !maps.Equal(after[0].Labels, before[0].Labels) || after[0].Status != before[0].Status {
				t.Errorf("the namesake was touched: before %+v, after %+v", before, after)
			}
			// The create itself, then the one GET by name; the keys are
			// created on the way.
			reqs := fake.Requests()
			if n := count(reqs, "POST", "/servers"); n != 1 {
				t.Errorf("%d server creates, want 1", n)
			}
			if n := count(reqs, "GET", "/servers"); n != 1 {
				t.Errorf("%d server lookups, want 1", n)
			}
		})
	}
}

func TestSSHKeyNamesakeAndDuplicate(t *testing.T) {
	fake, p := newTest(t)
	want, err := p.Desired(testFleet())
	if err != nil {
		t.Fatal(err)
	}
	k1 := find(want, KindSSHKey, keyName("ref", testKey(1)))
	k2 := find(want, KindSSHKey, keyName("ref", testKey(2)))
	// Someone uploaded a different key under k1's name, and k2's public
	// key under a name of their own.
	fake.SeedSSHKey(k1.Name, testKey(7), nil)
	fake.SeedSSHKey("alice-laptop", testKey(2)+" alice@laptop", nil)

	_, err = p.Create(ctx(t), k1)
	var ne *cloud.NamesakeError
	if !errors.As(err, &ne) || ne.Kind != KindSSHKey {
		t.Errorf("create %s: %v, want a NamesakeError", k1.Name, err)
	}
	_, err = p.Create(ctx(t), k2)
	if err == nil || !strings.Contains(err.Error(), `"alice-laptop"`) || !strings.Contains(err.Error(), "once per project") {
		t.Errorf("create %s: %v, want an error naming alice-laptop", k2.Name, err)
	}
	if n := len(fake.SSHKeys()); n != 2 {
		t.Errorf("%d keys, want the 2 seeded ones untouched", n)
	}
}

func TestDuplicateKeyStillReachesServer(t *testing.T) {
	fake, p := newTest(t)
	theirs := fake.SeedSSHKey("alice-laptop", testKey(2), nil)
	if _, err := p.Create(ctx(t), server(t, p, "pyrite")); err != nil {
		t.Fatal(err)
	}
	s := fake.Servers()[0]
	if len(s.SSHKeys) != 2 || (s.SSHKeys[0] != theirs && s.SSHKeys[1] != theirs) {
		t.Errorf("server has keys %v, want ours and %d", s.SSHKeys, theirs)
	}
}

func TestTransientErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status, n int
		attempts  int
		wantErr   bool
		wantPOSTs int
	}{
		{name: "429 twice, then created", status: 429, n: 2, attempts: 5, wantPOSTs: 3},
		{name: "500 once, then created", status: 500, n: 1, attempts: 5, wantPOSTs: 2},
		{name: "502 once, then created", status: 502, n: 1, attempts: 5, wantPOSTs: 2},
		{name: "423 locked once, then created", status: 423, n: 1, attempts: 5, wantPOSTs: 2},
		// Exactly Attempts requests: hcloud-go's own retries are off, so
		// the attempts do not multiply.
		{name: "429 for good", status: 429, n: 100, attempts: 3, wantErr: true, wantPOSTs: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := hetznerfake.New()
			defer fake.Close()
			b := fast
			b.Attempts = tc.attempts
			p := newProvider(fake, b)
			want := server(t, p, "pyrite")
			want.Extra[extraSSHKeys] = nil
			fake.FailNext("POST", "/servers", tc.n, tc.status)
			got, err := p.Create(ctx(t), want)
			if tc.wantErr {
				if !cloud.IsTransient(err) || !strings.Contains(err.Error(), "rate_limit_exceeded") {
					t.Errorf("err %v, want a transient rate limit error", err)
				}
			} else if err != nil || got.Status != "running" {
				t.Errorf("create: %+v, %v", got, err)
			}
			if n := count(fake.Requests(), "POST", "/servers"); n != tc.wantPOSTs {
				t.Errorf("%d POST /servers, want %d", n, tc.wantPOSTs)
			}
			if n, want := len(fake.Servers()), map[bool]int{true: 0, false: 1}[tc.wantErr]; n != want {
				t.Errorf("%d servers, want %d", n, want)
			}
		})
	}
}

func TestRateLimitWhileWaiting(t *testing.T) {
	fake, p := newTest(t)
	want := server(t, p, "pyrite")
	fake.FailNext("GET", "/actions", 2, 429)
	if _, err := p.Create(ctx(t), want); err != nil {
		t.Fatalf("a rate limit while polling actions must be waited out: %v", err)
	}
	if s := fake.Servers(); len(s) != 1 || s[0].Status != "running" {
		t.Errorf("servers %+v", s)
	}
}

func TestFailedAction(t *testing.T) {
	fake, p := newTest(t)
	fake.FailCreate("pyrite", "no capacity left in nbg1")
	_, err := p.Create(ctx(t), server(t, p, "pyrite"))
	if err == nil || !strings.Contains(err.Error(), "pyrite") || !strings.Contains(err.Error(), "no capacity left in nbg1") {
		t.Fatalf("err %v, want one naming the server and the action's message", err)
	}
	if cloud.IsTransient(err) {
		t.Errorf("a failed action is not transient")
	}
	if s := fake.Servers(); len(s) != 0 {
		t.Errorf("the half-made server was left behind: %+v", s)
	}
	// The next attempt converges.
	if _, err := p.Create(ctx(t), server(t, p, "pyrite")); err != nil {
		t.Fatal(err)
	}
}

func TestMissingFirewall(t *testing.T) {
	fake, p := newTest(t)
	_, err := p.Create(ctx(t), server(t, p, "cinnabar"))
	if err == nil || !strings.Contains(err.Error(), `no firewall "web"`) {
		t.Fatalf("err %v, want one naming the missing firewall", err)
	}
	if n := count(fake.Requests(), "POST", "/servers"); n != 0 {
		t.Errorf("%d creates with a missing firewall, want 0", n)
	}
}

func TestUpdate(t *testing.T) {
	fake, p := newTest(t)
	fake.SeedServer(hetznerfake.ServerSeed{Name: "pyrite", Type: "cax11", Location: "nbg1", Image: "ubuntu-24.04",
		Status: "off", Labels: ours("pyrite")})
	have, err := p.List(ctx(t), "ref", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := find(have, KindServer, "pyrite")
	if h.Spec["power"] != "off" {
		t.Fatalf("listed power %q, want off", h.Spec["power"])
	}
	want := server(t, p, "pyrite")
	want.Labels["role"] = "db"
	got, err := p.Update(ctx(t), want, h, []string{"power", "labels"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec["power"] != "on" || got.Status != "running" || got.Labels["role"] != "db" {
		t.Errorf("after update: %+v", got)
	}
	s := fake.Servers()[0]
	if s.Status != "running" || !maps.Equal(s.Labels, want.Labels) {
		t.Errorf("in the cloud: %+v", s)
	}
	if reqs := fake.Requests(); count(reqs, "POST", "/servers/"+h.ID+"/actions/poweron") != 1 || count(reqs, "PUT", "/servers/"+h.ID) != 1 {
		t.Errorf("requests %v", reqs)
	}

	want.Spec["power"] = "off"
	if _, err := p.Update(ctx(t), want, got, []string{"power"}); err != nil {
		t.Fatal(err)
	}
	if s := fake.Servers()[0]; s.Status != "off" {
		t.Errorf("status %s after power off", s.Status)
	}
	if _, err := p.Update(ctx(t), want, got, []string{"type"}); err == nil {
		t.Errorf("changing the type in place must fail")
	}
}

func TestMonthlyPrice(t *testing.T) {
	fake, p := newTest(t)
	fake.SetServerTypePrice("cx43", "fsn1", 12.34)
	fake.SetIPv4Price(0.5)
	noToken := New(cloud.Config{Getenv: env(nil)})

	failing := hetznerfake.New()
	defer failing.Close()
	failing.FailNext("GET", "/pricing", 100, 500)
	b := fast
	b.Attempts = 2
	broken := newProvider(failing, b)

	srv := func(typ, loc string, ipv4 bool) *cloud.Resource {
		return &cloud.Resource{Kind: KindServer, Spec: map[string]string{"type": typ, "location": loc}, Extra: map[string]any{extraIPv4: ipv4}}
	}
	listed := &cloud.Resource{Kind: KindServer, Spec: map[string]string{"type": "cx43", "location": "fsn1"}, IPv4: "198.18.0.1"}
	for _, tc := range []struct {
		name   string
		p      *Provider
		r      *cloud.Resource
		eur    float64
		source string
	}{
		{"API, with IPv4", p, srv("cx43", "fsn1", true), 12.84, "Hetzner pricing API"},
		{"API, IPv6 only", p, srv("cx43", "fsn1", false), 12.34, "Hetzner pricing API"},
		{"API, listed server with IPv4", p, listed, 12.84, "Hetzner pricing API"},
		{"API lacks the type: table", p, srv("cx43", "nowhere", false), 11.89, "price table of 2026-11-25"},
		{"no token: table", noToken, srv("cx43", "fsn1", true), 11.89 + 0.60, "price table of 2026-11-25"},
		{"no token, dedicated", noToken, srv("ccx23", "fsn1", false), 29.14, "price table of 2026-11-25"},
		{"pricing API fails: table", broken, srv("cax11", "nbg1", false), 4.51, "price table of 2026-11-25"},
		{"unknown type", noToken, srv("zz99", "fsn1", true), 0, "unknown server type zz99"},
		{"ssh keys are free", p, &cloud.Resource{Kind: KindSSHKey}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eur, source, err := tc.p.MonthlyPrice(ctx(t), tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := eur - tc.eur; diff > 1e-9 || diff < -1e-9 || source != tc.source {
				t.Errorf("%.4f EUR from %q, want %.4f from %q", eur, source, tc.eur, tc.source)
			}
		})
	}
	if n := count(fake.Requests(), "GET", "/pricing"); n != 1 {
		t.Errorf("%d pricing requests, want 1 (cached)", n)
	}
	if n := count(failing.Requests(), "GET", "/pricing"); n != 2 {
		t.Errorf("%d pricing requests to a failing API, want 2 (the attempts, once)", n)
	}
	for _, typ := range []string{"cx22", "cx32", "cx42", "cx52", "cx23", "cx33", "cx43", "cx53", "cpx11", "cpx21", "cpx31", "cpx41", "cpx51",
		"cax11", "cax21", "cax31", "cax41", "ccx13", "ccx23", "ccx33", "ccx43", "ccx53", "ccx63"} {
		if priceTable[typ] <= 0 {
			t.Errorf("price table lacks %s", typ)
		}
	}
}

// TestPricingAnswerHcloudCannotRead: hcloud-go v2.52.0 panics on a
// pricing answer with more primary IP types than floating IP types; the
// provider falls back to the table instead of crashing.
func TestPricingAnswerHcloudCannotRead(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"pricing":{"currency":"EUR","vat_rate":"19.00","floating_ips":[],"server_types":[],`+
			`"primary_ips":[{"type":"ipv4","prices":[{"location":"fsn1","price_monthly":{"net":"0.5","gross":"0.595"}}]}]}}`)
	}))
	defer ts.Close()
	p := New(cloud.Config{Getenv: env(map[string]string{"HCLOUD_TOKEN": "t", "HCLOUD_ENDPOINT": ts.URL}), Backoff: fast})
	eur, source, err := p.MonthlyPrice(ctx(t), &cloud.Resource{Kind: KindServer, Spec: map[string]string{"type": "cx22", "location": "fsn1"}})
	if err != nil || eur != 4.51 || source != sourceTable {
		t.Errorf("%v EUR from %q, %v; want the table's price", eur, source, err)
	}
}

// A server type where Hetzner does not sell it (Arm in Ashburn) or an
// image that does not exist fails that machine's create with the API's
// answer, leaves nothing behind, and the other machines are created.
func TestCreateRefusedByTheAPI(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*model.HetznerServer)
		error string
	}{
		{"type not sold there", func(h *model.HetznerServer) { h.Location = "ash" }, "unsupported location for server type (invalid_input"},
		{"no such image", func(h *model.HetznerServer) { h.Image = "ubuntu-99.04" }, `image "ubuntu-99.04" not found (invalid_input`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, p := newTest(t)
			fake.SeedFirewall("web", nil) // cinnabar's
			f := testFleet()
			tc.edit(f.Machine("pyrite").Host.Hetzner)
			plan, err := cloud.MakePlan(ctx(t), f, []cloud.Provider{p}, cloud.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			res := cloud.Apply(ctx(t), plan, []cloud.Provider{p}, cloud.ApplyOptions{})
			failed := res.Failed()
			if len(failed) != 1 || failed[0].Change.Name != "pyrite" || !strings.Contains(failed[0].Err.Error(), tc.error) {
				for _, o := range failed {
					t.Logf("%s: %v", o.Change.Name, o.Err)
				}
				t.Fatalf("%d failed, want pyrite's create with %q", len(failed), tc.error)
			}
			var names []string
			for _, s := range fake.Servers() {
				names = append(names, s.Name)
			}
			if got := strings.Join(names, ","); got != "cinnabar" {
				t.Errorf("servers after: %s", got)
			}
		})
	}
}
