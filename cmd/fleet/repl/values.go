package repl

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// The views below are read-only Starlark windows onto one evaluation of
// the fleet (a state). They are snapshots: after reload() a view made
// before still shows the old evaluation, while the helpers (nix, deps,
// rdeps ...) look names up in the current one, which is what someone who
// just edited the file expects. Views are compared and hashed by kind and
// name, so they can be dict keys, set members and sorted, and a view made
// before a reload equals the one made after for the same machine.

// machineView is a machine of the model.
type machineView struct {
	st *state
	m  *model.Machine
}

// featureView is a feature of the model.
type featureView struct {
	st *state
	f  *model.Feature
}

// secretView is a secret's description (the model never holds values).
type secretView struct {
	st *state
	s  *model.Secret
}

// hostView is a machine's cloud host.
type hostView struct {
	machine string
	h       *model.Host
}

// opaque is a value that only has a repr: a deploy check, a secret file.
// (Configuration goes through builtins.FromValue, whose Nix constructs
// read like the calls that made them.)
type opaque struct {
	typ, repr string
}

var (
	_ starlark.HasAttrs   = (*machineView)(nil)
	_ starlark.Comparable = (*machineView)(nil)
	_ starlark.HasAttrs   = (*featureView)(nil)
	_ starlark.Comparable = (*featureView)(nil)
	_ starlark.HasAttrs   = (*secretView)(nil)
	_ starlark.Comparable = (*secretView)(nil)
	_ starlark.HasAttrs   = (*hostView)(nil)
)

// attribute names in the order show() lists them.
var (
	machineAttrs = []string{"name", "system", "kind", "state_version", "tags", "features", "users", "host", "target",
		"host_key", "secrets", "checks", "rollback", "nixos", "darwin", "home", "pos"}
	featureAttrs = []string{"name", "doc", "classes", "requires", "packages", "modules", "machines",
		"nixos", "darwin", "home", "pos"}
	secretAttrs = []string{"name", "shared", "machines", "selector", "generator", "files", "needed_for",
		"owner", "group", "mode", "restart_units", "depends", "pos"}
	hetznerAttrs = []string{"provider", "type", "place", "enabled", "image", "firewalls", "labels"}
	gcpAttrs     = []string{"provider", "type", "place", "enabled", "image", "project", "disk_gb", "gpu", "gpus", "labels"}
)

func (v *machineView) String() string {
	return fmt.Sprintf("<machine %s %s %s>", v.m.Name, v.m.System, v.m.Class)
}
func (v *machineView) Type() string          { return "machine" }
func (v *machineView) Freeze()               {}
func (v *machineView) Truth() starlark.Bool  { return starlark.True }
func (v *machineView) Hash() (uint32, error) { return hashName("machine", v.m.Name), nil }
func (v *machineView) AttrNames() []string   { return sortedCopy(machineAttrs) }
func (v *machineView) CompareSameType(op syntax.Token, y starlark.Value, _ int) (bool, error) {
	return compareNames(op, v.m.Name, y.(*machineView).m.Name)
}

func (v *machineView) Attr(name string) (starlark.Value, error) {
	m := v.m
	switch name {
	case "name":
		return starlark.String(m.Name), nil
	case "system":
		return starlark.String(m.System), nil
	case "kind": // "class" is a Starlark keyword; machine() values say kind too
		return starlark.String(m.Class), nil
	case "tags":
		return strList(m.Tags), nil
	case "features":
		return strList(m.Features), nil
	case "users":
		return strList(m.Users), nil
	case "host":
		if m.Host == nil {
			return starlark.None, nil
		}
		return &hostView{machine: m.Name, h: m.Host}, nil
	case "target":
		return starlark.String(m.Target), nil
	case "state_version":
		return starlark.String(m.StateVersion), nil
	case "host_key":
		switch {
		case m.HostKey != "":
			return starlark.String(m.HostKey), nil
		case m.HostKeySecret != "":
			if s := v.st.fleet.Secret(m.HostKeySecret); s != nil {
				return &secretView{st: v.st, s: s}, nil
			}
			return starlark.String(m.HostKeySecret), nil
		}
		return starlark.None, nil
	case "secrets":
		var out []starlark.Value
		for _, s := range v.st.fleet.Secrets {
			for _, name := range s.Machines {
				if name == m.Name {
					out = append(out, &secretView{st: v.st, s: s})
					break
				}
			}
		}
		return frozenList(out), nil
	case "checks":
		out := make([]starlark.Value, len(m.Checks))
		for i, c := range m.Checks {
			out[i] = checkValue(c)
		}
		return frozenList(out), nil
	case "rollback":
		return starlark.Bool(m.Rollback), nil
	case "nixos":
		return builtins.AttrsDict(m.NixOS), nil
	case "darwin":
		return builtins.AttrsDict(m.Darwin), nil
	case "home":
		return builtins.AttrsDict(m.Home), nil
	case "pos":
		return starlark.String(m.Pos.String()), nil
	}
	return nil, nil // Starlark reports "machine has no .x field or method"
}

