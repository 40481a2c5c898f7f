// Package cloud plans and applies the fleet's hosts on cloud providers,
// with the cloud as the only source of truth.
//
// There is no state file. Every resource fleet creates carries the labels
// managed-by=fleet, fleet=<fleet name> and machine=<machine>; a plan
// starts by listing what exists with one label-selected, paginated list
// per resource type and scope (never one GET per machine), and compares
// it with what the fleet wants. Names are unique per project (Hetzner) or
// zone (GCE), so creating by name makes a repeated or interrupted apply
// converge instead of duplicating: whatever a failed run left behind is
// listed, by its labels, by the next plan.
//
// A resource with a wanted name that lacks fleet's labels belongs to
// someone else. It is never touched; the apply that runs into it fails
// with a NamesakeError saying so.
//
// Providers (engine/cloud/hetzner, engine/cloud/gcp) implement Provider:
// they turn the model's hosts into Resources, list, create, update and
// delete them, and price them. This package does the rest, the same for
// every cloud: the diff (plan.go), the bounded, retrying, reporting
// execution (apply.go) and the JSON of a plan.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// Labels fleet puts on everything it creates.
const (
	LabelManagedBy = "managed-by"
	LabelFleet     = "fleet"
	LabelMachine   = "machine"
	ManagedBy      = "fleet"
)

// FleetLabels are the labels of a resource of fleet f for machine m ("" for
// fleet-wide resources such as ssh keys), merged over extra.
func FleetLabels(fleet, machine string, extra map[string]string) map[string]string {
	out := make(map[string]string, len(extra)+3)
	for k, v := range extra {
		out[k] = v
	}
	out[LabelManagedBy] = ManagedBy
	out[LabelFleet] = fleet
	if machine != "" {
		out[LabelMachine] = machine
	}
	return out
}

// Resource is one cloud object, as the fleet wants it or as it exists.
type Resource struct {
	Provider string // "hetzner", "gcp"
	// Kind is the resource type: "server", "ssh_key", "firewall", "instance" ...
	Kind string
	// Name is unique within Scope; for a host it is the machine's name.
	Name string
	// Scope is where Name is unique: "" for a Hetzner project,
	// "<project>/<zone>" for a GCE instance, "<project>" for global GCE
	// resources. Listing is done once per scope.
	Scope string
	// Machine is the machine the resource belongs to ("" if fleet-wide).
	Machine string
	Labels  map[string]string
	// Spec holds the settings a plan compares, as strings: "type",
	// "location", "image", "disk_gb", "gpu", "power" ... A difference in a
	// key listed in Mutable is an in-place update; in any other key it
	// needs the resource replaced.
	Spec    map[string]string
	Mutable []string
	// Desired resources may carry what creating them needs beyond Spec
	// (ssh keys, user data, firewall rules); providers read it there.
	Extra map[string]any

	// Observed only.
	ID     string
	Status string // as the cloud says: running, off, TERMINATED ...
	IPv4   string
	IPv6   string
}

// Key identifies a resource across plan and cloud.
func (r *Resource) Key() string { return r.Provider + "/" + r.Kind + "/" + r.Scope + "/" + r.Name }

// Ours reports whether the resource carries fleet's labels for fleet.
func (r *Resource) Ours(fleet string) bool {
	return r.Labels[LabelManagedBy] == ManagedBy && r.Labels[LabelFleet] == fleet
}

// Provider is one cloud. Providers retry their own transient errors (with
// Retry and the Config's Backoff) and wait for the cloud's actions or
// operations before returning; Apply does neither, so attempts never
// multiply. Resource.Extra on desired resources belongs to the provider
// that made them.
type Provider interface {
	// Name is the provider's name in plans and labels: "hetzner", "gcp".
	Name() string
	// Credentials reports whether the provider can reach its API; a
	// *MissingCredentialsError names what to set. Desired and
	// MonthlyPrice work without credentials.
	Credentials() error
	// Desired returns the resources the fleet wants from this provider:
	// the hosts of enabled machines and what they need (ssh keys,
	// firewalls). Disabled hosts are not wanted.
	Desired(f *model.Fleet) ([]*Resource, error)
	// List returns every resource carrying labels fleet=<fleet> and
	// managed-by=fleet, with one label-selected, paginated list per
	// resource type and scope. scopes are the scopes to look in (the
	// provider adds those it always lists).
	List(ctx context.Context, fleet string, scopes []string) ([]*Resource, error)
	// Create creates want and waits until the cloud says it is done.
	// A namesake without fleet's labels is a *NamesakeError.
	Create(ctx context.Context, want *Resource) (*Resource, error)
	// Update changes the fields (Spec keys from Mutable, or "labels") of
	// have to match want, and waits.
	Update(ctx context.Context, want, have *Resource, fields []string) (*Resource, error)
	// Delete deletes have and waits.
	Delete(ctx context.Context, have *Resource) error
	// MonthlyPrice is what the resource costs per month in EUR, and where
	// the figure comes from ("Hetzner pricing API", "price table of 2026-11-25").
	MonthlyPrice(ctx context.Context, r *Resource) (eur float64, source string, err error)
}

// MissingCredentialsError says which variables a provider needs.
type MissingCredentialsError struct {
	Provider  string
	Variables []string // e.g. HCLOUD_TOKEN
	Hint      string
}

func (e *MissingCredentialsError) Error() string {
	s := fmt.Sprintf("%s: no credentials: set %s", e.Provider, strings.Join(e.Variables, " or "))
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// NamesakeError: a resource with the wanted name exists without fleet's
// labels. fleet never touches it.
type NamesakeError struct {
	Provider, Kind, Name, Scope string
}

func (e *NamesakeError) Error() string {
	where := ""
	if e.Scope != "" {
		where = " in " + e.Scope
	}
	return fmt.Sprintf("%s %s %q%s exists but was not created by this fleet (it lacks the labels %s=%s and %s=<fleet>): "+
		"fleet will not touch it; rename it in the fleet, delete that %s, or add the labels to adopt it",
		e.Provider, e.Kind, e.Name, where, LabelManagedBy, ManagedBy, LabelFleet, e.Kind)
}

// TransientError marks an error worth retrying (rate limits, 5xx,
// timeouts). Providers wrap such errors; Retry retries them.
type TransientError struct{ Err error }

func (e *TransientError) Error() string { return e.Err.Error() }
func (e *TransientError) Unwrap() error { return e.Err }

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// Scopes returns the distinct scopes of resources, sorted.
func Scopes(rs []*Resource) []string {
	set := map[string]bool{}
	for _, r := range rs {
		set[r.Scope] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
