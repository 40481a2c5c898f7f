package gcp

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	compute "google.golang.org/api/compute/v1"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/gcp/gcpfake"
	"github.com/fleet-nix/fleet/engine/model"
)

// Through the engine's own plan and apply: the first apply creates the
// firewall and both hosts, the plan after it has nothing to do and costs
// only lists; switching scheelite off deletes it, and the firewall stays
// for galena.
func TestPlanApplyConverges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	providers := []cloud.Provider{e.p}
	f := referenceFleet()

	plan, err := cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := countActions(plan)[cloud.Create]; n != 3 {
		t.Fatalf("first plan: %d creates, want 3: %+v", n, plan.Changes)
	}
	// 189.20 + 499.47 EUR a month.
	if plan.MonthlyCost.Before != 0 || math.Abs(plan.MonthlyCost.After-688.67) > 0.005 {
		t.Errorf("monthly cost %v -> %v", plan.MonthlyCost.Before, plan.MonthlyCost.After)
	}
	res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{})
	if failed := res.Failed(); len(failed) != 0 {
		t.Fatalf("apply failed: %v", failed[0].Err)
	}
	for _, o := range res.Outcomes {
		if o.Change.Resource == KindInstance && (o.Result == nil || o.Result.IPv4 == "") {
			t.Errorf("%s: no address after create", o.Change.Name)
		}
	}

	e.fake.ResetRequests()
	plan, err = cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acts := countActions(plan); acts[cloud.NoOp] != 3 || len(plan.Changes) != 3 {
		for _, c := range plan.Changes {
			t.Logf("%s %s %s: %s", c.Action, c.Resource, c.Name, c.Reason)
		}
		t.Fatalf("second plan is not all no-op: %v", acts)
	}
	if res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{}); len(res.Outcomes) != 0 || e.fake.Mutations() != 0 {
		t.Errorf("second apply: %d outcomes, %d mutating requests", len(res.Outcomes), e.fake.Mutations())
	}
	// One project: an aggregated instance list (all zones at once) and a
	// firewall list, whatever the fleet's size and however many zones.
	if n := len(e.fake.Requests()); n != 2 || e.fake.Count("GET", aggregated) != 1 ||
		e.fake.Count("GET", "projects/"+project+"/global/firewalls") != 1 {
		for _, r := range e.fake.Requests() {
			t.Logf("%s %s", r.Method, r.Path)
		}
		t.Errorf("plan made %d requests, want 2", n)
	}

	f.Machine("scheelite").Host.Enabled = false
	plan, err = cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if acts := countActions(plan); acts[cloud.Delete] != 1 || acts[cloud.NoOp] != 2 {
		t.Fatalf("toggle off: %v", acts)
	}
	if res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{}); len(res.Failed()) != 0 {
		t.Fatal(res.Failed()[0].Err)
	}
	if e.fake.Instance(project, zoneF, "scheelite") != nil || e.fake.Firewall(project, "demo-fleet") == nil {
		t.Errorf("after toggle off: %v", e.fake.InstanceNames())
	}
}

func countActions(p *cloud.Plan) map[cloud.Action]int {
	out := map[cloud.Action]int{}
	for _, c := range p.Changes {
		out[c.Action]++
	}
	return out
}

