package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/fleet-nix/fleet/engine/cloud/tfstate"
	"github.com/fleet-nix/fleet/engine/model"
)

// tfHosts are the Terraform resource types adopt --terraform knows: the
// hosts fleet declares, by the provider that declares them.
var tfHosts = map[string]model.Provider{
	"hcloud_server":           model.Hetzner,
	"google_compute_instance": model.GCP,
}

// tfHostKinds names what a declaration makes, for messages.
var tfHostKinds = map[model.Provider]string{model.Hetzner: "a Hetzner server", model.GCP: "a GCE instance"}

// adoptTerraform is fleet adopt --terraform STATE [FILE] [MACHINE...]:
// the state chooses the machines to adopt, those whose host the state
// has a hcloud_server or google_compute_instance of (by its name
// attribute), and then adopt goes as it does for machines named on the
// command line. MACHINE, if given, narrows the machines the state may
// choose from. The state's id of each host is compared with the one the
// cloud lists for that name: a host whose ids differ is not adopted.
func adoptTerraform(c *cli.Context, d deps, statePath string) error {
	data, err := readTerraformState(c, statePath)
	if err != nil {
		return err
	}
	format, instances, err := tfstate.Parse(data)
	if err != nil {
		return fmt.Errorf("adopt --terraform %s: %w", statePath, err)
	}
	file, names := splitFile(c.Args().Slice())
	l, err := loadPath(c, file)
	if err != nil {
		return err
	}
	w := c.App.Writer
	// The machines the state may choose: those named, or all with a host.
	var candidates []*model.Machine
	if len(names) > 0 {
		if candidates, err = adoptMachines(w, l, names); err != nil {
			return err
		}
	} else {
		for _, m := range l.fleet.Machines {
			if m.Host != nil {
				candidates = append(candidates, m)
			}
		}
	}
	chosen := map[string]bool{}
	for _, m := range candidates {
		chosen[m.Name] = true
	}

	name := statePath
	if name == "-" {
		name = "standard input"
	}
	fmt.Fprintf(w, "%s, read as %s:\n", name, format)
	byMachine := map[string][]tfstate.Instance{}
	order := map[string]int{} // machine -> its first resource's place in the state
	var others []string
	hostResources := 0
	for _, in := range instances {
		if _, ok := tfHosts[in.Type]; !ok {
			continue
		}
		hostResources++
		name := in.String("name")
		m := l.fleet.Machine(name)
		switch {
		case name == "" || m == nil:
			others = append(others, "  not in the fleet: "+in.Describe())
		case m.Host == nil:
			others = append(others, fmt.Sprintf("  not in the fleet: %s: machine %s declares no cloud host", in.Describe(), name))
		case !chosen[name]:
			others = append(others, fmt.Sprintf("  left out: %s: machine %s is not among the machines named", in.Describe(), name))
		default:
			if _, ok := order[name]; !ok {
				order[name] = len(order)
			}
			byMachine[name] = append(byMachine[name], in)
		}
	}
	if hostResources == 0 {
		fmt.Fprintf(w, "  no hcloud_server or google_compute_instance among its %s\n", count(len(instances), "managed resource"))
	}

	var machines []*model.Machine
	var refused []string
	matched := make([]string, len(order)) // in the order of the state
	from := map[string]tfstate.Instance{}
	for _, m := range candidates {
		ins := byMachine[m.Name]
		if len(ins) == 0 {
			if m.Host.Enabled {
				others = append(others, fmt.Sprintf("  no resource in the state: machine %s (%s)", m.Name, tfHostKinds[m.Host.Provider]))
			}
			continue
		}
		in := ins[0]
		why := ""
		switch {
		case len(ins) > 1:
			var addrs []string
			for _, in := range ins {
				addrs = append(addrs, in.Address)
			}
			why = fmt.Sprintf("the state has %d resources of its name (%s): which is its host?", len(ins), strings.Join(addrs, ", "))
		case tfHosts[in.Type] != m.Host.Provider:
			why = fmt.Sprintf("%s is a %s, but the machine declares %s", in.Address, in.Type, tfHostKinds[m.Host.Provider])
		case !m.Host.Enabled:
			why = fmt.Sprintf("%s: its host is switched off (enabled = False), so the next apply would delete one it adopted", in.Address)
		case m.Host.GCP != nil:
			why = gcpScopeMismatch(in, m.Host.GCP)
		}
		if why != "" {
			matched[order[m.Name]] = fmt.Sprintf("  %s: machine %s: not adopted: %s", in.Describe(), m.Name, why)
			refused = append(refused, fmt.Sprintf("%s: machine %s: %s", m.Host.Pos, m.Name, why))
			continue
		}
		matched[order[m.Name]] = fmt.Sprintf("  %s: machine %s", in.Describe(), m.Name)
		machines = append(machines, m)
		from[m.Name] = in
	}
	for _, o := range append(matched, others...) {
		fmt.Fprintln(w, o)
	}

	if len(machines) == 0 {
		if len(refused) == 0 {
			fmt.Fprintln(w, "nothing to adopt: the state has no host of a machine of the fleet")
			return nil
		}
		return fmt.Errorf("%s not adopted:\n  %s", count(len(refused), "host"), strings.Join(refused, "\n  "))
	}
	provs, done := d.clouds(c, l.fleet, c.App.ErrWriter)
	defer done()
	hosts, err := adoptWanted(l.fleet, provs, machines)
	if err != nil {
		return err
	}
	check := func(h *adoptee) error {
		in := from[h.m.Name]
		id := tfInstanceID(in)
		if id == "" || h.a.Have.ID == "" || id == h.a.Have.ID {
			return nil
		}
		return fmt.Errorf("the state's %s has id %s, but the cloud's %s %s has id %s: "+
			"the state is out of date or from another project or account; not adopted", in.Address, id, h.want.Kind, h.want.Name, h.a.Have.ID)
	}
	return adoptHosts(c, l, hosts, check, refused)
}

