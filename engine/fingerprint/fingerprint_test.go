package fingerprint_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fleet-nix/fleet/engine/fingerprint"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/outdir"
)

// testFleet: leaf requires base; m0 and m1 use leaf, m2 uses base, m3
// uses other (with a hand-written module), m4 (darwin) uses nothing.
func testFleet(t *testing.T, root string) *model.Fleet {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, "hand.nix"), []byte("{ ... }: { imports = [ ./helper.nix ]; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "helper.nix"), []byte("{ ... }: { }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &model.Fleet{Name: "t", Root: root, Pos: model.Pos{File: "fleet.star", Line: 1},
		Channels: []*model.Channel{{Name: "nixpkgs", URL: "github:NixOS/nixpkgs/nixos-unstable"}}}
	feature := func(name string, requires ...string) *model.Feature {
		cfg := &model.Attrs{}
		cfg.Set([]string{"services", name, "enable"}, model.Bool(true))
		return &model.Feature{Name: name, NixOS: cfg, Requires: requires, Pos: model.Pos{File: "fleet.star", Line: 2}}
	}
	other := feature("other")
	other.Modules = []string{"hand.nix", "helper.nix"}
	f.Features = []*model.Feature{feature("base"), feature("leaf", "base"), other}
	for i, feats := range [][]string{{"leaf"}, {"leaf"}, {"base"}, {"other"}, nil} {
		m := &model.Machine{Name: fmt.Sprintf("m%d", i), System: "x86_64-linux", Class: model.NixOS, Features: feats,
			Pos: model.Pos{File: "fleet.star", Line: 10 + i}}
		if i == 4 {
			m.Class, m.System = model.Darwin, "aarch64-darwin"
		}
		f.Machines = append(f.Machines, m)
	}
	f.Sort()
	return f
}

func fingerprints(t *testing.T, dir string, f *model.Fleet) map[string]string {
	t.Helper()
	s := writtenSet(t, dir, f)
	out := map[string]string{}
	for _, m := range f.Machines {
		var err error
		if out[m.Name], err = s.Of(m.Name); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestFingerprints(t *testing.T) {
	all := []string{"m0", "m1", "m2", "m3", "m4"}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, f *model.Fleet, dir string)
		want   []string // the machines whose fingerprint changes
	}{
		{"nothing", func(*testing.T, *model.Fleet, string) {}, nil},
		{"leaf feature", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Feature("leaf").NixOS.Set([]string{"x"}, model.Int(1))
		}, []string{"m0", "m1"}},
		{"base feature (required by leaf)", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Feature("base").NixOS.Set([]string{"x"}, model.Int(1))
		}, []string{"m0", "m1", "m2"}},
		{"one machine", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Machines[2].StateVersion = "25.11"
		}, []string{"m2"}},
		{"a hand-written module's import", func(t *testing.T, f *model.Fleet, _ string) {
			os.WriteFile(filepath.Join(f.Root, "helper.nix"), []byte("{ ... }: { x = 1; }\n"), 0o644)
		}, []string{"m3"}},
		{"flake.lock", func(t *testing.T, _ *model.Fleet, dir string) {
			os.WriteFile(filepath.Join(dir, "flake.lock"), []byte(`{"version": 7}`), 0o644)
		}, all},
		{"flake.nix (a channel)", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Channels[0].URL = "github:NixOS/nixpkgs/nixos-25.11"
		}, all},
		{"a file of the user's in the folder", func(t *testing.T, _ *model.Fleet, dir string) {
			os.WriteFile(filepath.Join(dir, "mine.nix"), []byte("{}"), 0o644)
		}, all},
		{"an unrelated file of the fleet", func(t *testing.T, f *model.Fleet, _ string) {
			os.WriteFile(filepath.Join(f.Root, "notes.txt"), []byte("hello"), 0o644)
		}, nil},
		{"inline Nix reading the flake", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Feature("base").NixOS.Set([]string{"y"}, model.Expr{Code: "inputs.self.outPath"})
		}, []string{"m0", "m1", "m2"}}, // their files changed; from now on every change reaches them
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, ".fleet", "nix")
			f := testFleet(t, root)
			before := fingerprints(t, dir, f)
			tc.change(t, f, dir)
			after := fingerprints(t, dir, f)
			var changed []string
			for _, m := range all {
				if before[m] != after[m] {
					changed = append(changed, m)
				}
			}
			if !slices.Equal(changed, tc.want) {
				t.Errorf("changed %v, want %v", changed, tc.want)
			}
		})
	}
}

// A machine whose inline Nix may read the flake as a whole has every file
// in its fingerprint: a change to another machine's feature reaches it.
func TestFingerprintOpenCode(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, ".fleet", "nix")
	f := testFleet(t, root)
	f.Machines[4].Darwin = &model.Attrs{}
	f.Machines[4].Darwin.Set([]string{"y"}, model.Expr{Code: "builtins.readFile ./x"})
	before := fingerprints(t, dir, f)
	f.Feature("leaf").NixOS.Set([]string{"x"}, model.Int(1))
	after := fingerprints(t, dir, f)
	if before["m4"] == after["m4"] || before["m2"] != after["m2"] {
		t.Errorf("m4 (open code) changed: %v, m2 changed: %v", before["m4"] != after["m4"], before["m2"] != after["m2"])
	}
}

func TestCacheRoundTrip(t *testing.T) {
	c := &fingerprint.Cache{Dir: filepath.Join(t.TempDir(), "builds")}
	fp := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if _, ok := c.Get(fp); ok {
		t.Fatal("hit in an empty cache")
	}
	const p = "/nix/store/00000000000000000000000000000000-nixos-system-m0"
	if err := c.Put(fp, p); err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Get(fp); !ok || got != p {
		t.Fatalf("Get = %q, %v", got, ok)
	}
	if err := c.Put(fp, p+"-2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Get(fp); got != p+"-2" {
		t.Fatalf("after overwrite: %q", got)
	}
	left, _ := filepath.Glob(filepath.Join(c.Dir, "*", ".tmp-*"))
	if len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := c.Put("../x", p); err == nil {
		t.Fatal("a path as fingerprint was accepted")
	}
	if _, ok := c.Get("../../etc/passwd"); ok {
		t.Fatal("Get read outside the cache")
	}
	t.Setenv(fingerprint.CacheEnv, "/tmp/fleet-cache-test")
	if d, err := fingerprint.DefaultCache(); err != nil || d.Dir != "/tmp/fleet-cache-test/builds" {
		t.Fatalf("DefaultCache = %v, %v", d, err)
	}
}

// writtenSet writes f's tree to dir as fleet does and takes its
// fingerprints there.
func writtenSet(tb testing.TB, dir string, f *model.Fleet) *fingerprint.Set {
	tb.Helper()
	tree, err := nixgen.GenerateTree(f)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := outdir.Write(dir, tree.Files); err != nil {
		tb.Fatal(err)
	}
	s, err := fingerprint.New(dir, f, tree)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
