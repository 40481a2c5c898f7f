package main

// PLACEHOLDER: replaced by the REPL work (issue 7).

import "github.com/urfave/cli/v2"

func replCommand(d deps) *cli.Command {
	return &cli.Command{Name: "repl", Usage: "explore a fleet interactively (not built yet)",
		Action: func(c *cli.Context) error { return usagef("repl: not built yet") }}
}
