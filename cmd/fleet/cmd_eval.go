package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/urfave/cli/v2"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "evaluate a fleet and print its model",
		ArgsUsage: "[FILE]",
		Description: `Prints every declaration with the position it was declared at. With --json, the
whole model as deterministic JSON (same fleet, same bytes): Nix constructs such as
nix.expr appear as {"__nix": "expr", ...} objects.`,
		Flags: append(evalFlags(), &cli.BoolFlag{Name: "json", Usage: "print the model as JSON"}),
		Action: func(c *cli.Context) error {
			l, err := load(c)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, l.fleet)
			}
			writeModelText(c.App.Writer, l.fleet)
			return nil
		},
	}
}

// writeModelText lists declarations, one per line, with positions.
func writeModelText(w io.Writer, f *model.Fleet) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Names, positions and details come from the .star files: their
	// control characters are shown escaped (model.Printable), so that they
	// can neither act on the terminal nor break the columns.
	row := func(kind, name string, pos model.Pos, detail string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", kind, model.Printable(name), model.Printable(pos.String()), model.Printable(detail))
	}
	row("fleet", f.Name, f.Pos, f.Domain)
	for _, c := range f.Channels {
		row("channel", c.Name, c.Pos, c.URL)
	}
	for _, i := range f.Inputs {
		row("input", i.Name, i.Pos, i.URL)
	}
	for _, o := range f.Overlays {
		row("overlay."+string(o.Kind), o.Name, o.Pos, o.Reason)
	}
	for _, x := range f.Features {
		row("feature", x.Name, x.Pos, strings.Join(x.Requires, ", "))
	}
	for _, u := range f.Users {
		row("user", u.Name, u.Pos, strings.Join(u.Home, ", "))
	}
	for _, m := range f.Machines {
		row("machine", m.Name, m.Pos, m.System+" "+strings.Join(m.Features, ", "))
	}
	for _, s := range f.Secrets {
		row("secret", s.Name, s.Pos, s.Generator.Kind+" -> "+strings.Join(s.Machines, ", "))
	}
	tw.Flush()
}
