package gcpfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
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
	for _, path := range []string{"projects/p/zones/z/instances", "projects/p/aggregated/instances"} {
		resp, err := http.Get(s.Endpoint() + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct {
				Code   int
				Errors []struct{ Reason string }
			}
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 401 || body.Error.Code != 401 || body.Error.Errors[0].Reason != "required" {
			t.Errorf("%s: status %d, body %+v", path, resp.StatusCode, body)
		}
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

// The aggregated list pages the matches of all zones together and keys
// them by zone; zones without a match on the page carry GCE's warning.
func TestAggregatedList(t *testing.T) {
	s := New()
	defer s.Close()
	s.tokens["t"] = farFuture
	ours := map[string]string{"managed-by": "fleet", "fleet": "demo"}
	for i := range 5 {
		s.Seed("p", "us-central1-b", &compute.Instance{Name: fmt.Sprintf("b%d", i), Labels: ours})
		s.Seed("p", "zz-south9-a", &compute.Instance{Name: fmt.Sprintf("z%d", i), Labels: ours})
		s.Seed("p", "europe-west1-b", &compute.Instance{Name: fmt.Sprintf("x%d", i)})
	}
	s.Seed("q", "us-central1-b", &compute.Instance{Name: "elsewhere", Labels: ours})
	get := func(query string) (*compute.InstanceAggregatedList, int) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.Endpoint()+"projects/p/aggregated/instances?"+query, nil)
		req.Header.Set("Authorization", "Bearer t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l compute.InstanceAggregatedList
		if resp.StatusCode == 200 {
			if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
				t.Fatal(err)
			}
		}
		return &l, resp.StatusCode
	}
	filter := url.QueryEscape(`(labels.managed-by = "fleet") AND (labels.fleet = "demo")`)
	var names []string
	token := ""
	pages := 0
	for {
		l, code := get("filter=" + filter + "&maxResults=4&pageToken=" + token)
		if code != 200 {
			t.Fatalf("page %d: status %d", pages, code)
		}
		pages++
		n := 0
		for key, sl := range l.Items {
			switch {
			case len(sl.Instances) > 0:
				for _, in := range sl.Instances {
					if "zones/"+lastElem(in.Zone) != key {
						t.Errorf("%s under %s", in.Zone, key)
					}
					names = append(names, in.Name)
					n++
				}
			case sl.Warning == nil || sl.Warning.Code != "NO_RESULTS_ON_PAGE" || sl.Warning.Data[0].Value != key:
				t.Errorf("%s: neither instances nor a warning: %+v", key, sl)
			}
		}
		// Every zone of the project, the fixed ones and the three with
		// instances (matching or not), is on every page.
		if _, ok := l.Items["zones/zz-south9-a"]; !ok || len(l.Items) != len(defaultZones)+1 {
			t.Errorf("page %d: %d zones", pages, len(l.Items))
		}
		if n > 4 {
			t.Errorf("page %d: %d instances, max 4", pages, n)
		}
		if token = l.NextPageToken; token == "" {
			break
		}
	}
	sort.Strings(names)
	if got := strings.Join(names, ","); pages != 3 || got != "b0,b1,b2,b3,b4,z0,z1,z2,z3,z4" {
		t.Errorf("%d pages listed %s", pages, got)
	}
	if _, code := get("maxResults=501"); code != 400 {
		t.Errorf("maxResults=501: status %d", code)
	}
	if _, code := get("filter=" + url.QueryEscape("cpuPlatform = x")); code != 400 {
		t.Errorf("unknown filter field: status %d", code)
	}
	if n := s.Count("GET", "projects/p/aggregated/instances"); n != 5 {
		t.Errorf("%d requests recorded, want 5", n)
	}
	s.FailNext("GET", "projects/p/aggregated/", 1, http.StatusServiceUnavailable)
	if _, code := get(""); code != 503 {
		t.Errorf("injected failure: status %d", code)
	}
}

