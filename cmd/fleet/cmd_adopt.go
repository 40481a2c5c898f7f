package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/urfave/cli/v2"
)

func adoptCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "adopt",
		Usage:     "make existing cloud hosts the fleet's, as terraform import does: set fleet's labels on them",
		ArgsUsage: "[FILE] MACHINE... | --terraform STATE [FILE] [MACHINE...]",
		Description: `For hosts made before the fleet (by hand, Terraform, clan): apply refuses to touch a
host of a machine's name that lacks fleet's labels. adopt looks each machine's host up
by name in its cloud (a Hetzner server in the project of the token, a GCE instance in
the host's project and zone), shows what adopting it does, asks for confirmation (or
--yes), and sets the labels: managed-by=fleet, fleet=<fleet>, machine=<machine> and the
host's declared labels. Its other labels are dropped, for fleet owns the label set of
what it manages. GCE does not report the image an instance was made from: the declared
one is recorded on it (metadata fleet-image). Nothing else changes. The differences
between the host and its declaration are listed, and the next plan shows them: changed
in place, or a replacement, which deletes the host and its disk and needs
--allow-replace (declare what the host has to keep it).

MACHINE is a name, @tag, glob or all; a pattern skips machines without an enabled host.
A host that already carries the fleet's labels is left alone; one labelled for another
fleet is refused. A machine switched off (enabled = False) is refused: the next apply
would delete its host.

--terraform STATE adopts the hosts a Terraform state has: STATE is a terraform.tfstate
(format version 4) or what terraform show -json prints (- reads standard input). Its
hcloud_server and google_compute_instance resources, in child modules too, are matched
to machines by their name attribute, and those machines' hosts are adopted in one go as
above (MACHINE, if given, narrows the machines to choose from). The state only chooses:
the cloud is still asked, and a host whose id there differs from the state's is not
adopted. Resources the fleet does not declare are listed as not in the fleet, and
machines with a host but no resource in the state as such; neither is touched. Terraform
still manages what it adopted: remove the resources from its state (terraform state rm)
so that it does not change or destroy the hosts fleet now manages.`,
		Flags: append(evalFlags(),
			&cli.StringFlag{Name: "terraform", Usage: "adopt the fleet's hosts that the Terraform state `STATE` has (a terraform.tfstate, or terraform show -json output; - reads stdin)", TakesFile: true},
			&cli.BoolFlag{Name: "yes", Aliases: []string{"y"}, Usage: "adopt without asking (required when stdin is not a terminal)"},
			&cli.StringFlag{Name: "identity", Aliases: []string{"i"}, EnvVars: []string{"FLEET_AGE_IDENTITY"},
				Usage: "age identity that decrypts the clouds' credentials, if fleet(credentials = ...) names them"},
		),
		Action: func(c *cli.Context) error { return adopt(c, d) },
	}
}

// adoptee is a machine whose host adopt looks for, and what it found.
type adoptee struct {
	m    *model.Machine
	p    cloud.Provider
	want *cloud.Resource
	a    *cloud.Adoption
	err  error
}

func (h *adoptee) label() string {
	if h.want == nil {
		return "machine " + h.m.Name
	}
	s := h.want.Provider + " " + h.want.Kind + " " + h.want.Name
	if h.want.Scope != "" {
		s += " in " + h.want.Scope
	}
	return s
}

func adopt(c *cli.Context, d deps) error {
	if c.IsSet("terraform") {
		return adoptTerraform(c, d, c.String("terraform"))
	}
	file, names := splitFile(c.Args().Slice())
	if len(names) == 0 {
		return usagef("adopt: name the machines whose hosts to adopt: fleet adopt [FILE] MACHINE...")
	}
	l, err := loadPath(c, file)
	if err != nil {
		return err
	}
	machines, err := adoptMachines(c.App.Writer, l, names)
	if err != nil {
		return err
	}
	provs, done := d.clouds(c, l.fleet, c.App.ErrWriter)
	defer done()
	hosts, err := adoptWanted(l.fleet, provs, machines)
	if err != nil {
		return err
	}

	return adoptHosts(c, l, hosts, nil, nil)
}

