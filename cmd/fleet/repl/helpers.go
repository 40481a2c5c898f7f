package repl

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plural"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// helpText is what help() prints.
const helpText = `helpers (the fleet file's globals and the fleet builtins are in scope too):
  machines(sel = "all")   machines matched by a selector: "name", "@tag", "glob*", "all" (or a list)
  features(sel = "all")   features whose name matches a glob
  secrets(sel = "all")    secrets (their description: fleet never decrypts here)
  show(x)                 print x in full, indented; secret material is never printed
  nix(x)                  the Nix fleet writes for a machine, feature or user (value or name),
                          or a generated file by path ("flake.nix"); nix.expr, nix.pkg ... as usual
  deps(x), rdeps(x)       graph neighbours: node IDs x depends on / that depend on x
  plan()                  the whole plan, as fleet plan prints it (credentials from the environment)
  reload()                evaluate the fleet file again after editing it
  _                       the last expression's value
Ctrl-C cancels a running evaluation or clears the line; Ctrl-D exits.`

// makeHelpers returns the session's builtins. nix is both a function and the
// nix module of the builtins, so nix(m) and nix.pkg("x") both work.
func (s *Session) makeHelpers(predeclared starlark.StringDict) starlark.StringDict {
	h := starlark.StringDict{
		"machines": starlark.NewBuiltin("machines", s.builtinMachines),
		"features": starlark.NewBuiltin("features", s.builtinFeatures),
		"secrets":  starlark.NewBuiltin("secrets", s.builtinSecrets),
		"show":     starlark.NewBuiltin("show", s.builtinShow),
		"deps":     starlark.NewBuiltin("deps", s.builtinDeps(false)),
		"rdeps":    starlark.NewBuiltin("rdeps", s.builtinDeps(true)),
		"plan":     starlark.NewBuiltin("plan", s.builtinPlan),
		"reload":   starlark.NewBuiltin("reload", s.builtinReload),
		"help":     starlark.NewBuiltin("help", s.builtinHelp),
		"include":  starlark.NewBuiltin("include", builtinInclude),
	}
	n := &nixHelper{s: s}
	if mod, ok := predeclared["nix"].(*starlarkstruct.Module); ok {
		n.members = mod.Members
	}
	h["nix"] = n
	// Results of these calls are text to read: the loop prints them as
	// they are rather than as quoted strings.
	s.textFns = map[starlark.Value]bool{n: true, h["plan"]: true}
	return h
}

// contextOf is the evaluation's context: cancelled by Ctrl-C.
func contextOf(thread *starlark.Thread) context.Context {
	if ctx, ok := thread.Local("context").(context.Context); ok {
		return ctx
	}
	return context.Background()
}

// selectorArg accepts a string or a list/tuple of strings.
func selectorArg(fn string, v starlark.Value) ([]string, error) {
	switch v := v.(type) {
	case starlark.String:
		return []string{string(v)}, nil
	case starlark.Iterable:
		var out []string
		it := v.Iterate()
		defer it.Done()
		var x starlark.Value
		for it.Next(&x) {
			s, ok := x.(starlark.String)
			if !ok {
				return nil, fmt.Errorf("%s: sel: want strings, got %s", fn, x.Type())
			}
			out = append(out, string(s))
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: sel: want a selector string or a list of them, got %s", fn, v.Type())
}

func (s *Session) builtinMachines(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var sel starlark.Value = starlark.String("all")
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "sel?", &sel); err != nil {
		return nil, err
	}
	sels, err := selectorArg(b.Name(), sel)
	if err != nil {
		return nil, err
	}
	ms, err := s.cur.selectMachines(sels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.Name(), err)
	}
	out := make([]starlark.Value, len(ms))
	for i, m := range ms {
		out[i] = &machineView{st: s.cur, m: m}
	}
	return starlark.NewList(out), nil
}

// globArg matches names against a glob (or "all"), failing on a plain
// name that matches nothing, like machine selectors do.
func globArg(fn, what string, sel starlark.Value, names []string) (func(string) bool, error) {
	sels, err := selectorArg(fn, sel)
	if err != nil {
		return nil, err
	}
	for _, p := range sels {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%s: %q is not a valid glob: %v", fn, p, err)
		}
		if p != "all" && !strings.ContainsAny(p, "*?[") && !contains(names, p) {
			return nil, fmt.Errorf("%s: no %s is called %q%s", fn, what, p, builtins.DidYouMean(p, names))
		}
	}
	return func(name string) bool {
		for _, p := range sels {
			if ok, _ := path.Match(p, name); ok || p == "all" {
				return true
			}
		}
		return false
	}, nil
}

