package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/fleet-nix/fleet/cmd/fleet/repl"
	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/apply"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func replCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "repl",
		Usage:     "explore a fleet interactively: its machines, features, Nix, graph and cloud plan",
		ArgsUsage: "[FILE]",
		Description: `Evaluates FILE (default: fleet.star when there is one) and starts a Starlark session
with its globals, the fleet builtins and these helpers in scope:

  machines(sel = "all")  features(sel = "all")  secrets(sel = "all")
  show(x)  nix(x)  deps(x)  rdeps(x)  plan()  reload()  help()

Expressions print their value; nix(...) and plan() print their text as it is. Every
statement has the --max-steps budget. Ctrl-C cancels a running statement (or clears the
line), Ctrl-D exits. On a terminal the history is kept in $FLEET_REPL_HISTORY, else
$XDG_STATE_HOME/fleet/repl_history (~/.local/state/fleet/repl_history), and TAB completes
names and attributes. A fleet file that does not evaluate starts an empty session on a
terminal (with the error shown): fix it and reload().

When standard input is not a terminal, statements are read line by line without prompts
(printf 'len(machines())\n' | fleet repl fleet.star): results go to standard output,
errors to standard error, and the exit code is 1 if any statement failed.`,
		Flags: evalFlags(),
		Action: func(c *cli.Context) error {
			file, err := fileArg(c)
			if err != nil {
				return err
			}
			// Without FILE and without a fleet.star here, the session
			// starts with no fleet.
			if file, err = fleetFile(c, file); err != nil && c.NArg() == 0 {
				file, err = "", nil
			}
			if err != nil {
				return err
			}
			memory, err := maxMemory(c)
			if err != nil {
				return err
			}
			// Ctrl-C belongs to the session: it cancels the statement
			// running, not the command. The command's context is
			// cancelled by the first SIGINT (main), so the session does
			// not inherit its cancellation.
			sig := make(chan os.Signal, 1)
			signal.Notify(sig, os.Interrupt)
			defer signal.Stop(sig)
			cfg := repl.Config{
				File: file,
				Options: func() (engine.Options, error) {
					return engineOptions(c, file)
				},
				MaxSteps:    c.Uint64("max-steps"),
				MaxMemory:   memory,
				Stdin:       c.App.Reader,
				Stdout:      c.App.Writer,
				Stderr:      c.App.ErrWriter,
				Terminal:    replTerminal(c.App.Reader),
				HistoryFile: repl.HistoryPath(os.Getenv),
				Interrupt:   sig,
			}
			if d.providers != nil {
				cfg.Plan = func(ctx context.Context, f *model.Fleet) (string, error) {
					provs, done := d.clouds(c, f, c.App.ErrWriter)
					defer done()
					plan, err := apply.Plan(ctx, f, provs, apply.PlanOptions{TreeDir: filepath.Join(f.Root, ".fleet", "nix")})
					if err != nil {
						return "", err
					}
					var b strings.Builder
					writePlan(&b, plan, true)
					writeWholePlan(&b, plan)
					return b.String(), nil
				}
			}
			err = repl.Run(context.WithoutCancel(c.Context), cfg)
			if errors.Is(err, repl.ErrFailed) {
				return fmt.Errorf("fleet repl: %v", err)
			}
			return err
		},
	}
}

// replTerminal reports whether r is a terminal a person types on: a
// character device is not enough (fleet repl < /dev/null reads a script).
func replTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
