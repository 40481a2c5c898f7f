package fingerprint_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/fingerprint"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/outdir"
)

// recordingNix stands in for nix: it counts evaluations (nix build) and
// validity checks (nix path-info, always valid) and prints a store path.
type recordingNix struct{ builds, pathInfos atomic.Int64 }

func (r *recordingNix) Local(_ context.Context, argv []string, stdio deploy.IO) error {
	switch {
	case contains(argv, "build"):
		r.builds.Add(1)
		attr := argv[len(argv)-1]
		m := strings.Split(attr[strings.Index(attr, "Configurations.")+len("Configurations."):], ".")[0]
		fmt.Fprintf(stdio.Stdout, `[{"outputs":{"out":"/nix/store/00000000000000000000000000000000-nixos-system-%s"}}]`, m)
	case contains(argv, "path-info"):
		r.pathInfos.Add(1)
	}
	return nil
}

func (r *recordingNix) Remote(context.Context, string, []string, deploy.IO) error { return nil }

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// benchFleet: n machines, each with 10 of 100 features (f000..f099; every
// tenth starts a requires chain of ten); leaf is used by every 50th
// machine and required by nothing.
func benchFleet(n int, root string) *model.Fleet {
	f := &model.Fleet{Name: "bench", Root: root, Pos: model.Pos{File: "fleet.star", Line: 1},
		Channels: []*model.Channel{{Name: "nixpkgs", URL: "github:NixOS/nixpkgs/nixos-unstable"}}}
	for i := 0; i < 100; i++ {
		cfg := &model.Attrs{}
		cfg.Set([]string{"services", fmt.Sprintf("s%d", i), "enable"}, model.Bool(true))
		ft := &model.Feature{Name: fmt.Sprintf("f%03d", i), NixOS: cfg, Pos: model.Pos{File: "fleet.star", Line: i + 2}}
		if i%10 != 0 {
			ft.Requires = []string{fmt.Sprintf("f%03d", i-1)}
		}
		f.Features = append(f.Features, ft)
	}
	leaf := &model.Attrs{}
	leaf.Set([]string{"services", "leaf", "enable"}, model.Bool(true))
	f.Features = append(f.Features, &model.Feature{Name: "leaf", NixOS: leaf, Pos: model.Pos{File: "fleet.star", Line: 200}})
	for m := 0; m < n; m++ {
		mm := &model.Machine{Name: fmt.Sprintf("m%04d", m), System: "x86_64-linux", Class: model.NixOS, StateVersion: "26.05",
			Pos: model.Pos{File: "fleet.star", Line: 300 + m}}
		for j := 0; j < 10; j++ {
			mm.Features = append(mm.Features, fmt.Sprintf("f%03d", (m*7+j*13)%100))
		}
		if m%50 == 0 {
			mm.Features = append(mm.Features, "leaf")
		}
		f.Machines = append(f.Machines, mm)
	}
	f.Sort()
	return f
}

// buildRun is one fleet build of every machine through the cache: it
// returns the evaluations (nix build processes) it ran.
func buildRun(b *testing.B, f *model.Fleet, dir string, cache *fingerprint.Cache) int64 {
	tree, err := nixgen.GenerateTree(f)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := outdir.Write(dir, tree.Files); err != nil {
		b.Fatal(err)
	}
	set, err := fingerprint.New(dir, f, tree)
	if err != nil {
		b.Fatal(err)
	}
	cached := map[string]deploy.CachedBuild{}
	for _, m := range f.Machines {
		fp, err := set.Of(m.Name)
		if err != nil {
			b.Fatal(err)
		}
		if p, ok := cache.Get(fp); ok {
			cached[m.Name] = deploy.CachedBuild{Path: p, Fingerprint: fp}
		}
	}
	nix := &recordingNix{}
	built := func(m, p string) {
		fp, err := set.Of(m)
		if err == nil {
			err = cache.Put(fp, p)
		}
		if err != nil {
			b.Error(err)
		}
	}
	steps, err := deploy.BuildSteps(f.Machines, deploy.Options{Tree: dir, Runner: nix, Cached: cached, Built: built}, nil)
	if err != nil {
		b.Fatal(err)
	}
	sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{Parallel: 16, Events: func(deploy.Event) {}})
	if sum.Failed() {
		sum.WriteTable(io.Discard)
		b.Fatal("a build failed")
	}
	return nix.builds.Load()
}

// BenchmarkIncrementalBuild: a 1,000-machine fleet built with a recording
// stand-in nix: evaluations on the first build (1000), after no change
// (0), after a change to one leaf feature (exactly its machines, 20) and
// after a change to one machine (1).
func BenchmarkIncrementalBuild(b *testing.B) {
	const n = 1000
	var first, none, leaf, one, users int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := b.TempDir()
		dir := filepath.Join(root, ".fleet", "nix")
		cache := &fingerprint.Cache{Dir: filepath.Join(root, "cache")}
		f := benchFleet(n, root)
		users = 0
		for _, m := range f.Machines {
			if contains(m.Features, "leaf") {
				users++
			}
		}
		b.StartTimer()
		first = buildRun(b, f, dir, cache)
		none = buildRun(b, f, dir, cache)
		f.Feature("leaf").NixOS.Set([]string{"services", "leaf", "port"}, model.Int(8080))
		leaf = buildRun(b, f, dir, cache)
		f.Machines[500].StateVersion = "25.11"
		one = buildRun(b, f, dir, cache)
	}
	if first != n || none != 0 || leaf != users || one != 1 {
		b.Errorf("evaluations: first %d, no change %d, leaf %d (of %d users), one machine %d", first, none, leaf, users, one)
	}
	b.ReportMetric(float64(first), "evals-first")
	b.ReportMetric(float64(none), "evals-nochange")
	b.ReportMetric(float64(leaf), "evals-leaf")
	b.ReportMetric(float64(users), "leaf-machines")
	b.ReportMetric(float64(one), "evals-onemachine")
}
