package builtins

import (
	"fmt"
	"hash/fnv"
	"reflect"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Decl is the frozen value a declaration returns: machine("x") gives a
// Decl of type "machine". Its attributes are a read-only view of what was
// declared, so libraries can compute with it (m.name, f.requires ...).
type Decl struct {
	kind  string
	name  string
	attrs starlark.StringDict
}

var (
	_ starlark.HasAttrs = (*Decl)(nil)
	_ starlark.Value    = (*Decl)(nil)
)

func newDecl(kind, name string, attrs starlark.StringDict) *Decl {
	attrs["name"] = starlark.String(name)
	attrs.Freeze()
	return &Decl{kind: kind, name: name, attrs: attrs}
}

// Kind and Name identify the declaration.
func (d *Decl) Kind() string { return d.kind }
func (d *Decl) Name() string { return d.name }

func (d *Decl) String() string       { return fmt.Sprintf("%s(%s)", d.kind, quote(d.name)) }
func (d *Decl) Type() string         { return d.kind }
func (d *Decl) Freeze()              {}
func (d *Decl) Truth() starlark.Bool { return starlark.True }
func (d *Decl) Attr(name string) (starlark.Value, error) {
	if v, ok := d.attrs[name]; ok {
		return v, nil
	}
	return nil, nil // starlark reports "has no .x field" with a suggestion
}
func (d *Decl) AttrNames() []string { return d.attrs.Keys() }
func (d *Decl) Hash() (uint32, error) {
	h := fnv.New32a()
	h.Write([]byte(d.kind + "\x00" + d.name))
	return h.Sum32(), nil
}

// NixValue is a Starlark value that stands for a Nix construct: nix.expr,
// nix.pkg, nix.path, nix.force/default/order. It carries the model value
// it lowers to and a repr that reads like the call that made it.
type NixValue struct {
	v    model.Value
	repr string
}

func (n *NixValue) String() string        { return n.repr }
func (n *NixValue) Type() string          { return n.v.Kind() }
func (n *NixValue) Freeze()               {}
func (n *NixValue) Truth() starlark.Bool  { return starlark.True }
func (n *NixValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", n.Type()) }

// Model returns the model value.
func (n *NixValue) Model() model.Value { return n.v }

// CompareSameType makes Nix values equal when they mean the same Nix
// (nix.force("x") == nix.force("x")), for fleet test's assert.eq.
func (n *NixValue) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	eq := reflect.DeepEqual(n.v, y.(*NixValue).v)
	switch op {
	case syntax.EQL:
		return eq, nil
	case syntax.NEQ:
		return !eq, nil
	}
	return false, fmt.Errorf("%s %s %s not implemented", n.Type(), op, y.Type())
}

// HostValue is what hetzner.server and gcp.instance return.
type HostValue struct {
	host *model.Host
	repr string
}

func (h *HostValue) String() string        { return h.repr }
func (h *HostValue) Type() string          { return string(h.host.Provider) + "." + hostNoun(h.host) }
func (h *HostValue) Freeze()               {}
func (h *HostValue) Truth() starlark.Bool  { return starlark.True }
func (h *HostValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", h.Type()) }
func (h *HostValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "provider":
		return starlark.String(h.host.Provider), nil
	case "enabled":
		return starlark.Bool(h.host.Enabled), nil
	case "type":
		if h.host.Hetzner != nil {
			return starlark.String(h.host.Hetzner.Type), nil
		}
		return starlark.String(h.host.GCP.Type), nil
	case "location":
		if h.host.Hetzner != nil {
			return starlark.String(h.host.Hetzner.Location), nil
		}
		return starlark.String(h.host.GCP.Zone), nil
	}
	return nil, nil
}
func (h *HostValue) AttrNames() []string { return []string{"enabled", "location", "provider", "type"} }

func hostNoun(h *model.Host) string {
	if h.Provider == model.GCP {
		return "instance"
	}
	return "server"
}

// GenValue is a secret generator, as gen.password(...) returns.
type GenValue struct {
	gen     *model.Generator
	outputs []model.SecretFile // default files: output name, public or secret
	repr    string
}

func (g *GenValue) String() string        { return g.repr }
func (g *GenValue) Type() string          { return "generator" }
func (g *GenValue) Freeze()               {}
func (g *GenValue) Truth() starlark.Bool  { return starlark.True }
func (g *GenValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: generator") }
func (g *GenValue) Attr(name string) (starlark.Value, error) {
	switch name {
	case "kind":
		return starlark.String(g.gen.Kind), nil
	case "outputs":
		names := make([]string, len(g.outputs))
		for i, o := range g.outputs {
			names[i] = o.Output
		}
		return strList(names), nil
	}
	return nil, nil
}
func (g *GenValue) AttrNames() []string { return []string{"kind", "outputs"} }

// quote renders s as a Starlark string literal.
func quote(s string) string { return starlark.String(s).String() }

// callRepr renders a call with keyword arguments in sorted order, for the
// str() of values.
func callRepr(fn string, positional []string, kw map[string]string) string {
	parts := append([]string(nil), positional...)
	keys := make([]string, 0, len(kw))
	for k := range kw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+" = "+kw[k])
	}
	return fn + "(" + strings.Join(parts, ", ") + ")"
}

// strList makes a frozen Starlark list of strings.
func strList(xs []string) *starlark.List {
	l := make([]starlark.Value, len(xs))
	for i, x := range xs {
		l[i] = starlark.String(x)
	}
	list := starlark.NewList(l)
	list.Freeze()
	return list
}
