package cloud

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plural"
)

// Action is what a change does.
type Action string

const (
	Create  Action = "create"
	Update  Action = "update"  // labels or power, in place
	Replace Action = "replace" // delete and create: a setting the cloud cannot change in place
	Delete  Action = "delete"
	NoOp    Action = "no-op"
	// Unknown: the provider could not be asked (no credentials), so the
	// plan shows what is wanted without knowing what exists.
	Unknown Action = "unknown"
)

// Change is one line of a plan. Its JSON form is the one
// docs/plan-json.md describes (see plan_json.go).
type Change struct {
	Action   Action
	Provider string
	Resource string // the kind: server, instance, ssh_key, firewall
	Name     string
	Scope    string
	Machine  string
	Reason   string
	// Monthly cost in EUR of what exists now and of what will after.
	MonthlyCostBefore float64
	MonthlyCostAfter  float64
	// Fields are what an update changes ("labels", "power").
	Fields []string
	// Refused says why a replace will not be applied (it needs --allow-replace).
	Refused string

	Want *Resource
	Have *Resource
}

// Mutating reports whether applying the change calls the cloud.
func (c *Change) Mutating() bool {
	return c.Refused == "" && (c.Action == Create || c.Action == Update || c.Action == Replace || c.Action == Delete)
}

// Plan is the whole set of changes, with the fleet's monthly cost. Its
// JSON form is the one docs/plan-json.md describes (see plan_json.go).
type Plan struct {
	Fleet       string
	Changes     []*Change
	MonthlyCost struct {
		Before float64
		After  float64
	}
	Currency string
	// Unreachable lists providers the plan could not compare against.
	Unreachable []ProviderError
	// PriceSources says where each price figure came from.
	PriceSources []string
	// Toggled lists machines whose enabled setting was overridden for this
	// plan (fleet up / fleet down), as "name=on" / "name=off".
	Toggled []string
	// Secrets are the secret files to write or repair, and Machines what
	// happens to each machine (plan_whole.go): fleet plan's, nil for the
	// cloud-only plans of apply, up, down and hosts.
	Secrets  []SecretAction
	Machines []MachineAction
}

// ProviderError is a provider that could not be used, and why.
type ProviderError struct {
	Provider string `json:"provider"`
	Error    string `json:"error"`
}

// PlanOptions adjust a plan.
type PlanOptions struct {
	// AllowReplace lets changes that need a replacement go ahead.
	AllowReplace bool
	// Enable overrides machine(host = ...(enabled = ...)) for this plan:
	// true switches a toggled host on, false off.
	Enable map[string]bool
}

// MakePlan compares what the fleet wants from each provider with what
// exists, and prices both.
func MakePlan(ctx context.Context, f *model.Fleet, providers []Provider, opts PlanOptions) (*Plan, error) {
	f, toggled, err := withToggles(f, opts.Enable)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Fleet: f.Name, Currency: "EUR", Toggled: toggled, Changes: []*Change{}}
	sources := map[string]bool{}
	for _, p := range providers {
		want, err := p.Desired(f)
		if err != nil {
			return nil, err
		}
		// Every scope any host of this provider has, enabled or not, so
		// that switched-off hosts are found and deleted.
		everything, err := p.Desired(allEnabled(f))
		if err != nil {
			return nil, err
		}
		if len(everything) == 0 {
			// No host of this provider in the fleet: still look for
			// orphans if the provider can be asked.
			if p.Credentials() != nil {
				continue
			}
		}
		var have []*Resource
		if err := p.Credentials(); err != nil {
			plan.Unreachable = append(plan.Unreachable, ProviderError{p.Name(), err.Error()})
			for _, w := range want {
				plan.Changes = append(plan.Changes, &Change{Action: Unknown, Want: w,
					Reason: "not compared with the cloud: " + err.Error()})
			}
		} else {
			have, err = p.List(ctx, f.Name, Scopes(everything))
			if err != nil {
				return nil, fmt.Errorf("%s: listing what exists: %w", p.Name(), err)
			}
			changes := diff(f, want, have, opts)
			if err := namesakes(ctx, p, f, changes); err != nil {
				return nil, fmt.Errorf("%s: looking for hosts made outside fleet: %w", p.Name(), err)
			}
			plan.Changes = append(plan.Changes, changes...)
		}
		for _, c := range plan.Changes {
			if c.Provider != "" {
				continue
			}
			if err := price(ctx, p, c, sources); err != nil {
				return nil, err
			}
			fill(c)
		}
	}
	sortChanges(plan.Changes)
	for _, c := range plan.Changes {
		plan.MonthlyCost.Before += c.MonthlyCostBefore
		plan.MonthlyCost.After += c.MonthlyCostAfter
	}
	for s := range sources {
		plan.PriceSources = append(plan.PriceSources, s)
	}
	sort.Strings(plan.PriceSources)
	return plan, nil
}

