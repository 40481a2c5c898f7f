package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fleet-nix/fleet/engine/cloud"
)

// The whole plan (secrets and machines after the cloud changes) is made
// by engine/apply (apply.Plan, apply.Whole, apply.MachineActions); this
// file prints it.

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
