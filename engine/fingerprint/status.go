package fingerprint

import (
	"fmt"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/outdir"
)

// What a machine's deploy record says of its configuration now
// (Status.Action): the words of fleet plan's machine actions.
const (
	// ActionUnchanged: its fingerprint now is the one last deployed from here.
	ActionUnchanged = "unchanged"
	// ActionDeploy: its fingerprint differs from the one last deployed.
	ActionDeploy = "deploy"
	// ActionUnknown: no usable record.
	ActionUnknown = "unknown"
)

// NoRecordReason is the reason of a machine without a deploy record.
const NoRecordReason = "fleet cannot tell without building or asking the machine"

// namedChanges is how many changed files a reason names before "and N more".
const namedChanges = 4

// Status is what a machine's deploy record says of its configuration now.
type Status struct {
	Machine string
	// Action is ActionUnchanged, ActionDeploy or ActionUnknown.
	Action string
	// Reason says why in words, with the date of the record.
	Reason string
	// Record is the machine's record; nil when it has none or it is
	// unreadable.
	Record *Record
	// Changes name what differs from the record (ActionDeploy), all of
	// them, in the order of the fingerprint: the tree's files, flake.lock,
	// the folder's other files, then what is no longer read.
	Changes []string
	// Warning is set when a record exists and cannot be used: the
	// machine is ActionUnknown, and the user should hear why.
	Warning string
}

// NewPlanned is New for a plan, which writes nothing: t is the tree fleet
// would write to dir, and the files Write would remove from dir (written
// by fleet earlier, no longer produced) are left out as Write would
// leave them out. flake.lock and the user's files are read as they are.
func NewPlanned(dir string, f *model.Fleet, t *nixgen.Tree) (*Set, error) {
	gone, err := outdir.Removes(dir, t.Files)
	if err != nil {
		return nil, fmt.Errorf("fingerprints of the Nix tree %s: %w", dir, err)
	}
	return newSet(dir, f, t, gone)
}

// Status compares machine's fingerprint now with its record in recs.
func (s *Set) Status(machine string, recs *Records) Status {
	st := Status{Machine: machine, Action: ActionUnknown, Reason: NoRecordReason}
	rec, err := recs.Get(machine)
	if err != nil {
		st.Reason = fmt.Sprintf("its %v; %s", err, NoRecordReason)
		st.Warning = fmt.Sprintf("%s: %v", machine, err)
		return st
	}
	if rec == nil {
		return st
	}
	head, in, err := s.inputs(machine)
	if err != nil {
		st.Reason = fmt.Sprintf("its fingerprint cannot be taken (%v); %s", err, NoRecordReason)
		return st
	}
	st.Record = rec
	when := rec.Time.UTC().Format("2006-01-02 15:04 UTC")
	if hashOf(head, in) == rec.Fingerprint {
		st.Action = ActionUnchanged
		st.Reason = fmt.Sprintf("runs %s, built from this configuration, as last deployed from here (%s)", rec.System, when)
		return st
	}
	st.Action = ActionDeploy
	st.Changes = changes(in, rec.Inputs)
	what := "its class or attribute" // the fingerprint's first lines
	if len(st.Changes) > 0 {
		what = Summarize(st.Changes, namedChanges)
	}
	st.Reason = fmt.Sprintf("changed since last deployed from here (%s): %s", when, what)
	return st
}

// changes names the inputs that differ between now and was: changed,
// added (read now, not then), removed (read then, not now), each name
// once.
func changes(now, was []Input) []string {
	old := map[string]Input{}
	for _, x := range was {
		old[x.Kind+" "+x.Path] = x
	}
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, x := range now {
		k := x.Kind + " " + x.Path
		o, ok := old[k]
		delete(old, k)
		switch {
		case !ok:
			add(InputName(x) + " (added)")
		case o.Sha256 != x.Sha256:
			add(InputName(x))
		}
	}
	for _, x := range was {
		if _, ok := old[x.Kind+" "+x.Path]; ok {
			add(InputName(x) + " (removed)")
		}
	}
	return out
}

// InputName names an input as a user knows it: a tree file by what
// fleet made it from (nixgen.Describe), another file of the folder as
// the user's.
func InputName(x Input) string {
	if x.Kind == KindOther {
		return x.Path + " (your file in the Nix tree's folder)"
	}
	return nixgen.Describe(x.Path)
}

// Summarize lists names, at most n of them, then "and N more".
func Summarize(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// Statuses compare each machine's configuration as fleet would write it
// to dir (t, see NewPlanned) with its deploy record in recs, in the
// order of machines. It writes and builds nothing.
func Statuses(dir string, f *model.Fleet, t *nixgen.Tree, recs *Records, machines []string) ([]Status, error) {
	s, err := NewPlanned(dir, f, t)
	if err != nil {
		return nil, err
	}
	out := make([]Status, len(machines))
	for i, m := range machines {
		out[i] = s.Status(m, recs)
	}
	return out, nil
}