// adoptHosts plans adopting each host, shows it, asks once and adopts
// the hosts that are not the fleet's yet. check, if set, vets each host
// found before it is shown (fleet adopt --terraform compares ids); a
// host it fails is not adopted. refused are hosts not adopted before
// any cloud was asked, as "where: machine m: why"; they and every
// failure make the error.
func adoptHosts(c *cli.Context, l *loaded, hosts []*adoptee, check func(*adoptee) error, refused []string) error {
	w := c.App.Writer
	fmt.Fprintf(w, "adopting into fleet %s:\n", l.fleet.Name)
	var todo []*adoptee
	for _, h := range hosts {
		if h.err == nil {
			if h.err = h.p.Credentials(); h.err == nil {
				h.a, h.err = h.p.PlanAdoption(c.Context, h.want)
			}
		}
		if h.err == nil && check != nil {
			h.err = check(h)
		}
		if h.err != nil {
			fmt.Fprintf(w, "%s: cannot adopt: %v\n", h.label(), h.err)
			h.err = fmt.Errorf("%s: machine %s: %w", h.m.Pos, h.m.Name, h.err)
			continue
		}
		writeAdoption(w, h)
		if !h.a.AlreadyOurs {
			todo = append(todo, h)
		}
	}
	if len(todo) > 0 {
		if err := confirmAdopt(c, len(todo)); err != nil {
			return err
		}
		for _, h := range todo {
			if _, err := h.p.Adopt(c.Context, h.a); err != nil {
				h.err = fmt.Errorf("%s: machine %s: %w", h.m.Pos, h.m.Name, err)
				fmt.Fprintf(w, "%s: adopting failed: %v\n", h.label(), err)
				continue
			}
			fmt.Fprintf(w, "%s: adopted\n", h.label())
		}
	}
	failed := slices.Clone(refused)
	for _, h := range hosts {
		if h.err != nil {
			failed = append(failed, h.err.Error())
		}
	}
	adopted := len(todo)
	for _, h := range todo {
		if h.err != nil {
			adopted--
		}
	}
	switch {
	case adopted > 0:
		fmt.Fprintf(w, "adopted %s: fleet plan %s shows what the next apply changes on them\n", count(adopted, "host"), l.file)
	case len(failed) == 0:
		fmt.Fprintln(w, "nothing to adopt")
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s not adopted:\n  %s", count(len(failed), "host"), strings.Join(failed, "\n  "))
	}
	return nil
}

