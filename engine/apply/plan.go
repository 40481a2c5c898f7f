package apply

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/fingerprint"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/secrets"
)

// PlanOptions adjust a plan.
type PlanOptions struct {
	// AllowReplace and Enable are cloud.PlanOptions'.
	AllowReplace bool
	Enable       map[string]bool
	// On keeps the cloud changes of the machines these select, and the
	// fleet-wide ones (fleet apply --on); empty keeps all.
	On []model.Selector
	// UpCommand is the command that switches m's host on, as a person
	// types it (a skipped machine's reason names it); nil: fleet up NAME.
	UpCommand func(m *model.Machine) string
	// NoDeploy is fleet apply --no-deploy: the machines that would be
	// installed or deployed are skipped, and the plan says why.
	NoDeploy bool
	// TreeDir is the folder the fleet's Nix tree is written to: with it,
	// each machine's fingerprint (on the tree fleet would write there
	// now, nothing written) is compared with its local deploy record
	// (engine/fingerprint), and the plan says unchanged or deploy. Empty:
	// no record is read, and those machines are unknown.
	TreeDir string
	// Tree is the tree fleet would write; nil: generated from the fleet.
	Tree *nixgen.Tree
}

// Plan is the whole plan of an apply: the cloud changes (cloud.MakePlan,
// restricted to opts.On), then the secret files and one action per
// machine (Whole). It reads the clouds and the secrets store and changes
// nothing.
func Plan(ctx context.Context, f *model.Fleet, providers []cloud.Provider, opts PlanOptions) (*cloud.Plan, error) {
	plan, err := cloud.MakePlan(ctx, f, providers, cloud.PlanOptions{AllowReplace: opts.AllowReplace, Enable: opts.Enable})
	if err != nil {
		return nil, err
	}
	if len(opts.On) > 0 {
		Restrict(plan, f, opts.On)
	}
	if err := Whole(f, plan, opts); err != nil {
		return nil, err
	}
	if opts.NoDeploy {
		for i := range plan.Machines {
			switch a := &plan.Machines[i]; a.Action {
			case cloud.MachineInstall, cloud.MachineDeploy:
				a.Action, a.Reason = cloud.MachineSkip, "--no-deploy changes the cloud only (otherwise "+a.Action+": "+a.Reason+")"
			}
		}
	}
	return plan, nil
}

// Restrict keeps the changes of the machines sels select, and the
// fleet-wide ones (ssh keys, firewalls).
func Restrict(plan *cloud.Plan, f *model.Fleet, sels []model.Selector) {
	keep := map[string]bool{}
	for _, m := range f.Select(sels...) {
		keep[m.Name] = true
	}
	out := plan.Changes[:0]
	for _, ch := range plan.Changes {
		if ch.Machine == "" || keep[ch.Machine] {
			out = append(out, ch)
		}
	}
	plan.Changes = out
}

// Whole adds to a cloud plan the rest of what fleet apply would do
// (issue 14, "one plan"): the secret files `fleet secrets check` finds
// missing, stale or damaged (it decrypts nothing, so no identity is
// needed), and one entry per machine (MachineActions, with what the
// deploy records say when opts.TreeDir is set).
func Whole(f *model.Fleet, plan *cloud.Plan, opts PlanOptions) error {
	rep, err := checkSecrets(f)
	if err != nil {
		return fmt.Errorf("checking the secrets: %w", err)
	}
	plan.Secrets = SecretActions(f, rep)
	var recorded []fingerprint.Status
	if opts.TreeDir != "" {
		recorded = DeployStatuses(f, opts.Tree, opts.TreeDir)
	}
	plan.Machines = MachineActions(f, plan, opts, recorded)
	return nil
}

// checkSecrets is secrets check with the host keys the store knows.
func checkSecrets(f *model.Fleet) (secrets.Report, error) {
	st := &secrets.Store{Root: f.Root}
	hostKeys, err := st.HostKeys(f)
	if err != nil {
		return secrets.Report{}, err
	}
	return st.Check(f, hostKeys)
}

