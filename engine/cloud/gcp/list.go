package gcp

import (
	"context"
	"fmt"
	"regexp"
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

// List lists the fleet's instances in every "<project>/<zone>" scope and
// its firewall rules in every project those and the "<project>" scopes
// name, one paginated list each, concurrently.
func (p *Provider) List(ctx context.Context, fleet string, scopes []string) ([]*cloud.Resource, error) {
	svc, err := p.service()
	if err != nil {
		return nil, err
	}
	zones := map[string]bool{}
	projects := map[string]bool{}
	for _, s := range scopes {
		project, zone, isZone := strings.Cut(s, "/")
		if project == "" || isZone && zone == "" {
			return nil, fmt.Errorf("gcp: bad scope %q (want <project> or <project>/<zone>)", s)
		}
		projects[project] = true
		if isZone {
			zones[s] = true
		}
	}

	var (
		mu   sync.Mutex
		out  []*cloud.Resource
		errs []error
		wg   sync.WaitGroup
	)
	collect := func(rs []*cloud.Resource, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		}
		out = append(out, rs...)
	}
	for _, scope := range sortedKeys(zones) {
		wg.Go(func() { collect(p.listInstances(ctx, svc, fleet, scope)) })
	}
	for _, project := range sortedKeys(projects) {
		wg.Go(func() { collect(p.listFirewalls(ctx, svc, fleet, project)) })
	}
	wg.Wait()
	if len(errs) > 0 {
		// One scope is enough to make the plan wrong: report the first
		// (in scope order, for stable messages).
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, errs[0]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

func (p *Provider) listInstances(ctx context.Context, svc *compute.Service, fleet, scope string) ([]*cloud.Resource, error) {
	project, zone, _ := strings.Cut(scope, "/")
	var out []*cloud.Resource
	token := ""
	for {
		var page *compute.InstanceList
		err := p.retry(ctx, func() (err error) {
			call := svc.Instances.List(project, zone).Filter(InstanceFilter(fleet)).Context(ctx)
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
			return nil, fmt.Errorf("gcp: listing instances in %s: %w", scope, err)
		}
		for _, inst := range page.Items {
			r := instanceToResource(project, zone, inst)
			// The filter is the server's; do not act on anything it let
			// through by mistake.
			if r.Ours(fleet) {
				out = append(out, r)
			}
		}
		if page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
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
// compares: the same Spec keys Desired writes.
func instanceToResource(project, zone string, inst *compute.Instance) *cloud.Resource {
	labels := map[string]string{}
	for k, v := range inst.Labels {
		labels[k] = v
	}
	machine := labels[cloud.LabelMachine]
	if machine == "" {
		machine = inst.Name
	}
	spec := map[string]string{
		"type":    basename(inst.MachineType),
		"image":   metadataValue(inst.Metadata, metaImage),
		"disk_gb": "",
		"gpu":     "",
		"gpus":    "0",
		"power":   power(inst.Status),
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
		Mutable:  []string{"power"},
		Extra:    map[string]any{extraLabelFingerprint: inst.LabelFingerprint},
		ID:       strconv.FormatUint(inst.Id, 10),
		Status:   inst.Status,
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
