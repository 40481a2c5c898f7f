package hetzner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/model"
)

// maxFirewalls is the most firewalls Hetzner applies to one server.
const maxFirewalls = 5

// rule is one firewall rule in the form the plan compares: what the
// model declares and what the API lists both become this, so that equal
// rules are equal strings.
type rule struct {
	direction string // "in" or "out"
	protocol  string // tcp, udp, icmp, esp, gre
	port      string // "22", "60000-61000", "any"; "" for protocols without ports
	// ips are the sources of an inbound rule or the destinations of an
	// outbound one: networks in CIDR notation, canonical, sorted, once each.
	ips []string
}

// String is the rule as the plan shows it: "in tcp/22 from 0.0.0.0/0,::/0".
func (r rule) String() string {
	s := r.direction + " " + r.protocol
	if r.port != "" {
		s += "/" + r.port
	}
	if r.direction == "out" {
		return s + " to " + strings.Join(r.ips, ",")
	}
	return s + " from " + strings.Join(r.ips, ",")
}

// rulesSpec is the "rules" Spec of a firewall: its rules, sorted, joined
// with "; ".
func rulesSpec(rules []rule) string {
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = r.String()
	}
	return strings.Join(parts, "; ")
}

// sortRules orders rules by direction, protocol, port (numerically) and
// networks.
func sortRules(rules []rule) {
	sort.SliceStable(rules, func(i, j int) bool {
		a, b := rules[i], rules[j]
		if a.direction != b.direction {
			return a.direction < b.direction
		}
		if a.protocol != b.protocol {
			return a.protocol < b.protocol
		}
		alo, ahi := portRange(a.port)
		blo, bhi := portRange(b.port)
		if alo != blo {
			return alo < blo
		}
		if ahi != bhi {
			return ahi < bhi
		}
		if a.port != b.port {
			return a.port < b.port
		}
		return strings.Join(a.ips, ",") < strings.Join(b.ips, ",")
	})
}

// portRange is a port's range for sorting: -1 for none, "any" or
// anything that does not parse.
func portRange(p string) (lo, hi int) {
	a, b, isRange := strings.Cut(p, "-")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return -1, -1
	}
	hi = lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil {
			return -1, -1
		}
	}
	return lo, hi
}

// canonicalPort writes a port or range one way: "0022" is "22", "22-22"
// is "22". What does not parse stays as it is.
func canonicalPort(p string) string {
	p = strings.TrimSpace(p)
	a, b, isRange := strings.Cut(p, "-")
	lo, err := strconv.Atoi(a)
	if err != nil {
		return p
	}
	if !isRange {
		return strconv.Itoa(lo)
	}
	hi, err := strconv.Atoi(b)
	if err != nil {
		return p
	}
	if hi == lo {
		return strconv.Itoa(lo)
	}
	return strconv.Itoa(lo) + "-" + strconv.Itoa(hi)
}

