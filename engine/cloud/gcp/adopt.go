package gcp

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	compute "google.golang.org/api/compute/v1"

	"github.com/fleet-nix/fleet/engine/cloud"
)

// PlanAdoption looks up the instance want names in want's project and
// zone (one GET), whatever its labels, and says what adopting it would
// do. GCE does not say which image an instance's boot disk was made
// from, and fleet keeps the image it asked for in the metadata item
// fleet-image: an instance without that item gets the declared image
// recorded (Adoption.Recorded), so that the next plan does not want to
// replace it over an image it cannot see. When there is no such
// instance in the zone, one aggregated list by name says whether there
// is one in another zone of the project, which the error then names:
// adopting it there would make the next plan delete it and create
// another in the declared zone, so it is not adopted.
func (p *Provider) PlanAdoption(ctx context.Context, want *cloud.Resource) (*cloud.Adoption, error) {
	svc, err := p.service()
	if err != nil {
		return nil, err
	}
	if want.Kind != KindInstance {
		return nil, fmt.Errorf("gcp: cannot adopt a %s, only instances", want.Kind)
	}
	project, zone := splitScope(want.Scope)
	have, err := p.getInstance(ctx, svc, project, zone, want.Name)
	if isStatus(err, http.StatusNotFound) {
		nf := &cloud.NotFoundError{Provider: providerName, Kind: KindInstance, Name: want.Name,
			Where: fmt.Sprintf("project %s, zone %s", project, zone)}
		if zones := p.zonesWith(ctx, svc, project, want.Name); len(zones) > 0 {
			nf.Elsewhere = fmt.Sprintf("there is one in zone %s: to adopt it, declare zone = %q",
				strings.Join(zones, ", "), zones[0])
		}
		return nil, nf
	}
	if err != nil {
		return nil, fmt.Errorf("gcp: looking up instance %s in %s: %w", want.Name, want.Scope, err)
	}
	a, err := cloud.NewAdoption(want, have)
	if err != nil {
		return nil, err
	}
	if !a.AlreadyOurs && have.Spec["image"] == "" && want.Spec["image"] != "" {
		a.Record("image", want.Spec["image"])
	}
	return a, nil
}

// zonesWith returns the zones of project, sorted, that hold an instance
// called name, with one aggregated list filtered by name. It only serves
// a hint: a failure is no zones.
func (p *Provider) zonesWith(ctx context.Context, svc *compute.Service, project, name string) []string {
	zones := map[string]bool{}
	token := ""
	for {
		var page *compute.InstanceAggregatedList
		err := p.retry(ctx, func() (err error) {
			call := svc.Instances.AggregatedList(project).Filter(fmt.Sprintf(`(name = %q)`, name)).Context(ctx)
			if token != "" {
				call.PageToken(token)
			}
			page, err = call.Do()
			return err
		})
		if err != nil {
			return nil
		}
		for key, sl := range page.Items {
			for _, inst := range sl.Instances {
				if inst.Name != name {
					continue
				}
				zone := basename(inst.Zone)
				if zone == "" {
					zone, _ = strings.CutPrefix(key, "zones/")
				}
				zones[zone] = true
			}
		}
		if page.NextPageToken == "" {
			return slices.Sorted(maps.Keys(zones))
		}
		token = page.NextPageToken
	}
}

// Adopt makes the instance a describes the fleet's: first it writes what
// a records (the fleet-image metadata item, keeping every other item),
// then the labels, each guarded by its fingerprint (a stale one, 412, is
// read afresh and tried once more), retried and waited for. Labels go
// last: until they are set the instance is not the fleet's, so a failure
// in between leaves nothing a plan would act on.
func (p *Provider) Adopt(ctx context.Context, a *cloud.Adoption) (*cloud.Resource, error) {
	if a.AlreadyOurs {
		return a.Have, nil
	}
	svc, err := p.service()
	if err != nil {
		return nil, err
	}
	have := a.Have
	if have.Kind != KindInstance {
		return nil, fmt.Errorf("gcp: cannot adopt a %s, only instances", have.Kind)
	}
	project, zone := splitScope(have.Scope)
	for key, value := range a.Recorded {
		if key != "image" {
			return nil, fmt.Errorf("gcp: adopting instance %s in %s: cannot record %s", have.Name, have.Scope, key)
		}
		if err := p.setMetadataItem(ctx, svc, project, zone, have.Name, metaImage, value, have); err != nil {
			return nil, err
		}
	}
	if err := p.setLabels(ctx, svc, project, zone, have.Name, a.Labels, have); err != nil {
		return nil, err
	}
	return p.readBack(ctx, svc, project, zone, have.Name, "adopted")
}

// setMetadataItem sets one metadata item of the instance, keeping the
// others as the instance has them (SetMetadata replaces all of them).
func (p *Provider) setMetadataItem(ctx context.Context, svc *compute.Service, project, zone, name, key, value string, have *cloud.Resource) error {
	what := fmt.Sprintf("setting metadata %s of instance %s in %s/%s", key, name, project, zone)
	return p.guarded(ctx, svc, project, zone, name, what, have, extraMetadataFingerprint,
		func(cur *cloud.Resource, reqID string) (*compute.Operation, error) {
			fp, _ := cur.Extra[extraMetadataFingerprint].(string)
			items, _ := cur.Extra[extraMetadataItems].([]*compute.MetadataItems)
			req := &compute.Metadata{Fingerprint: fp, Items: withItem(items, key, value)}
			return svc.Instances.SetMetadata(project, zone, name, req).RequestId(reqID).Context(ctx).Do()
		})
}

// withItem is items with key set to value (replaced where it is, or
// added at the end). items is not changed.
func withItem(items []*compute.MetadataItems, key, value string) []*compute.MetadataItems {
	out := make([]*compute.MetadataItems, 0, len(items)+1)
	done := false
	for _, it := range items {
		switch {
		case it == nil:
		case it.Key != key:
			out = append(out, it)
		case !done:
			out = append(out, &compute.MetadataItems{Key: key, Value: &value})
			done = true
		}
	}
	if !done {
		out = append(out, &compute.MetadataItems{Key: key, Value: &value})
	}
	return out
}