// setTags and setMetadata replace what they set when the request carries
// the current fingerprint, answer 412 conditionNotMet otherwise, and
// refuse what GCE would.
func TestSetTagsAndMetadata(t *testing.T) {
	s := New()
	defer s.Close()
	s.tokens["t"] = farFuture
	v := "x"
	in := s.Seed("p", "z", &compute.Instance{Name: "vm", Tags: &compute.Tags{Items: []string{"a"}},
		Metadata: &compute.Metadata{Items: []*compute.MetadataItems{{Key: "k", Value: &v}}}})
	post := func(verb string, body any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", s.Endpoint()+"projects/p/zones/z/instances/vm/"+verb, strings.NewReader(string(b)))
		req.Header.Set("Authorization", "Bearer t")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			OperationType string
			Error         struct{ Errors []struct{ Reason string } }
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != 200 {
			return resp.StatusCode, out.Error.Errors[0].Reason
		}
		return resp.StatusCode, out.OperationType
	}
	w := "y"
	for _, c := range []struct {
		name   string
		verb   string
		body   any
		status int
		answer string
	}{
		{"tags, stale", "setTags", &compute.Tags{Fingerprint: "stale", Items: []string{"b"}}, 412, "conditionNotMet"},
		{"tags, none", "setTags", &compute.Tags{Items: []string{"b"}}, 412, "conditionNotMet"},
		{"tags, bad tag", "setTags", &compute.Tags{Fingerprint: in.Tags.Fingerprint, Items: []string{"B"}}, 400, "invalid"},
		{"tags", "setTags", &compute.Tags{Fingerprint: in.Tags.Fingerprint, Items: []string{"b", "c"}}, 200, "setTags"},
		{"tags, used fingerprint", "setTags", &compute.Tags{Fingerprint: in.Tags.Fingerprint, Items: []string{"d"}}, 412, "conditionNotMet"},
		{"metadata, stale", "setMetadata", &compute.Metadata{Fingerprint: "stale"}, 412, "conditionNotMet"},
		{"metadata, twice a key", "setMetadata", &compute.Metadata{Fingerprint: in.Metadata.Fingerprint,
			Items: []*compute.MetadataItems{{Key: "k", Value: &w}, {Key: "k", Value: &w}}}, 400, "invalid"},
		{"metadata, bad key", "setMetadata", &compute.Metadata{Fingerprint: in.Metadata.Fingerprint,
			Items: []*compute.MetadataItems{{Key: "a key", Value: &w}}}, 400, "invalid"},
		{"metadata", "setMetadata", &compute.Metadata{Fingerprint: in.Metadata.Fingerprint,
			Items: []*compute.MetadataItems{{Key: "ssh-keys", Value: &w}}}, 200, "setMetadata"},
	} {
		if status, answer := post(c.verb, c.body); status != c.status || answer != c.answer {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, answer, c.status, c.answer)
		}
	}
	now := s.Instance("p", "z", "vm")
	if strings.Join(now.Tags.Items, ",") != "b,c" || now.Tags.Fingerprint == in.Tags.Fingerprint {
		t.Errorf("tags after: %+v", now.Tags)
	}
	if md := now.Metadata; len(md.Items) != 1 || md.Items[0].Key != "ssh-keys" || *md.Items[0].Value != "y" ||
		md.Fingerprint == in.Metadata.Fingerprint || md.Fingerprint == "" {
		t.Errorf("metadata after: %+v", md)
	}
	// Edit is someone else's change: a new fingerprint.
	edited := s.Edit("p", "z", "vm", func(in *compute.Instance) { in.Tags.Items = append(in.Tags.Items, "d") })
	if edited.Tags.Fingerprint == now.Tags.Fingerprint || edited.Metadata.Fingerprint != now.Metadata.Fingerprint {
		t.Errorf("after Edit: tags %+v metadata %+v", edited.Tags, edited.Metadata)
	}
	if s.Edit("p", "z", "nope", func(*compute.Instance) {}) != nil {
		t.Error("Edit of a missing instance")
	}
}

