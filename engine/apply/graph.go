package apply

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/secrets"
)

// The pseudo-machines of the steps that belong to no machine. Machine
// names are lower-case letters, digits and '-', so these are no
// machine's.
const (
	// CloudRow holds the fleet-wide cloud changes (ssh keys, firewalls).
	CloudRow = "_cloud"
	// TreeRow holds the writing of the Nix tree after the secrets are
	// generated (Options.WriteTree).
	TreeRow = "_tree"
	// SecretsRow holds the generation of the secret files the installs
	// need.
	SecretsRow = "_secrets"
)

// Options say what to apply and how.
type Options struct {
	// Deploy is the deploy of the machines: tree, goal, runner, the
	// files nixos-anywhere copies (ExtraFiles) ... Its Targets, Install,
	// LateTargets and Secrets are filled in here; with a plan,
	// OnlyChanged is set.
	Deploy deploy.Options
	// Providers carry out the cloud changes (by name).
	Providers []cloud.Provider
	// NoDeploy changes the cloud only: no install, no deploy, no
	// secret generated.
	NoDeploy bool
	// Identities decrypt what gen.command generators depend on; none
	// is needed to generate the rest.
	Identities []age.Identity
	// CloudDone, if set, is told as each cloud change ends. It may be
	// called from several goroutines.
	CloudDone func(cloud.Event)
	// HostChanged, if set, is told the machine whose host a create,
	// replace or delete changed: what it ran before is gone (fleet
	// forgets its deploy record). It may be called from several
	// goroutines.
	HostChanged func(machine string)
	// WriteTree, if set, writes the Nix tree. With secret files to
	// generate it is the step TreeRow/write, after the generation (the
	// tree names the files that exist: a file generated after the tree
	// was written would be missing from it) and before every build and
	// install; otherwise the caller writes the tree before running.
	WriteTree func(ctx context.Context, w io.Writer) error
}

// Graph is an apply's steps and what they are.
type Graph struct {
	Steps []deploy.Step
	// Cloud are the mutating cloud changes, in step order.
	Cloud []*cloud.Change
	// Install are the machines installed on new hosts, Deploy those
	// deployed (only where their system changed), by name.
	Install, Deploy []string
	// Notes say why a machine with a host is not deployed.
	Notes []string

	// TreeStep is set when the graph writes the Nix tree itself
	// (Options.WriteTree, after a secrets generation).
	TreeStep bool

	mu       sync.Mutex
	outcomes map[*cloud.Change]*cloud.Outcome
	// fleetWide are the steps of the fleet-wide creates and updates
	// (firewalls, ssh keys): every machine's steps come after them, as
	// cloud.Apply's deploys came after all its changes.
	fleetWide []string
	ids       map[string]bool
	stepOf    map[*cloud.Change]string
	cloudIDs  map[string]bool
}

// New lowers a plan to one graph (see the package doc). With a nil plan
// it is fleet deploy: the deploy chains of machines alone, with
// opts.Deploy as it is. With a plan, machines is ignored: the machines
// are those with a cloud host in the plan.
func New(f *model.Fleet, plan *cloud.Plan, machines []*model.Machine, opts Options) (*Graph, error) {
	g := &Graph{outcomes: map[*cloud.Change]*cloud.Outcome{}, stepOf: map[*cloud.Change]string{}, cloudIDs: map[string]bool{}, ids: map[string]bool{}}
	if plan == nil {
		steps, err := deploy.Steps(f, machines, opts.Deploy)
		g.Steps = steps
		for _, m := range machines {
			g.Deploy = append(g.Deploy, m.Name)
		}
		return g, err
	}
	g.cloudSteps(plan, opts)
	if opts.NoDeploy {
		return g, nil
	}
	return g, g.machineSteps(f, plan, opts)
}

