package cloud_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/gcp"
	"github.com/fleet-nix/fleet/engine/cloud/gcp/gcpfake"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
	"github.com/fleet-nix/fleet/engine/model"
)

// BenchmarkPlan500x2 plans a fleet of 500 Hetzner servers and 500 GCE
// instances against fakes that already hold all of them, and reports the
// HTTP requests one plan makes. The target: at most ceil(N/50)
// list pages per resource type, plus a constant.
func BenchmarkPlan500x2(b *testing.B) {
	const n = 500
	hz, gce := hetznerfake.New(), gcpfake.New()
	defer hz.Close()
	defer gce.Close()
	sa := filepath.Join(b.TempDir(), "sa.json")
	if err := os.WriteFile(sa, gce.ServiceAccountJSON(b, "proj"), 0o600); err != nil {
		b.Fatal(err)
	}
	env := map[string]string{
		"HCLOUD_TOKEN": hz.Token, "HCLOUD_ENDPOINT": hz.URL(),
		"GOOGLE_APPLICATION_CREDENTIALS": sa, "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": gce.Endpoint(), "HOME": b.TempDir(),
	}
	f := &model.Fleet{Name: "bench"}
	for i := 0; i < n; i++ {
		h := fmt.Sprintf("h%03d", i)
		f.Machines = append(f.Machines, &model.Machine{Name: h, System: "x86_64-linux", Class: model.NixOS,
			Host: &model.Host{Provider: model.Hetzner, Enabled: true, Hetzner: &model.HetznerServer{Type: "cx22", Location: "fsn1", Image: "debian-12", IPv4: true, IPv6: true}}})
		hz.SeedServer(hetznerfake.ServerSeed{Name: h, Type: "cx22", Location: "fsn1", Image: "debian-12", Labels: cloud.FleetLabels("bench", h, nil)})
		g := fmt.Sprintf("g%03d", i)
		f.Machines = append(f.Machines, &model.Machine{Name: g, System: "x86_64-linux", Class: model.NixOS,
			Host: &model.Host{Provider: model.GCP, Enabled: true, GCP: &model.GCPInstance{Project: "proj", Zone: "us-central1-b", Type: "e2-standard-8", Image: gcp.DefaultImage, DiskGB: 100}}})
		gce.Seed("proj", "us-central1-b", &compute.Instance{Name: g, Labels: cloud.FleetLabels("bench", g, nil)})
	}
	f.Sort()
	cfg := cloud.Config{Getenv: func(k string) string { return env[k] }, Backoff: cloud.Backoff{Initial: time.Millisecond, Attempts: 3}}
	g := gcp.New(cfg)
	g.MaxResults = 50 // the page size the target is stated in; GCE's default here is 500
	providers := []cloud.Provider{g, hetzner.New(cfg)}
	var hzReqs, gceReqs int
	for b.Loop() {
		hz.ResetRequests()
		gce.ResetRequests()
		plan, err := cloud.MakePlan(context.Background(), f, providers, cloud.PlanOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if len(plan.Changes) < 2*n {
			b.Fatalf("%d changes", len(plan.Changes))
		}
		hzReqs, gceReqs = len(hz.Requests()), len(gce.Requests())-gce.TokenRequests()
	}
	b.ReportMetric(float64(hzReqs), "hetzner-requests/plan")
	b.ReportMetric(float64(gceReqs), "gce-requests/plan")
}
