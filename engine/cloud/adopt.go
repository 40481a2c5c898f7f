package cloud

import (
	"fmt"
	"slices"
	"sort"
)

// Adoption is what making an existing resource the fleet's does (fleet
// adopt, fleet's terraform import): a provider's PlanAdoption describes
// it, Adopt carries it out.
//
// Adopting sets the labels fleet puts on what it creates, and records
// what a plan compares but the cloud does not report (Recorded). Nothing
// else changes: the differences between the resource and its
// declaration are left to the next plan, which updates in place what
// can be (Difference.InPlace) and replaces the rest only with
// --allow-replace.
type Adoption struct {
	// Want is the resource as the fleet declares it (from Desired);
	// Have is the resource as it exists, before adopting.
	Want, Have *Resource
	// AlreadyOurs: Have carries the fleet's labels already; adopting
	// changes nothing.
	AlreadyOurs bool
	// Labels are the labels adopting sets: Want's, all of them. They
	// replace Have's, for fleet owns the label set of what it manages.
	Labels map[string]string
	// Dropped are Have's labels that adopting removes (keys not among
	// Labels), as "key=value", sorted.
	Dropped []string
	// Recorded are settings adopting writes on the resource because the
	// cloud does not report them and a plan compares them (GCE: the image
	// of an instance's boot disk), Spec key -> value. Without them the
	// next plan would see a difference and want the resource replaced.
	Recorded map[string]string
	// Differences are the Spec keys in which Have differs from Want,
	// sorted by key. Adopting leaves them as they are.
	Differences []Difference
}

// Difference is one setting in which an existing resource differs from
// its declaration.
type Difference struct {
	Key  string `json:"key"`
	Have string `json:"have"`
	Want string `json:"want"`
	// InPlace: the key is Mutable, and the next plan changes it in place.
	// Otherwise the plan replaces the resource (deleting it and its disk),
	// which it only does with --allow-replace.
	InPlace bool `json:"in_place"`
}

func (d Difference) String() string {
	return fmt.Sprintf("%s %s -> %s", d.Key, orNone(d.Have), orNone(d.Want))
}

// NewAdoption describes adopting have, which a provider found by want's
// name, as want: have's labels decide whether it is the fleet's already
// (AlreadyOurs), another fleet's (an *OwnedError: fleet never takes a
// resource from another fleet), or nobody's and so adoptable. The fleet
// is want's fleet label. Providers call it from PlanAdoption, then add
// what they record (Record).
func NewAdoption(want, have *Resource) (*Adoption, error) {
	fleet := want.Labels[LabelFleet]
	a := &Adoption{Want: want, Have: have, Labels: copyLabels(want.Labels), Recorded: map[string]string{}}
	if have.Ours(fleet) {
		a.AlreadyOurs = true
		return a, nil
	}
	if have.Labels[LabelManagedBy] == ManagedBy && have.Labels[LabelFleet] != "" {
		return nil, &OwnedError{Provider: have.Provider, Kind: have.Kind, Name: have.Name, Scope: have.Scope,
			Fleet: have.Labels[LabelFleet], Machine: have.Labels[LabelMachine]}
	}
	for k, v := range have.Labels {
		if _, ok := want.Labels[k]; !ok {
			a.Dropped = append(a.Dropped, k+"="+v)
		}
	}
	sort.Strings(a.Dropped)
	mutable := map[string]bool{}
	for _, k := range want.Mutable {
		mutable[k] = true
	}
	keys := make([]string, 0, len(want.Spec))
	for k := range want.Spec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if w, h := want.Spec[k], have.Spec[k]; w != h {
			a.Differences = append(a.Differences, Difference{Key: k, Have: h, Want: w, InPlace: mutable[k]})
		}
	}
	return a, nil
}

// Record notes that adopting writes value as the resource's Spec key
// (the cloud does not report it), which settles any difference in key.
func (a *Adoption) Record(key, value string) {
	a.Recorded[key] = value
	a.Differences = slices.DeleteFunc(a.Differences, func(d Difference) bool { return d.Key == key })
}

// Replaces reports whether the next plan would want the resource
// replaced: some difference cannot be changed in place.
func (a *Adoption) Replaces() bool {
	return slices.ContainsFunc(a.Differences, func(d Difference) bool { return !d.InPlace })
}

func copyLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}

// NotFoundError: there is no resource of the wanted name to adopt.
type NotFoundError struct {
	Provider, Kind, Name string
	// Where says where the provider looked: "project p, zone z", "the
	// project of HCLOUD_TOKEN".
	Where string
	// Elsewhere, if set, says where a resource of that name is instead
	// (another zone), which adopting does not reach.
	Elsewhere string
}

func (e *NotFoundError) Error() string {
	s := fmt.Sprintf("%s: no %s %q in %s", e.Provider, e.Kind, e.Name, e.Where)
	if e.Elsewhere != "" {
		s += "; " + e.Elsewhere
	}
	return s
}

// OwnedError: the resource carries managed-by=fleet for another fleet.
// fleet never takes a resource from another fleet.
type OwnedError struct {
	Provider, Kind, Name, Scope string
	// Fleet and Machine are the fleet and machine its labels name.
	Fleet, Machine string
}

func (e *OwnedError) Error() string {
	where := ""
	if e.Scope != "" {
		where = " in " + e.Scope
	}
	owner := "fleet " + e.Fleet
	if e.Machine != "" {
		owner += " (machine " + e.Machine + ")"
	}
	return fmt.Sprintf("%s %s %q%s belongs to %s (labels %s=%s, %s=%s): fleet will not take it from another fleet; "+
		"remove it from that fleet's file and relabel it by hand, or rename the machine",
		e.Provider, e.Kind, e.Name, where, owner, LabelManagedBy, ManagedBy, LabelFleet, e.Fleet)
}