func (s *Session) builtinFeatures(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var sel starlark.Value = starlark.String("all")
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "sel?", &sel); err != nil {
		return nil, err
	}
	var names []string
	for _, f := range s.cur.fleet.Features {
		names = append(names, f.Name)
	}
	match, err := globArg(b.Name(), "feature", sel, names)
	if err != nil {
		return nil, err
	}
	var out []starlark.Value
	for _, f := range s.cur.fleet.Features {
		if match(f.Name) {
			out = append(out, &featureView{st: s.cur, f: f})
		}
	}
	return starlark.NewList(out), nil
}

func (s *Session) builtinSecrets(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var sel starlark.Value = starlark.String("all")
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "sel?", &sel); err != nil {
		return nil, err
	}
	var names []string
	for _, x := range s.cur.fleet.Secrets {
		names = append(names, x.Name)
	}
	match, err := globArg(b.Name(), "secret", sel, names)
	if err != nil {
		return nil, err
	}
	var out []starlark.Value
	for _, x := range s.cur.fleet.Secrets {
		if match(x.Name) {
			out = append(out, &secretView{st: s.cur, s: x})
		}
	}
	return starlark.NewList(out), nil
}

// show prints rather than returns, so that it works inside a loop
// (for m in machines(): show(m)) the way print does.
func (s *Session) builtinShow(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x starlark.Value
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "x", &x); err != nil {
		return nil, err
	}
	fmt.Fprint(s.cfg.Stdout, show(s.cur, x))
	return starlark.None, nil
}

func (s *Session) builtinDeps(reverse bool) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var x starlark.Value
		if err := starlark.UnpackArgs(b.Name(), args, kwargs, "x", &x); err != nil {
			return nil, err
		}
		id, err := s.cur.nodeID(b.Name(), x)
		if err != nil {
			return nil, err
		}
		ids := s.cur.graph.DependsOn(id)
		if reverse {
			ids = s.cur.graph.Dependents(id)
		}
		return strList(ids), nil
	}
}

func (s *Session) builtinPlan(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	if s.cfg.Plan == nil {
		return nil, fmt.Errorf("plan: no cloud providers in this session")
	}
	text, err := s.cfg.Plan(contextOf(thread), s.cur.fleet)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	return starlark.String(text), nil
}

func (s *Session) builtinReload(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	if s.cfg.File == "" {
		return nil, fmt.Errorf("reload: the session has no fleet file (start it with fleet repl FILE)")
	}
	st, err := evaluate(contextOf(thread), s.cfg.File, s.cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("%v\n(the session keeps the previous evaluation of %s)", err, s.cfg.File)
	}
	s.cur = st
	// The globals are rebuilt once the running statement is done: the
	// statement itself holds the old ones and would write them back.
	s.reloaded = true
	fmt.Fprintf(s.cfg.Stdout, "reloaded %s: %s\n", s.cfg.File, summary(st))
	return starlark.None, nil
}

func (s *Session) builtinHelp(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	fmt.Fprintln(s.cfg.Stdout, helpText)
	return starlark.None, nil
}

func builtinInclude(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return nil, fmt.Errorf("include: fleet files are included by the fleet file; edit it and reload()")
}

// summary is a one-line description of an evaluation.
func summary(st *state) string {
	f := st.fleet
	s := fmt.Sprintf("%s, %s, %s", count(len(f.Machines), "machine"), count(len(f.Features), "feature"), count(len(f.Secrets), "secret"))
	if f.Name != "" {
		s = "fleet " + f.Name + ": " + s
	}
	return s
}

// count is plural.Count: "1 machine", "2 machines".
func count(n int, noun string) string { return plural.Count(n, noun) }

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// nixHelper is nix(x) and, as attributes, the members of the nix module.
type nixHelper struct {
	s       *Session
	members starlark.StringDict
}

var (
	_ starlark.Callable = (*nixHelper)(nil)
	_ starlark.HasAttrs = (*nixHelper)(nil)
)

