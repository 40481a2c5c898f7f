package gcp

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	compute "google.golang.org/api/compute/v1"

	"github.com/fleet-nix/fleet/engine/cloud"
)

// InstanceFilter is the server-side filter that selects a fleet's
// instances. GCE documents that several expressions each go in
// parentheses; label keys may contain dashes.
func InstanceFilter(fleet string) string {
	return fmt.Sprintf(`(labels.%s = %q) AND (labels.%s = %q)`,
		cloud.LabelManagedBy, cloud.ManagedBy, cloud.LabelFleet, fleet)
}

// FirewallFilter selects firewall rules whose name could be the fleet's.
// It is a regular expression (eq), the only filter that matches a name
// prefix; the description decides which of them are ours.
func FirewallFilter(fleet string) string {
	return fmt.Sprintf(`name eq "%s-.*"`, regexp.QuoteMeta(fleet))
}

// List lists the fleet's instances and firewall rules in every project
// the scopes name ("<project>/<zone>" or "<project>") and in the project
// of the credentials: per project, one paginated aggregated list of the
// instances of all its zones and one paginated list of firewall rules,
// all concurrently. Zones are not listed one by one: an instance in a
// zone no machine names (an orphan) must be found too.
func (p *Provider) List(ctx context.Context, fleet string, scopes []string) ([]*cloud.Resource, error) {
	svc, credProject, err := p.serviceAndProject()
	if err != nil {
		return nil, err
	}
	// project -> whether a scope names it (rather than only the
	// credentials).
	projects := map[string]bool{}
	for _, s := range scopes {
		project, zone, isZone := strings.Cut(s, "/")
		if project == "" || isZone && (zone == "" || strings.Contains(zone, "/")) {
			return nil, fmt.Errorf("gcp: bad scope %q (want <project> or <project>/<zone>)", s)
		}
		projects[project] = true
	}
	if credProject != "" && !projects[credProject] {
		projects[credProject] = false
	}

	var (
		mu   sync.Mutex
		out  []*cloud.Resource
		errs []error
		wg   sync.WaitGroup
	)
	collect := func(named bool, rs []*cloud.Resource, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && !named && refused(err) {
			// Only the credentials name this project, and it will not
			// be listed: fleet cannot have made anything there with
			// these credentials either.
			return
		}
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, rs...)
	}
	for _, project := range slices.Sorted(maps.Keys(projects)) {
		named := projects[project]
		wg.Go(func() {
			rs, err := p.listInstances(ctx, svc, fleet, project)
			collect(named, rs, err)
		})
		wg.Go(func() {
			rs, err := p.listFirewalls(ctx, svc, fleet, project)
			collect(named, rs, err)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		// One project is enough to make the plan wrong: report the
		// first (in message order, for stable messages).
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, errs[0]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

// refused reports whether err is a lasting refusal to list a project:
// 403 (no permission, Compute API not enabled) or 404 (no such project),
// not a rate limit that outlasted the retries.
func refused(err error) bool {
	return !cloud.IsTransient(err) && (isStatus(err, http.StatusForbidden) || isStatus(err, http.StatusNotFound))
}

// listInstances lists the fleet's instances in every zone of project with
// one paginated instances.aggregatedList. Each instance's scope is
// "<project>/<zone>" of the zone it is in.
func (p *Provider) listInstances(ctx context.Context, svc *compute.Service, fleet, project string) ([]*cloud.Resource, error) {
	var out []*cloud.Resource
	seen := map[string]bool{}
	token := ""
	for {
		var page *compute.InstanceAggregatedList
		err := p.retry(ctx, func() (err error) {
			call := svc.Instances.AggregatedList(project).Filter(InstanceFilter(fleet)).Context(ctx)
			if p.MaxResults > 0 {
				call.MaxResults(p.MaxResults)
			}
			if token != "" {
				call.PageToken(token)
			}
			if page, err = call.Do(); err != nil {
				return err
			}
			// A zone that did not answer may hold instances: a plan
			// without them would recreate or miss them. GCE fails the
			// whole request unless partial success is asked for, which
			// fleet never does; this is a second guard.
			if zones := unreachable(page); len(zones) > 0 {
				return &cloud.TransientError{Err: fmt.Errorf("unreachable: %s", strings.Join(zones, ", "))}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("gcp: listing instances in %s: %w", project, err)
		}
		for _, key := range slices.Sorted(maps.Keys(page.Items)) {
			// Zones without a match carry only a warning
			// (NO_RESULTS_ON_PAGE) instead of instances.
			for _, inst := range page.Items[key].Instances {
				zone := basename(inst.Zone)
				if zone == "" {
					zone, _ = strings.CutPrefix(key, "zones/")
				}
				if zone == "" || strings.Contains(zone, "/") {
					return nil, fmt.Errorf("gcp: listing instances in %s: instance %s under %q has no zone", project, inst.Name, key)
				}
				r := instanceToResource(project, zone, inst)
				// The filter is the server's; do not act on anything it
				// let through by mistake. A list that changed between
				// pages must not yield an instance twice.
				if r.Ours(fleet) && !seen[r.Key()] {
					seen[r.Key()] = true
					out = append(out, r)
				}
			}
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
}

// unreachable returns the scopes an aggregated list says it could not
// reach, sorted.
func unreachable(page *compute.InstanceAggregatedList) []string {
	zones := append([]string(nil), page.Unreachables...)
	for key, sl := range page.Items {
		if sl.Warning != nil && sl.Warning.Code == "UNREACHABLE" {
			zones = append(zones, key)
		}
	}
	if page.Warning != nil && page.Warning.Code == "UNREACHABLE" && len(zones) == 0 {
		zones = append(zones, page.Warning.Message)
	}
	sort.Strings(zones)
	return zones
}

func (p *Provider) listFirewalls(ctx context.Context, svc *compute.Service, fleet, project string) ([]*cloud.Resource, error) {
	var out []*cloud.Resource
	token := ""
	for {
		var page *compute.FirewallList
		err := p.retry(ctx, func() (err error) {
			call := svc.Firewalls.List(project).Filter(FirewallFilter(fleet)).Context(ctx)
			if p.MaxResults > 0 {
				call.MaxResults(p.MaxResults)
			}
			if token != "" {
				call.PageToken(token)
			}
			page, err = call.Do()
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("gcp: listing firewall rules in %s: %w", project, err)
		}
		for _, fw := range page.Items {
			if r := firewallToResource(project, fw); r.Ours(fleet) {
				out = append(out, r)
			}
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
}

// instanceToResource maps an instance as GCE describes it to what a plan
// compares: the same Spec keys Desired writes. Extra keeps what updating
// it needs: the label, tags and metadata fingerprints and the metadata
// items (the image marker, ssh-keys, whatever else someone put there).
func instanceToResource(project, zone string, inst *compute.Instance) *cloud.Resource {
	labels := map[string]string{}
	for k, v := range inst.Labels {
		labels[k] = v
	}
	machine := labels[cloud.LabelMachine]
	if machine == "" {
		machine = inst.Name
	}
	var tags []string
	var tagsFP string
	if inst.Tags != nil {
		tags, tagsFP = inst.Tags.Items, inst.Tags.Fingerprint
	}
	var items []*compute.MetadataItems
	var metadataFP string
	if inst.Metadata != nil {
		items, metadataFP = inst.Metadata.Items, inst.Metadata.Fingerprint
	}
	spec := map[string]string{
		"type":     basename(inst.MachineType),
		"image":    metadataValue(inst.Metadata, metaImage),
		"disk_gb":  "",
		"gpu":      "",
		"gpus":     "0",
		"power":    power(inst.Status),
		"tags":     tagsSpec(tags),
		"ssh_keys": sshKeysSpec(sshKeyLines(metadataValue(inst.Metadata, metaSSHKeys))),
	}
	for _, d := range inst.Disks {
		if d.Boot {
			spec["disk_gb"] = strconv.FormatInt(d.DiskSizeGb, 10)
		}
	}
	var gpus int64
	for _, a := range inst.GuestAccelerators {
		spec["gpu"] = basename(a.AcceleratorType)
		gpus += a.AcceleratorCount
	}
	spec["gpus"] = strconv.FormatInt(gpus, 10)
	r := &cloud.Resource{
		Provider: providerName,
		Kind:     KindInstance,
		Name:     inst.Name,
		Scope:    project + "/" + zone,
		Machine:  machine,
		Labels:   labels,
		Spec:     spec,
		Mutable:  slices.Clone(instanceMutable),
		Extra: map[string]any{
			extraLabelFingerprint:    inst.LabelFingerprint,
			extraTagsFingerprint:     tagsFP,
			extraMetadataFingerprint: metadataFP,
			extraMetadataItems:       items,
		},
		ID:     strconv.FormatUint(inst.Id, 10),
		Status: inst.Status,
	}
	for _, ni := range inst.NetworkInterfaces {
		for _, ac := range ni.AccessConfigs {
			if r.IPv4 == "" && ac.NatIP != "" {
				r.IPv4 = ac.NatIP
			}
		}
		for _, ac := range ni.Ipv6AccessConfigs {
			if r.IPv6 == "" && ac.ExternalIpv6 != "" {
				r.IPv6 = ac.ExternalIpv6
			}
		}
	}
	return r
}

// power folds GCE's instance states into on and off. Instances on their
// way up count as on, on their way down as off: what a plan wants to know
// is where they will settle.
func power(status string) string {
	switch status {
	case "PROVISIONING", "STAGING", "RUNNING", "REPAIRING":
		return "on"
	case "STOPPING", "STOPPED", "TERMINATED", "SUSPENDING", "SUSPENDED":
		return "off"
	}
	return strings.ToLower(status)
}

// firewallToResource maps a rule; its labels come from the description
// fleet wrote.
func firewallToResource(project string, fw *compute.Firewall) *cloud.Resource {
	labels := map[string]string{}
	for _, field := range strings.Fields(fw.Description) {
		k, v, ok := strings.Cut(field, "=")
		if ok && (k == cloud.LabelManagedBy || k == cloud.LabelFleet) {
			labels[k] = v
		}
	}
	var allow []string
	for _, a := range fw.Allowed {
		if len(a.Ports) == 0 {
			allow = append(allow, a.IPProtocol)
		}
		for _, port := range a.Ports {
			allow = append(allow, a.IPProtocol+":"+port)
		}
	}
	sort.Strings(allow)
	return &cloud.Resource{
		Provider: providerName,
		Kind:     KindFirewall,
		Name:     fw.Name,
		Scope:    project,
		Labels:   labels,
		Spec: map[string]string{
			"allow":      strings.Join(allow, ","),
			"source":     strings.Join(fw.SourceRanges, ","),
			"target_tag": strings.Join(fw.TargetTags, ","),
		},
		Mutable: []string{"allow", "source", "target_tag"},
		ID:      strconv.FormatUint(fw.Id, 10),
		Status:  firewallStatus(fw),
	}
}

func firewallStatus(fw *compute.Firewall) string {
	if fw.Disabled {
		return "disabled"
	}
	return "enabled"
}

func metadataValue(md *compute.Metadata, key string) string {
	if md == nil {
		return ""
	}
	for _, it := range md.Items {
		if it.Key == key && it.Value != nil {
			return *it.Value
		}
	}
	return ""
}

// basename is the last path element of a GCE resource URL, which the API
// returns in full ("https://.../zones/us-central1-b/machineTypes/e2-medium").
func basename(url string) string {
	return url[strings.LastIndex(url, "/")+1:]
}
