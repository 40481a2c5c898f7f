package fingerprint_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/fingerprint"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
)

// BenchmarkPlanStatuses: what fleet plan adds for a 1,000-machine fleet
// deployed from here, one leaf feature (on 20 machines) changed since:
// generating the tree in memory, fingerprinting it and reading 1,000
// records. Metrics: the machines to deploy (20) and unchanged (980).
func BenchmarkPlanStatuses(b *testing.B) {
	const n = 1000
	root := b.TempDir()
	dir := filepath.Join(root, ".fleet", "nix")
	f := benchFleet(n, root)
	recs, err := fingerprint.RecordsIn(filepath.Join(root, "deployed"), root)
	if err != nil {
		b.Fatal(err)
	}
	set := writtenSet(b, dir, f)
	names := make([]string, n)
	for i, m := range f.Machines {
		names[i] = m.Name
		rec, err := set.Record(m.Name, "/nix/store/00000000000000000000000000000000-nixos-system-"+m.Name, "switch", time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if err := recs.Put(rec); err != nil {
			b.Fatal(err)
		}
	}
	f.Feature("leaf").NixOS.Set([]string{"services", "leaf", "port"}, model.Int(8080))
	var deploy, unchanged int
	for b.Loop() {
		tree, err := nixgen.GenerateTree(f)
		if err != nil {
			b.Fatal(err)
		}
		sts, err := fingerprint.Statuses(dir, f, tree, recs, names)
		if err != nil {
			b.Fatal(err)
		}
		deploy, unchanged = 0, 0
		for _, st := range sts {
			switch st.Action {
			case fingerprint.ActionDeploy:
				deploy++
			case fingerprint.ActionUnchanged:
				unchanged++
			}
		}
	}
	if deploy != n/50 || unchanged != n-n/50 {
		b.Errorf("deploy %d, unchanged %d; want %d, %d", deploy, unchanged, n/50, n-n/50)
	}
	b.ReportMetric(float64(deploy), "deploy")
	b.ReportMetric(float64(unchanged), "unchanged")
}
