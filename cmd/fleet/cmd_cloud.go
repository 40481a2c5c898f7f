package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/fleet-nix/fleet/engine/apply"
	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/gcp"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plaintext"
	"github.com/fleet-nix/fleet/engine/secrets"
	"github.com/urfave/cli/v2"
)

// providers are the clouds fleet knows, configured from an environment
// (HCLOUD_TOKEN, GOOGLE_APPLICATION_CREDENTIALS ...).
func providers(getenv func(string) string) []cloud.Provider {
	cfg := cloud.Config{Getenv: getenv, Backoff: cloud.DefaultBackoff}
	return []cloud.Provider{gcp.New(cfg), hetzner.New(cfg)}
}

func planFlags() []cli.Flag {
	return append(evalFlags(), &cli.BoolFlag{Name: "allow-replace", Usage: "let changes that replace a host (and its disk) go ahead"})
}

func planCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what apply would change in the clouds, the secret files to write, each machine's action, and the monthly cost",
		ArgsUsage: "[FILE]",
		Description: `Lists what exists (one label-selected list per resource type, no state file),
compares it with the fleet's hosts and prints every change with its reason and the
monthly cost before and after. Providers without credentials are not compared: their
wanted hosts are shown with their price, and the missing variables are named.

After the cloud changes come the secret files that are missing (to generate, or to be
typed by a person), stale (to rekey) or damaged, as fleet secrets check finds them
(nothing is decrypted), and one line per machine: install (its host is new), skip (its
host is switched off), unchanged or deploy (its configuration is, or is not, the one last
deployed from this computer: a local record, naming what changed; --out names the tree
folder deploy used, if not .fleet/nix), or unknown (fleet cannot tell without building or
asking it).
fleet apply, up and down show the same plan before they ask, and the REPL's plan() too.

--json prints the plan as JSON (see docs/plan-json.md; money in integer cents).

--detailed-exitcode, as terraform's: exit 0 when there is nothing to do (every change a
no-op, every secret file in order, no machine to deploy), 2 when there are changes (secret
files and machines to deploy too), 1 on an error, including a provider that could not be
compared (the plan is printed first). With it, a usage error exits 1 too.`,
		Flags: append(planFlags(), outFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the plan as JSON"},
			&cli.BoolFlag{Name: "detailed-exitcode", Usage: "exit 0 if nothing would change, 2 if something would, 1 on errors"}),
		Action: func(c *cli.Context) error {
			l, err := load(c)
			if err != nil {
				return err
			}
			provs, done := d.clouds(c, l.fleet, c.App.ErrWriter)
			defer done()
			plan, err := apply.Plan(c.Context, l.fleet, provs, apply.PlanOptions{AllowReplace: c.Bool("allow-replace"),
				UpCommand: func(m *model.Machine) string { return upCommand(l, m) }, TreeDir: outDir(c, l), Tree: l.tree})
			if err != nil {
				return err
			}
			if c.Bool("json") {
				if err := writeJSON(c.App.Writer, plan); err != nil {
					return err
				}
			} else {
				w, done := colourLines(c, c.App.Writer, planColour)
				writePlan(w, plan, true)
				writeWholePlan(w, plan)
				done()
			}
			if c.Bool("detailed-exitcode") {
				return planExit(plan)
			}
			return nil
		},
	}
}

// exitCode ends a command with that exit code and no message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitChanges is plan --detailed-exitcode's "there are changes".
const exitChanges exitCode = 2

// planExit is plan --detailed-exitcode's verdict: nil when every change
// is a no-op and every secret file is in order, exitChanges when some
// are not (a refused replace too: the cloud differs from the fleet; a
// secret file to generate, type, rekey or repair), an error when a
// provider could not be compared, as then nobody knows. Machines count
// through their hosts and through deploy (a changed configuration, from
// the local deploy records); unknown and unchanged count for nothing.
func planExit(plan *cloud.Plan) error {
	changes := len(plan.Secrets) > 0 || plan.MachineChanges()[cloud.MachineDeploy] > 0
	for _, ch := range plan.Changes {
		switch ch.Action {
		case cloud.NoOp:
		case cloud.Unknown:
			var why []string
			for _, u := range plan.Unreachable {
				why = append(why, u.Error)
			}
			return fmt.Errorf("plan: not every cloud was compared, so whether anything would change is unknown: %s", strings.Join(why, "; "))
		default:
			changes = true
		}
	}
	if changes {
		return exitChanges
	}
	return nil
}

