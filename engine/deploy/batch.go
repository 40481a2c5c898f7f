package deploy

// Batched evaluation. Evaluating a machine's system (nixpkgs, its
// modules) costs seconds of CPU and hundreds of MB; building it is
// mostly waiting on derivations already known. With Options.EvalBatch
// above 1, the machines of a run that need an evaluation are cut into
// batches of at most that many, and each batch is evaluated by one nix
// process, which writes every machine's derivation (.drv) to the store
// and prints their paths:
//
//	nix eval --json path:/tree#nixosConfigurations --apply 'cs: builtins.listToAttrs (map (n: { name = n; value = cs.${n}.config.system.build.toplevel.drvPath; }) [ "web" "db" ])'
//
// Each machine's own build step then realises its own derivation
// (nix-store --realise DRV), which evaluates nothing, so that the
// machine's copy starts as soon as its system is built, not when the
// batch's slowest one is: builds stream into copies as they finish.
// nix-store --realise is used because nix 2.8 has no installable for a
// derivation's outputs that later versions read the same way (2.8
// rejects DRV^*, and later versions read a bare DRV as the .drv file).
// Nothing roots the .drv between the two: when a garbage collection
// deletes it first (the realisation fails and nix path-info DRV too),
// the machine says so in its log and is built alone by nix build.
//
// Why a batcher behind the build steps, not batch steps: the executor,
// its events, progress lines, logs and summary rows are per machine and
// step, and stay so. The first build step of a batch that runs
// evaluates the whole batch (its log holds nix's output); the batch's
// other build steps wait for that one evaluation when they start, or
// find it done. So a batch never waits for its members' steps to be
// started: it cannot be held back by, or deadlock on, --parallel (a
// step only ever waits for an evaluation that is already running).
//
// Memory is bounded by weight: the batcher holds EvalBatch slots, and
// an evaluation of k machines takes k of them while its nix process
// runs, so at most EvalBatch machines are being evaluated at any time,
// whatever --parallel allows (the size comes from a memory budget: see
// EvalBatchSize). Realisations take no slot: they evaluate nothing.
//
// A machine alone in its batch (the last of a class, say) is evaluated
// the same way, a batch of one: one nix build would hold its slot (nix
// keeps the evaluation's memory until it exits) for its whole build,
// and other batches would wait for that build before being evaluated.
//
// A failing evaluation must not fail the batch's other machines: when
// a batch's evaluation fails, the batch is split in two and each half
// is evaluated on its own (by the first of its machines to need it),
// down to single machines, whose failure is their own, with nix's error
// as a CommandError as before. One broken machine in a batch of n
// costs about 2·log2(n) more evaluations, not n. When both halves of a
// node fail, its broken machines are many enough that halving further
// costs more than it saves: the half that fails second (when the other
// has failed already: a step never waits for an evaluation not under
// way) has its machines evaluated one by one.
//
// Machines not batched: those with a cached system (Options.Cached;
// when the cached path is gone, each is evaluated as a batch of its
// own, taking a slot like any other, so that a garbage collection of
// every cached system does not have them all evaluated at once) and
// every machine with BuildOn "target", which builds on its own
// machine (nix build --eval-store auto --store ssh-ng://), one nix
// process per machine as before: the target does the building, and its
// store is the one the derivation must be in.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/fleet-nix/fleet/engine/model"
)

// evalBatcher is a run's batches and the slots they evaluate in.
type evalBatcher struct {
	runner Runner
	flake  string
	size   int
	slots  *weightedSlots
	of     map[string]*evalNode // each batched machine's batch
	// builders are the fleet's remote builders (cache.go), nil without:
	// an evaluation can build (import from derivation), so it takes
	// them as a build does.
	builders *builderSet
}

// batch is machine's batch; nil when batching is off or machine is in
// no batch.
func (b *evalBatcher) batch(machine string) *evalNode {
	if b == nil {
		return nil
	}
	return b.of[machine]
}

// alone is a batch of machine alone, made when a machine planned out of
// the batches (its cached system) needs an evaluation after all.
func (b *evalBatcher) alone(class model.Class, machine string) *evalNode {
	return &evalNode{b: b, class: class, machines: []string{machine}, label: "a batch of its own", done: make(chan struct{})}
}

