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
	"sync/atomic"
	"syscall"
)

// main cancels the command's context on SIGINT or SIGTERM, so that it
// stops its children and removes its plaintext folders, and then, if the
// command failed, exits as shells expect of a process ended by that
// signal: 128 + its number (130, 143). A command that succeeds anyway (the
// REPL, where Ctrl-C only stops the statement running) keeps exit 0.
// Further signals while it cleans up are caught too.
func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var got atomic.Int32
	go func() {
		for s := range sigs {
			if n, ok := s.(syscall.Signal); ok {
				got.CompareAndSwap(0, int32(n))
			}
			cancel()
		}
	}()
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	signal.Stop(sigs)
	cancel()
	if n := got.Load(); n != 0 && code != exitOK {
		code = 128 + int(n)
	}
	os.Exit(code)
}
