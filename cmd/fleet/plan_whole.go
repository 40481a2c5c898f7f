package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/fingerprint"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/secrets"
)

// wholePlan adds to a cloud plan the rest of what fleet apply would do
// (issue 14, "one plan"): the secret files `fleet secrets check` finds
// missing, stale or damaged (it decrypts nothing, so no identity is
// needed), and one entry per machine.
func wholePlan(l *loaded, plan *cloud.Plan) error {
	st := &secrets.Store{Root: l.fleet.Root}
	rep, err := checkSecrets(st, l.fleet)
	if err != nil {
		return fmt.Errorf("checking the secrets: %w", err)
	}
	plan.Secrets = secretActions(l.fleet, rep)
	plan.Machines = machineActions(l, plan)
	return nil
}

// secretActions lists the files of rep that are not in order, by action
// (generate, prompt, rekey, repair), each in the order check lists them.
func secretActions(f *model.Fleet, rep secrets.Report) []cloud.SecretAction {
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

// noBuildReason is why a machine's action is unknown when nothing else
// decides it: fleet plan builds nothing and asks no machine what it runs.
const noBuildReason = fingerprint.NoRecordReason

// machineActions is one entry per machine, by name: install when the
// plan creates (or replaces) its host, skip when its host is switched
// off; otherwise what its deploy record says (fingerprint.Statuses):
// unchanged when its configuration is the one last deployed from here,
// deploy naming what changed since, unknown without a record. The record
// is this computer's, not the machine's word: the reasons say so.
func machineActions(l *loaded, plan *cloud.Plan) []cloud.MachineAction {
	hosts := map[string]*cloud.Change{}
	for _, ch := range plan.Changes {
		if ch.Machine != "" && ch.Want != nil {
			hosts[ch.Machine] = ch
		}
	}
	ms := slices.Clone(l.fleet.Machines)
	slices.SortFunc(ms, func(a, b *model.Machine) int { return strings.Compare(a.Name, b.Name) })
	recorded := deployStatuses(l, ms)
	var out []cloud.MachineAction
	for i, m := range ms {
		a := cloud.MachineAction{Machine: m.Name, Action: recordedAction(recorded[i].Action), Reason: recorded[i].Reason}
		otherwise := noBuildReason
		if a.Action != cloud.MachineUnknown {
			otherwise = a.Action + ": " + a.Reason
		}
		ch := hosts[m.Name]
		switch {
		case m.Host != nil && !m.Host.Enabled:
			a.Action = cloud.MachineSkip
			a.Reason = "its host is switched off (enabled = False); " + upCommand(l, m) + " turns it on"
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

// deployStatuses are what the machines' deploy records say of their
// configurations as fleet would write them to the default tree folder
// now (nothing is written or built); unknown for all when the tree or
// the records cannot be read.
func deployStatuses(l *loaded, ms []*model.Machine) []fingerprint.Status {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	sts, err := func() ([]fingerprint.Status, error) {
		t := l.tree
		if t == nil {
			var err error
			if t, err = nixgen.GenerateTree(l.fleet); err != nil {
				return nil, err
			}
		}
		recs, err := fingerprint.DefaultRecords(l.fleet.Root)
		if err != nil {
			return nil, err
		}
		return fingerprint.Statuses(defaultOutDir(l), l.fleet, t, recs, names)
	}()
	if err != nil {
		sts = make([]fingerprint.Status, len(ms))
		for i := range sts {
			sts[i] = fingerprint.Status{Machine: names[i], Action: fingerprint.ActionUnknown,
				Reason: fmt.Sprintf("%s (its deploy record was not compared: %v)", noBuildReason, err)}
		}
	}
	return sts
}

// writeWholePlan prints the secrets and machines of a plan after its
// cloud changes.
func writeWholePlan(w io.Writer, plan *cloud.Plan) {
	if plan.Machines == nil {
		return
	}
	n := plan.SecretChanges()
	var parts []string
	for _, k := range []struct{ action, words string }{
		{cloud.SecretGenerate, "to generate"}, {cloud.SecretPrompt, "to be typed by a person"},
		{cloud.SecretRekey, "to rekey"}, {cloud.SecretRepair, "damaged, to repair by hand"},
	} {
		switch {
		case n[k.action] == 0:
		case len(parts) == 0:
			parts = append(parts, count(n[k.action], "file")+" "+k.words)
		default:
			parts = append(parts, fmt.Sprintf("%d %s", n[k.action], k.words))
		}
	}
	if len(parts) == 0 {
		fmt.Fprintln(w, "secrets: all present, encrypted to the current recipients")
	} else {
		fmt.Fprintf(w, "secrets: %s\n", strings.Join(parts, ", "))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, s := range plan.Secrets {
		mark := map[string]string{cloud.SecretGenerate: "+", cloud.SecretPrompt: "+", cloud.SecretRekey: "~", cloud.SecretRepair: "!"}[s.Action]
		fmt.Fprintf(tw, "  %s %s\t%s\t%s\n", mark, s.Action, s.File, s.Reason)
	}
	tw.Flush()
	fmt.Fprintln(w, "machines:")
	for _, m := range plan.Machines {
		mark := map[string]string{cloud.MachineInstall: "+", cloud.MachineDeploy: "~", cloud.MachineUnchanged: "=", cloud.MachineUnknown: "?", cloud.MachineSkip: "."}[m.Action]
		fmt.Fprintf(tw, "  %s %s\t%s\t%s\n", mark, m.Action, m.Machine, m.Reason)
	}
	tw.Flush()
}
