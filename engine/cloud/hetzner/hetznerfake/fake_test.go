package hetznerfake

import (
	"context"
	"encoding/json"
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