// SecretActions lists the files of rep that are not in order, by action
// (generate, prompt, rekey, repair), each in the order check lists them.
func SecretActions(f *model.Fleet, rep secrets.Report) []cloud.SecretAction {
	prompted := map[string]bool{}
	for _, s := range f.Secrets {
		if s.Generator != nil && s.Generator.Kind == secrets.KindPrompt {
			prompted[s.Name] = true
		}
	}
	var gen, prompt, rekey, repair []cloud.SecretAction
	add := func(list *[]cloud.SecretAction, action string, x secrets.FileState, reason string) {
		machine := x.Owner
		if machine == secrets.SharedOwner {
			machine = ""
		}
		*list = append(*list, cloud.SecretAction{Action: action, Secret: x.Secret, Machine: machine, File: x.Path, Reason: reason})
	}
	for _, x := range append(slices.Clone(rep.Missing), rep.NeedsPrompt...) {
		if prompted[x.Secret] {
			add(&prompt, cloud.SecretPrompt, x, "missing, typed by a person (gen.prompt): fleet secrets generate asks on a terminal")
		} else {
			add(&gen, cloud.SecretGenerate, x, "missing: fleet secrets generate writes it")
		}
	}
	for _, x := range rep.Stale {
		added, removed := 0, 0
		have := map[string]bool{}
		for _, r := range x.Have {
			have[r] = true
		}
		for _, r := range x.Want {
			if !have[r] {
				added++
			}
		}
		removed = len(x.Have) - (len(x.Want) - added)
		add(&rekey, cloud.SecretRekey, x, fmt.Sprintf("recipients changed (%d added, %d removed): fleet secrets rekey re-encrypts it", added, removed))
	}
	for _, x := range rep.Foreign {
		add(&rekey, cloud.SecretRekey, x, x.Reason)
	}
	for _, x := range rep.Corrupt {
		add(&repair, cloud.SecretRepair, x, x.Reason+": nothing overwrites it; remove it (fleet secrets generate then writes a new one) or restore it")
	}
	for _, x := range rep.Failed {
		add(&repair, cloud.SecretRepair, x, x.Reason)
	}
	return slices.Concat(gen, prompt, rekey, repair)
}

// NoBuildReason is why a machine's action is unknown when nothing else
// decides it: a plan builds nothing and asks no machine what it runs.
const NoBuildReason = fingerprint.NoRecordReason

