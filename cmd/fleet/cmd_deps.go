package main

// PLACEHOLDER: replaced by the dependencies work (issue 7).

import "github.com/urfave/cli/v2"

func depsCommand() *cli.Command {
	return &cli.Command{Name: "deps", Usage: "pinned .star dependencies (not built yet)",
		Action: func(c *cli.Context) error { return usagef("deps: not built yet") }}
}

// depsFor returns the resolver of @name// loads for the fleet file, or
// nil when the fleet has no fleet.deps.
func depsFor(c *cli.Context, file string) (func(name string) (string, error), error) {
	return nil, nil
}