// readTerraformState reads the state file, or standard input for "-"
// (terraform show -json | fleet adopt --terraform - --yes).
func readTerraformState(c *cli.Context, path string) ([]byte, error) {
	if path == "" {
		return nil, usagef("adopt: --terraform needs a state: a terraform.tfstate file or the output of terraform show -json")
	}
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(c.App.Reader)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("adopt --terraform: %w", err)
	}
	return data, nil
}

// tfInstanceID is the id the cloud knows the host by, as the state
// records it: hcloud_server's id; google_compute_instance's instance_id
// (its id is projects/P/zones/Z/instances/N), or a numeric id.
func tfInstanceID(in tfstate.Instance) string {
	if in.Type == "google_compute_instance" {
		if id := in.String("instance_id"); id != "" {
			return id
		}
		if id := in.String("id"); id != "" && strings.Trim(id, "0123456789") == "" {
			return id
		}
		return ""
	}
	return in.String("id")
}

// gcpScopeMismatch says how the project and zone the state has the
// instance in differ from the declaration's, or "".
func gcpScopeMismatch(in tfstate.Instance, g *model.GCPInstance) string {
	var diffs []string
	if p := in.String("project"); p != "" && p != g.Project {
		diffs = append(diffs, fmt.Sprintf("project %s (declared %s)", p, g.Project))
	}
	if z := basenameOf(in.String("zone")); z != "" && z != g.Zone {
		diffs = append(diffs, fmt.Sprintf("zone %s (declared %s)", z, g.Zone))
	}
	if len(diffs) == 0 {
		return ""
	}
	return fmt.Sprintf("the state has it in %s: fleet looks for it where it is declared; declare where it is to adopt it",
		strings.Join(diffs, " and "))
}

// basenameOf is the last element of a URL or path (a zone's self link).
func basenameOf(s string) string {
	return s[strings.LastIndexByte(s, '/')+1:]
}
