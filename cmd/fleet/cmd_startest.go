package main

// PLACEHOLDER: replaced by the fleet test work (issue 7).

import "github.com/urfave/cli/v2"

func testCommand() *cli.Command {
	return &cli.Command{Name: "test", Usage: "run *_test.star tests (not built yet)",
		Action: func(c *cli.Context) error { return usagef("test: not built yet") }}
}
