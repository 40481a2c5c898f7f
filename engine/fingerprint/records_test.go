package fingerprint_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/fingerprint"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
)

const system = "/nix/store/00000000000000000000000000000000-nixos-system-m0"

var deployedAt = time.Date(2026, 12, 1, 14, 3, 0, 0, time.UTC)

// deployed writes f's tree to dir and records machines as deployed from it.
func deployed(t *testing.T, dir string, f *model.Fleet, recs *fingerprint.Records, machines ...string) {
	t.Helper()
	s := writtenSet(t, dir, f)
	for _, m := range machines {
		rec, err := s.Record(m, system, "switch", deployedAt)
		if err != nil {
			t.Fatal(err)
		}
		if err := recs.Put(rec); err != nil {
			t.Fatal(err)
		}
	}
}

// planned is what a plan says of machine, with f's tree generated in
// memory and nothing written.
func planned(t *testing.T, dir string, f *model.Fleet, recs *fingerprint.Records, machine string) fingerprint.Status {
	t.Helper()
	tree, err := nixgen.GenerateTree(f)
	if err != nil {
		t.Fatal(err)
	}
	st, err := fingerprint.Statuses(dir, f, tree, recs, []string{machine})
	if err != nil {
		t.Fatal(err)
	}
	return st[0]
}