// evalNode is a batch, or, after its evaluation failed, one of its
// halves. It is evaluated once, by the first machine to need it.
type evalNode struct {
	b        *evalBatcher
	class    model.Class
	machines []string
	label    string // "batch 2 of 5", "half 1 of batch 2 of 5", ...

	parent *evalNode // the failed node n is a half of; nil for a batch

	mu      sync.Mutex
	started bool
	ranBy   string
	done    chan struct{}
	drvs    map[string]string
	err     error
	halves  [2]*evalNode
	singles map[string]*evalNode // its machines one by one, once both halves failed
}

// planBatches cuts the machines that need an evaluation here into
// batches of at most opts.EvalBatch, one class per batch (NixOS and
// nix-darwin systems are different attributes), in the order given. It
// is nil (no batching) with EvalBatch below 2 or BuildOn "target", and
// when the run has one machine to evaluate and none cached.
func planBatches(machines []*model.Machine, opts Options, flake string, builders *builderSet) *evalBatcher {
	if opts.EvalBatch < 2 || opts.BuildOn == "target" {
		return nil
	}
	b := &evalBatcher{runner: opts.Runner, flake: flake, size: opts.EvalBatch, slots: newWeightedSlots(opts.EvalBatch), builders: builders}
	var nodes []*evalNode
	for _, class := range []model.Class{model.NixOS, model.Darwin} {
		var cur *evalNode
		for _, m := range machines {
			if m.Class != class || opts.Install[m.Name] {
				continue
			}
			if _, cached := opts.Cached[m.Name]; cached {
				continue
			}
			if cur == nil || len(cur.machines) == b.size {
				cur = &evalNode{b: b, class: class, done: make(chan struct{})}
				nodes = append(nodes, cur)
			}
			cur.machines = append(cur.machines, m.Name)
		}
	}
	if len(nodes) == 1 && len(nodes[0].machines) == 1 && len(opts.Cached) == 0 {
		// One machine to evaluate in the whole run, and no cached one
		// that could need a slot: nothing waits for its slot, so it is
		// one nix build, as without batching.
		return nil
	}
	b.of = map[string]*evalNode{}
	for i, n := range nodes {
		n.label = fmt.Sprintf("batch %d of %d", i+1, len(nodes))
		for _, m := range n.machines {
			b.of[m] = n
		}
	}
	return b
}

// configurations is the flake output holding the class's systems, and
// the attribute path of a system in it.
func configurations(c model.Class) (output, system string) {
	if c == model.Darwin {
		return "darwinConfigurations", "system"
	}
	return "nixosConfigurations", "config.system.build.toplevel"
}

// evalArgv evaluates the derivations of machines (of one class) in one
// nix process and prints them as a JSON object, machine to .drv path.
// The names are one list in one argument: a batch of a thousand is tens
// of KB, well under the 128 KiB Linux allows an argument. builders, when
// not empty, is the --builders of the builds the evaluation runs (import
// from derivation): nix 2.8's eval takes it as nix build does.
func evalArgv(flake string, class model.Class, machines []string, builders string) []string {
	output, system := configurations(class)
	var names strings.Builder
	for _, m := range machines {
		names.WriteString(" " + nixString(m))
	}
	expr := "cs: builtins.listToAttrs (map (n: { name = n; value = cs.${n}." + system + ".drvPath; }) [" + names.String() + " ])"
	return nixArgv(evalArgs(builders, flake+"#"+output, "--apply", expr)...)
}

// evalArgs are nix eval's arguments, with --builders when builders is
// not empty.
func evalArgs(builders string, args ...string) []string {
	argv := []string{"eval", "--json"}
	if builders != "" {
		argv = append(argv, "--builders", builders)
	}
	return append(argv, args...)
}

// nixString is s as a Nix string literal.
func nixString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

// realiseArgv builds a derivation's outputs and prints their paths, one
// a line; it works the same from nix 2.8 on (see the top of this file).
func realiseArgv(drv string) []string {
	return []string{"nix-store", "--realise", drv}
}