// detailedExitcode reports whether the command line asks for plan
// --detailed-exitcode, under which a usage error exits 1, not 2.
func detailedExitcode(args []string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "detailed-exitcode" {
			continue
		}
		if b, err := strconv.ParseBool(value); hasValue && err == nil && !b {
			continue
		}
		return true
	}
	return false
}

func applyFlags() []cli.Flag {
	return append(append(planFlags(), evalBatchFlags()...),
		&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "apply without asking (required when stdin is not a terminal)"},
		&cli.StringSliceFlag{Name: "on", Usage: "only change the hosts of these machines (name, @tag, glob, all); repeatable"},
		&cli.IntFlag{Name: "parallel", Value: 10, Usage: "changes in flight at once"},
		&cli.BoolFlag{Name: "no-deploy", Usage: "change the cloud only: install nothing on new hosts, deploy nothing to the others"},
		rebuildFlag(),
		&cli.StringFlag{Name: "identity", Aliases: []string{"i"}, EnvVars: []string{"FLEET_AGE_IDENTITY"},
			Usage: "age identity that decrypts the new hosts' generated ssh host keys"},
		outFlag(),
		&cli.BoolFlag{Name: "dry-run", Usage: "print the whole graph (every step, what it needs, what it runs) and run nothing"},
		&cli.BoolFlag{Name: "json", Usage: "print a stream of JSON events (one per line) instead of progress; the plan goes to stderr"},
	)
}

func applyCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "apply",
		Usage:     "create, update and delete the fleet's cloud hosts, then install or deploy them",
		ArgsUsage: "[FILE]",
		Description: `Makes the whole plan (as fleet plan shows it), asks for confirmation of the cloud
changes (or --yes), and carries it out as one graph of steps in one executor (--parallel
steps at once), with one progress view, one log folder (.fleet/logs/apply-*) and one
summary table:
  - the cloud changes: fleet-wide resources (ssh keys, firewalls) first, then the hosts,
    then fleet-wide resources no longer needed deleted; retrying rate limits. A failed
    change does not stop the others, and skips only the steps that need it.
  - the secret files the new hosts need (their generated ssh host keys, before their
    installs; no identity is needed to generate). Files typed by a person (gen.prompt)
    are left for fleet secrets generate on a terminal. Then the Nix tree is written
    (it names the files that now exist); every build and install needs it.
  - NixOS installed on each host created (nixos-anywhere at the address the create
    returned, with the machine's ssh host key, decrypted with --identity).
  - every other running host deployed where its system changed, after the fleet-wide
    changes (as fleet deploy --only-changed: hosts already running it are left alone).
    A machine whose fingerprint has a system in the build cache is not evaluated again
    (--rebuild evaluates all), and each machine deployed is recorded, so that fleet plan
    says unchanged or deploy for it. Machines are evaluated several per nix process, as
    fleet deploy does (--eval-memory, --batch).
Each machine moves on as soon as its own steps are done. Creation is by unique name, so
running apply again after a failure or Ctrl-C converges. --no-deploy changes the cloud
only. --dry-run prints the plan and the whole graph (every step, what it needs, what it
runs; cloud steps name the API call) and changes nothing. --json prints the steps' events
as fleet deploy --json does (docs/deploy-json.md), the plan going to standard error.
The exit code is 1 when anything failed.`,
		Flags: applyFlags(),
		Action: func(c *cli.Context) error {
			return applyWith(c, d, c.Args().Slice(), nil)
		},
	}
}

func toggleCommand(d deps, on bool) *cli.Command {
	name, verb := "down", "off"
	if on {
		name, verb = "up", "on"
	}
	return &cli.Command{
		Name:      name,
		Usage:     fmt.Sprintf("switch the hosts of toggled machines %s for this apply, without editing the file", verb),
		ArgsUsage: "MACHINE...",
		Description: fmt.Sprintf(`Applies the fleet as if the machines' hosts said enabled = %s, and says so. The fleet
file is not changed: the next plain apply goes back to what it says.`, map[bool]string{true: "True", false: "False"}[on]),
		Flags: append(applyFlags(), &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Value: "fleet.star", Usage: "the fleet file"}),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("%s: name the machines to switch %s", name, verb)
			}
			enable := map[string]bool{}
			for _, m := range c.Args().Slice() {
				enable[m] = on
			}
			return applyWith(c, d, []string{c.String("file")}, enable)
		},
	}
}