var farFuture = time.Now().Add(24 * time.Hour)

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// client is the real compute client, talking to the fake.
func client(t *testing.T, s *Server) *compute.Service {
	t.Helper()
	s.mu.Lock()
	s.tokens["t"] = farFuture
	s.mu.Unlock()
	svc, err := compute.NewService(context.Background(), option.WithEndpoint(s.Endpoint()),
		option.WithHTTPClient(&http.Client{Transport: bearer{"t"}}))
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// instance is an insert request as fleet makes them, for changing.
func instance(name, zone, typ string) *compute.Instance {
	return &compute.Instance{
		Name:        name,
		MachineType: "zones/" + zone + "/machineTypes/" + typ,
		Disks: []*compute.AttachedDisk{{Boot: true, AutoDelete: true, InitializeParams: &compute.AttachedDiskInitializeParams{
			SourceImage: "projects/debian-cloud/global/images/family/debian-12", DiskSizeGb: 10}}},
		NetworkInterfaces: []*compute.NetworkInterface{{Network: "global/networks/default"}},
	}
}

// zoneOf is the zone of an insert request's "zones/Z/machineTypes/T".
func zoneOf(in *compute.Instance) string { return strings.Split(in.MachineType, "/")[1] }

func terminate() *compute.Scheduling { return &compute.Scheduling{OnHostMaintenance: "TERMINATE"} }

// The fake refuses, with GCE's status, reason and message, the inserts
// GCE refuses: GPUs (built in or attached) without onHostMaintenance
// TERMINATE, attached GPUs where the machine type does not take them or
// in a count not offered, a machine type the zone does not offer, an
// image or image family that does not exist. Valid ones go through, and
// an instance of a type with built-in GPUs reports them.
func TestInsertRefusesWhatGCERefuses(t *testing.T) {
	s := New()
	defer s.Close()
	svc := client(t, s)
	s.SeedImage("my-project", "nixos-2605", "nixos")
	const zone = "us-central1-b"
	t4 := func(n int64) []*compute.AcceleratorConfig {
		return []*compute.AcceleratorConfig{{AcceleratorType: "zones/" + zone + "/acceleratorTypes/nvidia-tesla-t4", AcceleratorCount: n}}
	}
	for _, c := range []struct {
		name   string
		inst   *compute.Instance
		status int
		reason string
		msg    string // a part of the message
	}{
		{"g2 migrating", instance("a", zone, "g2-standard-8"), 400, "badRequest",
			"Instances with guest accelerators do not support live migration."},
		{"a2 migrating", func() *compute.Instance {
			in := instance("a", zone, "a2-highgpu-1g")
			in.Scheduling = &compute.Scheduling{OnHostMaintenance: "MIGRATE"}
			return in
		}(), 400, "badRequest", "Instances with guest accelerators do not support live migration."},
		{"n1 with a T4, migrating", func() *compute.Instance {
			in := instance("a", zone, "n1-standard-8")
			in.GuestAccelerators = t4(1)
			return in
		}(), 400, "badRequest", "Instances with guest accelerators do not support live migration."},
		{"a2 with a T4", func() *compute.Instance {
			in := instance("a", zone, "a2-highgpu-1g")
			in.GuestAccelerators, in.Scheduling = t4(1), terminate()
			return in
		}(), 400, "badRequest", "[nvidia-tesla-t4, a2-highgpu-1g] features are not compatible for creating instance."},
		{"e2 with a T4", func() *compute.Instance {
			in := instance("a", zone, "e2-standard-8")
			in.GuestAccelerators, in.Scheduling = t4(1), terminate()
			return in
		}(), 400, "badRequest", "[nvidia-tesla-t4, e2-standard-8] features are not compatible for creating instance."},
		{"n1 with 3 T4s", func() *compute.Instance {
			in := instance("a", zone, "n1-standard-8")
			in.GuestAccelerators, in.Scheduling = t4(3), terminate()
			return in
		}(), 400, "invalid", "Invalid value for field 'resource.guestAccelerators[0].acceleratorCount': '3'."},
		{"n1 with an unknown GPU", func() *compute.Instance {
			in := instance("a", zone, "n1-standard-8")
			in.GuestAccelerators = []*compute.AcceleratorConfig{{AcceleratorType: "zones/" + zone + "/acceleratorTypes/nvidia-tesla-k9000", AcceleratorCount: 1}}
			in.Scheduling = terminate()
			return in
		}(), 400, "invalid", "Accelerator type with name 'nvidia-tesla-k9000' does not exist in zone 'us-central1-b'."},
		{"a2 where there is none", func() *compute.Instance {
			in := instance("a", "europe-west1-b", "a2-highgpu-1g")
			in.Scheduling = terminate()
			return in
		}(), 400, "invalid", "Machine type with name 'a2-highgpu-1g' does not exist in zone 'europe-west1-b'."},
		{"unknown type", instance("a", zone, "z9-mega-1024"), 400, "invalid",
			"Invalid value for field 'resource.machineType': 'zones/us-central1-b/machineTypes/z9-mega-1024'. Machine type with name 'z9-mega-1024' does not exist in zone 'us-central1-b'."},
		{"unknown family", func() *compute.Instance {
			in := instance("a", zone, "e2-medium")
			in.Disks[0].InitializeParams.SourceImage = "projects/debian-cloud/global/images/family/debian-99"
			return in
		}(), 404, "notFound", "The resource 'projects/debian-cloud/global/images/family/debian-99' was not found"},
		{"unknown image", func() *compute.Instance {
			in := instance("a", zone, "e2-medium")
			in.Disks[0].InitializeParams.SourceImage = "projects/my-project/global/images/nixos-2405"
			return in
		}(), 404, "notFound", "The resource 'projects/my-project/global/images/nixos-2405' was not found"},
	} {
		_, err := svc.Instances.Insert("p", zoneOf(c.inst), c.inst).Do()
		var ge *googleapi.Error
		if !errors.As(err, &ge) || ge.Code != c.status || len(ge.Errors) != 1 || ge.Errors[0].Reason != c.reason || !strings.Contains(ge.Message, c.msg) {
			t.Errorf("%s: %v, want %d %s %q", c.name, err, c.status, c.reason, c.msg)
		}
	}
	if names := s.InstanceNames(); len(names) != 0 {
		t.Errorf("refused inserts made %v", names)
	}

	// What GCE takes, the fake takes.
	for _, in := range []*compute.Instance{
		func() *compute.Instance {
			in := instance("g2", zone, "g2-standard-24")
			in.Scheduling = terminate()
			return in
		}(),
		func() *compute.Instance {
			in := instance("a3", "us-central1-a", "a3-highgpu-8g")
			in.Scheduling = terminate()
			return in
		}(),
		func() *compute.Instance {
			in := instance("n1", zone, "n1-standard-8")
			in.GuestAccelerators, in.Scheduling = t4(2), terminate()
			return in
		}(),
		func() *compute.Instance {
			in := instance("nixos", zone, "e2-medium")
			in.Disks[0].InitializeParams.SourceImage = "https://www.googleapis.com/compute/v1/projects/my-project/global/images/family/nixos"
			return in
		}(),
		func() *compute.Instance {
			in := instance("own", zone, "e2-medium")
			in.Disks[0].InitializeParams.SourceImage = "projects/my-project/global/images/nixos-2605"
			return in
		}(),
	} {
		if _, err := svc.Instances.Insert("p", zoneOf(in), in).Do(); err != nil {
			t.Errorf("%s: %v", in.Name, err)
		}
	}
	// Built-in GPUs are reported as GCE reports them.
	for _, c := range []struct {
		zone, name, gpu string
		n               int64
	}{{zone, "g2", "nvidia-l4", 2}, {"us-central1-a", "a3", "nvidia-h100-80gb", 8}, {zone, "n1", "nvidia-tesla-t4", 2}} {
		in := s.Instance("p", c.zone, c.name)
		if in == nil || len(in.GuestAccelerators) != 1 || lastElem(in.GuestAccelerators[0].AcceleratorType) != c.gpu ||
			in.GuestAccelerators[0].AcceleratorCount != c.n || in.Scheduling.OnHostMaintenance != "TERMINATE" {
			t.Errorf("%s: %+v", c.name, in)
		}
	}
}
