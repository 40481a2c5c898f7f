package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/urfave/cli/v2"
)

// hostTargets finds where deploy, exec and diff reach the machines that
// have a cloud host and no target: root@ the public address of the host,
// as the cloud lists it now (a host switched off and on again comes back
// with a new address, so it is looked up each time, not remembered).
// The clouds are asked only when such a machine is selected.
//
// For --dry-run, a machine whose address cannot be found gets a
// placeholder target so that the plan still prints without network or
// credentials; otherwise each such machine is an error saying why.
func hostTargets(c *cli.Context, d deps, f *model.Fleet, machines []*model.Machine, dryRun bool, notes io.Writer) (map[string]string, error) {
	var need []*model.Machine
	for _, m := range machines {
		if m.Host != nil && m.Target == "" {
			need = append(need, m)
		}
	}
	if len(need) == 0 {
		return nil, nil
	}
	targets := map[string]string{}
	unreachable := map[string]string{}
	if d.providers != nil {
		provs, done := d.clouds(c, f, notes)
		defer done()
		plan, err := cloud.MakePlan(c.Context, f, provs, cloud.PlanOptions{})
		if err != nil {
			return nil, err
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
	for _, m := range need {
		if targets[m.Name] != "" {
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
		case !m.Host.Enabled:
			why = "its host is switched off (enabled = False): fleet up " + m.Name + " --file FILE switches it on"
		case unreachable[provider] != "":
			why = "the " + provider + " API could not be asked: " + unreachable[provider]
		case d.providers == nil:
			why = "no cloud to ask"
		}
		errs = append(errs, fmt.Errorf("machine %s (%s): deploys go to its %s host's public address, which is not known: %s; or set machine(target = \"root@host\")",
			m.Name, m.Pos, provider, why))
	}
	if len(placeholders) > 0 {
		fmt.Fprintf(notes, "note: the public addresses of the hosts of %s are not known here (no credentials, or no host yet): shown as placeholders\n", strings.Join(placeholders, ", "))
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.TrimSpace(errors.Join(errs...).Error()))
	}
	return targets, nil
}