// commands is what --dry-run shows for a batched machine's build.
func (n *evalNode) commands(machine string, realise []string) []string {
	names := n.machines
	list := strings.Join(names, ", ")
	if len(names) > 4 {
		list = strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	output, system := configurations(n.class)
	return []string{
		fmt.Sprintf("evaluate %s (%s; up to %d machines per nix process): %s (EXPR: %s.<machine>.%s.drvPath of each)", n.label, list, n.b.size,
			ShellJoin(nixArgv(evalArgs(n.b.buildersArg(), n.b.flake+"#"+output, "--apply", "EXPR")...)), output, system),
		ShellJoin(realise) + " (" + machine + "'s derivation, from the batch)",
	}
}

// drv is machine's derivation: its batch's evaluation, run here if no
// other step has started it, else waited for. When the evaluation
// fails, the half holding machine is evaluated, and so on down to the
// machine alone, whose error is its own.
func (n *evalNode) drv(ctx context.Context, w io.Writer, machine string) (string, error) {
	for {
		drvs, err := n.evaluate(ctx, w, machine)
		if err == nil {
			drv, ok := drvs[machine]
			if !ok || !strings.HasPrefix(drv, "/") || !strings.HasSuffix(drv, ".drv") {
				return "", fmt.Errorf("nix eval printed no derivation for %s (%q): report this as a bug of fleet", machine, drv)
			}
			return drv, nil
		}
		if ctx.Err() != nil || len(n.machines) == 1 {
			return "", err
		}
		if n.siblingFailed() {
			p := n.parent
			n = n.single(machine)
			fmt.Fprintf(w, "the evaluation failed for one or more of its machines, as did the other half of %s: evaluating them one by one (%s)\n", p.label, n.label)
			continue
		}
		n = n.half(machine)
		fmt.Fprintf(w, "the evaluation failed for one or more of its machines: evaluating %s (%d machines) to find whose\n", n.label, len(n.machines))
	}
}

// siblingFailed reports whether n is a half whose other half's
// evaluation has failed already (not waiting for it: a step only waits
// for an evaluation under way).
func (n *evalNode) siblingFailed() bool {
	p := n.parent
	if p == nil {
		return false
	}
	other := p.halves[0]
	if other == n {
		other = p.halves[1]
	}
	select {
	case <-other.done:
		return other.err != nil && !errors.Is(other.err, context.Canceled) && !errors.Is(other.err, context.DeadlineExceeded)
	default:
		return false
	}
}

// single is the node of machine alone, a machine of n's, made when first
// asked for.
func (n *evalNode) single(machine string) *evalNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.singles == nil {
		n.singles = map[string]*evalNode{}
	}
	s, ok := n.singles[machine]
	if !ok {
		s = &evalNode{b: n.b, class: n.class, machines: []string{machine}, done: make(chan struct{}),
			label: machine + " alone, of " + n.label}
		n.singles[machine] = s
	}
	return s
}

// evaluate runs n's evaluation if it has not started, else waits for
// it.
func (n *evalNode) evaluate(ctx context.Context, w io.Writer, machine string) (map[string]string, error) {
	n.mu.Lock()
	run := !n.started
	if run {
		n.started, n.ranBy = true, machine
	}
	n.mu.Unlock()
	if !run {
		select {
		case <-n.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if n.ranBy != machine {
			fmt.Fprintf(w, "%s (%s) evaluated by %s's build step, with one nix process (its log has nix's output)\n", n.label, strings.Join(n.machines, ", "), n.ranBy)
		}
		return n.drvs, n.err
	}
	defer close(n.done)
	builders := ""
	if n.b.builders != nil {
		var err error
		if builders, err = n.b.builders.resolve(ctx, n.b.runner); err != nil {
			n.err = err
			return nil, err
		}
	}
	argv := evalArgv(n.b.flake, n.class, n.machines, builders)
	if len(n.machines) == 1 {
		fmt.Fprintf(w, "evaluating %s: %s alone, up to %d machines per nix process\n$ %s\n", n.label, n.machines[0], n.b.size, ShellJoin(argv))
	} else {
		fmt.Fprintf(w, "evaluating %s: %d machines (%s) in one nix process, up to %d per process\n$ %s\n",
			n.label, len(n.machines), strings.Join(n.machines, ", "), n.b.size, ShellJoin(argv))
	}
	if err := n.b.slots.acquire(ctx, len(n.machines)); err != nil {
		n.err = err
		return nil, err
	}
	defer n.b.slots.release(len(n.machines))
	var out bytes.Buffer
	if err := n.b.runner.Local(ctx, argv, IO{Stdout: &out, Stderr: w}); err != nil {
		n.err = err
		return nil, err
	}
	drvs := map[string]string{}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &drvs); err != nil {
		n.err = fmt.Errorf("nix eval --json printed no JSON object (%v): %q", err, firstLine(out.Bytes()))
		return nil, n.err
	}
	n.drvs = drvs
	return drvs, nil
}