// applyWith is apply, up and down: plan (with toggles), confirm, and run
// the plan's one graph (engine/apply); see apply_run.go.
func applyWith(c *cli.Context, d deps, args []string, enable map[string]bool) error {
	return runApply(c, d, args, enable)
}

// hostKeyFiles puts a machine's generated ssh host key where nixos-anywhere
// copies it (--extra-files <dir>/etc/ssh/...), decrypted with the admin
// identity into a private folder that cleanup removes. A machine without a
// generated host key gets none (NixOS makes one on first boot).
func hostKeyFiles(c *cli.Context, f *model.Fleet) func(m *model.Machine) (string, func(), error) {
	sweepPlaintext(c.App.ErrWriter)
	return func(m *model.Machine) (string, func(), error) {
		s := f.Secret(m.HostKeySecret)
		if s == nil {
			return "", func() {}, nil
		}
		ids, err := loadIdentities(c)
		if err != nil {
			return "", nil, fmt.Errorf("machine %s: its host key must be decrypted for the install: %w", m.Name, err)
		}
		dir, err := plaintext.MkdirTemp("fleet-extra-files-")
		if err != nil {
			return "", nil, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		st := &secrets.Store{Root: f.Root}
		sshDir := filepath.Join(dir, "etc", "ssh")
		if err := os.MkdirAll(sshDir, 0o755); err != nil {
			cleanup()
			return "", nil, err
		}
		for _, file := range s.Files {
			var data []byte
			if file.Secret {
				data, err = st.Read(secrets.FilePath(s, m.Name, file), ids)
			} else {
				data, err = os.ReadFile(filepath.Join(f.Root, filepath.FromSlash(secrets.FilePath(s, m.Name, file))))
			}
			if err != nil {
				cleanup()
				return "", nil, fmt.Errorf("machine %s: host key: %w", m.Name, err)
			}
			name, mode := "ssh_host_ed25519_key", os.FileMode(0o600)
			if !file.Secret {
				name, mode = "ssh_host_ed25519_key.pub", 0o644
			}
			if err := os.WriteFile(filepath.Join(sshDir, name), data, mode); err != nil {
				cleanup()
				return "", nil, err
			}
		}
		return dir, cleanup, nil
	}
}

// loadFile is load for commands whose FILE is not their only argument.
func loadFile(c *cli.Context, args []string) (*loaded, error) {
	if len(args) > 1 {
		return nil, usagef("%s: takes one FILE, got %s", c.Command.Name, strings.Join(args, " "))
	}
	return loadPath(c, strings.Join(args, ""))
}

// isTerminal reports whether r (a reader or a writer) is an interactive terminal.
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// writePlan prints a plan for people; no-ops are counted, not listed,
// unless all is set.
func writePlan(w io.Writer, plan *cloud.Plan, all bool) {
	fmt.Fprintf(w, "plan for fleet %s (monthly cost in EUR):\n", plan.Fleet)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	noops := 0
	for _, ch := range plan.Changes {
		if ch.Action == cloud.NoOp && !all {
			noops++
			continue
		}
		mark := map[cloud.Action]string{cloud.Create: "+", cloud.Update: "~", cloud.Replace: "!", cloud.Delete: "-", cloud.NoOp: "=", cloud.Unknown: "?"}[ch.Action]
		action := string(ch.Action)
		if ch.Refused != "" {
			action += " (refused)"
		}
		where := ch.Name
		if ch.Scope != "" {
			where += " (" + ch.Scope + ")"
		}
		reason := ch.Reason
		switch {
		case ch.Action == cloud.Unknown:
			reason = "not compared: no credentials (see below)"
		case ch.Refused != "":
			reason += "; " + ch.Refused
		}
		// The reason is the last cell, so long ones do not widen the table.
		cost := ch.Cents()
		fmt.Fprintf(tw, "  %s %s\t%s %s\t%s\t%s -> %s\t%s\n", mark, action, ch.Provider, ch.Resource, where,
			euros(cost.Before), euros(cost.After), reason)
	}
	tw.Flush()
	if noops > 0 {
		fmt.Fprintf(w, "  %s as wanted\n", count(noops, "resource"))
	}
	// The total is the sum of the lines as shown (docs/plan-json.md).
	total := plan.Cents()
	fmt.Fprintf(w, "monthly cost: %s -> %s EUR\n", euros(total.Before), euros(total.After))
	for _, u := range plan.Unreachable {
		fmt.Fprintf(w, "%s was not compared with the cloud: %s\n", u.Provider, strings.TrimPrefix(u.Error, u.Provider+": "))
	}
	for _, s := range plan.PriceSources {
		fmt.Fprintf(w, "prices: %s\n", s)
	}
}

// euros shows cents as euros with two decimals.
func euros(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

func hostsCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "hosts",
		Usage:     "list the fleet's cloud hosts: what they are, where, whether they run, their address and cost",
		ArgsUsage: "[FILE]",
		Description: `One line per machine with a host: provider, type, Hetzner location or GCE zone, the
cloud's status (absent if there is none, unknown without credentials), public IPv4 and
monthly cost in EUR. --json prints them as JSON (see docs/plan-json.md).`,
		Flags: append(evalFlags(), &cli.BoolFlag{Name: "json", Usage: "print the hosts as JSON"}),
		Action: func(c *cli.Context) error {
			l, err := load(c)
			if err != nil {
				return err
			}
			provs, done := d.clouds(c, l.fleet, c.App.ErrWriter)
			defer done()
			plan, err := cloud.MakePlan(c.Context, l.fleet, provs, cloud.PlanOptions{})
			if err != nil {
				return err
			}
			hosts := listHosts(l.fleet, plan)
			if c.Bool("json") {
				return writeJSON(c.App.Writer, hostsJSON{Version: 1, Fleet: l.fleet.Name, Currency: "EUR", Hosts: hosts})
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "MACHINE\tPROVIDER\tTYPE\tPLACE\tSTATUS\tIP\tMONTHLY EUR")
			for _, h := range hosts {
				typ, status, ip := h.Type, h.Status, h.IPv4
				if h.GPUs > 0 {
					typ += fmt.Sprintf("+%dx%s", h.GPUs, h.GPU)
				}
				if status == "unknown" {
					status = "unknown (no credentials)"
				}
				if !h.Enabled {
					status += " (enabled = False)"
				}
				if ip == "" {
					ip = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Machine, h.Provider, typ, h.Place, status, ip, euros(h.MonthlyCost))
			}
			return tw.Flush()
		},
	}
}

