package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fleet-nix/fleet/engine/apply"
	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/urfave/cli/v2"
)

// runApply is apply, up and down: the whole plan (apply.Plan), shown;
// its one graph (apply.New), printed by --dry-run or, once confirmed,
// run by one executor with one progress view (or --json events), one
// log folder and one summary table.
func runApply(c *cli.Context, d deps, args []string, enable map[string]bool) error {
	on, err := parseSelectors("--on", c.StringSlice("on"))
	if err != nil {
		return err
	}
	batch, err := evalBatch(c) // usage errors, before anything is evaluated
	if err != nil {
		return err
	}
	l, err := loadFile(c, args)
	if err != nil {
		return err
	}
	if l.tree == nil {
		if l.tree, err = nixgen.GenerateTree(l.fleet); err != nil {
			return err
		}
	}
	provs, done := d.clouds(c, l.fleet, c.App.ErrWriter)
	defer done()
	plan, err := apply.Plan(c.Context, l.fleet, provs, apply.PlanOptions{AllowReplace: c.Bool("allow-replace"), Enable: enable, On: on,
		UpCommand: func(m *model.Machine) string { return upCommand(l, m) }, NoDeploy: c.Bool("no-deploy"),
		TreeDir: outDir(c, l), Tree: l.tree})
	if err != nil {
		return err
	}
	jsonOut, dryRun := c.Bool("json"), c.Bool("dry-run")
	w := c.App.Writer
	if jsonOut && !dryRun {
		w = c.App.ErrWriter // stdout is the JSON events' alone
	}
	for _, t := range plan.Toggled {
		name, state, _ := strings.Cut(t, "=")
		fmt.Fprintf(w, "switching %s %s for this apply (%s is unchanged)\n", name, state, l.file)
	}
	pw, done := colourLines(c, w, planColour)
	writePlan(pw, plan, false)
	writeWholePlan(pw, plan)
	done()

	tree, err := filepath.Abs(outDir(c, l))
	if err != nil {
		return err
	}
	runner, closeRunner, err := newRunner()
	if err != nil {
		return err
	}
	defer closeRunner()
	ids, _ := loadIdentities(c) // only gen.command secrets with depends need them
	var mu sync.Mutex           // changes end concurrently; their lines must not interleave
	progressLines := !jsonOut && !isTerminal(w)
	dopts := deploy.Options{Tree: tree, Goal: deploy.Switch, Runner: runner, ExtraFiles: hostKeyFiles(c, l.fleet), EvalBatch: batch}
	// The build cache and the deploy records, as fleet deploy uses them: a
	// cache that cannot be read costs evaluations, nothing more.
	bc, err := newBuildCache(l, tree, c.App.ErrWriter)
	if err == nil {
		dopts.Cached, dopts.Built, dopts.Deployed = bc.cached(c, l.fleet.Machines), bc.built, bc.deployed
	} else {
		fmt.Fprintf(c.App.ErrWriter, "warning: the build cache is not used: %v\n", err)
		bc = nil
	}
	g, err := apply.New(l.fleet, plan, nil, apply.Options{
		Deploy:    dopts,
		Providers: provs, NoDeploy: c.Bool("no-deploy"), Identities: ids,
		CloudDone: func(e cloud.Event) {
			if e.Done && progressLines {
				mu.Lock()
				defer mu.Unlock()
				writeCloudDone(w, e)
			}
		},
		HostChanged: func(machine string) {
			if bc != nil {
				bc.hostChanged(machine)
			}
		},
		// After the secrets generation: the tree names the secret
		// files that exist, and the new host keys as recipients.
		WriteTree: func(ctx context.Context, out io.Writer) error {
			t, err := nixgen.GenerateTree(l.fleet)
			if err != nil {
				return err
			}
			if err := writeTree(out, tree, t.Files); err != nil {
				return err
			}
			lockNote(out, tree)
			if bc != nil {
				if err := bc.retake(l, tree, t); err != nil {
					fmt.Fprintf(out, "warning: fingerprints not taken again after the generation (%v): fleet plan may say deploy for machines this run deploys\n", err)
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	if dryRun {
		if err := deploy.Validate(g.Steps); err != nil {
			return err
		}
		writeGraph(c.App.Writer, g.Steps)
		if apply.Unreached(plan) != nil {
			var names []string
			for _, u := range plan.Unreachable {
				names = append(names, u.Provider)
			}
			fmt.Fprintf(c.App.Writer, "not in the graph: the hosts on %s, not compared with the cloud (see above); with credentials their steps are shown\n", strings.Join(names, " and "))
		}
		return nil
	}
	n := len(g.Cloud)
	if n == 0 {
		fmt.Fprintln(w, "no cloud change to apply")
	} else if !c.Bool("yes") {
		if !isTerminal(c.App.Reader) {
			return fmt.Errorf("refusing to apply %s without --yes: standard input is not a terminal to ask on", count(n, "change"))
		}
		fmt.Fprintf(w, "apply %s? [y/N] ", count(n, "change"))
		answer, _ := bufio.NewReader(c.App.Reader).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			return fmt.Errorf("not applied")
		}
	}
	for _, note := range g.Notes {
		fmt.Fprintln(w, note)
	}
	if len(g.Install) > 0 {
		fmt.Fprintf(w, "installing NixOS on the new hosts: %s\n", strings.Join(g.Install, ", "))
	}
	if len(g.Deploy) > 0 {
		fmt.Fprintf(w, "deploying where the system changed: %s\n", strings.Join(g.Deploy, ", "))
	}
	if len(g.Steps) == 0 {
		return apply.Unreached(plan)
	}
	if len(g.Install)+len(g.Deploy) > 0 {
		if !g.TreeStep { // else the graph writes it, after the generation
			if err := writeTree(w, tree, l.tree.Files); err != nil {
				return err
			}
			lockNote(c.App.ErrWriter, tree)
		}
		if err := checkNix(c, runner); err != nil {
			return err
		}
	}
	logDir, err := runLogDir(l.fleet.Root, "apply-", time.Now())
	if err != nil {
		return err
	}
	events, finish := deploy.Progress(w, isTerminal(w))
	if progressLines {
		// A cloud change's own line (writeCloudDone) says how it
		// ended, with the host's address: its step's lines would
		// repeat it.
		// The cloud lines are written from the steps' goroutines:
		// the progress lines take the same lock.
		lines := events
		events = func(e deploy.Event) {
			if e.Kind == deploy.EventDone || !g.CloudStep(e.Step) {
				mu.Lock()
				defer mu.Unlock()
				lines(e)
			}
		}
	}
	if jsonOut {
		events, finish = deploy.JSONEvents(c.App.Writer), func() {}
	}
	res := g.Run(c.Context, deploy.ExecOptions{Parallel: c.Int("parallel"), LogDir: logDir, Events: events})
	finish()
	if n > 0 {
		failed := res.Cloud.Failed()
		fmt.Fprintf(w, "applied %d of %s\n", len(res.Cloud.Outcomes)-len(failed), count(len(res.Cloud.Outcomes), "change"))
	}
	if !jsonOut {
		tw, done := colourLines(c, w, outcomeColour)
		res.Summary.WriteTable(tw)
		done()
		fmt.Fprintf(w, "logs: %s\n", logDir)
	}
	return res.Err(plan)
}

// writeCloudDone is the line of a cloud change that ended.
func writeCloudDone(w io.Writer, e cloud.Event) {
	ch := e.Change
	if e.Err != nil {
		fmt.Fprintf(w, "%s %s %s: %s failed after %s: %v\n", ch.Provider, ch.Resource, ch.Name, ch.Action, e.Duration.Round(100e6), e.Err)
		return
	}
	ip := ""
	if e.Result != nil && e.Result.IPv4 != "" {
		ip = " (" + e.Result.IPv4 + ")"
	}
	fmt.Fprintf(w, "%s %s %s: %s done in %s%s\n", ch.Provider, ch.Resource, ch.Name, ch.Action, e.Duration.Round(100e6), ip)
}

// writeGraph prints a graph for --dry-run: every step, in the order
// given, with what it needs, what it comes after and what it runs.
func writeGraph(w io.Writer, steps []deploy.Step) {
	fmt.Fprintf(w, "graph (%s; nothing runs):\n", count(len(steps), "step"))
	for _, s := range steps {
		fmt.Fprintf(w, "%s\n", s.ID)
		if len(s.Needs) > 0 {
			fmt.Fprintf(w, "  needs: %s\n", strings.Join(s.Needs, ", "))
		}
		if len(s.After) > 0 {
			fmt.Fprintf(w, "  after: %s (whether they succeed or not)\n", strings.Join(s.After, ", "))
		}
		for _, cmd := range s.Commands {
			fmt.Fprintf(w, "  $ %s\n", cmd)
		}
	}
}
