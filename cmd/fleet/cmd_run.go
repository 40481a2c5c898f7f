package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plural"
	"github.com/fleet-nix/fleet/engine/secrets"
	"github.com/urfave/cli/v2"
)

func runCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "evaluate a fleet: a summary, the Nix tree, and the cloud plan",
		ArgsUsage: "[FILE]",
		Description: `Evaluates FILE (and what it loads and includes), checks the whole fleet and its
dependency graph, prints a summary (machines by class and host, features, overlays,
secrets), writes the Nix flake tree (as fleet nix does) and shows the cloud plan (as
fleet plan does; nothing is applied).`,
		Flags: append(evalFlags(), outFlag()),
		Action: func(c *cli.Context) error {
			l, files, err := loadTree(c)
			if err != nil {
				return err
			}
			writeSummary(c.App.Writer, l)
			if err := writeTree(c.App.Writer, outDir(c, l), files); err != nil {
				return err
			}
			// The cloud plan: what `fleet apply` would change.
			provs, done := d.clouds(c, l.fleet, c.App.ErrWriter)
			defer done()
			plan, err := cloud.MakePlan(c.Context, l.fleet, provs, cloud.PlanOptions{})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer)
			w, done := colourLines(c, c.App.Writer, planColour)
			defer done()
			writePlan(w, plan, false)
			return nil
		},
	}
}

// writeSummary prints the human summary of `fleet run`.
func writeSummary(w io.Writer, l *loaded) {
	f := l.fleet
	fmt.Fprintf(w, "fleet %s (%s): %s, %s, %s, %s, %s\n\n", f.Name, l.file,
		count(len(f.Machines), "machine"), count(len(f.Features), "feature"), count(len(f.Users), "user"),
		count(len(f.Overlays), "overlay"), count(len(f.Secrets), "secret"))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MACHINE\tCLASS\tSYSTEM\tHOST\tSTATE\tFEATURES")
	for _, class := range []model.Class{model.NixOS, model.Darwin} {
		for _, m := range f.Machines {
			if m.Class != class {
				continue
			}
			host, state := "-", "-"
			if h := m.Host; h != nil {
				host, state = describeHost(h), "on"
				if !h.Enabled {
					state = "off (enabled = False)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", m.Name, m.Class, m.System, host, state, len(m.Features))
		}
	}
	tw.Flush()
	fmt.Fprintln(w)

	names := make([]string, len(f.Features))
	for i, x := range f.Features {
		names[i] = x.Name
	}
	fmt.Fprintf(w, "features: %s\n", orNone(strings.Join(names, ", ")))
	fmt.Fprintf(w, "overlays: %s\n", orNone(overlayLayers(f.Overlays)))
	var shared, perMachine int
	for _, s := range f.Secrets {
		if s.Shared {
			shared++
		} else {
			perMachine++
		}
	}
	fmt.Fprintf(w, "secrets:  %d shared, %d per machine%s\n", shared, perMachine, secretsState(l.fleet))
	fmt.Fprintf(w, "graph:    %s, %s\n", count(len(l.graph.Nodes()), "node"), count(len(l.graph.Edges()), "edge"))
}

func describeHost(h *model.Host) string {
	switch {
	case h.Hetzner != nil:
		return fmt.Sprintf("hetzner %s %s", h.Hetzner.Type, h.Hetzner.Location)
	case h.GCP != nil:
		s := fmt.Sprintf("gcp %s %s", h.GCP.Type, h.GCP.Zone)
		if h.GCP.GPUs > 0 {
			s += fmt.Sprintf(" +%dx %s", h.GCP.GPUs, h.GCP.GPU)
		}
		return s
	}
	return string(h.Provider)
}

// overlayLayers counts overlay entries per layer, in layer order.
func overlayLayers(os []*model.Overlay) string {
	counts := map[model.OverlayKind]int{}
	for _, o := range os {
		counts[o.Kind]++
	}
	kinds := make([]model.OverlayKind, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].Layer() < kinds[j].Layer() })
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = count(counts[k], string(k))
	}
	return strings.Join(parts, ", ")
}

// count is plural.Count: "1 machine", "2 machines".
func count(n int, noun string) string { return plural.Count(n, noun) }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// secretsState says what `fleet secrets check` would: missing or stale
// files, without decrypting anything.
func secretsState(f *model.Fleet) string {
	if len(f.Secrets) == 0 {
		return ""
	}
	rep, err := checkSecrets(&secrets.Store{Root: f.Root}, f)
	if err != nil {
		return "; cannot check them: " + err.Error()
	}
	if rep.OK() {
		return "; all present"
	}
	var parts []string
	if n := len(rep.Missing) + len(rep.NeedsPrompt); n > 0 {
		parts = append(parts, count(n, "file")+" missing (fleet secrets generate)")
	}
	if n := len(rep.Stale); n > 0 {
		parts = append(parts, fmt.Sprintf("%d stale (fleet secrets rekey)", n))
	}
	if n := len(rep.Foreign) + len(rep.Corrupt) + len(rep.Failed); n > 0 {
		parts = append(parts, fmt.Sprintf("%d damaged or changed outside fleet (fleet secrets check)", n))
	}
	return "; " + strings.Join(parts, ", ")
}