// hostsJSON is fleet hosts --json, as docs/plan-json.md describes it.
type hostsJSON struct {
	Version  int        `json:"version"`
	Fleet    string     `json:"fleet"`
	Currency string     `json:"currency"`
	Hosts    []hostInfo `json:"hosts"`
}

// hostInfo is one line of fleet hosts.
type hostInfo struct {
	Machine     string `json:"machine"`
	Provider    string `json:"provider"`
	Type        string `json:"type"`
	GPU         string `json:"gpu,omitempty"`
	GPUs        int    `json:"gpus,omitempty"`
	Place       string `json:"place"`
	Enabled     bool   `json:"enabled"`
	Status      string `json:"status"` // absent, unknown, or the cloud's
	IPv4        string `json:"ipv4,omitempty"`
	MonthlyCost int64  `json:"monthly_cost_cents"`
}

// listHosts describes the host of every machine that has one, by machine
// name, from what the plan found.
func listHosts(f *model.Fleet, plan *cloud.Plan) []hostInfo {
	byMachine := map[string]*cloud.Change{}
	for _, ch := range plan.Changes {
		if ch.Machine != "" {
			byMachine[ch.Machine] = ch
		}
	}
	hosts := []hostInfo{}
	for _, m := range f.Machines {
		if m.Host == nil {
			continue
		}
		h := hostInfo{Machine: m.Name, Provider: string(m.Host.Provider), Enabled: m.Host.Enabled, Status: "absent"}
		if hz := m.Host.Hetzner; hz != nil {
			h.Type, h.Place = hz.Type, hz.Location
		} else {
			h.Type, h.Place = m.Host.GCP.Type, m.Host.GCP.Zone
			if m.Host.GCP.GPUs > 0 {
				h.GPU, h.GPUs = m.Host.GCP.GPU, m.Host.GCP.GPUs
			}
		}
		if ch := byMachine[m.Name]; ch != nil {
			switch {
			case ch.Action == cloud.Unknown:
				h.Status = "unknown"
				h.MonthlyCost = ch.Cents().After
			case ch.Have != nil:
				h.Status, h.IPv4 = ch.Have.Status, ch.Have.IPv4
				h.MonthlyCost = ch.Cents().Before
			}
		}
		hosts = append(hosts, h)
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Machine < hosts[j].Machine })
	return hosts
}