func (n *nixHelper) Name() string          { return "nix" }
func (n *nixHelper) String() string        { return "<built-in function nix>" }
func (n *nixHelper) Type() string          { return "builtin_function_or_method" }
func (n *nixHelper) Freeze()               {}
func (n *nixHelper) Truth() starlark.Bool  { return starlark.True }
func (n *nixHelper) Hash() (uint32, error) { return hashName("builtin", "nix"), nil }
func (n *nixHelper) AttrNames() []string   { return slices.Sorted(maps.Keys(n.members)) }
func (n *nixHelper) Attr(name string) (starlark.Value, error) {
	if v, ok := n.members[name]; ok {
		return v, nil
	}
	return nil, nil
}

// CallInternal returns the text of the generated files for x, each after
// a "# ==> path <==" line (a Nix comment, so one file stays valid Nix).
func (n *nixHelper) CallInternal(_ *starlark.Thread, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x starlark.Value
	if err := starlark.UnpackArgs("nix", args, kwargs, "x", &x); err != nil {
		return nil, err
	}
	st := n.s.cur
	files, err := st.nixFiles()
	if err != nil {
		return nil, fmt.Errorf("nix: lowering the fleet: %w", err)
	}
	paths, err := nixPaths(st, files, x)
	if err != nil {
		return nil, fmt.Errorf("nix: %w", err)
	}
	var b strings.Builder
	for i, p := range paths {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "# ==> %s <==\n", p)
		b.Write(files[p])
	}
	return starlark.String(b.String()), nil
}

// nixPaths picks the generated files that belong to x. A name is looked
// up as a generated path, then a machine, a feature, a user.
func nixPaths(st *state, files map[string][]byte, x starlark.Value) ([]string, error) {
	kind, name := "", ""
	switch v := x.(type) {
	case *machineView:
		kind, name = "machine", v.m.Name
	case *featureView:
		kind, name = "feature", v.f.Name
	case *builtins.Decl:
		kind, name = v.Kind(), v.Name()
	case starlark.String:
		name = string(v)
		switch {
		case files[name] != nil:
			return []string{name}, nil
		case st.fleet.Machine(name) != nil:
			kind = "machine"
		case st.fleet.Feature(name) != nil:
			kind = "feature"
		case st.fleet.User(name) != nil:
			kind = "user"
		default:
			var names []string
			for _, m := range st.fleet.Machines {
				names = append(names, m.Name)
			}
			for _, f := range st.fleet.Features {
				names = append(names, f.Name)
			}
			names = append(names, slices.Sorted(maps.Keys(files))...)
			return nil, fmt.Errorf("no machine, feature, user or generated file is called %q%s", name, builtins.DidYouMean(name, names))
		}
	default:
		return nil, fmt.Errorf("want a machine or feature (a value or its name), a user's name or a generated path, not %s", x.Type())
	}
	var out []string
	switch kind {
	case "machine":
		m := st.fleet.Machine(name)
		if m == nil {
			return nil, fmt.Errorf("no machine %q in the fleet now (removed before a reload?)", name)
		}
		out = append(out, "machines/"+string(m.Class)+"/"+m.Name+".nix")
		if p := "homes/machines/" + m.Name + ".nix"; files[p] != nil {
			out = append(out, p)
		}
	case "feature":
		if st.fleet.Feature(name) == nil {
			return nil, fmt.Errorf("no feature %q in the fleet now (removed before a reload?)", name)
		}
		for _, c := range []model.Class{model.NixOS, model.Darwin, model.Home} {
			if p := "modules/" + string(c) + "/" + name + ".nix"; files[p] != nil {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("feature %s has no module: modules are written for the classes of the machines and users that reach it, and nothing reaches it (rdeps(%q) is empty)", name, graph.ID(graph.KindFeature, name))
		}
	case "user":
		p := "homes/users/" + name + ".nix"
		if files[p] == nil {
			return nil, fmt.Errorf("user %s has no home file: it has no home features", name)
		}
		out = append(out, p)
	default:
		return nil, fmt.Errorf("fleet writes no file of its own for a %s; try a machine or a feature", kind)
	}
	for _, p := range out {
		if files[p] == nil {
			return nil, fmt.Errorf("%s was not generated", p)
		}
	}
	return out, nil
}
