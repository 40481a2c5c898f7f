package startest

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/plural"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// fleetModule is the predeclared fleet fixture.
func fleetModule() *starlarkstruct.Module {
	return &starlarkstruct.Module{Name: "fleet", Members: starlark.StringDict{
		"eval":      starlark.NewBuiltin("fleet.eval", fleetEval),
		"load_file": starlark.NewBuiltin("fleet.load_file", fleetLoadFile),
	}}
}

func fleetEval(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var src string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "src", &src); err != nil {
		return nil, err
	}
	fr, err := fileRunOf(thread, b)
	if err != nil {
		return nil, err
	}
	label := fr.snippetLabel()
	return fr.evaluate(thread, b.Name(), label, map[string][]byte{label: []byte(src)})
}

func fleetLoadFile(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var p string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "path", &p); err != nil {
		return nil, err
	}
	fr, err := fileRunOf(thread, b)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(p, "@") {
		return nil, fmt.Errorf("%s: %q: only files of the fleet can be evaluated", b.Name(), p)
	}
	label, err := engine.Label(fr.label, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	return fr.evaluate(thread, b.Name(), label, nil)
}

func fileRunOf(thread *starlark.Thread, b *starlark.Builtin) (*fileRun, error) {
	fr, ok := thread.Local(localFile).(*fileRun)
	if !ok {
		return nil, fmt.Errorf("%s: only available in fleet test", b.Name())
	}
	return fr, nil
}

// evaluate does what `fleet run` does up to writing files: evaluate,
// build the graph, lower to Nix. The evaluation gets what is left of the
// calling thread's step budget.
func (fr *fileRun) evaluate(thread *starlark.Thread, fn, label string, files map[string][]byte) (starlark.Value, error) {
	left := fr.maxSteps - min(thread.ExecutionSteps(), fr.maxSteps-1)
	f, err := engine.Eval(fr.ctx, filepath.Join(fr.root, filepath.FromSlash(label)), engine.Options{
		Root:      fr.root,
		MaxSteps:  left,
		MaxMemory: fr.opts.MaxMemory,
		Stderr:    writerOf(thread),
		Stdlib:    fr.opts.Stdlib,
		Deps:      fr.deps,
		Files:     files,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	g, err := graph.Build(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	tree, err := nixgen.Generate(f)
	if err != nil {
		return nil, fmt.Errorf("%s: lowering to Nix: %w", fn, err)
	}
	return newResult(f, g, tree), nil
}

// view is a read-only Starlark value with fixed attributes: every view of
// the fixture (result, machine, graph ...). Its lists and dicts are frozen,
// so a test can read but not change what it was given, and a result made
// at a file's top level can be shared by its tests.
type view struct {
	typ   string
	repr  string
	attrs starlark.StringDict
}

var _ starlark.HasAttrs = (*view)(nil)

func newView(typ, repr string, attrs starlark.StringDict) *view {
	attrs.Freeze()
	return &view{typ: typ, repr: repr, attrs: attrs}
}

func (v *view) String() string        { return v.repr }
func (v *view) Type() string          { return v.typ }
func (v *view) Freeze()               {}
func (v *view) Truth() starlark.Bool  { return starlark.True }
func (v *view) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", v.typ) }

// Attr returns nil for an unknown name, so Starlark reports it with its
// own "did you mean".
func (v *view) Attr(name string) (starlark.Value, error) { return v.attrs[name], nil }
func (v *view) AttrNames() []string                      { return v.attrs.Keys() }

// method makes a builtin attribute of a view.
func method(name string, fn func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error)) *starlark.Builtin {
	return starlark.NewBuiltin(name, func(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return fn(args, kwargs)
	})
}

// lookup makes the name -> view method of a collection: an unknown name is
// an error with a "did you mean", never None, so a typo cannot pass.
func lookup(fn, what string, views map[string]*view) *starlark.Builtin {
	names := make([]string, 0, len(views))
	for n := range views {
		names = append(names, n)
	}
	sort.Strings(names)
	return method(fn, func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var name string
		if err := starlark.UnpackArgs(fn, args, kwargs, "name", &name); err != nil {
			return nil, err
		}
		if v, ok := views[name]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("%s(%s): the fleet has no such %s%s", fn, starlark.String(name), what, known(name, names))
	})
}

// newResult builds the view of an evaluated fleet.
func newResult(f *model.Fleet, g *graph.Graph, tree []nixgen.File) *view {
	machines := make([]starlark.Value, len(f.Machines))
	byMachine := map[string]*view{}
	for i, m := range f.Machines {
		v := machineView(m)
		machines[i], byMachine[m.Name] = v, v
	}
	features, users, secrets := map[string]*view{}, map[string]*view{}, map[string]*view{}
	var featureNames, userNames, secretNames, channels, inputs []string
	for _, x := range f.Features {
		features[x.Name] = featureView(x)
		featureNames = append(featureNames, x.Name)
	}
	for _, u := range f.Users {
		users[u.Name] = userView(u)
		userNames = append(userNames, u.Name)
	}
	for _, s := range f.Secrets {
		secrets[s.Name] = secretView(s)
		secretNames = append(secretNames, s.Name)
	}
	for _, c := range f.Channels {
		channels = append(channels, c.Name)
	}
	for _, in := range f.Inputs {
		inputs = append(inputs, in.Name)
	}
	overlays := make([]starlark.Value, len(f.Overlays))
	for i, o := range f.Overlays {
		overlays[i] = overlayView(o)
	}

	texts := map[string]string{}
	var paths []string
	for _, file := range tree {
		texts[file.Path] = string(file.Data)
		paths = append(paths, file.Path)
	}
	sort.Strings(paths)

	return newView("fleet.result", fmt.Sprintf("<fleet %s>", starlark.String(f.Name)), starlark.StringDict{
		"name":      starlark.String(f.Name),
		"domain":    starlark.String(f.Domain),
		"admins":    strs(f.Admins),
		"machines":  starlark.NewList(machines),
		"machine":   lookup("machine", "machine", byMachine),
		"features":  strs(featureNames),
		"feature":   lookup("feature", "feature", features),
		"users":     strs(userNames),
		"user":      lookup("user", "user", users),
		"secrets":   strs(secretNames),
		"secret":    lookup("secret", "secret", secrets),
		"channels":  strs(channels),
		"inputs":    strs(inputs),
		"overlays":  starlark.NewList(overlays),
		"graph":     graphView(g),
		"nix_files": strs(paths),
		"nix": method("nix", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var p string
			if err := starlark.UnpackArgs("nix", args, kwargs, "path", &p); err != nil {
				return nil, err
			}
			if t, ok := texts[p]; ok {
				return starlark.String(t), nil
			}
			return nil, fmt.Errorf("nix(%s): the Nix tree has no such file%s", starlark.String(p), known(p, paths))
		}),
	})
}

