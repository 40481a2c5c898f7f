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
// with a NamesakeError saying so. A host made before the fleet (by hand,
// Terraform, clan) becomes the fleet's only when asked to: adopting it
// (fleet adopt; Provider.PlanAdoption and Adopt, adopt.go) sets the
// labels, after which plans see it like any host fleet created.
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
	// PlanAdoption looks up the resource want names (a host from Desired:
	// its Kind, Name and Scope), whatever labels it has, with one read by
	// name: a Hetzner server in the project of the token, a GCE instance
	// in want's project and zone. It changes nothing, and says what
	// adopting the resource as want would do (NewAdoption): nothing if
	// it is the fleet's already (AlreadyOurs), else the labels it sets
	// and drops, what it records that the cloud does not report, and how
	// the resource differs from want. None of that name is a
	// *NotFoundError saying where the provider looked; one labelled for
	// another fleet is an *OwnedError. Kinds other than hosts cannot be
	// adopted.
	PlanAdoption(ctx context.Context, want *Resource) (*Adoption, error)
	// Adopt carries out an adoption PlanAdoption described, on the
	// resource it found (a.Have, by ID or by name and fingerprint): it
	// sets a.Labels (replacing all of the resource's labels) and writes
	// a.Recorded, and waits. Nothing else changes: the differences are
	// the next plan's. It returns the resource as it is after; an
	// adoption of what is AlreadyOurs changes nothing and returns a.Have.
	Adopt(ctx context.Context, a *Adoption) (*Resource, error)
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
	// Machine is the machine whose host it is ("" for fleet-wide
	// resources): such a host can be adopted with fleet adopt.
	Machine string
}

func (e *NamesakeError) Error() string {
	where := ""
	if e.Scope != "" {
		where = " in " + e.Scope
	}
	adopt := "or add the labels to adopt it"
	if e.Machine != "" {
		adopt = "or adopt it: fleet adopt FILE " + e.Machine
	}
	return fmt.Sprintf("%s %s %q%s exists but was not created by this fleet (it lacks the labels %s=%s and %s=<fleet>): "+
		"fleet will not touch it; rename it in the fleet, delete that %s, %s",
		e.Provider, e.Kind, e.Name, where, LabelManagedBy, ManagedBy, LabelFleet, e.Kind, adopt)
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
