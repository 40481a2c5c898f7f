package main

// PLACEHOLDER: replaced by the fmt/lint work (issue 7).

import "github.com/urfave/cli/v2"

func fmtCommand() *cli.Command {
	return &cli.Command{Name: "fmt", Usage: "format .star files (not built yet)",
		Action: func(c *cli.Context) error { return usagef("fmt: not built yet") }}
}

func lintCommand() *cli.Command {
	return &cli.Command{Name: "lint", Usage: "report unused loads, symbols and features (not built yet)",
		Action: func(c *cli.Context) error { return usagef("lint: not built yet") }}
}
