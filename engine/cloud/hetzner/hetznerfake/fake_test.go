package hetznerfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

func TestSelector(t *testing.T) {
	labels := map[string]string{"managed-by": "fleet", "fleet": "ref", "env": "prod"}
	for _, tc := range []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"managed-by=fleet,fleet=ref", true},
		{"managed-by==fleet,fleet=other", false},
		{"env!=dev", true},
		{"env!=prod", false},
		{"env", true},
		{"!env", false},
		{"!machine", true},
		{"env in (dev,prod)", true},
		{"env notin (dev,prod)", false},
		{"fleet=ref,env in (dev, staging)", false},
	} {
		sel, err := parseSelector(tc.sel)
		if err != nil {
			t.Errorf("%q: %v", tc.sel, err)
			continue
		}
		if got := sel.matches(labels); got != tc.want {
			t.Errorf("%q matches %v: %v, want %v", tc.sel, labels, got, tc.want)
		}
	}
	for _, bad := range []string{"a,,b", "env in dev", "a b"} {
		if _, err := parseSelector(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestAuthAndWire(t *testing.T) {
	fake := New()
	defer fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	bad := hcloud.NewClient(hcloud.WithEndpoint(fake.URL()), hcloud.WithToken("wrong"), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}))
	if _, _, err := bad.Server.List(ctx, hcloud.ServerListOpts{}); !hcloud.IsError(err, hcloud.ErrorCodeUnauthorized) {
		t.Errorf("wrong token: %v, want unauthorized", err)
	}

	// The API sends null, not 0, for a missing next page.
	fake.SeedServer(ServerSeed{Name: "a"})
	req, _ := http.NewRequestWithContext(ctx, "GET", fake.URL()+"/servers?per_page=1", nil)
	req.Header.Set("Authorization", "Bearer "+fake.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Meta struct {
			Pagination map[string]any `json:"pagination"`
		} `json:"meta"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if p := body.Meta.Pagination; p["next_page"] != nil || p["last_page"] != float64(1) || p["total_entries"] != float64(1) {
		t.Errorf("pagination %v", p)
	}
	if resp.Header.Get("RateLimit-Limit") == "" || resp.Header.Get("RateLimit-Remaining") == "" {
		t.Errorf("no RateLimit headers")
	}

	// Actions run until polled, then end.
	c := hcloud.NewClient(hcloud.WithEndpoint(fake.URL()), hcloud.WithToken(fake.Token),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond)}))
	res, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "b", ServerType: &hcloud.ServerType{Name: "cx22"},
		Image: &hcloud.Image{Name: "debian-12"}, Location: &hcloud.Location{Name: "hel1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Action.Status != hcloud.ActionStatusRunning || len(res.NextActions) != 1 || res.Server.Status != hcloud.ServerStatusInitializing {
		t.Errorf("create answered %+v", res)
	}
	if err := c.Action.WaitFor(ctx, append(res.NextActions, res.Action)...); err != nil {
		t.Fatal(err)
	}
	s, _, err := c.Server.GetByID(ctx, res.Server.ID)
	if err != nil || s.Status != hcloud.ServerStatusRunning || s.Location.Name != "hel1" || s.Image.Name != "debian-12" || s.PublicNet.IPv6.Network == nil {
		t.Errorf("server after its actions: %+v, %v", s, err)
	}
	if _, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: "b", ServerType: &hcloud.ServerType{Name: "cx22"},
		Image: &hcloud.Image{Name: "debian-12"}}); !hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
		t.Errorf("second create of b: %v, want uniqueness_error", err)
	}
	if n := fake.Mutations(); n != 2 {
		t.Errorf("%d mutations, want 2", n)
	}
}

func TestFirewalls(t *testing.T) {
	fake := New()
	defer fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := hcloud.NewClient(hcloud.WithEndpoint(fake.URL()), hcloud.WithToken(fake.Token), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond)}))
	web := fake.SeedServer(ServerSeed{Name: "web", Labels: map[string]string{"role": "web"}})
	db := fake.SeedServer(ServerSeed{Name: "db", Labels: map[string]string{"role": "db"}})
	_, anywhere, _ := net.ParseCIDR("0.0.0.0/0")
	ssh := hcloud.FirewallRule{Direction: hcloud.FirewallRuleDirectionIn, Protocol: hcloud.FirewallRuleProtocolTCP, Port: hcloud.Ptr("22"), SourceIPs: []net.IPNet{*anywhere}}

	// Create with rules, labels and a server: the server has it at once,
	// pending until the actions ran.
	res, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "fw", Labels: map[string]string{"managed-by": "fleet"}, Rules: []hcloud.FirewallRule{ssh},
		ApplyTo: []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeServer, Server: &hcloud.FirewallResourceServer{ID: web}}}})
	if err != nil {
		t.Fatal(err)
	}
	fw := res.Firewall
	if len(fw.Rules) != 1 || *fw.Rules[0].Port != "22" || fw.Rules[0].SourceIPs[0].String() != "0.0.0.0/0" || len(fw.AppliedTo) != 1 || fw.AppliedTo[0].Server.ID != web || len(res.Actions) != 2 {
		t.Fatalf("create answered %+v, actions %d", fw, len(res.Actions))
	}
	status := func(id int64) hcloud.FirewallStatus {
		t.Helper()
		s, _, err := c.Server.GetByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range s.PublicNet.Firewalls {
			if f.Firewall.ID == fw.ID {
				return f.Status
			}
		}
		return ""
	}
	if st := status(web); st != hcloud.FirewallStatusPending {
		t.Errorf("status %q before the actions ran, want pending", st)
	}
	if err := c.Action.WaitFor(ctx, res.Actions...); err != nil {
		t.Fatal(err)
	}
	if st := status(web); st != hcloud.FirewallStatusApplied {
		t.Errorf("status %q after, want applied", st)
	}
	if _, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "fw"}); !hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
		t.Errorf("second fw: %v, want uniqueness_error", err)
	}
	bad := ssh
	bad.Port = nil
	if _, _, err := c.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: "bad", Rules: []hcloud.FirewallRule{bad}}); !hcloud.IsError(err, hcloud.ErrorCodeInvalidInput) {
		t.Errorf("tcp without port: %v, want invalid_input", err)
	}

	// Applying twice, removing what is not applied.
	onWeb := []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeServer, Server: &hcloud.FirewallResourceServer{ID: web}}}
	if _, _, err := c.Firewall.ApplyResources(ctx, fw, onWeb); !hcloud.IsError(err, hcloud.ErrorCodeFirewallAlreadyApplied) {
		t.Errorf("applying again: %v", err)
	}
	onDB := []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeServer, Server: &hcloud.FirewallResourceServer{ID: db}}}
	if _, _, err := c.Firewall.RemoveResources(ctx, fw, onDB); !hcloud.IsError(err, hcloud.ErrorCodeFirewallAlreadyRemoved) {
		t.Errorf("removing from db: %v", err)
	}
	missing := []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeServer, Server: &hcloud.FirewallResourceServer{ID: 1}}}
	if _, _, err := c.Firewall.ApplyResources(ctx, fw, missing); !hcloud.IsError(err, hcloud.ErrorCodeFirewallResourceNotFound) {
		t.Errorf("applying to no server: %v", err)
	}

	// set_rules, in place.
	ssh.Port = hcloud.Ptr("2222")
	actions, _, err := c.Firewall.SetRules(ctx, fw, hcloud.FirewallSetRulesOpts{Rules: []hcloud.FirewallRule{ssh}})
	if err != nil || len(actions) != 2 { // set_firewall_rules, apply_firewall on web
		t.Fatalf("set_rules: %d actions, %v", len(actions), err)
	}
	if err := c.Action.WaitFor(ctx, actions...); err != nil {
		t.Fatal(err)
	}
	got, _, err := c.Firewall.GetByID(ctx, fw.ID)
	if err != nil || *got.Rules[0].Port != "2222" {
		t.Fatalf("after set_rules: %+v, %v", got, err)
	}

	// Label selectors apply to the servers they match.
	sel := []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeLabelSelector, LabelSelector: &hcloud.FirewallResourceLabelSelector{Selector: "role=db"}}}
	actions, _, err = c.Firewall.ApplyResources(ctx, fw, sel)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Action.WaitFor(ctx, actions...); err != nil {
		t.Fatal(err)
	}
	if st := status(db); st != hcloud.FirewallStatusApplied {
		t.Errorf("db through the selector: %q", st)
	}
	if _, _, err := c.Firewall.RemoveResources(ctx, fw, onDB); !hcloud.IsError(err, hcloud.ErrorCodeFirewallManagedByLabelSelector) {
		t.Errorf("removing from db, which has it through a selector: %v", err)
	}
	got, _, _ = c.Firewall.GetByID(ctx, fw.ID)
	if len(got.AppliedTo) != 2 || got.AppliedTo[1].LabelSelector.Selector != "role=db" || len(got.AppliedTo[1].AppliedToResources) != 1 ||
		got.AppliedTo[1].AppliedToResources[0].Server.ID != db {
		t.Errorf("applied_to %+v", got.AppliedTo)
	}

	// In use: no delete. Removing takes effect when its action finished.
	if _, err := c.Firewall.Delete(ctx, fw); !hcloud.IsError(err, hcloud.ErrorCodeResourceInUse) {
		t.Errorf("delete in use: %v, want resource_in_use", err)
	}
	actions, _, err = c.Firewall.RemoveResources(ctx, fw, append(onWeb, sel...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Firewall.Delete(ctx, fw); !hcloud.IsError(err, hcloud.ErrorCodeResourceInUse) {
		t.Errorf("delete before the removal finished: %v, want resource_in_use", err)
	}
	if err := c.Action.WaitFor(ctx, actions...); err != nil {
		t.Fatal(err)
	}

	// Labels and name, then list by label.
	if _, _, err := c.Firewall.Update(ctx, fw, hcloud.FirewallUpdateOpts{Name: "fw2", Labels: map[string]string{"managed-by": "fleet", "fleet": "x"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		fake.SeedFirewall(fmt.Sprintf("other%d", i), nil)
	}
	all, err := c.Firewall.AllWithOpts(ctx, hcloud.FirewallListOpts{ListOpts: hcloud.ListOpts{LabelSelector: "fleet=x", PerPage: 1}})
	if err != nil || len(all) != 1 || all[0].Name != "fw2" || len(all[0].AppliedTo) != 0 {
		t.Fatalf("list by label: %+v, %v", all, err)
	}
	if _, err := c.Firewall.Delete(ctx, fw); err != nil {
		t.Fatal(err)
	}
	if got, _, err := c.Firewall.GetByID(ctx, fw.ID); got != nil || err != nil {
		t.Errorf("after delete: %+v, %v", got, err)
	}
	if n := len(fake.Firewalls()); n != 3 {
		t.Errorf("%d firewalls, want the 3 seeded", n)
	}
}

// The fake refuses the creates the API refuses, with its error codes: a
// server type or location that does not exist, a type the location does
// not offer ("unsupported location for server type"), an image that does
// not exist, by name or ID. Valid ones go through, snapshots by ID too.
func TestCreateRefusesWhatTheAPIRefuses(t *testing.T) {
	fake := New()
	defer fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := hcloud.NewClient(hcloud.WithEndpoint(fake.URL()), hcloud.WithToken(fake.Token), hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}),
		hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(time.Millisecond)}))
	snapshot := fake.SeedSnapshot("nixos 26.05")
	create := func(name, typ, loc string, image *hcloud.Image) error {
		_, _, err := c.Server.Create(ctx, hcloud.ServerCreateOpts{Name: name, ServerType: &hcloud.ServerType{Name: typ},
			Location: &hcloud.Location{Name: loc}, Image: image})
		return err
	}
	name := func(n string) *hcloud.Image { return &hcloud.Image{Name: n} }
	for _, tc := range []struct {
		what, typ, loc string
		image          *hcloud.Image
		msg            string
	}{
		{"arm in Ashburn", "cax11", "ash", name("debian-12"), "unsupported location for server type"},
		{"cost-optimised in Singapore", "cx23", "sin", name("debian-12"), "unsupported location for server type"},
		{"unknown type", "cx99", "fsn1", name("debian-12"), `server type "cx99" not found`},
		{"unknown location", "cx23", "fra9", name("debian-12"), `location "fra9" not found`},
		{"unknown image", "cx23", "fsn1", name("debian-99"), `image "debian-99" not found`},
		{"unknown image ID", "cx23", "fsn1", &hcloud.Image{ID: snapshot + 1}, fmt.Sprintf(`image %d not found`, snapshot+1)},
	} {
		err := create("web", tc.typ, tc.loc, tc.image)
		var he hcloud.Error
		if !errors.As(err, &he) || he.Code != hcloud.ErrorCodeInvalidInput || he.Message != tc.msg {
			t.Errorf("%s: %v, want invalid_input %q", tc.what, err, tc.msg)
		}
	}
	if s := fake.Servers(); len(s) != 0 {
		t.Errorf("refused creates made %v", s)
	}
	for _, tc := range []struct {
		name, typ, loc string
		image          *hcloud.Image
	}{
		{"a", "cpx11", "ash", name("ubuntu-24.04")},
		{"b", "cax11", "nbg1", name("debian-12")},
		{"c", "ccx13", "sin", name("debian-13")},
		{"d", "cx23", "hel1", &hcloud.Image{ID: snapshot}},
	} {
		if err := create(tc.name, tc.typ, tc.loc, tc.image); err != nil {
			t.Errorf("%s %s in %s: %v", tc.name, tc.typ, tc.loc, err)
		}
	}
	// The pricing API prices a type where it is offered, and only there.
	pr, _, err := c.Pricing.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, st := range pr.ServerTypes {
		if st.ServerType.Name != "cax11" {
			continue
		}
		found = true
		var locs []string
		for _, p := range st.Pricings {
			locs = append(locs, p.Location.Name)
		}
		if got := fmt.Sprint(locs); got != "[fsn1 nbg1 hel1]" {
			t.Errorf("cax11 priced in %s", got)
		}
	}
	if !found {
		t.Error("the pricing has no cax11")
	}
}