// fill copies identification from the resources into the change.
func fill(c *Change) {
	r := c.Want
	if r == nil {
		r = c.Have
	}
	c.Provider, c.Resource, c.Name, c.Scope, c.Machine = r.Provider, r.Kind, r.Name, r.Scope, r.Machine
}

func price(ctx context.Context, p Provider, c *Change, sources map[string]bool) error {
	cost := func(r *Resource) (float64, error) {
		if r == nil {
			return 0, nil
		}
		eur, src, err := p.MonthlyPrice(ctx, r)
		if err != nil {
			return 0, err
		}
		if src != "" && eur != 0 || strings.HasPrefix(src, "unknown") {
			sources[p.Name()+": "+src] = true
		}
		return eur, nil
	}
	var err error
	if c.MonthlyCostBefore, err = cost(c.Have); err != nil {
		return err
	}
	switch {
	case c.Action == Delete:
		c.MonthlyCostAfter = 0
	case c.Refused != "":
		c.MonthlyCostAfter = c.MonthlyCostBefore
	default:
		c.MonthlyCostAfter, err = cost(c.Want)
	}
	return err
}

// diff matches wanted and existing resources by key.
func diff(f *model.Fleet, want, have []*Resource, opts PlanOptions) []*Change {
	var out []*Change
	existing := map[string]*Resource{}
	for _, h := range have {
		existing[h.Key()] = h
	}
	wanted := map[string]bool{}
	for _, w := range want {
		wanted[w.Key()] = true
		h := existing[w.Key()]
		if h == nil {
			out = append(out, &Change{Action: Create, Want: w, Reason: createReason(f, w)})
			continue
		}
		out = append(out, compare(w, h, opts))
	}
	for _, h := range have {
		if !wanted[h.Key()] {
			out = append(out, &Change{Action: Delete, Have: h, Reason: deleteReason(f, h)})
		}
	}
	return out
}

// namesakes explains the creates of hosts whose name is taken by a host
// fleet did not make (by hand, Terraform, clan): the list is by label,
// so only a read by name (PlanAdoption's) finds it. The create stays in
// the plan, and apply fails on it (a *NamesakeError, never touching the
// host), but the plan says so beforehand, and what to do.
func namesakes(ctx context.Context, p Provider, f *model.Fleet, changes []*Change) error {
	for _, c := range changes {
		if c.Action != Create || c.Want.Machine == "" {
			continue
		}
		a, err := p.PlanAdoption(ctx, c.Want)
		var nf *NotFoundError
		var owned *OwnedError
		switch {
		case errors.As(err, &nf):
		case errors.As(err, &owned):
			c.Reason = fmt.Sprintf("%s of this name belongs to fleet %s: apply will fail on it; give machine %s another name",
				plural.Article(c.Want.Kind), owned.Fleet, c.Want.Machine)
		case err != nil:
			return err
		case !a.AlreadyOurs:
			c.Reason = fmt.Sprintf("%s of this name exists, made outside fleet (no fleet labels): apply will fail on it; fleet adopt %s takes it over",
				plural.Article(c.Want.Kind), c.Want.Machine)
		}
	}
	return nil
}

func createReason(f *model.Fleet, w *Resource) string {
	if w.Machine == "" {
		return "needed by the fleet's hosts"
	}
	return fmt.Sprintf("machine %s has no %s yet", w.Machine, w.Kind)
}