// MachineActions is one entry per machine, by name: install when the
// plan creates (or replaces) its host, skip when its host is switched
// off; otherwise what its deploy record says (recorded, from
// DeployStatuses, by machine name order; nil: unknown for all):
// unchanged when its configuration is the one last deployed from here,
// deploy naming what changed since, unknown without a record. The record
// is this computer's, not the machine's word: the reasons say so.
//
// opts.Enable (fleet up, down) switches hosts on or off as the plan's
// changes do; a machine opts.On leaves out is skipped (apply --on).
func MachineActions(f *model.Fleet, plan *cloud.Plan, opts PlanOptions, recorded []fingerprint.Status) []cloud.MachineAction {
	upCommand := opts.UpCommand
	if upCommand == nil {
		upCommand = func(m *model.Machine) string { return "fleet up " + m.Name }
	}
	hosts := map[string]*cloud.Change{}
	deleted := map[string]*cloud.Change{}
	for _, ch := range plan.Changes {
		switch {
		case ch.Machine == "":
		case ch.Want != nil:
			hosts[ch.Machine] = ch
		case ch.Action == cloud.Delete:
			deleted[ch.Machine] = ch
		}
	}
	selected := map[string]bool{}
	for _, m := range f.Select(opts.On...) {
		selected[m.Name] = true
	}
	byName := map[string]fingerprint.Status{}
	for _, st := range recorded {
		byName[st.Machine] = st
	}
	ms := slices.Clone(f.Machines)
	slices.SortFunc(ms, func(a, b *model.Machine) int { return strings.Compare(a.Name, b.Name) })
	var out []cloud.MachineAction
	for _, m := range ms {
		a := cloud.MachineAction{Machine: m.Name, Action: cloud.MachineUnknown, Reason: NoBuildReason}
		if st, ok := byName[m.Name]; ok {
			a.Action, a.Reason = recordedAction(st.Action), st.Reason
		}
		otherwise := NoBuildReason
		if a.Action != cloud.MachineUnknown {
			otherwise = a.Action + ": " + a.Reason
		}
		ch := hosts[m.Name]
		enabled := m.Host != nil && m.Host.Enabled
		if on, ok := opts.Enable[m.Name]; ok && m.Host != nil {
			enabled = on
		}
		switch {
		case len(opts.On) > 0 && !selected[m.Name]:
			a.Action, a.Reason = cloud.MachineSkip, "not selected by --on"
		case m.Host != nil && !enabled && deleted[m.Name] != nil:
			d := deleted[m.Name]
			a.Action = cloud.MachineSkip
			a.Reason = fmt.Sprintf("its %s %s is deleted (%s)", d.Provider, d.Resource, d.Reason)
		case m.Host != nil && !enabled:
			a.Action = cloud.MachineSkip
			a.Reason = "its host is switched off (enabled = False); " + upCommand(m) + " turns it on"
			if _, toggled := opts.Enable[m.Name]; toggled {
				a.Reason = "its host is switched off for this apply (fleet down)"
			}
		case ch != nil && ch.Refused != "" && m.Class == model.NixOS:
			a.Action = cloud.MachineSkip
			a.Reason = fmt.Sprintf("its %s %s is not %sd: %s", ch.Provider, ch.Resource, ch.Action, ch.Refused)
		case ch == nil || m.Class != model.NixOS:
		case ch.Action == cloud.Create && strings.Contains(ch.Reason, "apply will fail"):
			// A host of its name exists that is not the fleet's (adopt).
			a.Action = cloud.MachineUnknown
			a.Reason = fmt.Sprintf("its %s %s cannot be created (%s); otherwise %s", ch.Provider, ch.Resource, ch.Reason, otherwise)
		case ch.Action == cloud.Create && ch.Refused == "":
			a.Action = cloud.MachineInstall
			a.Reason = fmt.Sprintf("its %s %s is new: NixOS is installed on it (nixos-anywhere)", ch.Provider, ch.Resource)
		case ch.Action == cloud.Replace && ch.Refused == "":
			a.Action = cloud.MachineInstall
			a.Reason = fmt.Sprintf("its %s %s is replaced (%s): NixOS is installed on the new one (nixos-anywhere)", ch.Provider, ch.Resource, ch.Reason)
		case ch.Action == cloud.Unknown:
			a.Action = cloud.MachineUnknown
			a.Reason = fmt.Sprintf("its %s host was not compared with the cloud (no credentials): install if it does not exist; otherwise %s",
				ch.Provider, otherwise)
		}
		out = append(out, a)
	}
	return out
}

// recordedAction is the plan's word for a fingerprint.Status action.
func recordedAction(action string) string {
	switch action {
	case fingerprint.ActionUnchanged:
		return cloud.MachineUnchanged
	case fingerprint.ActionDeploy:
		return cloud.MachineDeploy
	}
	return cloud.MachineUnknown
}

// DeployStatuses are what the machines' deploy records say of their
// configurations as fleet would write tree (nil: generated from f) to
// treeDir now (nothing is written or built), one per machine in name
// order; unknown for all, saying why, when the tree or the records
// cannot be read.
func DeployStatuses(f *model.Fleet, tree *nixgen.Tree, treeDir string) []fingerprint.Status {
	ms := slices.Clone(f.Machines)
	slices.SortFunc(ms, func(a, b *model.Machine) int { return strings.Compare(a.Name, b.Name) })
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	sts, err := func() ([]fingerprint.Status, error) {
		t := tree
		if t == nil {
			var err error
			if t, err = nixgen.GenerateTree(f); err != nil {
				return nil, err
			}
		}
		recs, err := fingerprint.DefaultRecords(f.Root)
		if err != nil {
			return nil, err
		}
		return fingerprint.Statuses(treeDir, f, t, recs, names)
	}()
	if err != nil {
		sts = make([]fingerprint.Status, len(ms))
		for i := range sts {
			sts[i] = fingerprint.Status{Machine: names[i], Action: fingerprint.ActionUnknown,
				Reason: fmt.Sprintf("%s (its deploy record was not compared: %v)", NoBuildReason, err)}
		}
	}
	return sts
}
