package nixgen_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/outdir"
)

// benchModel is a fleet of n machines, each with 20 of 200 features (in
// requires chains of ten) and 5 users with home features.
func benchModel(n int) *model.Fleet {
	f := &model.Fleet{Name: "bench", Pos: model.Pos{File: "fleet.star", Line: 1},
		Channels: []*model.Channel{{Name: "nixpkgs", URL: "github:NixOS/nixpkgs/nixos-unstable"}},
		Inputs:   []*model.Input{{Name: "home-manager", URL: "github:nix-community/home-manager", Flake: true}}}
	for i := 0; i < 200; i++ {
		cfg := &model.Attrs{}
		cfg.Set([]string{"services", fmt.Sprintf("s%d", i), "enable"}, model.Bool(true))
		cfg.Set([]string{"services", fmt.Sprintf("s%d", i), "port"}, model.Int(1000+i))
		cfg.Set([]string{"environment", "etc", fmt.Sprintf("f%d.conf", i), "text"}, model.String(fmt.Sprintf("value %d\nline two\n", i)))
		home := &model.Attrs{}
		home.Set([]string{"programs", fmt.Sprintf("p%d", i), "enable"}, model.Bool(true))
		ft := &model.Feature{Name: fmt.Sprintf("f%03d", i), NixOS: cfg, Home: home, Packages: []string{fmt.Sprintf("pkg%d", i)},
			Pos: model.Pos{File: "features.star", Line: i + 1}}
		if i%10 != 0 {
			ft.Requires = []string{fmt.Sprintf("f%03d", i-1)}
		}
		f.Features = append(f.Features, ft)
	}
	for i := 0; i < 5; i++ {
		f.Users = append(f.Users, &model.User{Name: fmt.Sprintf("u%d", i), UID: 1000 + i, Groups: []string{"wheel"},
			Home: []string{fmt.Sprintf("f%03d", i)}, SSHKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench u"}})
	}
	for m := 0; m < n; m++ {
		mm := &model.Machine{Name: fmt.Sprintf("m%05d", m), System: "x86_64-linux", Class: model.NixOS,
			Pos: model.Pos{File: "fleet.star", Line: m + 1}}
		for j := 0; j < 20; j++ {
			mm.Features = append(mm.Features, fmt.Sprintf("f%03d", (m+j*7)%200))
		}
		for u := 0; u < 5; u++ {
			mm.Users = append(mm.Users, fmt.Sprintf("u%d", u))
		}
		cfg := &model.Attrs{}
		cfg.Set([]string{"system", "stateVersion"}, model.String("26.05"))
		mm.NixOS = cfg
		f.Machines = append(f.Machines, mm)
	}
	f.Sort()
	return f
}

// BenchmarkLowerAndWrite: issue targets are 1,000 machines x 20 features
// lowered and written in under 500 ms, 10,000 in under 5 s, and a second
// run with nothing changed writing no file.
func BenchmarkLowerAndWrite(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		f := benchModel(n)
		b.Run(fmt.Sprintf("machines=%d/first", n), func(b *testing.B) {
			var files int
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				b.StartTimer()
				tree, err := nixgen.Generate(f)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := outdir.Write(dir, tree); err != nil {
					b.Fatal(err)
				}
				files = len(tree)
			}
			b.ReportMetric(float64(files), "files")
		})
		b.Run(fmt.Sprintf("machines=%d/unchanged", n), func(b *testing.B) {
			dir := b.TempDir()
			tree, _ := nixgen.Generate(f)
			if _, err := outdir.Write(dir, tree); err != nil {
				b.Fatal(err)
			}
			var written int
			for b.Loop() {
				tree, err := nixgen.Generate(f)
				if err != nil {
					b.Fatal(err)
				}
				rep, err := outdir.Write(dir, tree)
				if err != nil {
					b.Fatal(err)
				}
				written += len(rep.Written)
			}
			if written != 0 {
				b.Fatalf("an unchanged fleet rewrote %d files", written)
			}
			b.ReportMetric(0, "written")
		})
	}
}

// BenchmarkNixParse measures, for comparison, how long real Nix takes to
// parse the same 1,000-machine tree (one nix-instantiate --parse over all
// files). Skipped without nix-instantiate.
func BenchmarkNixParse(b *testing.B) {
	bin, err := exec.LookPath("nix-instantiate")
	if err != nil {
		b.Skip("nix-instantiate not found: install nix-bin")
	}
	tree, _ := nixgen.Generate(benchModel(1000))
	dir := b.TempDir()
	var paths []string
	for _, f := range tree {
		p := filepath.Join(dir, f.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, f.Data, 0o644)
		paths = append(paths, p)
	}
	for b.Loop() {
		start := time.Now()
		cmd := exec.Command(bin, append([]string{"--parse"}, paths...)...)
		cmd.Env = append(os.Environ(), "NIX_REMOTE=", "NIX_STATE_DIR="+b.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out[:min(len(out), 500)])
		}
		_ = start
	}
	b.ReportMetric(float64(len(paths)), "files")
}

// BenchmarkGenerate is the lowering alone, without the file system.
func BenchmarkGenerate(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		f := benchModel(n)
		b.Run(fmt.Sprintf("machines=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := nixgen.Generate(f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