func deleteReason(f *model.Fleet, h *Resource) string {
	if h.Machine == "" {
		return "no longer needed by the fleet"
	}
	m := f.Machine(h.Machine)
	switch {
	case m == nil:
		return fmt.Sprintf("orphan: machine %s is no longer in the fleet", h.Machine)
	case m.Host == nil:
		return fmt.Sprintf("machine %s no longer has a cloud host", h.Machine)
	case !m.Host.Enabled:
		return fmt.Sprintf("machine %s is switched off (enabled = False): its configuration is kept, the host is not", h.Machine)
	case string(m.Host.Provider) != h.Provider:
		return fmt.Sprintf("machine %s moved to %s", h.Machine, m.Host.Provider)
	}
	return fmt.Sprintf("machine %s now wants its host elsewhere", h.Machine)
}

// compare decides between no-op, update and replace for a resource that
// exists and is wanted.
func compare(w, h *Resource, opts PlanOptions) *Change {
	c := &Change{Action: NoOp, Want: w, Have: h, Reason: "as wanted"}
	mutable := map[string]bool{}
	for _, k := range w.Mutable {
		mutable[k] = true
	}
	var updates, replaces []string
	keys := make([]string, 0, len(w.Spec))
	for k := range w.Spec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if want, got := w.Spec[k], h.Spec[k]; want != got {
			d := fmt.Sprintf("%s %s -> %s", k, orNone(got), orNone(want))
			if mutable[k] {
				updates = append(updates, d)
				c.Fields = append(c.Fields, k)
			} else {
				replaces = append(replaces, d)
			}
		}
	}
	if !sameLabels(w.Labels, h.Labels) {
		updates = append(updates, "labels "+labelDiff(h.Labels, w.Labels))
		c.Fields = append(c.Fields, "labels")
	}
	switch {
	case len(replaces) > 0:
		c.Action = Replace
		c.Reason = strings.Join(replaces, ", ") + ": the cloud cannot change this in place"
		if !opts.AllowReplace {
			c.Refused = "replacing deletes the host and its disk; run again with --allow-replace to do it"
		}
	case len(updates) > 0:
		c.Action = Update
		c.Reason = strings.Join(updates, ", ")
	}
	return c
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func sameLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func labelDiff(have, want map[string]string) string {
	var parts []string
	for k, v := range want {
		if hv, ok := have[k]; !ok {
			parts = append(parts, "+"+k+"="+v)
		} else if hv != v {
			parts = append(parts, k+"="+hv+"->"+v)
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			parts = append(parts, "-"+k)
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// sortChanges orders a plan: by provider, fleet-wide resources before
// machines' (the order they are created in), then by name.
func sortChanges(cs []*Change) {
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.Provider != b.Provider {
			return a.Provider < b.Provider
		}
		if (a.Machine == "") != (b.Machine == "") {
			return a.Machine == ""
		}
		if a.Resource != b.Resource {
			return a.Resource < b.Resource
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Scope < b.Scope
	})
}

// withToggles returns f with the hosts of the machines in enable switched
// on or off, and says which it switched.
func withToggles(f *model.Fleet, enable map[string]bool) (*model.Fleet, []string, error) {
	if len(enable) == 0 {
		return f, nil, nil
	}
	g := *f
	g.Machines = make([]*model.Machine, len(f.Machines))
	var toggled []string
	for i, m := range f.Machines {
		g.Machines[i] = m
		on, ok := enable[m.Name]
		if !ok {
			continue
		}
		if m.Host == nil {
			return nil, nil, fmt.Errorf("machine %s has no cloud host to switch %s", m.Name, onOff(on))
		}
		mm := *m
		h := *m.Host
		h.Enabled = on
		mm.Host = &h
		g.Machines[i] = &mm
		toggled = append(toggled, m.Name+"="+onOff(on))
	}
	for name := range enable {
		if f.Machine(name) == nil {
			return nil, nil, fmt.Errorf("no machine %q in the fleet", name)
		}
	}
	sort.Strings(toggled)
	return &g, toggled, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// allEnabled is f with every host switched on.
func allEnabled(f *model.Fleet) *model.Fleet {
	enable := map[string]bool{}
	for _, m := range f.Machines {
		if m.Host != nil {
			enable[m.Name] = true
		}
	}
	g, _, _ := withToggles(f, enable)
	return g
}