// A machine deployed from here is unchanged until what its evaluation
// reads changes; then it is to deploy, and the plan names what changed
// in the fleet's words. The plan writes nothing.
func TestStatusNamesChanges(t *testing.T) {
	for _, tc := range []struct {
		name    string
		machine string
		change  func(t *testing.T, f *model.Fleet, dir string)
		want    []string // the changes; nil: unchanged
	}{
		{"nothing", "m0", func(*testing.T, *model.Fleet, string) {}, nil},
		{"a feature it uses", "m0", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Feature("leaf").NixOS.Set([]string{"x"}, model.Int(1))
		}, []string{"feature leaf"}},
		{"a feature it does not use", "m2", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Feature("leaf").NixOS.Set([]string{"x"}, model.Int(1))
		}, nil},
		{"a feature required by one it uses", "m0", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Feature("base").NixOS.Set([]string{"x"}, model.Int(1))
		}, []string{"feature base"}},
		{"its own settings", "m0", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Machine("m0").StateVersion = "25.11"
		}, []string{"machine m0"}},
		{"a feature dropped", "m0", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Machine("m0").Features = []string{"base"}
		}, []string{"machine m0", "feature leaf (removed)"}},
		{"a hand-written file", "m3", func(t *testing.T, f *model.Fleet, _ string) {
			os.WriteFile(filepath.Join(f.Root, "helper.nix"), []byte("{ ... }: { x = 1; }\n"), 0o644)
		}, []string{"file helper.nix"}},
		{"a channel", "m0", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Channels[0].URL = "github:NixOS/nixpkgs/nixos-25.11"
		}, []string{"flake.nix (channels and inputs)"}},
		{"flake.lock written", "m4", func(t *testing.T, _ *model.Fleet, dir string) {
			os.WriteFile(filepath.Join(dir, "flake.lock"), []byte(`{"version": 7}`), 0o644)
		}, []string{"flake.lock (inputs) (added)"}},
		{"a file of the user's in the folder", "m0", func(t *testing.T, _ *model.Fleet, dir string) {
			os.WriteFile(filepath.Join(dir, "mine.nix"), []byte("{}"), 0o644)
		}, []string{"mine.nix (your file in the Nix tree's folder) (added)"}},
		// modules/nixos/other.nix and the hand-written copies stay on
		// disk until the next write removes them: they are fleet's,
		// not the user's, and m0 reads nothing of them.
		{"a feature no machine uses any more", "m0", func(_ *testing.T, f *model.Fleet, _ string) {
			f.Machine("m3").Features = nil
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, ".fleet", "nix")
			recs, err := fingerprint.RecordsIn(filepath.Join(t.TempDir(), "deployed"), root)
			if err != nil {
				t.Fatal(err)
			}
			f := testFleet(t, root)
			deployed(t, dir, f, recs, tc.machine)
			tc.change(t, f, dir)
			withChange := snapshot(t, dir)
			st := planned(t, dir, f, recs, tc.machine)
			if after := snapshot(t, dir); !maps(after, withChange) {
				t.Errorf("the plan wrote in the tree's folder: %v -> %v", withChange, after)
			}
			if tc.want == nil {
				if st.Action != fingerprint.ActionUnchanged || st.Changes != nil ||
					st.Reason != "runs "+system+", built from this configuration, as last deployed from here (2026-12-01 14:03 UTC)" {
					t.Errorf("got %s (%q), want unchanged", st.Action, st.Reason)
				}
				return
			}
			if st.Action != fingerprint.ActionDeploy || !slices.Equal(st.Changes, tc.want) {
				t.Errorf("got %s %q, want deploy %q", st.Action, st.Changes, tc.want)
			}
			if want := "changed since last deployed from here (2026-12-01 14:03 UTC): " + strings.Join(tc.want, ", "); st.Reason != want {
				t.Errorf("reason %q, want %q", st.Reason, want)
			}
		})
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			data, _ := os.ReadFile(p)
			out[p] = string(data)
		}
		return nil
	})
	return out
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A record is read back as written, replaced atomically (no temporary
// file left), kept apart per fleet root, and one that cannot be used
// makes its machine unknown with a warning, never an error.
func TestRecords(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, ".fleet", "nix")
	cache := filepath.Join(t.TempDir(), "deployed")
	recs, err := fingerprint.RecordsIn(cache, root)
	if err != nil {
		t.Fatal(err)
	}
	f := testFleet(t, root)
	if st := planned(t, dir, f, recs, "m0"); st.Action != fingerprint.ActionUnknown || st.Warning != "" ||
		st.Reason != "not deployed from this computer yet (no deploy record): "+fingerprint.NoRecordReason {
		t.Errorf("never deployed: %+v", st)
	}
	deployed(t, dir, f, recs, "m0")
	rec, err := recs.Get("m0")
	if err != nil || rec == nil {
		t.Fatalf("Get = %v, %v", rec, err)
	}
	if rec.Version != fingerprint.RecordVersion || rec.Machine != "m0" || rec.System != system || rec.Goal != "switch" ||
		!rec.Time.Equal(deployedAt) || len(rec.Inputs) == 0 || len(rec.Fingerprint) != 64 {
		t.Errorf("read back %+v", rec)
	}
	var paths []string
	for _, x := range rec.Inputs {
		if len(x.Sha256) != 64 {
			t.Errorf("input %+v: no sha256", x)
		}
		paths = append(paths, x.Path)
	}
	if want := []string{"flake.nix", "machines/nixos/m0.nix", "modules/nixos/base.nix", "modules/nixos/leaf.nix", "overlays/default.nix"}; !slices.Equal(paths, want) {
		t.Errorf("inputs %q, want %q", paths, want)
	}
	deployed(t, dir, f, recs, "m0") // again: replaced in place
	if left, _ := filepath.Glob(filepath.Join(recs.Dir, ".tmp-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	if files, _ := filepath.Glob(filepath.Join(recs.Dir, "*")); len(files) != 1 || filepath.Base(files[0]) != "m0.json" {
		t.Errorf("records folder holds %v", files)
	}
	other, _ := fingerprint.RecordsIn(cache, t.TempDir())
	if other.Dir == recs.Dir || filepath.Dir(other.Dir) != cache {
		t.Errorf("two fleets share a records folder: %s, %s", other.Dir, recs.Dir)
	}
	if r, err := other.Get("m0"); r != nil || err != nil {
		t.Errorf("another fleet's m0: %v, %v", r, err)
	}

	file := filepath.Join(recs.Dir, "m0.json")
	good, _ := os.ReadFile(file)
	for _, tc := range []struct{ name, data, warn string }{
		{"half written", string(good[:len(good)/2]), "not a deploy record"},
		{"empty", "", "not a deploy record"},
		{"another version", strings.Replace(string(good), `"version": 1`, `"version": 9`, 1), "version 9, not 1"},
		{"another machine", strings.Replace(string(good), `"machine": "m0"`, `"machine": "m1"`, 1), `about machine "m1", not m0`},
		{"no system", strings.Replace(string(good), system, "", 1), "no system, fingerprint or time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.data), 0o644); err != nil {
				t.Fatal(err)
			}
			st := planned(t, dir, f, recs, "m0")
			if st.Action != fingerprint.ActionUnknown || !strings.Contains(st.Warning, tc.warn) ||
				!strings.Contains(st.Warning, file) || !strings.Contains(st.Warning, "remove it") {
				t.Errorf("got %s, warning %q; want unknown, warning naming %s and %q", st.Action, st.Warning, file, tc.warn)
			}
		})
	}
	if err := recs.Put(&fingerprint.Record{Machine: "../x", System: system}); err == nil {
		t.Error("a path as machine name was accepted")
	}
	t.Setenv(fingerprint.CacheEnv, "/tmp/fleet-cache-test")
	if d, err := fingerprint.DefaultRecords(root); err != nil || filepath.Dir(d.Dir) != "/tmp/fleet-cache-test/deployed" {
		t.Fatalf("DefaultRecords = %v, %v", d, err)
	}
}

func TestSummarize(t *testing.T) {
	names := []string{"feature a", "feature b", "overlay", "flake.lock (inputs)", "machine m", "feature c"}
	for _, tc := range []struct {
		n    int
		want string
	}{
		{6, "feature a, feature b, overlay, flake.lock (inputs), machine m, feature c"},
		{4, "feature a, feature b, overlay, flake.lock (inputs) and 2 more"},
		{1, "feature a and 5 more"},
	} {
		if got := fingerprint.Summarize(names, tc.n); got != tc.want {
			t.Errorf("Summarize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