func machineView(m *model.Machine) *view {
	host := starlark.Value(starlark.None)
	if m.Host != nil {
		host = hostView(m.Host)
	}
	checks := make([]starlark.Value, len(m.Checks))
	for i, c := range m.Checks {
		checks[i] = newView("check", fmt.Sprintf("<check %s>", c.Kind), starlark.StringDict{
			"kind": starlark.String(c.Kind), "command": starlark.String(c.Command), "url": starlark.String(c.URL),
			"status": starlark.MakeInt(c.Status), "address": starlark.String(c.Address),
		})
	}
	return newView("machine", "<machine "+m.Name+">", starlark.StringDict{
		"name":            starlark.String(m.Name),
		"system":          starlark.String(m.System),
		"kind":            starlark.String(m.Class),
		"tags":            strs(m.Tags),
		"features":        strs(m.Features),
		"users":           strs(m.Users),
		"target":          starlark.String(m.Target),
		"state_version":   starlark.String(m.StateVersion),
		"host":            host,
		"host_key":        starlark.String(m.HostKey),
		"host_key_secret": starlark.String(m.HostKeySecret),
		"checks":          starlark.NewList(checks),
		"rollback":        starlark.Bool(m.Rollback),
		"nixos":           builtins.AttrsDict(m.NixOS),
		"darwin":          builtins.AttrsDict(m.Darwin),
		"home":            builtins.AttrsDict(m.Home),
		"pos":             starlark.String(m.Pos.String()),
	})
}

func hostView(h *model.Host) *view {
	attrs := starlark.StringDict{
		"provider": starlark.String(h.Provider),
		"enabled":  starlark.Bool(h.Enabled),
		"pos":      starlark.String(h.Pos.String()),
	}
	switch {
	case h.Hetzner != nil:
		s := h.Hetzner
		attrs["type"] = starlark.String(s.Type)
		attrs["location"] = starlark.String(s.Location)
		attrs["image"] = starlark.String(s.Image)
		attrs["labels"] = strDict(s.Labels)
		attrs["firewalls"] = strs(s.Firewalls)
		attrs["ipv4"] = starlark.Bool(s.IPv4)
		attrs["ipv6"] = starlark.Bool(s.IPv6)
	case h.GCP != nil:
		s := h.GCP
		attrs["project"] = starlark.String(s.Project)
		attrs["zone"] = starlark.String(s.Zone)
		attrs["type"] = starlark.String(s.Type)
		attrs["image"] = starlark.String(s.Image)
		attrs["disk_gb"] = starlark.MakeInt(s.DiskGB)
		attrs["gpu"] = starlark.String(s.GPU)
		attrs["gpus"] = starlark.MakeInt(s.GPUs)
		attrs["tags"] = strs(s.Tags)
		attrs["labels"] = strDict(s.Labels)
	}
	return newView("host", fmt.Sprintf("<host %s>", h.Provider), attrs)
}