// buildersArg is the evaluation's --builders as --dry-run shows it, ""
// without the fleet's builders.
func (b *evalBatcher) buildersArg() string {
	if b.builders == nil {
		return ""
	}
	return b.builders.arg()
}

// half is the half of n (failed) that holds machine, made when first
// asked for.
func (n *evalNode) half(machine string) *evalNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.halves[0] == nil {
		mid := len(n.machines) / 2
		for i, ms := range [][]string{n.machines[:mid], n.machines[mid:]} {
			n.halves[i] = &evalNode{b: n.b, class: n.class, machines: ms, parent: n, done: make(chan struct{}),
				label: "half " + strconv.Itoa(i+1) + " of " + n.label}
		}
	}
	for _, m := range n.halves[0].machines {
		if m == machine {
			return n.halves[0]
		}
	}
	return n.halves[1]
}

// buildAlone builds a batched machine whose derivation was
// garbage-collected before its realisation: nix build evaluates and
// builds it in one process, as without batching (nix roots what it
// evaluates while it runs), holding one of the batcher's slots while it
// runs (nix keeps the evaluation's memory until it exits).
func (d *machineDeploy) buildAlone(ctx context.Context, w io.Writer) error {
	if err := d.batch.b.slots.acquire(ctx, 1); err != nil {
		return err
	}
	defer d.batch.b.slots.release(1)
	return d.build(ctx, w)
}

// buildBatched is a batched machine's build step: its derivation from
// its batch, then its own realisation.
func (d *machineDeploy) buildBatched(ctx context.Context, w io.Writer) error {
	drv, err := d.batch.drv(ctx, w, d.m.Name)
	if err != nil {
		return err
	}
	if d.builders != nil {
		if _, err := d.builders.resolve(ctx, d.o.Runner); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	if err := d.o.Runner.Local(ctx, d.realiseArgv(drv), IO{Stdout: io.MultiWriter(&out, w), Stderr: w}); err != nil {
		if ctx.Err() != nil || !d.drvGone(ctx, w, drv, err) {
			return err
		}
		fmt.Fprintf(w, "%s is not in the store any more (garbage-collected since its batch's evaluation, which gives it no GC root): building %s alone with nix build\n", drv, d.m.Name)
		return d.buildAlone(ctx, w)
	}
	system := ""
	for line := range strings.Lines(out.String()) {
		if l := strings.TrimSpace(line); l != "" {
			system = l
		}
	}
	if !strings.HasPrefix(system, "/") {
		return fmt.Errorf("nix-store --realise %s printed no store path: %q", drv, firstLine(out.Bytes()))
	}
	d.system = system
	fmt.Fprintf(w, "built %s\n", system)
	if d.o.Built != nil {
		d.o.Built(d.m.Name, system)
	}
	return nil
}

// drvGone reports whether the realisation of drv failed (with err)
// because drv itself is gone: nothing roots the .drv files a batch's
// nix eval writes, so a garbage collection between the evaluation and
// the realisation deletes them, and nix-store says "cannot build missing
// derivation". nix path-info tells a missing derivation from a build
// that failed.
func (d *machineDeploy) drvGone(ctx context.Context, w io.Writer, drv string, err error) bool {
	var ce *CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, "missing derivation") {
		return true
	}
	return d.o.Runner.Local(ctx, pathInfoArgv(drv), IO{Stdout: io.Discard, Stderr: w}) != nil && ctx.Err() == nil
}

// weightedSlots is a semaphore of n slots taken several at a time. One
// taker waits at a time (the mutex), so two takers never each hold part
// of what they need; releasing needs no lock.
type weightedSlots struct {
	mu    sync.Mutex
	slots chan struct{}
}

func newWeightedSlots(n int) *weightedSlots {
	return &weightedSlots{slots: make(chan struct{}, n)}
}

// acquire takes k slots (at most n), or none when ctx ends first.
func (s *weightedSlots) acquire(ctx context.Context, k int) error {
	k = min(k, cap(s.slots))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range k {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			s.release(i)
			return ctx.Err()
		}
	}
	return nil
}

func (s *weightedSlots) release(k int) {
	for range min(k, cap(s.slots)) {
		<-s.slots
	}
}