func (v *featureView) String() string {
	classes := featureClasses(v.f)
	if len(classes) == 0 {
		return fmt.Sprintf("<feature %s>", v.f.Name)
	}
	return fmt.Sprintf("<feature %s %s>", v.f.Name, strings.Join(classes, ","))
}
func (v *featureView) Type() string          { return "feature" }
func (v *featureView) Freeze()               {}
func (v *featureView) Truth() starlark.Bool  { return starlark.True }
func (v *featureView) Hash() (uint32, error) { return hashName("feature", v.f.Name), nil }
func (v *featureView) AttrNames() []string   { return sortedCopy(featureAttrs) }
func (v *featureView) CompareSameType(op syntax.Token, y starlark.Value, _ int) (bool, error) {
	return compareNames(op, v.f.Name, y.(*featureView).f.Name)
}

func (v *featureView) Attr(name string) (starlark.Value, error) {
	f := v.f
	switch name {
	case "name":
		return starlark.String(f.Name), nil
	case "doc":
		return starlark.String(f.Doc), nil
	case "classes":
		return strList(featureClasses(f)), nil
	case "requires":
		return strList(f.Requires), nil
	case "packages":
		return strList(f.Packages), nil
	case "modules":
		return strList(f.Modules), nil
	case "machines":
		return strList(v.st.machinesReaching(graph.ID(graph.KindFeature, f.Name))), nil
	case "nixos":
		return builtins.AttrsDict(f.NixOS), nil
	case "darwin":
		return builtins.AttrsDict(f.Darwin), nil
	case "home":
		return builtins.AttrsDict(f.Home), nil
	case "pos":
		return starlark.String(f.Pos.String()), nil
	}
	return nil, nil
}

// featureClasses lists the classes a feature has configuration for.
func featureClasses(f *model.Feature) []string {
	var out []string
	for _, c := range []model.Class{model.NixOS, model.Darwin, model.Home} {
		if f.Config(c) != nil {
			out = append(out, string(c))
		}
	}
	return out
}

func (v *secretView) String() string        { return fmt.Sprintf("<secret %s>", v.s.Name) }
func (v *secretView) Type() string          { return "secret" }
func (v *secretView) Freeze()               {}
func (v *secretView) Truth() starlark.Bool  { return starlark.True }
func (v *secretView) Hash() (uint32, error) { return hashName("secret", v.s.Name), nil }
func (v *secretView) AttrNames() []string   { return sortedCopy(secretAttrs) }
func (v *secretView) CompareSameType(op syntax.Token, y starlark.Value, _ int) (bool, error) {
	return compareNames(op, v.s.Name, y.(*secretView).s.Name)
}

func (v *secretView) Attr(name string) (starlark.Value, error) {
	s := v.s
	switch name {
	case "name":
		return starlark.String(s.Name), nil
	case "shared":
		return starlark.Bool(s.Shared), nil
	case "machines":
		return strList(s.Machines), nil
	case "selector":
		return starlark.String(s.Selector), nil
	case "generator":
		if s.Generator == nil {
			return starlark.None, nil
		}
		return starlark.String(s.Generator.Kind), nil
	case "files":
		names := make([]string, len(s.Files))
		for i, f := range s.Files {
			names[i] = f.Name
		}
		return strList(names), nil
	case "needed_for":
		return starlark.String(s.NeededFor), nil
	case "owner":
		return starlark.String(s.Owner), nil
	case "group":
		return starlark.String(s.Group), nil
	case "mode":
		return starlark.String(s.Mode), nil
	case "restart_units":
		return strList(s.RestartUnits), nil
	case "depends":
		return strList(s.Depends), nil
	case "pos":
		return starlark.String(s.Pos.String()), nil
	}
	return nil, nil
}