// An instance with the fleet's labels in a zone no machine uses (its
// machine was removed), and one of a machine that moved zone, are listed
// by the one aggregated list and deleted; the plan costs the same two
// requests.
func TestPlanDeletesOrphansInUnusedZones(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	providers := []cloud.Provider{e.p}
	f := referenceFleet()
	plan, err := cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{}); len(res.Failed()) != 0 {
		t.Fatal(res.Failed()[0].Err)
	}
	const elsewhere, moved = "europe-west1-b", "europe-west4-a"
	e.fake.Seed(project, elsewhere, &compute.Instance{Name: "old", Labels: cloud.FleetLabels("demo", "old", nil)})
	e.fake.Seed(project, moved, &compute.Instance{Name: "galena", Labels: cloud.FleetLabels("demo", "galena", nil)})
	// Not ours: another fleet's, and someone's without labels.
	e.fake.Seed(project, elsewhere, &compute.Instance{Name: "other", Labels: cloud.FleetLabels("staging", "other", nil)})
	e.fake.Seed(project, elsewhere, &compute.Instance{Name: "web"})

	e.fake.ResetRequests()
	plan, err = cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deletes := map[string]*cloud.Change{}
	for _, c := range plan.Changes {
		if c.Action == cloud.Delete {
			deletes[c.Scope+"/"+c.Name] = c
		}
	}
	if acts := countActions(plan); acts[cloud.Delete] != 2 || acts[cloud.NoOp] != 3 || len(plan.Changes) != 5 {
		for _, c := range plan.Changes {
			t.Logf("%s %s %s/%s: %s", c.Action, c.Resource, c.Scope, c.Name, c.Reason)
		}
		t.Fatalf("plan: %v, want 2 deletes and 3 no-ops", acts)
	}
	if c := deletes[project+"/"+elsewhere+"/old"]; c == nil || !strings.Contains(c.Reason, "orphan") || c.MonthlyCostBefore <= 0 {
		t.Errorf("old in %s: %+v, want deleted as an orphan that costs money", elsewhere, c)
	}
	if c := deletes[project+"/"+moved+"/galena"]; c == nil || !strings.Contains(c.Reason, "elsewhere") {
		t.Errorf("galena left in %s: %+v, want deleted", moved, c)
	}
	if n := len(e.fake.Requests()); n != 2 {
		t.Errorf("plan made %d requests, want 2", n)
	}
	if res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{}); len(res.Failed()) != 0 {
		t.Fatal(res.Failed()[0].Err)
	}
	want := []string{
		project + "/" + elsewhere + "/other",
		project + "/" + elsewhere + "/web",
		project + "/" + zoneB + "/galena",
		project + "/" + zoneF + "/scheelite",
	}
	if got := e.fake.InstanceNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("after apply: %v, want %v", got, want)
	}
}

// A fleet without any GCE host lists the project of its credentials (a
// service-account key's project_id, an ADC file's quota_project_id) and
// deletes what it left there; credentials that name no project cost no
// request.
func TestPlanFindsOrphansWithoutGCEHosts(t *testing.T) {
	for _, creds := range []string{"service account", "adc", "adc without project"} {
		t.Run(creds, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			if creds != "service account" {
				var adc map[string]any
				if err := json.Unmarshal(e.fake.AuthorizedUserJSON(), &adc); err != nil {
					t.Fatal(err)
				}
				if creds == "adc" {
					adc["quota_project_id"] = project
				}
				b, _ := json.Marshal(adc)
				dir := filepath.Join(e.vars["HOME"], ".config", "gcloud")
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, adcFile), b, 0o600); err != nil {
					t.Fatal(err)
				}
				delete(e.vars, EnvCredentials)
			}
			e.fake.Seed(project, zoneF, &compute.Instance{Name: "scheelite", MachineType: "n1-standard-8",
				Labels: cloud.FleetLabels("demo", "scheelite", nil)})
			e.fake.SeedFirewall(project, &compute.Firewall{Name: "demo-fleet", Description: "managed-by=fleet fleet=demo",
				TargetTags: []string{"fleet-demo"}, Allowed: []*compute.FirewallAllowed{{IPProtocol: "tcp", Ports: []string{"22"}}}})
			// The fleet's last GCE hosts are gone from the file: only
			// the Hetzner one is left.
			f := referenceFleet()
			f.Machines = []*model.Machine{f.Machine("cinnabar")}
			providers := []cloud.Provider{e.p}
			plan, err := cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range plan.Changes {
				got = append(got, fmt.Sprintf("%s %s %s/%s", c.Action, c.Resource, c.Scope, c.Name))
			}
			if creds == "adc without project" {
				if len(got) != 0 || len(e.fake.Requests()) != 0 {
					t.Fatalf("credentials without a project: changes %v, %d requests", got, len(e.fake.Requests()))
				}
				return
			}
			want := []string{
				"delete firewall " + project + "/demo-fleet",
				"delete instance " + project + "/" + zoneF + "/scheelite",
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("plan: %q, want %q", got, want)
			}
			if c := plan.Changes[1]; !strings.Contains(c.Reason, "orphan") || c.MonthlyCostBefore <= 0 {
				t.Errorf("orphan instance: %q, %.2f EUR", c.Reason, c.MonthlyCostBefore)
			}
			if n, a := e.fake.Count("GET", ""), e.fake.Count("GET", aggregated); n != 2 || a != 1 {
				t.Errorf("plan made %d API requests (%d aggregated lists), want 2 (1)", n, a)
			}
			if res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{}); len(res.Failed()) != 0 {
				t.Fatal(res.Failed()[0].Err)
			}
			if names := e.fake.InstanceNames(); len(names) != 0 || e.fake.Firewall(project, "demo-fleet") != nil {
				t.Errorf("left after apply: %v", names)
			}
		})
	}
}