// adoptMachines resolves the MACHINE arguments. A machine named outright
// must exist and have an enabled cloud host; a pattern (@tag, glob, all)
// skips, with a note, the machines it matches that have none.
func adoptMachines(w io.Writer, l *loaded, args []string) ([]*model.Machine, error) {
	f := l.fleet
	var names []string
	for _, m := range f.Machines {
		names = append(names, m.Name)
	}
	seen := map[string]bool{}
	var out []*model.Machine
	var errs []error
	for _, arg := range args {
		sel := model.Selector(arg)
		if err := sel.Validate(); err != nil {
			return nil, usagef("adopt: %v", err)
		}
		if !sel.IsPattern() {
			m := f.Machine(arg)
			switch {
			case m == nil:
				errs = append(errs, fmt.Errorf("%s: no machine %q in the fleet%s", l.file, arg, builtins.DidYouMean(arg, names)))
			case m.Host == nil:
				errs = append(errs, fmt.Errorf("%s: machine %s has no cloud host to adopt (host = hetzner.server(...) or gcp.instance(...) declares one)", m.Pos, m.Name))
			case !m.Host.Enabled:
				errs = append(errs, fmt.Errorf("%s: machine %s: its host is switched off (enabled = False), so the fleet wants no host for it "+
					"and the next apply would delete one it adopted: switch it on in %s first", m.Host.Pos, m.Name, l.file))
			case !seen[m.Name]:
				seen[m.Name] = true
				out = append(out, m)
			}
			continue
		}
		n := 0
		for _, m := range f.Select(sel) {
			switch {
			case m.Host == nil:
				continue
			case !m.Host.Enabled:
				fmt.Fprintf(w, "skipping %s: its host is switched off (enabled = False)\n", m.Name)
				continue
			}
			n++
			if !seen[m.Name] {
				seen[m.Name] = true
				out = append(out, m)
			}
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("%s: %s selects no machine with an enabled cloud host", l.file, arg))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// adoptWanted pairs each machine with its provider and the host it
// wants (from the provider's Desired).
func adoptWanted(f *model.Fleet, provs []cloud.Provider, machines []*model.Machine) ([]*adoptee, error) {
	byName := map[string]cloud.Provider{}
	for _, p := range provs {
		byName[p.Name()] = p
	}
	desired := map[string][]*cloud.Resource{}
	var out []*adoptee
	for _, m := range machines {
		h := &adoptee{m: m, p: byName[string(m.Host.Provider)]}
		out = append(out, h)
		if h.p == nil {
			h.err = fmt.Errorf("no provider %q", m.Host.Provider)
			continue
		}
		rs, ok := desired[h.p.Name()]
		if !ok {
			var err error
			if rs, err = h.p.Desired(f); err != nil {
				return nil, err
			}
			desired[h.p.Name()] = rs
		}
		for _, r := range rs {
			if r.Machine == m.Name {
				h.want = r
			}
		}
		if h.want == nil {
			h.err = fmt.Errorf("%s wants no host for it", h.p.Name())
		}
	}
	return out, nil
}

// writeAdoption shows what adopting a host does.
func writeAdoption(w io.Writer, h *adoptee) {
	a := h.a
	if a.AlreadyOurs {
		fmt.Fprintf(w, "%s: already managed by fleet %s; nothing to do\n", h.label(), a.Want.Labels[cloud.LabelFleet])
		return
	}
	found := []string{"found"}
	if a.Have.ID != "" {
		found = append(found, "id "+a.Have.ID)
	}
	if a.Have.Status != "" {
		found = append(found, a.Have.Status)
	}
	if a.Have.IPv4 != "" {
		found = append(found, a.Have.IPv4)
	}
	fmt.Fprintf(w, "%s: %s\n", h.label(), strings.Join(found, ", "))
	var set []string
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		kv := k + "=" + a.Labels[k]
		switch old, ok := a.Have.Labels[k]; {
		case !ok:
		case old != a.Labels[k]:
			kv += " (was " + old + ")"
		default:
			kv += " (has it)"
		}
		set = append(set, kv)
	}
	fmt.Fprintf(w, "  labels set:     %s\n", strings.Join(set, ", "))
	if len(a.Dropped) > 0 {
		fmt.Fprintf(w, "  labels dropped: %s (fleet owns the labels of the hosts it manages)\n", strings.Join(a.Dropped, ", "))
	}
	for _, k := range slices.Sorted(maps.Keys(a.Recorded)) {
		fmt.Fprintf(w, "  recorded:       %s %s (the cloud does not report it; as declared)\n", k, a.Recorded[k])
	}
	if len(a.Differences) == 0 {
		fmt.Fprintf(w, "  as declared (%s)\n", h.m.Host.Pos)
		return
	}
	fmt.Fprintf(w, "  differs from the declaration (%s):\n", h.m.Host.Pos)
	for _, d := range a.Differences {
		if d.InPlace {
			fmt.Fprintf(w, "    %s: the next plan will update it in place\n", d)
			continue
		}
		keep := ""
		if d.Have != "" {
			v := strconv.Quote(d.Have)
			if _, err := strconv.Atoi(d.Have); err == nil {
				v = d.Have
			}
			keep = fmt.Sprintf("; to keep the host, declare %s = %s", d.Key, v)
		}
		fmt.Fprintf(w, "    %s: needs --allow-replace (the next plan replaces the host, deleting it and its disk)%s\n", d, keep)
	}
}

// confirmAdopt asks before adopting n hosts, unless --yes.
func confirmAdopt(c *cli.Context, n int) error {
	if c.Bool("yes") {
		return nil
	}
	if !isTerminal(c.App.Reader) {
		return fmt.Errorf("refusing to adopt %s without --yes: standard input is not a terminal to ask on", count(n, "host"))
	}
	fmt.Fprintf(c.App.Writer, "adopt %s? [y/N] ", count(n, "host"))
	answer, _ := bufio.NewReader(c.App.Reader).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		return fmt.Errorf("not adopted")
	}
	return nil
}
