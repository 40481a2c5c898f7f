// Command fleet turns a Starlark description of a fleet of machines into
// Nix configurations, cloud changes and deploys.
//
// This package is only the command line: flags, output and exit codes.
// Everything it shows comes from the engine and its lowerings; run() is
// separate from main() so tests drive the real CLI with their own
// arguments and writers.
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