// Through plan and apply: an admin added or removed, or a network tag
// changed, makes the plan an in-place update of ssh_keys or tags alone
// (never a replace, never labels or power); apply converges to no-ops
// with one SetMetadata or SetTags per field and instance, and leaves the
// metadata items fleet does not own where they were.
func TestPlanUpdatesTagsAndSSHKeys(t *testing.T) {
	for _, c := range []struct {
		name   string
		mutate func(f *model.Fleet)
		// instance -> the fields of its update
		updates map[string][]string
	}{
		{"admin added", func(f *model.Fleet) { f.Admins = append(f.Admins, "bob") },
			map[string][]string{"galena": {"ssh_keys"}, "scheelite": {"ssh_keys"}}},
		{"admin removed", func(f *model.Fleet) { f.Admins = []string{"alice"} },
			map[string][]string{"galena": {"ssh_keys"}, "scheelite": {"ssh_keys"}}},
		{"admin key changed", func(f *model.Fleet) { f.User("alice").SSHKeys = []string{"ssh-ed25519 AAAANew alice@new"} },
			map[string][]string{"galena": {"ssh_keys"}, "scheelite": {"ssh_keys"}}},
		{"no admins left", func(f *model.Fleet) { f.Admins = nil },
			map[string][]string{"galena": {"ssh_keys"}, "scheelite": {"ssh_keys"}}},
		{"admins reordered", func(f *model.Fleet) { f.Admins[0], f.Admins[1] = f.Admins[1], f.Admins[0] }, nil},
		{"tag added", func(f *model.Fleet) { f.Machine("galena").Host.GCP.Tags = []string{"builder", "web"} },
			map[string][]string{"galena": {"tags"}}},
		{"tag removed", func(f *model.Fleet) { f.Machine("galena").Host.GCP.Tags = nil },
			map[string][]string{"galena": {"tags"}}},
		{"tag and admin", func(f *model.Fleet) {
			f.Admins = append(f.Admins, "bob")
			f.Machine("scheelite").Host.GCP.Tags = []string{"gpu"}
		}, map[string][]string{"galena": {"ssh_keys"}, "scheelite": {"ssh_keys", "tags"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			providers := []cloud.Provider{e.p}
			f := referenceFleet()
			plan, err := cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{}); len(res.Failed()) != 0 {
				t.Fatal(res.Failed()[0].Err)
			}
			// Someone adds an item of their own: not fleet's business.
			note := "hello"
			for _, z := range []struct{ zone, name string }{{zoneB, "galena"}, {zoneF, "scheelite"}} {
				e.fake.Edit(project, z.zone, z.name, func(in *compute.Instance) {
					in.Metadata.Items = append(in.Metadata.Items, &compute.MetadataItems{Key: "user-note", Value: &note})
				})
			}
			if acts := countActions(mustPlan(t, f, providers)); acts[cloud.NoOp] != 3 {
				t.Fatalf("a user's metadata item is not drift: %v", acts)
			}

			c.mutate(f)
			plan = mustPlan(t, f, providers)
			fields := 0
			for _, ch := range plan.Changes {
				want := c.updates[ch.Name]
				fields += len(want)
				switch {
				case want == nil && ch.Action != cloud.NoOp:
					t.Errorf("%s %s: %s (%s), want no-op", ch.Resource, ch.Name, ch.Action, ch.Reason)
				case want != nil && (ch.Action != cloud.Update || !reflect.DeepEqual(ch.Fields, want)):
					t.Errorf("%s %s: %s of %q (%s), want an update of %q", ch.Resource, ch.Name, ch.Action, ch.Fields, ch.Reason, want)
				case want != nil && !strings.Contains(ch.Reason, want[0]+" "):
					t.Errorf("%s: reason %q does not name %s", ch.Name, ch.Reason, want[0])
				}
			}
			e.fake.ResetRequests()
			res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{})
			if len(res.Failed()) != 0 {
				t.Fatal(res.Failed()[0].Err)
			}
			// One set request per field and instance, nothing else.
			sets := 0
			for _, r := range e.fake.Requests() {
				if r.Method == "POST" && (strings.HasSuffix(r.Path, "/setTags") || strings.HasSuffix(r.Path, "/setMetadata")) {
					sets++
				}
			}
			if n := e.fake.Mutations(); n != fields || sets != fields {
				for _, r := range e.fake.Requests() {
					t.Logf("%s %s %d", r.Method, r.Path, r.Status)
				}
				t.Errorf("%d mutating requests (%d set), want %d", n, sets, fields)
			}
			if acts := countActions(mustPlan(t, f, providers)); acts[cloud.NoOp] != 3 || len(acts) != 1 {
				t.Fatalf("not converged: %v", acts)
			}

			want, err := e.p.Desired(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, z := range []struct{ zone, name string }{{zoneB, "galena"}, {zoneF, "scheelite"}} {
				w, inst := find(want, KindInstance, z.name), e.fake.Instance(project, z.zone, z.name)
				if tags := w.Extra[extraTags].([]string); !reflect.DeepEqual(inst.Tags.Items, tags) {
					t.Errorf("%s: tags %q, want %q", z.name, inst.Tags.Items, tags)
				}
				// The same lines, in whatever order.
				keys := slices.Sorted(slices.Values(w.Extra[extraSSHKeys].([]string)))
				v, ok := metadataItem(inst.Metadata, metaSSHKeys)
				if lines := slices.Sorted(slices.Values(strings.Split(v, "\n"))); len(keys) == 0 && ok || len(keys) > 0 && !slices.Equal(lines, keys) {
					t.Errorf("%s: ssh-keys %q (present %v), want %q", z.name, v, ok, keys)
				}
				if img, note := metadataValue(inst.Metadata, metaImage), metadataValue(inst.Metadata, "user-note"); img != DefaultImage || note != "hello" {
					t.Errorf("%s: image item %q, user's item %q: lost", z.name, img, note)
				}
			}
		})
	}
}

