package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plural"
	"github.com/urfave/cli/v2"
)

// hostTargets finds where deploy, exec and diff reach the machines that
// have a cloud host and no target: root@ the public address of the host,
// as the cloud lists it now (a host switched off and on again comes back
// with a new address, so it is looked up each time, not remembered).
// The clouds are asked only when such a machine is selected.
//
// A machine whose host is switched off (enabled = False) and has no
// address is returned in off, to be skipped, when a pattern (@tag, glob,
// all) selected it; named exactly by --on, it is an error that says how
// to switch it on. A host switched on for an apply (fleet up) has an
// address, and is reached there like any other; when the cloud cannot be
// asked, a note says that the file's enabled = False is all there is to
// go by.
//
// For --dry-run, a machine whose address cannot be found gets a
// placeholder target so that the plan still prints without network or
// credentials; otherwise each such machine is an error saying why.
func hostTargets(c *cli.Context, d deps, l *loaded, machines []*model.Machine, dryRun bool, notes io.Writer) (targets map[string]string, off []switchedOff, err error) {
	f := l.fleet
	var need []*model.Machine
	for _, m := range machines {
		if m.Host != nil && m.Target == "" {
			need = append(need, m)
		}
	}
	if len(need) == 0 {
		return nil, nil, nil
	}
	targets = map[string]string{}
	unreachable := map[string]string{}
	if d.providers != nil {
		provs, done := d.clouds(c, f, notes)
		defer done()
		plan, err := cloud.MakePlan(c.Context, f, provs, cloud.PlanOptions{})
		if err != nil {
			return nil, nil, err
		}
		for _, u := range plan.Unreachable {
			unreachable[u.Provider] = u.Error
		}
		for _, ch := range plan.Changes {
			if ch.Machine == "" || ch.Have == nil {
				continue
			}
			switch {
			case ch.Have.IPv4 != "":
				targets[ch.Machine] = "root@" + ch.Have.IPv4
			case ch.Have.IPv6 != "":
				targets[ch.Machine] = "root@[" + ch.Have.IPv6 + "]"
			}
		}
	}
	var errs []error
	var placeholders []string
	unasked := map[string][]string{} // provider -> switched-off machines
	for _, m := range need {
		if targets[m.Name] != "" {
			continue
		}
		if !m.Host.Enabled {
			// Without the cloud, a host that fleet up switched on cannot
			// be told from one that is off: a note says so.
			provider := string(m.Host.Provider)
			if unreachable[provider] != "" || d.providers == nil {
				unasked[provider] = append(unasked[provider], m.Name)
			}
			if namedOn(c, m) {
				errs = append(errs, fmt.Errorf("machine %s (%s): its host is switched off (enabled = False), so it has no address: %s switches it on",
					m.Name, m.Pos, upCommand(l, m)))
			} else {
				off = append(off, switchedOff{m, "its host is switched off (enabled = False); " + upCommand(l, m) + " turns it on"})
			}
			continue
		}
		if dryRun {
			targets[m.Name] = deploy.AddressPlaceholder(m.Name)
			placeholders = append(placeholders, m.Name)
			continue
		}
		provider := string(m.Host.Provider)
		why := "the " + provider + " host does not exist or has no public address: run fleet apply (fleet hosts shows what runs)"
		switch {
		case unreachable[provider] != "":
			why = "the " + provider + " API could not be asked: " + unreachable[provider]
		case d.providers == nil:
			why = "no cloud to ask"
		}
		errs = append(errs, fmt.Errorf("machine %s (%s): deploys go to its %s host's public address, which is not known: %s; or set machine(target = \"root@host\")",
			m.Name, m.Pos, provider, why))
	}
	for _, provider := range slices.Sorted(maps.Keys(unasked)) {
		why := "no cloud to ask"
		if u := unreachable[provider]; u != "" {
			why = u
		}
		them := plural.Choose(len(unasked[provider]), "it", "them")
		fmt.Fprintf(notes, "note: the %s API could not be asked (%s): %s taken to be switched off, as the file says, though fleet up may have switched %s on\n",
			provider, why, strings.Join(unasked[provider], ", "), them)
	}
	if len(placeholders) > 0 {
		fmt.Fprintf(notes, "note: the public addresses of the hosts of %s are not known here (no credentials, or no host yet): shown as placeholders\n", strings.Join(placeholders, ", "))
	}
	if len(errs) > 0 {
		return nil, nil, errors.New(strings.TrimSpace(errors.Join(errs...).Error()))
	}
	return targets, off, nil
}

// switchedOff is a machine left out because its host is switched off,
// and the line that says so.
type switchedOff struct {
	m      *model.Machine
	reason string
}

// namedOn reports whether --on names m exactly (not by @tag, glob or all).
func namedOn(c *cli.Context, m *model.Machine) bool {
	for _, s := range c.StringSlice("on") {
		if sel := model.Selector(s); !sel.IsPattern() && sel.Match(m) {
			return true
		}
	}
	return false
}

// upCommand is the command that switches m's host on: fleet up, with
// --file unless the fleet file is up's default.
func upCommand(l *loaded, m *model.Machine) string {
	cmd := "fleet up " + m.Name
	if l.file != "fleet.star" {
		cmd += " --file " + deploy.ShellQuote(l.file)
	}
	return cmd
}

// reachable is hostTargets for deploy, exec and diff: it says, one line
// each on stderr (with events, as a JSON skip event instead), which
// machines are skipped because their host is switched off, and returns
// the others, which are not all skipped.
func reachable(c *cli.Context, d deps, l *loaded, machines []*model.Machine, dryRun bool, events func(deploy.Event)) ([]*model.Machine, map[string]string, error) {
	targets, off, err := hostTargets(c, d, l, machines, dryRun, c.App.ErrWriter)
	if err != nil {
		return nil, nil, err
	}
	if len(off) == 0 {
		return machines, targets, nil
	}
	for _, s := range off {
		if events != nil {
			events(deploy.Event{Time: time.Now(), Machine: s.m.Name, Kind: deploy.EventSkipped, Outcome: deploy.OutcomeSwitchedOff, Reason: s.reason})
		} else {
			fmt.Fprintf(c.App.ErrWriter, "skip %s: %s\n", s.m.Name, s.reason)
		}
	}
	machines = slices.DeleteFunc(slices.Clone(machines), func(m *model.Machine) bool {
		return slices.ContainsFunc(off, func(s switchedOff) bool { return s.m == m })
	})
	if len(machines) == 0 {
		return nil, nil, fmt.Errorf("nothing to %s: every machine selected has its host switched off (enabled = False)", c.Command.Name)
	}
	return machines, targets, nil
}