func featureView(x *model.Feature) *view {
	return newView("feature", "<feature "+x.Name+">", starlark.StringDict{
		"name":     starlark.String(x.Name),
		"doc":      starlark.String(x.Doc),
		"requires": strs(x.Requires),
		"packages": strs(x.Packages),
		"modules":  strs(x.Modules),
		"nixos":    builtins.AttrsDict(x.NixOS),
		"darwin":   builtins.AttrsDict(x.Darwin),
		"home":     builtins.AttrsDict(x.Home),
		"pos":      starlark.String(x.Pos.String()),
	})
}

func userView(u *model.User) *view {
	return newView("user", "<user "+u.Name+">", starlark.StringDict{
		"name":        starlark.String(u.Name),
		"uid":         starlark.MakeInt(u.UID),
		"description": starlark.String(u.Description),
		"groups":      strs(u.Groups),
		"shell":       starlark.String(u.Shell),
		"ssh_keys":    strs(u.SSHKeys),
		"age":         starlark.String(u.Age),
		"home":        strs(u.Home),
		"pos":         starlark.String(u.Pos.String()),
	})
}

// secretView describes a secret. The model holds no secret values, so
// neither can this.
func secretView(s *model.Secret) *view {
	files := make([]string, len(s.Files))
	for i, f := range s.Files {
		files[i] = f.Name
	}
	gen := ""
	if s.Generator != nil {
		gen = s.Generator.Kind
	}
	return newView("secret", "<secret "+s.Name+">", starlark.StringDict{
		"name":          starlark.String(s.Name),
		"shared":        starlark.Bool(s.Shared),
		"machines":      strs(s.Machines),
		"selector":      starlark.String(s.Selector),
		"generator":     starlark.String(gen),
		"files":         strs(files),
		"needed_for":    starlark.String(s.NeededFor),
		"owner":         starlark.String(s.Owner),
		"group":         starlark.String(s.Group),
		"mode":          starlark.String(s.Mode),
		"restart_units": strs(s.RestartUnits),
		"depends":       strs(s.Depends),
		"pos":           starlark.String(s.Pos.String()),
	})
}

func overlayView(o *model.Overlay) *view {
	return newView("overlay", fmt.Sprintf("<overlay.%s %s>", o.Kind, o.Name), starlark.StringDict{
		"kind":      starlark.String(o.Kind),
		"name":      starlark.String(o.Name),
		"channel":   starlark.String(o.Channel),
		"platforms": strs(o.Platforms),
		"path":      starlark.String(o.Path),
		"url":       starlark.String(o.URL),
		"input":     starlark.String(o.Input),
		"attr":      starlark.String(o.Attr),
		"reason":    starlark.String(o.Reason),
		"added":     starlark.String(o.Added),
		"pos":       starlark.String(o.Pos.String()),
	})
}

// graphView exposes the dependency graph by node ID. Unknown IDs are
// errors: an empty list for a misspelt node would pass any "depends on
// nothing" test.
func graphView(g *graph.Graph) *view {
	nodes := g.Nodes()
	ids := make([]string, len(nodes))
	for i, n := range nodes {
		ids[i] = n.ID
	}
	edges := make([]starlark.Value, 0)
	for _, e := range g.Edges() {
		edges = append(edges, starlark.Tuple{starlark.String(e.From), starlark.String(e.To), starlark.String(e.Kind)})
	}
	check := func(fn, id string) error {
		if g.Node(id) == nil {
			return fmt.Errorf("%s(%s): the graph has no such node%s", fn, starlark.String(id), known(id, ids))
		}
		return nil
	}
	oneID := func(fn string, get func(string) []string) *starlark.Builtin {
		return method(fn, func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var id string
			if err := starlark.UnpackArgs(fn, args, kwargs, "id", &id); err != nil {
				return nil, err
			}
			if err := check(fn, id); err != nil {
				return nil, err
			}
			return strs(get(id)), nil
		})
	}
	return newView("fleet.graph", "<graph: "+plural.Count(len(ids), "node")+", "+plural.Count(len(edges), "edge")+">", starlark.StringDict{
		"nodes": strs(ids),
		"edges": starlark.NewList(edges),
		"topo":  strs(g.Topo()),
		"deps":  oneID("deps", g.DependsOn),
		"rdeps": oneID("rdeps", g.Dependents),
		"closure": method("closure", func(args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			if len(kwargs) > 0 {
				return nil, fmt.Errorf("closure: unexpected keyword arguments")
			}
			var want []string
			for _, a := range args {
				id, ok := starlark.AsString(a)
				if !ok {
					return nil, fmt.Errorf("closure: want node ids (strings), got %s", a.Type())
				}
				if err := check("closure", id); err != nil {
					return nil, err
				}
				want = append(want, id)
			}
			return strs(g.Closure(want...)), nil
		}),
	})
}

// strs makes a list of strings (never None, so len() and "in" always work).
func strs(xs []string) *starlark.List {
	l := make([]starlark.Value, len(xs))
	for i, x := range xs {
		l[i] = starlark.String(x)
	}
	return starlark.NewList(l)
}

func strDict(m map[string]string) *starlark.Dict {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := starlark.NewDict(len(m))
	for _, k := range keys {
		_ = d.SetKey(starlark.String(k), starlark.String(m[k]))
	}
	return d
}
