package builtins

import (
	"fmt"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// featureGroup is feature(): named configuration shared by machines.
func featureGroup() []Builtin {
	return []Builtin{{Fn: builtinFeature, Doc: Doc{Name: "feature", Group: "declarations",
		Signature: `feature(name, nixos = {}, darwin = {}, home = {}, packages = [], requires = [], modules = [], doc = "")`,
		Text: `Declares a feature: one module per class (NixOS, nix-darwin, home-manager) that
machines and users pick by name or by value.

nixos, darwin and home are dicts of option paths to values. Top-level keys are dotted
paths ("services.openssh.enable"; quote a segment that holds dots:
'environment.etc."resolv.conf".text'); keys of nested dicts are taken literally.
Values are str, int, float, bool, None, lists, dicts and nix.* values.
packages are nixpkgs attribute names added to environment.systemPackages (or
home.packages for users). requires names other features, by name or value: an edge
in the graph, and an import in the generated module. modules are hand-written .nix
files, relative to the declaring .star file, copied into the output (a pinned
library's files under deps/<name>/: a library's feature may bring its own modules).

A feature with only nixos configuration is refused on a nix-darwin machine, and the
other way round; an explicitly empty part (darwin = {}) says that it deliberately does
nothing there.`}}}
}

func builtinFeature(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := declare(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var name, doc string
	var nixos, darwin, home config
	var packages, modules stringList
	requires := refList{kind: "feature"}
	if err := unpack(b.Name(), args, kwargs, "name", &name, "nixos?", &nixos, "darwin?", &darwin,
		"home?", &home, "packages?", &packages, "requires?", &requires, "modules?", &modules, "doc?", &doc); err != nil {
		return nil, err
	}
	if err := checkName("feature", name, identNameRE, "it becomes a file name: use letters, digits, '_' and '-'"); err != nil {
		return nil, err
	}
	reqs, dup := sortedUnique(requires.names)
	if dup != "" {
		return nil, fmt.Errorf("feature: requires names %q twice", dup)
	}
	for _, p := range packages {
		if p == "" {
			return nil, fmt.Errorf("feature: packages: empty package name")
		}
	}
	mods := make([]string, len(modules))
	for i, m := range modules {
		if mods[i], err = r.path(thread, m); err != nil {
			return nil, fmt.Errorf("feature: modules: %w", err)
		}
	}
	f := &model.Feature{Name: name, Doc: doc, NixOS: nonEmpty(nixos.attrs), Darwin: nonEmpty(darwin.attrs),
		Home: nonEmpty(home.attrs), Packages: packages, Requires: reqs, Modules: mods, Pos: callerPos(thread)}
	r.features = append(r.features, f)
	// config.attrs is set only when the argument was given.
	for c, part := range map[model.Class]config{model.NixOS: nixos, model.Darwin: darwin} {
		if part.attrs != nil && part.attrs.Len() == 0 {
			if r.emptyParts == nil {
				r.emptyParts = map[*model.Feature][]model.Class{}
			}
			r.emptyParts[f] = append(r.emptyParts[f], c)
		}
	}
	return newDecl("feature", name, starlark.StringDict{
		"doc":      starlark.String(doc),
		"nixos":    AttrsDict(f.NixOS),
		"darwin":   AttrsDict(f.Darwin),
		"home":     AttrsDict(f.Home),
		"packages": strList(packages),
		"requires": strList(reqs),
		"modules":  strList(mods),
	}), nil
}

// nonEmpty drops empty attribute sets so the model says "none" one way.
func nonEmpty(a *model.Attrs) *model.Attrs {
	if a.Len() == 0 {
		return nil
	}
	return a
}