// cloudSteps adds one step per mutating change, in cloud.Apply's phases.
func (g *Graph) cloudSteps(plan *cloud.Plan, opts Options) {
	byName := map[string]cloud.Provider{}
	for _, p := range opts.Providers {
		byName[p.Name()] = p
	}
	var first, hosts, last []*cloud.Change
	for _, c := range plan.Changes {
		switch {
		case !c.Mutating():
		case c.Machine != "":
			hosts = append(hosts, c)
		case c.Action == cloud.Delete:
			last = append(last, c)
		default:
			first = append(first, c)
		}
	}
	var before []string
	for i, phase := range [][]*cloud.Change{first, hosts, last} {
		var ids []string
		for _, c := range phase {
			s := g.cloudStep(c, byName[c.Provider], opts)
			s.After = before
			ids = append(ids, s.ID)
			g.Steps = append(g.Steps, s)
			g.Cloud = append(g.Cloud, c)
		}
		if i == 0 {
			g.fleetWide = ids
		}
		if len(ids) > 0 {
			before = ids
		}
	}
}

// cloudStep is the step of one cloud change: <machine>/<action> for a
// host, CloudRow/<action>-<resource>-<name> for a fleet-wide resource,
// with the provider and scope added when that is not unique (a firewall
// of the same name in two GCE projects, two orphan hosts of a machine).
func (g *Graph) cloudStep(c *cloud.Change, p cloud.Provider, opts Options) deploy.Step {
	done := opts.CloudDone
	machine, id := c.Machine, c.Machine+"/"+string(c.Action)
	if machine == "" {
		machine = CloudRow
		id = CloudRow + "/" + string(c.Action) + "-" + c.Resource + "-" + c.Name
	}
	if g.ids[id] {
		id += "-" + c.Provider
		if c.Scope != "" {
			id += "-" + c.Scope
		}
	}
	for n := 2; g.ids[id]; n++ {
		id = fmt.Sprintf("%s-%d", strings.TrimSuffix(id, fmt.Sprintf("-%d", n-1)), n)
	}
	g.ids[id] = true
	g.stepOf[c], g.cloudIDs[id] = id, true
	return deploy.Step{ID: id, Machine: machine, Action: string(c.Action), Commands: []string{CloudCall(c)},
		Run: func(ctx context.Context, w io.Writer) error {
			if done != nil {
				done(cloud.Event{Change: c})
			}
			start := time.Now()
			r, err := cloud.ApplyChange(ctx, p, c)
			if r != nil && r.IPv4 != "" {
				fmt.Fprintf(w, "public address: %s\n", r.IPv4)
			}
			g.mu.Lock()
			g.outcomes[c] = &cloud.Outcome{Change: c, Err: err, Result: r}
			g.mu.Unlock()
			if err == nil && c.Machine != "" && opts.HostChanged != nil &&
				(c.Action == cloud.Create || c.Action == cloud.Replace || c.Action == cloud.Delete) {
				opts.HostChanged(c.Machine)
			}
			if done != nil {
				done(cloud.Event{Change: c, Done: true, Err: err, Result: r, Duration: time.Now().Sub(start)})
			}
			return err
		}}
}

// CloudCall is what a cloud step runs, in words: the provider's API call.
func CloudCall(c *cloud.Change) string {
	what := c.Resource + " " + c.Name
	if c.Scope != "" {
		what += " (" + c.Scope + ")"
	}
	call := fmt.Sprintf("%s API: %s %s", c.Provider, c.Action, what)
	if c.Action == cloud.Replace {
		call = fmt.Sprintf("%s API: delete %s, then create it anew", c.Provider, what)
	}
	if c.Reason != "" {
		call += ": " + c.Reason
	}
	return call
}