func mustPlan(t *testing.T, f *model.Fleet, providers []cloud.Provider) *cloud.Plan {
	t.Helper()
	plan, err := cloud.MakePlan(context.Background(), f, providers, cloud.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

// A machine whose machine type changed (here to one with built-in GPUs,
// which GCE only takes with onHostMaintenance TERMINATE) is replaced:
// refused without AllowReplace, and with it the old instance is deleted
// and a new one inserted, through the fake, in that order after the
// plan's list. The new instance is what the fleet says, and the next plan
// has nothing to do.
func TestPlanReplacesInstance(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	providers := []cloud.Provider{e.p}
	f := referenceFleet()
	apply := func(opts cloud.PlanOptions) *cloud.Plan {
		t.Helper()
		plan, err := cloud.MakePlan(ctx, f, providers, opts)
		if err != nil {
			t.Fatal(err)
		}
		if res := cloud.Apply(ctx, plan, providers, cloud.ApplyOptions{}); len(res.Failed()) != 0 {
			t.Fatalf("apply: %v", res.Failed()[0].Err)
		}
		return plan
	}
	apply(cloud.PlanOptions{})
	old, scheelite := e.fake.Instance(project, zoneB, "galena"), e.fake.Instance(project, zoneF, "scheelite")
	if old == nil || scheelite == nil {
		t.Fatal("not created")
	}

	f.Machine("galena").Host.GCP.Type = "a2-highgpu-1g"
	mutations := e.fake.Mutations()
	plan := apply(cloud.PlanOptions{})
	galena := func(p *cloud.Plan) *cloud.Change {
		for _, c := range p.Changes {
			if c.Resource == KindInstance && c.Name == "galena" {
				return c
			}
		}
		t.Fatal("no change for galena")
		return nil
	}
	if c := galena(plan); c.Action != cloud.Replace || c.Refused == "" || !strings.Contains(c.Reason, "type") {
		t.Fatalf("without AllowReplace: %s %q refused %q", c.Action, c.Reason, c.Refused)
	}
	if e.fake.Mutations() != mutations || e.fake.Instance(project, zoneB, "galena").Id != old.Id {
		t.Fatal("a refused replace changed something")
	}

	plan = apply(cloud.PlanOptions{AllowReplace: true})
	if c := galena(plan); c.Action != cloud.Replace || c.Refused != "" {
		t.Fatalf("with AllowReplace: %s refused %q", c.Action, c.Refused)
	}
	// galena's story in the fake: listed, looked for by name before the
	// first create (a namesake made outside fleet would be found there:
	// its lookup lists other zones too), created, listed (two more plans),
	// deleted, created again.
	var story []string
	for _, r := range e.fake.Requests() {
		rel := strings.TrimPrefix(r.Path, gcpfake.APIRoot)
		switch {
		case r.Method == "GET" && rel == aggregated:
			story = append(story, "list")
		case r.Method == "POST" && rel == "projects/"+project+"/zones/"+zoneB+"/instances":
			story = append(story, "create")
		case r.Method == "DELETE" && rel == "projects/"+project+"/zones/"+zoneB+"/instances/galena":
			story = append(story, "delete")
		}
	}
	if got := strings.Join(story, " "); got != "list list list create list list delete create" {
		t.Errorf("galena's requests: %s", got)
	}
	now := e.fake.Instance(project, zoneB, "galena")
	switch {
	case now == nil:
		t.Fatal("galena is gone")
	case now.Id == old.Id || !strings.HasSuffix(now.MachineType, "/machineTypes/a2-highgpu-1g"):
		t.Errorf("galena not replaced: id %d (was %d), type %s", now.Id, old.Id, now.MachineType)
	case now.Scheduling == nil || now.Scheduling.OnHostMaintenance != "TERMINATE":
		t.Errorf("scheduling %+v", now.Scheduling)
	case len(now.GuestAccelerators) != 1 || !strings.HasSuffix(now.GuestAccelerators[0].AcceleratorType, "/nvidia-tesla-a100"):
		t.Errorf("accelerators %+v", now.GuestAccelerators)
	case !reflect.DeepEqual(now.Labels, old.Labels) || now.Disks[0].DiskSizeGb != 100:
		t.Errorf("labels %v, disk %d GB", now.Labels, now.Disks[0].DiskSizeGb)
	}
	if s := e.fake.Instance(project, zoneF, "scheelite"); s == nil || s.Id != scheelite.Id {
		t.Error("scheelite was replaced")
	}

	plan, err := cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{AllowReplace: true})
	if err != nil {
		t.Fatal(err)
	}
	if acts := countActions(plan); acts[cloud.NoOp] != len(plan.Changes) {
		for _, c := range plan.Changes {
			t.Logf("%s %s %s: %s", c.Action, c.Resource, c.Name, c.Reason)
		}
		t.Errorf("plan after the replace: %v", acts)
	}
}
