package main

import (
	"github.com/urfave/cli/v2"
)

func graphCommand() *cli.Command {
	return &cli.Command{
		Name:      "graph",
		Usage:     "print the fleet's dependency graph",
		ArgsUsage: "[FILE]",
		Description: `Prints the typed dependency graph: channels, inputs, overlays, features, users,
machines, hosts and secrets, with an edge from each node to what it depends on
(a feature depends on the overlays that make the packages it installs). A host
switched off (enabled = False) is marked: "switched off" in text, "disabled" in
JSON, dashed and grey in DOT, whose drawing also has a legend of the shapes and
edge styles.

  fleet graph fleet.star --format dot | dot -Tsvg > fleet.svg`,
		Flags: append(evalFlags(), choiceFlag("format", "text", "text", "dot", "json")),
		Action: func(c *cli.Context) error {
			format := c.String("format")
			l, err := load(c)
			if err != nil {
				return err
			}
			switch format {
			case "dot":
				return l.graph.WriteDOT(c.App.Writer)
			case "json":
				return l.graph.WriteJSON(c.App.Writer)
			}
			return l.graph.WriteText(c.App.Writer)
		},
	}
}