// machineSteps adds the secrets generation, the installs and the
// deploys of the machines with a host in the plan.
func (g *Graph) machineSteps(f *model.Fleet, plan *cloud.Plan, opts Options) error {
	o := opts.Deploy
	o.OnlyChanged = true
	o.Targets = map[string]string{}
	o.Install = map[string]bool{}
	o.LateTargets = map[string]func() (string, error){}
	first := map[string][]string{} // machine -> the steps its first step needs
	var machines []*model.Machine
	for _, ch := range plan.Changes {
		m := f.Machine(ch.Machine)
		if m == nil || m.Class != model.NixOS || ch.Want == nil || ch.Want.Spec["power"] == "off" {
			continue
		}
		switch ch.Action {
		case cloud.Create, cloud.Replace:
			if ch.Refused != "" {
				continue
			}
			o.Install[m.Name] = true
			o.LateTargets[m.Name] = g.address(ch)
			first[m.Name] = []string{g.stepOf[ch]}
			g.Install = append(g.Install, m.Name)
		case cloud.NoOp, cloud.Update:
			if _, err := deploy.Target(f, m, nil); err != nil {
				if ch.Have == nil || ch.Have.IPv4 == "" {
					g.Notes = append(g.Notes, fmt.Sprintf("not deploying %s: %v", m.Name, err))
					continue
				}
				o.Targets[m.Name] = "root@" + ch.Have.IPv4
			}
			if id, ok := g.stepOf[ch]; ok {
				first[m.Name] = []string{id}
			}
			g.Deploy = append(g.Deploy, m.Name)
		default:
			continue
		}
		machines = append(machines, m)
	}
	if len(machines) == 0 {
		return nil
	}
	sort.Slice(machines, func(i, j int) bool { return machines[i].Name < machines[j].Name })
	sort.Strings(g.Install)
	sort.Strings(g.Deploy)
	ready := newReadiness(f, o.Install)
	if gen := g.generateStep(f, plan, opts, ready); gen != nil {
		g.Steps = append(g.Steps, *gen)
		// An install needs the generation when a file of its machine,
		// or a shared one, is to be written.
		shared, own := false, map[string]bool{}
		for _, s := range plan.Secrets {
			shared = shared || s.Machine == ""
			own[s.Machine] = true
		}
		for _, m := range g.Install {
			if shared || own[m] {
				first[m] = append(first[m], gen.ID)
			}
		}
	}
	var tree string
	if gen := len(g.Steps) > 0 && g.Steps[len(g.Steps)-1].Machine == SecretsRow; gen && opts.WriteTree != nil {
		// After the generation whether it succeeded or not: the
		// deploys of existing hosts need the tree, not the new files.
		tree = TreeRow + "/write"
		g.Steps = append(g.Steps, deploy.Step{ID: tree, Machine: TreeRow, Action: "write", After: []string{g.Steps[len(g.Steps)-1].ID},
			Commands: []string{"write the Nix tree to " + o.Tree + " (after the secrets generation: it names the files that exist)"},
			Run:      opts.WriteTree})
		g.TreeStep = true
	}
	o.Secrets = ready.check
	steps, err := deploy.Steps(f, machines, o)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range steps {
		if m := steps[i].Machine; !seen[m] {
			seen[m] = true
			needs := slices.Clone(first[m])
			if tree != "" {
				needs = append(needs, tree)
			}
			steps[i].Needs = append(needs, steps[i].Needs...)
			steps[i].After = append(slices.Clone(g.fleetWide), steps[i].After...)
		}
	}
	g.Steps = append(g.Steps, steps...)
	return nil
}

// address is the late target of a machine whose host ch creates: the
// public address the create returned.
func (g *Graph) address(ch *cloud.Change) func() (string, error) {
	return func() (string, error) {
		g.mu.Lock()
		o := g.outcomes[ch]
		g.mu.Unlock()
		switch {
		case o == nil || o.Err != nil:
			return "", fmt.Errorf("its %s %s was not created", ch.Provider, ch.Resource)
		case o.Result == nil || o.Result.IPv4 == "":
			return "", fmt.Errorf("its %s %s has no public IPv4 address", ch.Provider, ch.Resource)
		}
		return "root@" + o.Result.IPv4, nil
	}
}

