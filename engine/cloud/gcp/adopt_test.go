package gcp

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	compute "google.golang.org/api/compute/v1"

	"github.com/fleet-nix/fleet/engine/cloud"
)

func TestAdopt(t *testing.T) {
	const setLabels = "projects/" + project + "/zones/" + zoneB + "/instances/galena/setLabels"
	const setMetadata = "projects/" + project + "/zones/" + zoneB + "/instances/galena/setMetadata"
	otherImage := "projects/nixos/global/images/nixos-24"
	asDeclared := func(labels map[string]string) *compute.Instance {
		return &compute.Instance{Name: "galena", MachineType: "e2-standard-8", Labels: labels,
			Disks: []*compute.AttachedDisk{{Boot: true, DiskSizeGb: 100}}}
	}
	wantLabels := cloud.FleetLabels("demo", "galena", map[string]string{"role": "build"})
	for _, tc := range []struct {
		name string
		zone string // where the namesake is (default zoneB)
		seed *compute.Instance
		// fail is how many setLabels answer 429 first; edit changes the
		// instance between the look-up and the adoption.
		fail int
		edit func(*compute.Instance)
		// Outcomes of PlanAdoption: an error of this type, or what it says.
		notFound, owned, ours bool
		elsewhere             string
		dropped               []string
		recorded              bool // the image is recorded
		diffs                 []string
		// setLabels is how many setLabels requests Adopt makes.
		setLabels int
	}{
		{
			name:      "namesake as declared",
			seed:      asDeclared(map[string]string{"owner": "someone", "role": "db"}),
			dropped:   []string{"owner=someone"},
			recorded:  true,
			diffs:     []string{"ssh_keys (none) -> 2 keys, sha256 ", "tags (none) -> builder,fleet-demo"},
			setLabels: 1,
		},
		{
			name: "namesake that differs",
			seed: &compute.Instance{Name: "galena", MachineType: "e2-medium", Status: "TERMINATED",
				Metadata: &compute.Metadata{Items: []*compute.MetadataItems{{Key: metaImage, Value: &otherImage}}}},
			diffs: []string{
				"disk_gb 10 -> 100 replace",
				"image " + otherImage + " -> " + DefaultImage + " replace",
				"power off -> on",
				"ssh_keys (none) -> 2 keys, sha256 ",
				"tags (none) -> builder,fleet-demo",
				"type e2-medium -> e2-standard-8 replace",
			},
			setLabels: 1,
		},
		{
			name:      "label update rate limited",
			seed:      asDeclared(nil),
			fail:      2,
			recorded:  true,
			diffs:     []string{"ssh_keys (none) -> 2 keys, sha256 ", "tags (none) -> builder,fleet-demo"},
			setLabels: 3,
		},
		{
			name: "changed since the look-up",
			seed: asDeclared(nil),
			edit: func(in *compute.Instance) {
				in.Labels = map[string]string{"owner": "late"}
				in.Metadata.Items = append(in.Metadata.Items, &compute.MetadataItems{Key: "startup-script", Value: &otherImage})
			},
			recorded:  true,
			diffs:     []string{"ssh_keys (none) -> 2 keys, sha256 ", "tags (none) -> builder,fleet-demo"},
			setLabels: 2, // a stale fingerprint (412), then the current one
		},
		{name: "not found", notFound: true},
		{name: "in another zone", zone: zoneF, seed: asDeclared(nil), notFound: true, elsewhere: `there is one in zone us-central1-f: to adopt it, declare zone = "us-central1-f"`},
		{name: "already ours", seed: func() *compute.Instance {
			in := asDeclared(wantLabels) // as fleet made it: with the image marker
			image := DefaultImage
			in.Metadata = &compute.Metadata{Items: []*compute.MetadataItems{{Key: metaImage, Value: &image}}}
			return in
		}(), ours: true},
		{name: "another fleet's", seed: asDeclared(cloud.FleetLabels("prod", "galena", nil)), owned: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if tc.seed != nil {
				zone := tc.zone
				if zone == "" {
					zone = zoneB
				}
				e.fake.Seed(project, zone, tc.seed)
			}
			want := find(e.desired(t), KindInstance, "galena")
			a, err := e.p.PlanAdoption(ctx, want)
			var nf *cloud.NotFoundError
			var owned *cloud.OwnedError
			switch {
			case tc.notFound:
				if !errors.As(err, &nf) || !strings.Contains(err.Error(), `gcp: no instance "galena" in project demo-project, zone us-central1-b`) ||
					nf.Elsewhere != tc.elsewhere {
					t.Fatalf("err = %v, want a NotFoundError (elsewhere %q)", err, tc.elsewhere)
				}
			case tc.owned:
				if !errors.As(err, &owned) || owned.Fleet != "prod" || owned.Scope != project+"/"+zoneB {
					t.Fatalf("err = %v, want an OwnedError naming fleet prod", err)
				}
			case err != nil:
				t.Fatal(err)
			}
			if err != nil {
				if n := e.fake.Mutations(); n != 0 {
					t.Errorf("%d mutating requests", n)
				}
				return
			}
			if a.AlreadyOurs != tc.ours {
				t.Fatalf("AlreadyOurs = %v", a.AlreadyOurs)
			}
			if !tc.ours {
				wantRecorded := map[string]string{}
				if tc.recorded {
					wantRecorded["image"] = DefaultImage
				}
				if !maps.Equal(a.Labels, wantLabels) || !slices.Equal(a.Dropped, tc.dropped) || !maps.Equal(a.Recorded, wantRecorded) {
					t.Errorf("labels %v, dropped %v, recorded %v", a.Labels, a.Dropped, a.Recorded)
				}
				var diffs []string
				for _, d := range a.Differences {
					s := d.String()
					if i := strings.Index(s, "sha256 "); i >= 0 {
						s = s[:i+len("sha256 ")]
					}
					if !d.InPlace {
						s += " replace"
					}
					diffs = append(diffs, s)
				}
				if !slices.Equal(diffs, tc.diffs) {
					t.Errorf("differences:\n%s\nwant\n%s", strings.Join(diffs, "\n"), strings.Join(tc.diffs, "\n"))
				}
			}
			if tc.edit != nil {
				e.fake.Edit(project, zoneB, "galena", tc.edit)
			}
			e.fake.FailNext(http.MethodPost, setLabels, tc.fail, http.StatusTooManyRequests)
			e.fake.ResetRequests()
			got, err := e.p.Adopt(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if n := e.fake.Count(http.MethodPost, setLabels); n != tc.setLabels {
				t.Errorf("%d setLabels requests, want %d", n, tc.setLabels)
			}
			if tc.ours && e.fake.Mutations() != 0 {
				t.Errorf("adopting what is ours made %d mutating requests", e.fake.Mutations())
			}
			if !got.Ours("demo") || got.Machine != "galena" {
				t.Errorf("adopted: %+v", got)
			}
			inst := e.fake.Instance(project, zoneB, "galena")
			if !maps.Equal(inst.Labels, wantLabels) {
				t.Errorf("labels after adopting: %v", inst.Labels)
			}
			image, _ := metadataItem(inst.Metadata, metaImage)
			switch {
			case tc.recorded && (image != DefaultImage || e.fake.Count(http.MethodPost, setMetadata) == 0):
				t.Errorf("the image was not recorded: %q", image)
			case !tc.recorded && e.fake.Count(http.MethodPost, setMetadata) != 0:
				t.Errorf("the metadata was changed")
			}
			if tc.edit != nil {
				// The item someone added in between is kept.
				if _, ok := metadataItem(inst.Metadata, "startup-script"); !ok {
					t.Errorf("metadata after adopting: %+v", inst.Metadata.Items)
				}
			}
			// The next plan lists it as the fleet's: no create, no namesake.
			have, err := e.p.List(ctx, "demo", []string{project + "/" + zoneB})
			if err != nil {
				t.Fatal(err)
			}
			if r := find(have, KindInstance, "galena"); r == nil || !r.Ours("demo") {
				t.Fatalf("listed after adopting: %+v", r)
			}
			plan, err := cloud.MakePlan(ctx, referenceFleet(), []cloud.Provider{e.p}, cloud.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range plan.Changes {
				if ch.Name != "galena" {
					continue
				}
				// Every case leaves tags and ssh keys to the plan.
				want := cloud.Update
				if a.Replaces() {
					want = cloud.Replace
				}
				if ch.Action != want {
					t.Errorf("plan after adopting: %s %s (%s), want %s", ch.Action, ch.Name, ch.Reason, want)
				}
			}
		})
	}
}

func TestWithItem(t *testing.T) {
	v := func(s string) *string { return &s }
	items := []*compute.MetadataItems{{Key: "a", Value: v("1")}, nil, {Key: metaImage, Value: v("old")}, {Key: "b", Value: v("2")}}
	got := withItem(items, metaImage, "new")
	var s []string
	for _, it := range got {
		s = append(s, it.Key+"="+*it.Value)
	}
	if strings.Join(s, " ") != "a=1 fleet-image=new b=2" || *items[2].Value != "old" {
		t.Errorf("replaced: %v (items %v)", s, *items[2].Value)
	}
	got = withItem(items[:1], metaImage, "new")
	if len(got) != 2 || got[1].Key != metaImage {
		t.Errorf("added: %+v", got)
	}
}
