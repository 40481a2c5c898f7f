package repl

import (
	"context"
	"fmt"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"go.starlark.net/starlark"
)

// state is one evaluation of the fleet file: the model, its graph and the
// entry file's globals. reload() makes a new state and replaces the
// current one only when the evaluation succeeded.
type state struct {
	file    string // "" when the session has no fleet file
	fleet   *model.Fleet
	graph   *graph.Graph
	globals starlark.StringDict

	// The Nix tree is lowered on the first nix() and kept: lowering the
	// whole fleet is what fleet nix does, and one machine's file depends
	// on the others (feature modules are shared).
	nix    map[string][]byte
	nixErr error
}

// evaluate runs the fleet file with the options the command line gave.
func evaluate(ctx context.Context, file string, options func() (engine.Options, error)) (*state, error) {
	st := &state{file: file, globals: starlark.StringDict{}}
	if file == "" {
		st.fleet = &model.Fleet{}
	} else {
		var opts engine.Options
		if options != nil {
			var err error
			if opts, err = options(); err != nil {
				return nil, err
			}
		}
		opts.Entry = func(g starlark.StringDict) { st.globals = g }
		f, err := engine.Eval(ctx, file, opts)
		if err != nil {
			return nil, err
		}
		st.fleet = f
	}
	g, err := graph.Build(st.fleet)
	if err != nil {
		return nil, err
	}
	st.graph = g
	return st, nil
}

// nixFiles is the generated tree by path.
func (st *state) nixFiles() (map[string][]byte, error) {
	if st.nix == nil && st.nixErr == nil {
		files, err := nixgen.Generate(st.fleet)
		if err != nil {
			st.nixErr = err
		} else {
			st.nix = map[string][]byte{}
			for _, f := range files {
				st.nix[f.Path] = f.Data
			}
		}
	}
	return st.nix, st.nixErr
}

// machinesReaching lists the machines whose closure contains id: those
// that get a feature directly, through requires or through a user's home.
func (st *state) machinesReaching(id string) []string {
	var out []string
	for _, m := range st.fleet.Machines {
		for _, dep := range st.graph.Closure(graph.ID(graph.KindMachine, m.Name)) {
			if dep == id {
				out = append(out, m.Name)
				break
			}
		}
	}
	return out
}

// nodeID names the graph node a value stands for: a view, a declaration
// value of the fleet (machine(...) returns one), a node ID such as
// "feature:ssh", or a bare name when only one node has it.
func (st *state) nodeID(what string, v starlark.Value) (string, error) {
	var id string
	switch x := v.(type) {
	case *machineView:
		id = graph.ID(graph.KindMachine, x.m.Name)
	case *featureView:
		id = graph.ID(graph.KindFeature, x.f.Name)
	case *secretView:
		id = graph.ID(graph.KindSecret, x.s.Name)
	case *hostView:
		id = graph.ID(graph.KindHost, x.machine)
	case *builtins.Decl:
		kind := x.Kind()
		switch k, overlay := strings.CutPrefix(kind, "overlay."); {
		case overlay:
			id = graph.ID(graph.KindOverlay, k+":"+x.Name())
		case contains([]string{"channel", "input", "feature", "user", "machine", "secret"}, kind):
			id = graph.ID(graph.NodeKind(kind), x.Name())
		default:
			return "", fmt.Errorf("%s: a %s is not a node of the graph", what, kind)
		}
	case starlark.String:
		return st.resolveName(what, string(x))
	default:
		return "", fmt.Errorf("%s: want a machine, feature or secret, a node ID (\"feature:ssh\") or a name, not %s", what, v.Type())
	}
	if st.graph.Node(id) == nil {
		return "", fmt.Errorf("%s: %s is not in the fleet's graph (was it removed before a reload?)", what, id)
	}
	return id, nil
}

func (st *state) resolveName(what, s string) (string, error) {
	if strings.Contains(s, ":") {
		if st.graph.Node(s) != nil {
			return s, nil
		}
		var ids []string
		for _, n := range st.graph.Nodes() {
			ids = append(ids, n.ID)
		}
		return "", fmt.Errorf("%s: no node %q in the graph%s", what, s, builtins.DidYouMean(s, ids))
	}
	var found, names []string
	for _, n := range st.graph.Nodes() {
		names = append(names, n.Name)
		if n.Name == s {
			found = append(found, n.ID)
		}
	}
	// A machine and its host share the name; the machine is meant.
	if len(found) == 2 && found[0] == graph.ID(graph.KindHost, s) && found[1] == graph.ID(graph.KindMachine, s) {
		found = found[1:]
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%s: nothing in the fleet is called %q%s", what, s, builtins.DidYouMean(s, names))
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%s: %q names %s: pass one of these IDs", what, s, strings.Join(found, ", "))
}

// selectMachines applies CLI selectors ("name", "@tag", "glob*", "all").
// A plain name that matches no machine is a mistake, as on the command line.
func (st *state) selectMachines(sels []string) ([]*model.Machine, error) {
	var ss []model.Selector
	for _, s := range sels {
		sel := model.Selector(s)
		if err := sel.Validate(); err != nil {
			return nil, err
		}
		if !sel.IsPattern() && st.fleet.Machine(s) == nil {
			names := make([]string, len(st.fleet.Machines))
			for i, m := range st.fleet.Machines {
				names[i] = m.Name
			}
			return nil, fmt.Errorf("no machine is called %q%s", s, builtins.DidYouMean(s, names))
		}
		ss = append(ss, sel)
	}
	return st.fleet.Select(ss...), nil
}
