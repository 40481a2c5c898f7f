package main

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/urfave/cli/v2"
)

// buildCommand builds systems without deploying them: what CI runs on
// every change (colmena build), and what a deploy would copy.
func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build the machines' systems here, without deploying them",
		ArgsUsage: "[FILE]",
		Description: `Writes the Nix tree and builds each selected machine's system (nix build of
nixosConfigurations.<m>.config.system.build.toplevel, or darwinConfigurations.<m>.system),
in parallel, then prints each machine's store path. Nothing is copied or activated and no
machine is contacted; one failing build does not stop the others (exit 1 and a summary).
A machine whose fingerprint (what its evaluation reads in the tree: see the README) has a
system in the local build cache that is still in the Nix store (nix path-info) is not
evaluated again: its cached path is printed. --rebuild evaluates and builds every machine.
The others are evaluated in batches, several machines per nix process, as many as
--eval-memory allows (default: half of the memory available, 512MiB a machine) or --batch
says; each machine's system is then built on its own.
A darwin system builds only on macOS or with a darwin builder configured in nix (nix.conf's
builders, or fleet(builders = ...), which builds use on top of nix.conf's).`,
		Flags: append(append(evalFlags(), evalBatchFlags()...), outFlag(),
			&cli.StringSliceFlag{Name: "on", Usage: "machines to build (name, @tag, glob, all; default all); repeatable"},
			&cli.StringSliceFlag{Name: "exclude", Usage: "machines to leave out; repeatable"},
			&cli.IntFlag{Name: "parallel", Value: 4, Usage: "builds at once (nix parallelises inside each too)"},
			rebuildFlag(),
			&cli.BoolFlag{Name: "dry-run", Usage: "print the commands and run none"},
		),
		Action: func(c *cli.Context) error {
			batch, err := evalBatch(c)
			if err != nil {
				return err
			}
			l, files, machines, tree, err := loadSelected(c)
			if err != nil {
				return err
			}
			var mu sync.Mutex
			paths := map[string]string{}
			runner, done, err := newRunner()
			if err != nil {
				return err
			}
			defer done()
			record := func(m, p string) {
				mu.Lock()
				paths[m] = p
				mu.Unlock()
			}
			opts := deploy.Options{Tree: tree, Runner: runner, EvalBatch: batch, Builders: l.fleet.Builders}
			if c.Bool("dry-run") {
				opts.Cached = dryRunCached(c, l, tree, machines)
				steps, err := deploy.BuildSteps(machines, opts, record)
				if err != nil {
					return err
				}
				writeDryRun(c.App.Writer, steps)
				return nil
			}
			if _, err := deploy.FlakeRef(tree); err != nil {
				return err
			}
			if err := checkNix(c, runner); err != nil {
				return err
			}
			if err := writeTree(c.App.ErrWriter, tree, files); err != nil {
				return err
			}
			lockNote(c.App.ErrWriter, tree)
			bc, err := newBuildCache(l, tree, c.App.ErrWriter)
			if err != nil {
				return err
			}
			opts.Cached, opts.Built = bc.cached(c, machines), bc.built
			steps, err := deploy.BuildSteps(machines, opts, record)
			if err != nil {
				return err
			}
			logDir, err := runLogDir(l.fleet.Root, "build-", time.Now())
			if err != nil {
				return err
			}
			events, finish := deploy.Progress(c.App.ErrWriter, isTerminal(c.App.ErrWriter))
			sum := deploy.Execute(c.Context, steps, deploy.ExecOptions{Parallel: c.Int("parallel"), LogDir: logDir, Events: events})
			finish()
			tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
			for _, m := range slices.Sorted(maps.Keys(paths)) {
				fmt.Fprintf(tw, "%s\t%s\n", m, paths[m])
			}
			tw.Flush()
			if sum.Failed() {
				sum.WriteTable(c.App.ErrWriter)
				return fmt.Errorf("building failed on some machines (logs: %s)", logDir)
			}
			return nil
		},
	}
}