// generateStep writes the missing secret files of the machines being
// installed (nil when there are none): their host keys, which the
// installs copy onto the new hosts, and the files encrypted to them.
func (g *Graph) generateStep(f *model.Fleet, plan *cloud.Plan, opts Options, ready *readiness) *deploy.Step {
	install := map[string]bool{}
	var sels []model.Selector
	for _, m := range g.Install {
		install[m] = true
		sels = append(sels, model.Selector(m))
	}
	var cmds []string
	for _, s := range plan.Secrets {
		if s.Machine != "" && !install[s.Machine] {
			continue
		}
		switch s.Action {
		case cloud.SecretGenerate:
			cmds = append(cmds, "generate "+s.File)
		case cloud.SecretPrompt:
			cmds = append(cmds, "leave "+s.File+": typed by a person (gen.prompt); fleet secrets generate asks on a terminal")
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	return &deploy.Step{ID: SecretsRow + "/generate", Machine: SecretsRow, Action: "generate", Commands: cmds,
		Run: func(ctx context.Context, w io.Writer) error {
			defer ready.generated()
			st := &secrets.Store{Root: f.Root}
			rep, err := secrets.GenerateMissing(ctx, f, st, secrets.Options{On: sels, Identities: opts.Identities, Stderr: w})
			rep.Write(w)
			if err != nil {
				return err
			}
			if n := len(rep.NeedsPrompt); n > 0 {
				fmt.Fprintf(w, "%d secret files typed by a person are missing (gen.prompt): they cannot be generated unattended; run fleet secrets generate on a terminal, then fleet apply again\n", n)
			}
			return nil
		}}
}

// readiness is the deploy's secrets step: every file a machine reads is
// in order (secrets check, Report.NotReady). The machines being
// installed are judged after the generation (their files are written
// then), the others on the store as it was when the graph was made.
type readiness struct {
	f       *model.Fleet
	install map[string]bool
	before  secrets.Report
	errB    error

	mu     sync.Mutex
	after  *secrets.Report
	errA   error
	regen  bool
	reread bool
}

func newReadiness(f *model.Fleet, install map[string]bool) *readiness {
	r := &readiness{f: f, install: install}
	r.before, r.errB = checkSecrets(f)
	return r
}

// generated says the generation has ended: the next check of a machine
// being installed reads the store again.
func (r *readiness) generated() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regen = true
}

func (r *readiness) check(m *model.Machine) error {
	if !r.install[m.Name] {
		if r.errB != nil {
			return r.errB
		}
		return r.before.NotReady(r.f, m.Name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.after == nil || r.regen && !r.reread {
		rep, err := checkSecrets(r.f)
		r.after, r.errA, r.reread = &rep, err, r.regen
	}
	if r.errA != nil {
		return r.errA
	}
	return r.after.NotReady(r.f, m.Name)
}

// CloudResult is how each cloud change of the graph ended after Execute
// returned sum: as cloud.Apply reports it, a change that did not run
// failed with why.
func (g *Graph) CloudResult(sum *deploy.Summary) *cloud.Result {
	steps := map[string]deploy.StepResult{}
	for _, m := range sum.Machines {
		for _, s := range m.Steps {
			steps[s.ID] = s
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	res := &cloud.Result{}
	for _, c := range g.Cloud {
		if o := g.outcomes[c]; o != nil {
			res.Outcomes = append(res.Outcomes, *o)
			continue
		}
		why := "not started"
		if s, ok := steps[g.stepOf[c]]; ok && s.Cause != "" {
			why = "not started: needs " + s.Cause + ", which failed"
		}
		if sum.Err != nil {
			why = "not started: " + sum.Err.Error()
		}
		res.Outcomes = append(res.Outcomes, cloud.Outcome{Change: c, Err: fmt.Errorf("%s", why)})
	}
	return res
}

// CloudStep reports whether a step ID is a cloud change's.
func (g *Graph) CloudStep(id string) bool {
	return g.cloudIDs[id]
}