func (v *hostView) String() string {
	typ, place := hostShape(v.h)
	s := fmt.Sprintf("<host %s %s %s", v.h.Provider, typ, place)
	if !v.h.Enabled {
		s += " off"
	}
	return s + ">"
}
func (v *hostView) Type() string          { return "host" }
func (v *hostView) Freeze()               {}
func (v *hostView) Truth() starlark.Bool  { return starlark.True }
func (v *hostView) Hash() (uint32, error) { return hashName("host", v.machine), nil }
func (v *hostView) AttrNames() []string   { return sortedCopy(v.attrs()) }

// attrs are the attributes of the host's provider, in show order.
func (v *hostView) attrs() []string {
	if v.h.GCP != nil {
		return gcpAttrs
	}
	return hetznerAttrs
}

func (v *hostView) Attr(name string) (starlark.Value, error) {
	h := v.h
	typ, place := hostShape(h)
	switch name {
	case "provider":
		return starlark.String(h.Provider), nil
	case "type":
		return starlark.String(typ), nil
	case "place":
		return starlark.String(place), nil
	case "enabled":
		return starlark.Bool(h.Enabled), nil
	}
	if g := h.GCP; g != nil {
		switch name {
		case "image":
			return starlark.String(g.Image), nil
		case "project":
			return starlark.String(g.Project), nil
		case "disk_gb":
			return starlark.MakeInt(g.DiskGB), nil
		case "gpu":
			return starlark.String(g.GPU), nil
		case "gpus":
			return starlark.MakeInt(g.GPUs), nil
		case "labels":
			return strDict(g.Labels), nil
		}
	}
	if z := h.Hetzner; z != nil {
		switch name {
		case "image":
			return starlark.String(z.Image), nil
		case "firewalls":
			return strList(z.Firewalls), nil
		case "labels":
			return strDict(z.Labels), nil
		}
	}
	return nil, nil
}

// hostShape is a host's machine type and location (Hetzner) or zone (GCE).
func hostShape(h *model.Host) (typ, place string) {
	switch {
	case h.Hetzner != nil:
		return h.Hetzner.Type, h.Hetzner.Location
	case h.GCP != nil:
		return h.GCP.Type, h.GCP.Zone
	}
	return "", ""
}

func (o *opaque) String() string        { return o.repr }
func (o *opaque) Type() string          { return o.typ }
func (o *opaque) Freeze()               {}
func (o *opaque) Truth() starlark.Bool  { return starlark.True }
func (o *opaque) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", o.typ) }

// checkValue renders a deploy check the way it was written.
func checkValue(c model.Check) starlark.Value {
	q := func(s string) string { return starlark.String(s).String() }
	switch c.Kind {
	case "command":
		return &opaque{"check.command", "check.command(" + q(c.Command) + ")"}
	case "http":
		return &opaque{"check.http", fmt.Sprintf("check.http(%s, status = %d)", q(c.URL), c.Status)}
	case "tcp":
		return &opaque{"check.tcp", "check.tcp(" + q(c.Address) + ")"}
	}
	return &opaque{"check." + c.Kind, "check." + c.Kind + "(...)"}
}

func strList(xs []string) *starlark.List {
	out := make([]starlark.Value, len(xs))
	for i, x := range xs {
		out[i] = starlark.String(x)
	}
	return frozenList(out)
}

func strDict(m map[string]string) *starlark.Dict {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	d := starlark.NewDict(len(keys))
	for _, k := range keys {
		_ = d.SetKey(starlark.String(k), starlark.String(m[k]))
	}
	d.Freeze()
	return d
}

// frozenList makes attribute values read-only: m.tags.append(x) would
// otherwise seem to change the machine.
func frozenList(xs []starlark.Value) *starlark.List {
	l := starlark.NewList(xs)
	l.Freeze()
	return l
}

func sortedCopy(xs []string) []string {
	out := append([]string(nil), xs...)
	sort.Strings(out)
	return out
}

func hashName(kind, name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(kind + "\x00" + name))
	return h.Sum32()
}

func compareNames(op syntax.Token, x, y string) (bool, error) {
	switch op {
	case syntax.EQL:
		return x == y, nil
	case syntax.NEQ:
		return x != y, nil
	case syntax.LT:
		return x < y, nil
	case syntax.LE:
		return x <= y, nil
	case syntax.GT:
		return x > y, nil
	case syntax.GE:
		return x >= y, nil
	}
	return false, fmt.Errorf("unsupported comparison %s", op)
}