// canonicalNets writes networks one way (the network address, lower-case
// IPv6, IPv4 without a v6 prefix), sorted, once each. What does not parse
// stays as it is.
func canonicalNets(nets []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(nets))
	for _, s := range nets {
		s = strings.TrimSpace(s)
		if _, n, err := net.ParseCIDR(s); err == nil {
			s = n.String()
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// modelRules are a declared firewall's rules, checked, canonical, sorted
// and once each.
func modelRules(fw *model.Firewall) ([]rule, error) {
	var out []rule
	seen := map[string]bool{}
	for i, mr := range fw.Rules {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("hetzner: firewall %s (%s): rule %d: %s", fw.Name, fw.Pos, i+1, fmt.Sprintf(format, args...))
		}
		r := rule{direction: "in", protocol: strings.ToLower(mr.Protocol), port: canonicalPort(mr.Port)}
		switch r.protocol {
		case "tcp", "udp":
			lo, hi := portRange(r.port)
			if lo < 1 || hi > 65535 || hi < lo {
				return nil, bad("%s needs a port or port range from 1 to 65535, low to high, not %q", r.protocol, mr.Port)
			}
		case "icmp", "esp", "gre":
			if r.port != "" {
				return nil, bad("%s has no ports (port %q)", r.protocol, mr.Port)
			}
		default:
			return nil, bad("protocol %q: Hetzner firewalls know tcp, udp, icmp, esp and gre", mr.Protocol)
		}
		if len(mr.Sources) == 0 {
			return nil, bad("no sources")
		}
		for _, src := range mr.Sources {
			if _, _, err := net.ParseCIDR(strings.TrimSpace(src)); err != nil {
				return nil, bad("source %q is not a network in CIDR notation", src)
			}
		}
		r.ips = canonicalNets(mr.Sources)
		if s := r.String(); !seen[s] {
			seen[s] = true
			out = append(out, r)
		}
	}
	sortRules(out)
	return out, nil
}

// listedRules are the rules of a firewall as the API has them. They are
// not made unique: a duplicate someone added is a difference the plan
// shows, and setting the rules removes it.
func listedRules(rules []hcloud.FirewallRule) []rule {
	out := make([]rule, 0, len(rules))
	for _, hr := range rules {
		r := rule{direction: string(hr.Direction), protocol: string(hr.Protocol)}
		if hr.Port != nil {
			r.port = canonicalPort(*hr.Port)
		}
		nets := hr.SourceIPs
		if hr.Direction == hcloud.FirewallRuleDirectionOut {
			nets = hr.DestinationIPs
		}
		strs := make([]string, len(nets))
		for i, n := range nets {
			strs[i] = n.String()
		}
		r.ips = canonicalNets(strs)
		out = append(out, r)
	}
	sortRules(out)
	return out
}

// hcloudRules are rules as hcloud-go sends them.
func hcloudRules(rules []rule) []hcloud.FirewallRule {
	out := make([]hcloud.FirewallRule, 0, len(rules))
	for _, r := range rules {
		hr := hcloud.FirewallRule{Direction: hcloud.FirewallRuleDirection(r.direction), Protocol: hcloud.FirewallRuleProtocol(r.protocol)}
		if r.port != "" {
			hr.Port = hcloud.Ptr(r.port)
		}
		nets := make([]net.IPNet, 0, len(r.ips))
		for _, s := range r.ips {
			if _, n, err := net.ParseCIDR(s); err == nil {
				nets = append(nets, *n)
			}
		}
		if r.direction == "out" {
			hr.DestinationIPs = nets
		} else {
			hr.SourceIPs = nets
		}
		out = append(out, hr)
	}
	return out
}

// hetznerFirewalls are the fleet's declared Hetzner firewalls by name.
func hetznerFirewalls(f *model.Fleet) map[string]*model.Firewall {
	out := map[string]*model.Firewall{}
	for _, fw := range f.Firewalls {
		if fw.Provider == model.Hetzner {
			out[fw.Name] = fw
		}
	}
	return out
}

// firewallWanted is the firewall resource of a declared firewall.
func firewallWanted(f *model.Fleet, fw *model.Firewall) (*cloud.Resource, error) {
	if fw.Name == "" || strings.ContainsAny(fw.Name, ", ") {
		// Servers list their firewalls comma-joined in their Spec.
		return nil, fmt.Errorf("hetzner: firewall %q (%s): a name must be non-empty, without commas or spaces", fw.Name, fw.Pos)
	}
	rules, err := modelRules(fw)
	if err != nil {
		return nil, err
	}
	labels := cloud.FleetLabels(f.Name, "", fw.Labels)
	if err := validLabels(labels); err != nil {
		return nil, fmt.Errorf("hetzner: firewall %s (%s): %w", fw.Name, fw.Pos, err)
	}
	return &cloud.Resource{
		Provider: providerName,
		Kind:     KindFirewall,
		Name:     fw.Name,
		Labels:   labels,
		Spec:     map[string]string{"rules": rulesSpec(rules)},
		Mutable:  []string{"rules"},
		Extra:    map[string]any{extraRules: rules},
	}, nil
}

// firewallResource is a firewall as the plan compares it.
func firewallResource(fw *hcloud.Firewall) *cloud.Resource {
	labels := fw.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	return &cloud.Resource{
		Provider: providerName,
		Kind:     KindFirewall,
		Name:     fw.Name,
		Labels:   labels,
		Spec:     map[string]string{"rules": rulesSpec(listedRules(fw.Rules))},
		Mutable:  []string{"rules"},
		ID:       strconv.FormatInt(fw.ID, 10),
	}
}

func (p *Provider) listFirewalls(ctx context.Context, labelSelector string) ([]*hcloud.Firewall, error) {
	return allPages(ctx, p, func(page int) ([]*hcloud.Firewall, *hcloud.Response, error) {
		return p.client.Firewall.List(ctx, hcloud.FirewallListOpts{ListOpts: hcloud.ListOpts{Page: page, PerPage: perPage, LabelSelector: labelSelector}})
	})
}

// wantedRules are the rules a wanted firewall carries for the API.
func wantedRules(want *cloud.Resource) ([]rule, error) {
	rules, ok := want.Extra[extraRules].([]rule)
	if !ok {
		// A firewall without rules drops everything: never make one by
		// accident.
		return nil, fmt.Errorf("hetzner: firewall %s: the wanted resource carries no rules", want.Name)
	}
	return rules, nil
}

// createFirewall creates a firewall with its rules and labels, and waits
// for the rules to be set. An earlier run's firewall of the same name is
// taken (with its rules set to the wanted ones if they differ); anyone
// else's is a *cloud.NamesakeError.
func (p *Provider) createFirewall(ctx context.Context, want *cloud.Resource) (*hcloud.Firewall, error) {
	rules, err := wantedRules(want)
	if err != nil {
		return nil, err
	}
	var res hcloud.FirewallCreateResult
	err = p.do(ctx, func() (resp *hcloud.Response, err error) {
		res, resp, err = p.client.Firewall.Create(ctx, hcloud.FirewallCreateOpts{Name: want.Name, Labels: want.Labels, Rules: hcloudRules(rules)})
		return resp, err
	})
	if hcloud.IsError(err, hcloud.ErrorCodeUniquenessError) {
		return p.existingFirewall(ctx, want, rules, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hetzner: creating firewall %s: %w", want.Name, err)
	}
	if err := p.wait(ctx, res.Actions...); err != nil {
		// It exists with fleet's labels: the next plan compares its rules.
		return nil, fmt.Errorf("hetzner: firewall %s was created but its rules were not set: %w", want.Name, actionErr(err))
	}
	return res.Firewall, nil
}

// existingFirewall explains a uniqueness error on creating a firewall.
func (p *Provider) existingFirewall(ctx context.Context, want *cloud.Resource, rules []rule, cause error) (*hcloud.Firewall, error) {
	var fw *hcloud.Firewall
	err := p.do(ctx, func() (resp *hcloud.Response, err error) {
		fw, resp, err = p.client.Firewall.GetByName(ctx, want.Name)
		return resp, err
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("hetzner: creating firewall %s: %w; looking it up: %w", want.Name, cause, err)
	case fw == nil:
		return nil, fmt.Errorf("hetzner: creating firewall %s: %w", want.Name, cause)
	}
	have := firewallResource(fw)
	if !have.Ours(want.Labels[cloud.LabelFleet]) {
		return nil, &cloud.NamesakeError{Provider: providerName, Kind: KindFirewall, Name: want.Name}
	}
	// Ours, from an earlier run or a concurrent change: it protects the
	// servers about to be made, so give it the wanted rules now.
	if have.Spec["rules"] != rulesSpec(rules) {
		if err := p.setRules(ctx, fw.ID, rules); err != nil {
			return nil, fmt.Errorf("hetzner: firewall %s: setting its rules: %w", want.Name, err)
		}
		fw.Rules = hcloudRules(rules)
	}
	return fw, nil
}

// setRules replaces a firewall's rules and waits until every server it
// applies to has them.
func (p *Provider) setRules(ctx context.Context, id int64, rules []rule) error {
	var actions []*hcloud.Action
	err := p.do(ctx, func() (resp *hcloud.Response, err error) {
		actions, resp, err = p.client.Firewall.SetRules(ctx, &hcloud.Firewall{ID: id}, hcloud.FirewallSetRulesOpts{Rules: hcloudRules(rules)})
		return resp, err
	})
	if err != nil {
		return err
	}
	return actionErr(p.wait(ctx, actions...))
}

// updateFirewall sets the rules or the labels of a firewall.
func (p *Provider) updateFirewall(ctx context.Context, id int64, want *cloud.Resource, field string, out *cloud.Resource) error {
	switch field {
	case "rules":
		rules, err := wantedRules(want)
		if err != nil {
			return err
		}
		if err := p.setRules(ctx, id, rules); err != nil {
			return err
		}
		out.Spec["rules"] = rulesSpec(rules)
	case "labels":
		var fw *hcloud.Firewall
		err := p.do(ctx, func() (resp *hcloud.Response, err error) {
			fw, resp, err = p.client.Firewall.Update(ctx, &hcloud.Firewall{ID: id}, hcloud.FirewallUpdateOpts{Labels: want.Labels})
			return resp, err
		})
		if err != nil {
			return err
		}
		out.Labels = fw.Labels
	default:
		return fmt.Errorf("%s cannot be changed in place", field)
	}
	return nil
}

// serverTarget is a server as a firewall's resource.
func serverTarget(id int64) []hcloud.FirewallResource {
	return []hcloud.FirewallResource{{Type: hcloud.FirewallResourceTypeServer, Server: &hcloud.FirewallResourceServer{ID: id}}}
}

// splitNames splits a server's "firewalls" Spec.
func splitNames(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// setServerFirewalls applies the fleet's firewalls a server should have
// and lacks, then removes those of the fleet it should not have, and
// waits. Adding first keeps the server covered in between, unless that
// would pass Hetzner's limit of five firewalls a server. Firewalls the
// fleet does not declare are neither added nor removed.
func (p *Provider) setServerFirewalls(ctx context.Context, id int64, want, have *cloud.Resource) error {
	wantNames, haveNames := splitNames(want.Spec["firewalls"]), splitNames(have.Spec["firewalls"])
	var add, remove []string
	for _, n := range wantNames {
		if !contains(haveNames, n) {
			add = append(add, n)
		}
	}
	for _, n := range haveNames {
		if !contains(wantNames, n) {
			remove = append(remove, n)
		}
	}
	if len(add)+len(remove) == 0 {
		return nil
	}
	fleet := want.Labels[cloud.LabelFleet]
	listed, err := p.listFirewalls(ctx, selector(fleet))
	if err != nil {
		return fmt.Errorf("listing firewalls: %w", err)
	}
	byName := map[string]*hcloud.Firewall{}
	for _, fw := range listed {
		byName[fw.Name] = fw
	}
	declared := map[string]*cloud.Resource{}
	fleetFWs, _ := want.Extra[extraFleetFirewalls].([]*cloud.Resource)
	for _, r := range fleetFWs {
		declared[r.Name] = r
	}

	attach := func() error {
		var actions []*hcloud.Action
		for _, n := range add {
			fw := byName[n]
			if fw == nil {
				// Its own create failed or has not run: make it here.
				r := declared[n]
				if r == nil {
					return fmt.Errorf("firewall %s is not declared by the fleet", n)
				}
				if fw, err = p.createFirewall(ctx, r); err != nil {
					return err
				}
			}
			var as []*hcloud.Action
			err := p.do(ctx, func() (resp *hcloud.Response, err error) {
				as, resp, err = p.client.Firewall.ApplyResources(ctx, &hcloud.Firewall{ID: fw.ID}, serverTarget(id))
				return resp, err
			})
			if err != nil && !hcloud.IsError(err, hcloud.ErrorCodeFirewallAlreadyApplied) {
				return fmt.Errorf("applying firewall %s: %w", n, err)
			}
			actions = append(actions, as...)
		}
		if err := p.wait(ctx, actions...); err != nil {
			return fmt.Errorf("applying firewalls %s: %w", strings.Join(add, ", "), actionErr(err))
		}
		return nil
	}
	detach := func() error {
		var actions []*hcloud.Action
		for _, n := range remove {
			fw := byName[n]
			if fw == nil {
				continue // gone, and off the server with it
			}
			var as []*hcloud.Action
			err := p.do(ctx, func() (resp *hcloud.Response, err error) {
				as, resp, err = p.client.Firewall.RemoveResources(ctx, &hcloud.Firewall{ID: fw.ID}, serverTarget(id))
				return resp, err
			})
			switch {
			case hcloud.IsError(err, hcloud.ErrorCodeFirewallAlreadyRemoved), isNotFound(err):
			case err != nil:
				return fmt.Errorf("removing firewall %s: %w", n, err)
			}
			actions = append(actions, as...)
		}
		if err := p.wait(ctx, actions...); err != nil {
			return fmt.Errorf("removing firewalls %s: %w", strings.Join(remove, ", "), actionErr(err))
		}
		return nil
	}

	// The server's firewalls the fleet does not manage count towards the
	// limit too.
	all, _ := want.Extra[extraFirewalls].([]string)
	unmanaged := 0
	for _, n := range all {
		if declared[n] == nil {
			unmanaged++
		}
	}
	steps := []func() error{attach, detach}
	if unmanaged+len(haveNames)+len(add) > maxFirewalls {
		steps = []func() error{detach, attach}
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// firewallInUseError: a firewall to delete still applies to what this
// fleet does not manage, and fleet does not take it off there.
type firewallInUseError struct {
	name  string
	users []string
}

func (e *firewallInUseError) Error() string {
	return fmt.Sprintf("hetzner: firewall %s is no longer needed by the fleet but is still applied to %s, which this fleet does not manage: "+
		"fleet does not take its firewalls off what is not its own; remove the firewall there, then apply again",
		e.name, strings.Join(e.users, ", "))
}

// deleteFirewall deletes a firewall of the fleet. Hetzner refuses to
// delete a firewall that applies to anything (resource_in_use), so it is
// first taken off the fleet's own servers that still have it (normally
// none: the hosts phase of the apply already updated or deleted them). A
// firewall that still applies to a server of someone else, or to a label
// selector, is left alone: that is a *firewallInUseError. A server that
// is gone but still listed (the API catches up after a delete) is waited
// for, as resource_in_use is retried.
//
// Every step is retried together, so that a retry looks at the firewall
// afresh; the requests inside are not retried on their own, so the
// attempts do not multiply.
func (p *Provider) deleteFirewall(ctx context.Context, id int64, have *cloud.Resource) error {
	fleet := have.Labels[cloud.LabelFleet]
	return cloud.Retry(ctx, p.backoff, func() error {
		fw, resp, err := p.client.Firewall.GetByID(ctx, id)
		if err := classify(resp, err); err != nil {
			return err
		}
		if fw == nil {
			return nil // gone already
		}
		var ours []hcloud.FirewallResource
		var foreign []string
		for _, r := range fw.AppliedTo {
			switch {
			case r.Type == hcloud.FirewallResourceTypeServer && r.Server != nil:
				s, resp, err := p.client.Server.GetByID(ctx, r.Server.ID)
				if err := classify(resp, err); err != nil {
					return err
				}
				switch {
				case s == nil:
					// Deleted, and the firewall does not know yet.
				case serverResource(s, nil).Ours(fleet):
					ours = append(ours, r)
				default:
					foreign = append(foreign, fmt.Sprintf("server %s (ID %d)", s.Name, s.ID))
				}
			case r.Type == hcloud.FirewallResourceTypeLabelSelector && r.LabelSelector != nil:
				foreign = append(foreign, fmt.Sprintf("label selector %q", r.LabelSelector.Selector))
			default:
				foreign = append(foreign, string(r.Type))
			}
		}
		if len(foreign) > 0 {
			return &firewallInUseError{name: have.Name, users: foreign}
		}
		if len(ours) > 0 {
			actions, resp, err := p.client.Firewall.RemoveResources(ctx, &hcloud.Firewall{ID: id}, ours)
			if err := classify(resp, err); err != nil && !hcloud.IsError(err, hcloud.ErrorCodeFirewallAlreadyRemoved) {
				return fmt.Errorf("taking it off the fleet's servers: %w", err)
			}
			if err := classify(nil, p.client.Action.WaitFor(ctx, actions...)); err != nil {
				return fmt.Errorf("taking it off the fleet's servers: %w", actionErr(err))
			}
		}
		resp, err = p.client.Firewall.Delete(ctx, &hcloud.Firewall{ID: id})
		switch {
		case isNotFound(err):
			return nil
		case hcloud.IsError(err, hcloud.ErrorCodeResourceInUse):
			// Something took it up in between, or the API has not caught up
			// with a server's delete or the removal: look again.
			return &cloud.TransientError{Err: err}
		}
		return classify(resp, err)
	})
}

// actionErr turns a failed action into its message.
func actionErr(err error) error {
	var ae hcloud.ActionError
	if errors.As(err, &ae) {
		return errors.New(ae.Message)
	}
	return err
}
