package gcpfake

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
)

func TestFilter(t *testing.T) {
	in := &compute.Instance{Name: "galena", Status: "RUNNING",
		Labels: map[string]string{"managed-by": "fleet", "fleet": "demo"}}
	get := func(f string) (string, bool, error) { return instanceField(in, f) }
	for _, c := range []struct {
		filter string
		match  bool
	}{
		{`(labels.managed-by = "fleet") AND (labels.fleet = "demo")`, true},
		{`(labels.managed-by = "fleet") (labels.fleet = "demo")`, true},
		{`labels.managed-by = "fleet" AND labels.fleet = "other"`, false},
		{`labels.fleet = demo`, true},
		{`labels.owner:*`, false},
		{`labels.fleet:*`, true},
		{`labels.owner != "x"`, true},
		{`name eq "gal.*"`, true},
		{`name eq "gal"`, false}, // the whole field must match
		{`name ne 'gal.*'`, false},
		{`status = RUNNING`, true},
	} {
		f, err := parseFilter(c.filter)
		if err != nil {
			t.Errorf("%s: %v", c.filter, err)
			continue
		}
		if got, err := f.match(get); err != nil || got != c.match {
			t.Errorf("%s: match = %v (%v), want %v", c.filter, got, err, c.match)
		}
	}
	for _, bad := range []string{
		`name eq "a.*" AND labels.fleet = "demo"`, // regex mixed with AIP-160
		`(name eq a) (status eq RUNNING)`,         // regex on two fields
		`labels.fleet = "demo" OR labels.fleet = "x"`,
		`(labels.fleet = "demo"`,
		`labels.fleet =`,
	} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	f, _ := parseFilter(`cpuPlatform = "x"`)
	if _, err := f.match(get); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestUnauthenticated(t *testing.T) {
	s := New()
	defer s.Close()
	resp, err := http.Get(s.Endpoint() + "projects/p/zones/z/instances")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error struct {
			Code   int
			Errors []struct{ Reason string }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 || body.Error.Code != 401 || body.Error.Errors[0].Reason != "required" {
		t.Errorf("status %d, body %+v", resp.StatusCode, body)
	}
}

func TestTokenGrants(t *testing.T) {
	s := New()
	defer s.Close()
	for _, form := range []url.Values{
		{"grant_type": {grantJWTBearer}, "assertion": {"a.b.c"}},
		{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}},
		{"grant_type": {"client_credentials"}},
	} {
		resp, err := http.PostForm(s.TokenURL(), form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%v: status %d, want 400", form, resp.StatusCode)
		}
	}
	if s.TokenRequests() != 3 {
		t.Errorf("%d token requests", s.TokenRequests())
	}
}

func TestPaginateRejectsLargePages(t *testing.T) {
	s := New()
	defer s.Close()
	s.tokens["t"] = farFuture
	req, _ := http.NewRequest("GET", s.Endpoint()+"projects/p/zones/z/instances?maxResults=501", nil)
	req.Header.Set("Authorization", "Bearer t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("maxResults=501: status %d, want 400", resp.StatusCode)
	}
	if r := s.Requests(); len(r) != 1 || !strings.HasSuffix(r[0].Path, "/instances") || r[0].Status != 400 {
		t.Errorf("recorded %+v", r)
	}
}

var farFuture = time.Now().Add(24 * time.Hour)
