package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/urfave/cli/v2"
)

// deployWiring is what one command line of fleet deploy hands the engine.
type deployWiring struct {
	opts     deploy.Options
	exec     deploy.ExecOptions
	machines []string
	dryRun   bool
	// events is what the executor's Events printed for one event.
	events string
}

// deployFlags runs `fleet deploy FILE args...` through the real app
// (permuteArgs, urfave/cli's parsing of the command's own flags), with
// its action replaced by one that builds the options the way the real
// one does (deployOptions, loadSelected, deployExecOptions) and runs
// nothing.
func deployFlags(t *testing.T, args ...string) (deployWiring, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := newApp(deps{getenv: func(string) string { return "" }}, strings.NewReader(""), &out, &errb)
	var w deployWiring
	found := false
	for _, cmd := range app.Commands {
		if cmd.Name != "deploy" {
			continue
		}
		found = true
		cmd.Action = func(c *cli.Context) error {
			opts, err := deployOptions(c)
			if err != nil {
				return err
			}
			_, _, machines, _, err := loadSelected(c)
			if err != nil {
				return err
			}
			for _, m := range machines {
				w.machines = append(w.machines, m.Name)
			}
			var ev bytes.Buffer
			c.App.Writer = &ev // what the events print
			exec, done := deployExecOptions(c, "LOGS")
			exec.Events(deploy.Event{Machine: "web", Step: "web/build", Action: "build", Kind: deploy.EventStarted})
			done()
			c.App.Writer = &out
			w.events = ev.String()
			exec.Events = nil
			w.opts, w.exec, w.dryRun = opts, exec, c.Bool("dry-run")
			return nil
		}
	}
	if !found {
		t.Fatal("the app has no deploy command")
	}
	file := filepath.Join(repoRoot, "fleet.star")
	argv := append([]string{"fleet", "deploy", file, "--out", t.TempDir()}, args...)
	code := exitOK
	if err := app.RunContext(context.Background(), permuteArgs(app, argv)); err != nil {
		code = exitError
		if _, ok := err.(usageError); ok {
			code = exitUsage
		}
		errb.WriteString(err.Error())
	}
	return w, code, errb.String()
}

// TestDeployFlagsReachTheEngine: each of fleet deploy's flags reaches the
// option it names, and nothing else changes.
func TestDeployFlagsReachTheEngine(t *testing.T) {
	all := []string{"argentum", "blackphos", "cinnabar", "electrum", "galena", "rosegold", "scheelite", "stibnite"}
	base, code, stderr := deployFlags(t)
	if code != exitOK {
		t.Fatalf("no flags: exit %d: %s", code, stderr)
	}
	// The defaults, as --help shows them (--eval-memory: FLEET_EVAL_MEMORY,
	// 4GiB in the tests, is 8 machines a batch).
	if base.opts.Goal != deploy.Switch || base.opts.BuildOn != "local" || base.opts.ConfirmTimeout != 30*time.Second || base.opts.OnlyChanged ||
		base.opts.EvalBatch != 8 || base.exec.Parallel != 10 || base.exec.FailFast || base.exec.LogDir != "LOGS" || base.dryRun {
		t.Fatalf("defaults: %+v %+v dry-run %v", base.opts, base.exec, base.dryRun)
	}
	if !reflect.DeepEqual(base.machines, all) {
		t.Fatalf("default selection: %v, want all machines", base.machines)
	}
	if strings.HasPrefix(base.events, "{") {
		t.Fatalf("without --json the events print as progress, not JSON: %q", base.events)
	}

	for _, tc := range []struct {
		args []string
		want func(w *deployWiring)
	}{
		{[]string{"--goal", "boot"}, func(w *deployWiring) { w.opts.Goal = deploy.Boot }},
		{[]string{"--goal=dry-activate"}, func(w *deployWiring) { w.opts.Goal = deploy.DryActivate }},
		{[]string{"--build-on", "target"}, func(w *deployWiring) { w.opts.BuildOn = "target" }},
		{[]string{"--confirm-timeout", "90s"}, func(w *deployWiring) { w.opts.ConfirmTimeout = 90 * time.Second }},
		{[]string{"--only-changed"}, func(w *deployWiring) { w.opts.OnlyChanged = true }},
		{[]string{"--parallel", "3"}, func(w *deployWiring) { w.exec.Parallel = 3 }},
		{[]string{"--batch", "3"}, func(w *deployWiring) { w.opts.EvalBatch = 3 }},
		{[]string{"--eval-memory", "1GiB"}, func(w *deployWiring) { w.opts.EvalBatch = 2 }},
		{[]string{"--eval-memory", "100MiB"}, func(w *deployWiring) { w.opts.EvalBatch = 1 }},
		{[]string{"--eval-memory", "1GiB", "--batch", "5"}, func(w *deployWiring) { w.opts.EvalBatch = 5 }},
		{[]string{"--fail-fast"}, func(w *deployWiring) { w.exec.FailFast = true }},
		{[]string{"--dry-run"}, func(w *deployWiring) { w.dryRun = true }},
		{[]string{"--json"}, func(w *deployWiring) {
			w.events = `{"machine":"web","step":"web/build","action":"build","kind":"started"}` + "\n"
		}},
		{[]string{"--on", "cinnabar", "--on", "r*"}, func(w *deployWiring) {
			w.machines = []string{"cinnabar", "rosegold"}
		}},
		{[]string{"--on", "@cloud", "--exclude", "galena", "--exclude", "electrum"}, func(w *deployWiring) {
			w.machines = []string{"cinnabar", "scheelite"}
		}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, code, stderr := deployFlags(t, tc.args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			want := base
			want.machines = append([]string(nil), base.machines...)
			tc.want(&want)
			if strings.HasPrefix(want.events, "{") {
				// JSON: compare the fields, not the bytes (time is added).
				var g, w map[string]any
				if err := json.Unmarshal([]byte(got.events), &g); err != nil {
					t.Fatalf("--json: events printed %q: %v", got.events, err)
				}
				json.Unmarshal([]byte(want.events), &w)
				for k, v := range w {
					if g[k] != v {
						t.Errorf("--json: event field %s = %v, want %v (%s)", k, g[k], v, got.events)
					}
				}
				got.events = want.events
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("fleet deploy %s:\n got %+v\nwant %+v", strings.Join(tc.args, " "), got, want)
			}
		})
	}

	// Values the flags refuse, before anything is loaded or run.
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"--build-on", "elsewhere"}, exitUsage, `--build-on "elsewhere": use local or target`},
		{[]string{"--confirm-timeout", "soon"}, exitUsage, "confirm-timeout"},
		{[]string{"--parallel", "many"}, exitUsage, "parallel"},
		{[]string{"--on", "nosuch"}, exitError, `no machine is called "nosuch"`},
		{[]string{"--on", "@cloud", "--exclude", "@cloud"}, exitError, "no machine selected (--on @cloud, --exclude @cloud)"},
	} {
		t.Run("refused "+strings.Join(tc.args, " "), func(t *testing.T) {
			_, code, stderr := deployFlags(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tc.code, stderr, tc.stderr)
			}
		})
	}
}
