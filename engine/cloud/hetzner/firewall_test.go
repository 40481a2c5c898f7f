package hetzner

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
	"github.com/fleet-nix/fleet/engine/model"
)

var anywhere = []string{"0.0.0.0/0", "::/0"}

// baseRules are what hetzner.firewall("base", allow = ["tcp/22",
// "udp/9993", "icmp", "tcp/60000-61000"]) declares.
func baseRules() []model.FirewallRule {
	return []model.FirewallRule{
		{Protocol: "tcp", Port: "22", Sources: anywhere},
		{Protocol: "udp", Port: "9993", Sources: anywhere},
		{Protocol: "icmp", Sources: anywhere},
		{Protocol: "tcp", Port: "60000-61000", Sources: anywhere},
	}
}

const baseSpec = "in icmp from 0.0.0.0/0,::/0; in tcp/22 from 0.0.0.0/0,::/0; in tcp/60000-61000 from 0.0.0.0/0,::/0; in udp/9993 from 0.0.0.0/0,::/0"

// fwFleet is the test fleet with declared firewalls: "base" on cinnabar
// (next to the project's existing "web") and pyrite, "db" only on the
// disabled electrum, "unused" on no server.
func fwFleet() *model.Fleet {
	f := testFleet()
	f.Firewalls = []*model.Firewall{
		{Provider: model.Hetzner, Name: "unused", Rules: []model.FirewallRule{{Protocol: "tcp", Port: "80", Sources: anywhere}}},
		{Provider: model.Hetzner, Name: "base", Rules: baseRules(), Labels: map[string]string{"tier": "base"}},
		{Provider: model.Hetzner, Name: "db", Rules: []model.FirewallRule{{Protocol: "tcp", Port: "5432", Sources: []string{"10.0.0.0/8"}}}},
	}
	f.Machine("cinnabar").Host.Hetzner.Firewalls = []string{"web", "base"}
	f.Machine("pyrite").Host.Hetzner.Firewalls = []string{"base"}
	f.Machine("electrum").Host.Hetzner.Firewalls = []string{"db", "base"}
	f.Sort()
	return f
}

// converge plans and applies f, failing the test on any failed change,
// and returns the plan's changes other than no-ops, as "action kind name
// [fields]".
func converge(t *testing.T, p *Provider, f *model.Fleet) []string {
	t.Helper()
	plan, err := cloud.MakePlan(ctx(t), f, []cloud.Provider{p}, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := cloud.Apply(ctx(t), plan, []cloud.Provider{p}, cloud.ApplyOptions{})
	for _, o := range res.Failed() {
		t.Fatalf("apply: %s %s %s: %v", o.Change.Action, o.Change.Resource, o.Change.Name, o.Err)
	}
	return changes(plan)
}

func changes(plan *cloud.Plan) []string {
	var out []string
	for _, c := range plan.Changes {
		if c.Action == cloud.NoOp {
			continue
		}
		s := string(c.Action) + " " + c.Resource + " " + c.Name
		if len(c.Fields) > 0 {
			s += " [" + strings.Join(c.Fields, ",") + "]"
		}
		out = append(out, s)
	}
	return out
}

// planOnly returns the changes a plan of f would make, applying nothing.
func planOnly(t *testing.T, p *Provider, f *model.Fleet) *cloud.Plan {
	t.Helper()
	plan, err := cloud.MakePlan(ctx(t), f, []cloud.Provider{p}, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func fakeFirewall(fake *hetznerfake.Server, name string) *hetznerfake.FirewallInfo {
	for _, fw := range fake.Firewalls() {
		if fw.Name == name {
			return &fw
		}
	}
	return nil
}

func fakeServer(fake *hetznerfake.Server, name string) *hetznerfake.ServerInfo {
	for _, s := range fake.Servers() {
		if s.Name == name {
			return &s
		}
	}
	return nil
}

func TestDesiredFirewalls(t *testing.T) {
	p := New(cloud.Config{Getenv: env(nil)})
	rs, err := p.Desired(fwFleet())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rs {
		if r.Kind != KindSSHKey {
			names = append(names, r.Kind+"/"+r.Name)
		}
	}
	// "db" is only on a disabled server, "unused" on none, "web" is not
	// the fleet's: none of them is wanted.
	if want := []string{"firewall/base", "server/cinnabar", "server/pyrite"}; !slices.Equal(names, want) {
		t.Fatalf("resources %v, want %v (firewalls before servers)", names, want)
	}
	fw := find(rs, KindFirewall, "base")
	if fw.Provider != "hetzner" || fw.Scope != "" || fw.Machine != "" || fw.ID != "" {
		t.Errorf("firewall %+v", fw)
	}
	if got, want := fw.Labels, map[string]string{"managed-by": "fleet", "fleet": "ref", "tier": "base"}; !maps.Equal(got, want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	if got := fw.Spec; !maps.Equal(got, map[string]string{"rules": baseSpec}) {
		t.Errorf("spec %q\nwant %q", got["rules"], baseSpec)
	}
	if !slices.Equal(fw.Mutable, []string{"rules"}) {
		t.Errorf("mutable %v, want rules: set_rules changes them in place", fw.Mutable)
	}
	if rules, ok := fw.Extra[extraRules].([]rule); !ok || len(rules) != 4 {
		t.Errorf("extra rules %#v", fw.Extra[extraRules])
	}

	c := find(rs, KindServer, "cinnabar")
	if c.Spec["firewalls"] != "base" || !slices.Equal(c.Mutable, []string{"power", "firewalls"}) {
		t.Errorf("cinnabar: firewalls %q, mutable %v; want the fleet's own only, in place", c.Spec["firewalls"], c.Mutable)
	}
	if got := c.Extra[extraFirewalls].([]string); !slices.Equal(got, []string{"web", "base"}) {
		t.Errorf("cinnabar attaches %v at create, want web and base", got)
	}
	if got := c.Extra[extraFleetFirewalls].([]*cloud.Resource); len(got) != 1 || got[0] != fw {
		t.Errorf("cinnabar's own firewalls %v", got)
	}

	// The same rules in another order, written another way, are the same
	// Spec.
	f := fwFleet()
	base := f.Firewall("base")
	base.Rules = []model.FirewallRule{
		{Protocol: "tcp", Port: "60000-61000", Sources: []string{"::/0", "0.0.0.0/0"}},
		{Protocol: "ICMP", Sources: []string{"0.0.0.0/0", "::/0", "::/0"}},
		{Protocol: "udp", Port: "09993", Sources: anywhere},
		{Protocol: "tcp", Port: "22-22", Sources: anywhere},
		{Protocol: "tcp", Port: "22", Sources: anywhere},
	}
	again, err := p.Desired(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := find(again, KindFirewall, "base").Spec["rules"]; got != baseSpec {
		t.Errorf("reordered rules: %q\nwant %q", got, baseSpec)
	}
}

func TestDesiredFirewallEdges(t *testing.T) {
	p := New(cloud.Config{Getenv: env(nil)})
	for _, tc := range []struct {
		name    string
		edit    func(f *model.Fleet)
		wantErr string
		want    []string // firewall names wanted
	}{
		{name: "no hetzner host enabled: no firewalls", want: nil, edit: func(f *model.Fleet) {
			f.Machine("cinnabar").Host.Enabled = false
			f.Machine("pyrite").Host.Enabled = false
		}},
		{name: "enabling electrum wants db", want: []string{"base", "db"}, edit: func(f *model.Fleet) { f.Machine("electrum").Host.Enabled = true }},
		{name: "a name twice is once", want: []string{"base"}, edit: func(f *model.Fleet) {
			f.Machine("pyrite").Host.Hetzner.Firewalls = []string{"base", "base"}
		}},
		{name: "a gcp firewall of the same name is not hetzner's", want: nil, edit: func(f *model.Fleet) {
			f.Firewall("base").Provider = model.GCP
		}},
		{name: "bad protocol", wantErr: `protocol "sctp"`, edit: func(f *model.Fleet) {
			f.Firewall("base").Rules = []model.FirewallRule{{Protocol: "sctp", Sources: anywhere}}
		}},
		{name: "tcp without a port", wantErr: "needs a port", edit: func(f *model.Fleet) {
			f.Firewall("base").Rules = []model.FirewallRule{{Protocol: "tcp", Sources: anywhere}}
		}},
		{name: "icmp with a port", wantErr: "has no ports", edit: func(f *model.Fleet) {
			f.Firewall("base").Rules = []model.FirewallRule{{Protocol: "icmp", Port: "1", Sources: anywhere}}
		}},
		{name: "bad source", wantErr: `source "10.0.0.1"`, edit: func(f *model.Fleet) {
			f.Firewall("base").Rules = []model.FirewallRule{{Protocol: "tcp", Port: "22", Sources: []string{"10.0.0.1"}}}
		}},
		{name: "bad label", wantErr: "firewall base", edit: func(f *model.Fleet) {
			f.Firewall("base").Labels = map[string]string{"bad key": "x"}
		}},
		{name: "six firewalls", wantErr: "at most 5", edit: func(f *model.Fleet) {
			f.Machine("pyrite").Host.Hetzner.Firewalls = []string{"a", "b", "c", "d", "e", "base"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fwFleet()
			tc.edit(f)
			rs, err := p.Desired(f)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				if r.Kind == KindFirewall {
					got = append(got, r.Name)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("firewalls %v, want %v", got, tc.want)
			}
		})
	}
}

// TestFirewallApply drives the whole life of a firewall through
// cloud.MakePlan and cloud.Apply: created before the servers that use it,
// attached at their create, found as wanted by the next plan, its rules
// changed in place, added to and removed from an existing server, and
// deleted once no server uses it.
func TestFirewallApply(t *testing.T) {
	fake, p := newTest(t)
	web := fake.SeedFirewall("web", nil)
	f := fwFleet()

	got := converge(t, p, f)
	want := []string{"create firewall base", "create ssh_key " + min(keyName("ref", testKey(1)), keyName("ref", testKey(2))),
		"create ssh_key " + max(keyName("ref", testKey(1)), keyName("ref", testKey(2))), "create server cinnabar", "create server pyrite"}
	if !slices.Equal(got, want) {
		t.Fatalf("first plan %v\nwant %v", got, want)
	}
	base := fakeFirewall(fake, "base")
	if base == nil || !maps.Equal(base.Labels, map[string]string{"managed-by": "fleet", "fleet": "ref", "tier": "base"}) {
		t.Fatalf("firewall base in the cloud: %+v", base)
	}
	if len(base.Rules) != 4 {
		t.Errorf("rules %+v", base.Rules)
	}
	for _, r := range base.Rules {
		if r.Direction != "in" || !slices.Equal(r.SourceIPs, anywhere) || len(r.DestinationIPs) != 0 || (r.Port == nil) != (r.Protocol == "icmp") {
			t.Errorf("rule %+v", r)
		}
	}
	// The servers were created with their firewalls: never a moment
	// without.
	if c := fakeServer(fake, "cinnabar"); !slices.Equal(c.Firewalls, []int64{web, base.ID}) {
		t.Errorf("cinnabar has firewalls %v, want web %d and base %d", c.Firewalls, web, base.ID)
	}
	if py := fakeServer(fake, "pyrite"); !slices.Equal(py.Firewalls, []int64{base.ID}) {
		t.Errorf("pyrite has firewalls %v, want base %d", py.Firewalls, base.ID)
	}
	if n := count(fake.Requests(), "POST", fmt.Sprintf("/firewalls/%d/actions/apply_to_resources", base.ID)); n != 0 {
		t.Errorf("%d apply_to_resources: the servers get it at create", n)
	}

	// As wanted: List gives the same Spec, and nothing changes.
	have, err := p.List(ctx(t), "ref", nil)
	if err != nil {
		t.Fatal(err)
	}
	if h := find(have, KindFirewall, "base"); h == nil || h.Spec["rules"] != baseSpec || h.ID != fmt.Sprint(base.ID) {
		t.Fatalf("listed base: %+v", h)
	}
	if h := find(have, KindServer, "cinnabar"); h.Spec["firewalls"] != "base" {
		t.Errorf("listed cinnabar has firewalls %q, want base (web is not the fleet's)", h.Spec["firewalls"])
	}
	if find(have, KindFirewall, "web") != nil {
		t.Errorf("the project's own firewall web was listed")
	}
	fake.ResetRequests()
	if got := converge(t, p, f); len(got) != 0 {
		t.Fatalf("second plan: %v", got)
	}
	if n := fake.Mutations(); n != 0 {
		t.Errorf("second apply made %d mutating requests", n)
	}

	// Changed rules: set in place, not replaced.
	f.Firewall("base").Rules = append(baseRules()[:3], model.FirewallRule{Protocol: "tcp", Port: "443", Sources: []string{"203.0.113.0/24"}})
	fake.ResetRequests()
	plan := planOnly(t, p, f)
	if got := changes(plan); !slices.Equal(got, []string{"update firewall base [rules]"}) {
		t.Fatalf("plan after changing rules: %v", got)
	}
	if r := plan.Changes[0].Reason; !strings.Contains(r, "in tcp/443 from 203.0.113.0/24") || !strings.Contains(r, "in tcp/60000-61000") {
		t.Errorf("reason %q should show the old and the new rules", r)
	}
	converge(t, p, f)
	reqs := fake.Requests()
	if count(reqs, "POST", fmt.Sprintf("/firewalls/%d/actions/set_rules", base.ID)) != 1 || count(reqs, "DELETE", fmt.Sprintf("/firewalls/%d", base.ID)) != 0 ||
		count(reqs, "POST", "/firewalls") != 0 {
		t.Errorf("changing rules: %v, want one set_rules and no delete or create", reqs)
	}
	after := fakeFirewall(fake, "base")
	if after.ID != base.ID || len(after.Rules) != 4 || !slices.Contains(ruleStrings(after.Rules), "in tcp 443 203.0.113.0/24") {
		t.Errorf("after set_rules: %+v", after)
	}
	if got := converge(t, p, f); len(got) != 0 {
		t.Fatalf("plan after set_rules: %v", got)
	}

	// Labels change in place too.
	f.Firewall("base").Labels = map[string]string{"tier": "edge"}
	if got := converge(t, p, f); !slices.Equal(got, []string{"update firewall base [labels]"}) {
		t.Fatalf("plan after changing labels: %v", got)
	}
	if l := fakeFirewall(fake, "base").Labels; l["tier"] != "edge" {
		t.Errorf("labels %v", l)
	}

	// A new firewall on an existing server: created first, then applied
	// to the server by its update.
	f.Firewalls = append(f.Firewalls, &model.Firewall{Provider: model.Hetzner, Name: "mosh",
		Rules: []model.FirewallRule{{Protocol: "udp", Port: "60000-61000", Sources: anywhere}}})
	f.Machine("pyrite").Host.Hetzner.Firewalls = []string{"mosh", "base"}
	f.Sort()
	fake.ResetRequests()
	plan = planOnly(t, p, f)
	if got := changes(plan); !slices.Equal(got, []string{"create firewall mosh", "update server pyrite [firewalls]"}) {
		t.Fatalf("plan after adding a firewall to pyrite: %v", got)
	}
	for _, c := range plan.Changes {
		if c.Name == "pyrite" && c.Reason != "firewalls base -> base,mosh" {
			t.Errorf("reason %q", c.Reason)
		}
	}
	converge(t, p, f)
	mosh := fakeFirewall(fake, "mosh")
	py := fakeServer(fake, "pyrite")
	if mosh == nil || !slices.Equal(py.Firewalls, []int64{base.ID, mosh.ID}) {
		t.Fatalf("pyrite has firewalls %v, want base and mosh (%+v)", py.Firewalls, mosh)
	}
	if n := count(fake.Requests(), "POST", fmt.Sprintf("/firewalls/%d/actions/apply_to_resources", mosh.ID)); n != 1 {
		t.Errorf("%d apply_to_resources for mosh, want 1", n)
	}
	if got := converge(t, p, f); len(got) != 0 {
		t.Fatalf("plan after adding: %v", got)
	}

	// Taken off pyrite while cinnabar keeps base: the server is updated,
	// the firewall stays.
	f.Machine("pyrite").Host.Hetzner.Firewalls = []string{"mosh"}
	if got := converge(t, p, f); !slices.Equal(got, []string{"update server pyrite [firewalls]"}) {
		t.Fatalf("plan after taking base off pyrite: %v", got)
	}
	if py := fakeServer(fake, "pyrite"); !slices.Equal(py.Firewalls, []int64{mosh.ID}) {
		t.Errorf("pyrite has firewalls %v, want mosh only", py.Firewalls)
	}
	if fakeFirewall(fake, "base") == nil {
		t.Fatalf("base was deleted while cinnabar uses it")
	}

	// No server uses base any more, and both keep running: their
	// updates (hosts phase) take it off before it is deleted (last
	// phase), so Hetzner never answers resource_in_use.
	f.Machine("cinnabar").Host.Hetzner.Firewalls = []string{"web"}
	fake.ResetRequests()
	if got := converge(t, p, f); !slices.Equal(got, []string{"delete firewall base", "update server cinnabar [firewalls]"}) {
		t.Fatalf("plan after no server uses base: %v", got)
	}
	if fakeFirewall(fake, "base") != nil {
		t.Errorf("base still exists")
	}
	if n := count(fake.Requests(), "DELETE", fmt.Sprintf("/firewalls/%d", base.ID)); n != 1 {
		t.Errorf("%d deletes of base, want 1 (none refused as in use)", n)
	}
	if c := fakeServer(fake, "cinnabar"); !slices.Equal(c.Firewalls, []int64{web}) {
		t.Errorf("cinnabar has firewalls %v, want web only: the project's firewall stays", c.Firewalls)
	}

	// The servers go: so do the fleet's firewalls, after them; the
	// project's own stays.
	f.Machine("cinnabar").Host.Enabled = false
	f.Machine("pyrite").Host.Enabled = false
	got = converge(t, p, f)
	if !slices.Contains(got, "delete firewall mosh") || !slices.Contains(got, "delete server pyrite") {
		t.Fatalf("plan with no server: %v", got)
	}
	if fws := fake.Firewalls(); len(fws) != 1 || fws[0].ID != web {
		t.Errorf("firewalls left: %+v, want web only", fws)
	}
	if len(fake.Servers()) != 0 || len(fake.SSHKeys()) != 0 {
		t.Errorf("left: %v %v", fake.Servers(), fake.SSHKeys())
	}
}

// ruleStrings are rules as "direction protocol port networks".
func ruleStrings(rules []schema.FirewallRule) []string {
	var out []string
	for _, r := range rules {
		port := ""
		if r.Port != nil {
			port = *r.Port
		}
		out = append(out, strings.Join([]string{r.Direction, r.Protocol, port, strings.Join(append(r.SourceIPs, r.DestinationIPs...), ",")}, " "))
	}
	return out
}

func TestFirewallNamesake(t *testing.T) {
	fake, p := newTest(t)
	fake.SeedFirewall("web", nil)
	theirs := []schema.FirewallRule{{Direction: "in", Protocol: "tcp", Port: hcloudPtr("1-65535"), SourceIPs: anywhere, DestinationIPs: []string{}}}
	id := fake.SeedFirewallWith(hetznerfake.FirewallSeed{Name: "base", Labels: map[string]string{"team": "other"}, Rules: theirs})
	f := fwFleet()

	plan := planOnly(t, p, f)
	res := cloud.Apply(ctx(t), plan, []cloud.Provider{p}, cloud.ApplyOptions{})
	failed := map[string]error{}
	for _, o := range res.Failed() {
		failed[o.Change.Resource+" "+o.Change.Name] = o.Err
	}
	var ne *cloud.NamesakeError
	if err := failed["firewall base"]; !errors.As(err, &ne) || ne.Kind != KindFirewall || ne.Name != "base" {
		t.Fatalf("create firewall base: %v, want a NamesakeError", err)
	}
	// A server must not start behind someone else's rules: those that
	// use base are not created.
	for _, name := range []string{"cinnabar", "pyrite"} {
		if err := failed["server "+name]; !errors.As(err, &ne) || ne.Kind != KindFirewall {
			t.Errorf("create server %s: %v, want the firewall's NamesakeError", name, err)
		}
	}
	if len(fake.Servers()) != 0 {
		t.Errorf("servers were created: %+v", fake.Servers())
	}
	got := fakeFirewall(fake, "base")
	if got.ID != id || !maps.Equal(got.Labels, map[string]string{"team": "other"}) || !slices.Equal(ruleStrings(got.Rules), ruleStrings(theirs)) ||
		len(got.Servers) != 0 {
		t.Errorf("the namesake was touched: %+v", got)
	}
	for _, r := range fake.Requests() {
		if r.Mutating() && strings.HasPrefix(r.Path, fmt.Sprintf("/firewalls/%d", id)) {
			t.Errorf("request to the namesake: %s", r)
		}
	}
}

func hcloudPtr(s string) *string { return &s }

// TestFirewallCreateOverOurOwn: an earlier, interrupted apply made the
// firewall, with other rules: it is taken, and given the wanted rules
// before servers use it.
func TestFirewallCreateOverOurOwn(t *testing.T) {
	fake, p := newTest(t)
	id := fake.SeedFirewallWith(hetznerfake.FirewallSeed{Name: "base", Labels: cloud.FleetLabels("ref", "", nil),
		Rules: []schema.FirewallRule{{Direction: "in", Protocol: "tcp", Port: hcloudPtr("22"), SourceIPs: anywhere}}})
	rs, err := p.Desired(fwFleet())
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Create(ctx(t), find(rs, KindFirewall, "base"))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != fmt.Sprint(id) || got.Spec["rules"] != baseSpec {
		t.Errorf("created %+v", got)
	}
	if fw := fakeFirewall(fake, "base"); len(fw.Rules) != 4 {
		t.Errorf("rules in the cloud %v", ruleStrings(fw.Rules))
	}
}

// TestServerCreatesMissingFirewall: a server whose firewall's own create
// failed creates it on the way, as it does its ssh keys.
func TestServerCreatesMissingFirewall(t *testing.T) {
	fake, p := newTest(t)
	rs, err := p.Desired(fwFleet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx(t), find(rs, KindServer, "pyrite")); err != nil {
		t.Fatal(err)
	}
	base := fakeFirewall(fake, "base")
	if base == nil || len(base.Rules) != 4 || !slices.Equal(base.Servers, []int64{fakeServer(fake, "pyrite").ID}) {
		t.Fatalf("base %+v", base)
	}
	// The label-selected list was enough: pyrite names no firewall of the
	// project's own.
	for _, r := range fake.Requests() {
		if r.Method == "GET" && r.Path == "/firewalls" && r.Query.Get("label_selector") != "managed-by=fleet,fleet=ref" {
			t.Errorf("unselected firewall list %s", r)
		}
	}
}

// TestDeleteFirewallInUse: a firewall to delete that still applies to a
// server of the fleet (whose own update did not run) is taken off it
// first; one that applies to what the fleet does not manage is left
// alone and the delete fails saying so.
func TestDeleteFirewallInUse(t *testing.T) {
	labels := cloud.FleetLabels("ref", "", nil)
	rules := []schema.FirewallRule{{Direction: "in", Protocol: "icmp", SourceIPs: anywhere}}
	listed := func(t *testing.T, p *Provider, name string) *cloud.Resource {
		t.Helper()
		have, err := p.List(ctx(t), "ref", nil)
		if err != nil {
			t.Fatal(err)
		}
		r := find(have, KindFirewall, name)
		if r == nil {
			t.Fatalf("firewall %s not listed", name)
		}
		return r
	}

	t.Run("on a server of the fleet", func(t *testing.T) {
		fake, p := newTest(t)
		srv := fake.SeedServer(hetznerfake.ServerSeed{Name: "pyrite", Labels: ours("pyrite")})
		id := fake.SeedFirewallWith(hetznerfake.FirewallSeed{Name: "old", Labels: labels, Rules: rules, Servers: []int64{srv}})
		if err := p.Delete(ctx(t), listed(t, p, "old")); err != nil {
			t.Fatal(err)
		}
		if len(fake.Firewalls()) != 0 || len(fakeServer(fake, "pyrite").Firewalls) != 0 {
			t.Errorf("left: %+v, server %+v", fake.Firewalls(), fakeServer(fake, "pyrite"))
		}
		reqs := fake.Requests()
		if count(reqs, "POST", fmt.Sprintf("/firewalls/%d/actions/remove_from_resources", id)) != 1 || count(reqs, "DELETE", fmt.Sprintf("/firewalls/%d", id)) != 1 {
			t.Errorf("requests %v, want one remove_from_resources, then one delete", reqs)
		}
	})

	for _, tc := range []struct {
		name string
		seed func(fake *hetznerfake.Server) hetznerfake.FirewallSeed
		says string
	}{
		{name: "on someone else's server", says: "server handmade", seed: func(fake *hetznerfake.Server) hetznerfake.FirewallSeed {
			return hetznerfake.FirewallSeed{Servers: []int64{fake.SeedServer(hetznerfake.ServerSeed{Name: "handmade"})}}
		}},
		{name: "on a label selector", says: `label selector "env=prod"`, seed: func(fake *hetznerfake.Server) hetznerfake.FirewallSeed {
			return hetznerfake.FirewallSeed{LabelSelectors: []string{"env=prod"}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, p := newTest(t)
			seed := tc.seed(fake)
			seed.Name, seed.Labels, seed.Rules = "old", labels, rules
			fake.SeedFirewallWith(seed)
			before := fake.Firewalls()
			fake.ResetRequests()
			err := p.Delete(ctx(t), listed(t, p, "old"))
			if err == nil || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), "does not manage") || cloud.IsTransient(err) {
				t.Fatalf("err %v, want a lasting error naming %s", err, tc.says)
			}
			if after := fake.Firewalls(); len(after) != 1 || !slices.Equal(after[0].Servers, before[0].Servers) ||
				!slices.Equal(after[0].LabelSelectors, before[0].LabelSelectors) {
				t.Errorf("touched: before %+v, after %+v", before, after)
			}
			if n := fake.Mutations(); n != 0 {
				t.Errorf("%d mutating requests, want 0: %v", n, fake.Requests())
			}
		})
	}

	t.Run("resource_in_use while the API catches up", func(t *testing.T) {
		fake, p := newTest(t)
		id := fake.SeedFirewallWith(hetznerfake.FirewallSeed{Name: "old", Labels: labels, Rules: rules})
		del := func(r hetznerfake.Request) bool {
			return r.Method == "DELETE" && r.Path == fmt.Sprintf("/firewalls/%d", id)
		}
		fake.FailMatchingCode(del, 2, 409, "resource_in_use")
		if err := p.Delete(ctx(t), listed(t, p, "old")); err != nil {
			t.Fatal(err)
		}
		if n := count(fake.Requests(), "DELETE", fmt.Sprintf("/firewalls/%d", id)); n != 3 || len(fake.Firewalls()) != 0 {
			t.Errorf("%d deletes, %d firewalls left; want 3 and none", n, len(fake.Firewalls()))
		}
	})

	t.Run("gone already", func(t *testing.T) {
		_, p := newTest(t)
		gone := &cloud.Resource{Provider: "hetzner", Kind: KindFirewall, Name: "old", ID: "999999", Labels: labels}
		if err := p.Delete(ctx(t), gone); err != nil {
			t.Errorf("deleting what is gone: %v", err)
		}
	})
}

// TestListFirewallsPaginated: the fleet's firewalls are one
// label-selected, paginated list; other fleets' and the project's are not
// read.
func TestListFirewallsPaginated(t *testing.T) {
	fake, p := newTest(t)
	for i := range 60 {
		fake.SeedFirewallWith(hetznerfake.FirewallSeed{Name: fmt.Sprintf("fw%02d", i), Labels: cloud.FleetLabels("ref", "", nil),
			Rules: []schema.FirewallRule{{Direction: "out", Protocol: "tcp", Port: hcloudPtr("443"), DestinationIPs: []string{"2001:DB8::/32", "198.51.100.7/24"}}}})
	}
	fake.SeedFirewall("theirs", nil)
	fake.SeedFirewall("other-fleet", cloud.FleetLabels("other", "", nil))
	have, err := p.List(ctx(t), "ref", nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range have {
		if r.Kind == KindFirewall {
			n++
			// A rule fleet does not declare (outbound) is shown as it is,
			// canonical, so that the plan sees and replaces it.
			if r.Spec["rules"] != "out tcp/443 to 198.51.100.0/24,2001:db8::/32" {
				t.Fatalf("spec %q", r.Spec["rules"])
			}
		}
	}
	if n != 60 {
		t.Errorf("%d firewalls, want 60", n)
	}
	var pages []string
	for _, r := range fake.Requests() {
		if r.Path == "/firewalls" {
			pages = append(pages, r.Query.Get("page"))
			if r.Query.Get("label_selector") != "managed-by=fleet,fleet=ref" || r.Query.Get("per_page") != "50" {
				t.Errorf("list request %s", r)
			}
		}
	}
	if !slices.Equal(pages, []string{"1", "2"}) {
		t.Errorf("pages %v, want 1 and 2", pages)
	}
}
