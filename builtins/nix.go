package builtins

import (
	"fmt"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// nixGroup is the nix module: values that are Nix, not data.
func nixGroup() []Builtin {
	return []Builtin{
		{Fn: builtinNixExpr, Doc: Doc{Name: "nix.expr", Group: "nix", Signature: `nix.expr(code)`,
			Text: `A raw Nix expression, inserted parenthesized where the value is used. It may refer to
config, lib and pkgs (the module's arguments). Prefer data: a raw expression is not
checked until Nix evaluates it.`}},
		{Fn: builtinNixPkg, Doc: Doc{Name: "nix.pkg", Group: "nix", Signature: `nix.pkg(name)`,
			Text: `The package pkgs.<name>. A dotted name ("python3Packages.requests") is an attribute path.`}},
		{Fn: builtinNixPath, Doc: Doc{Name: "nix.path", Group: "nix", Signature: `nix.path(path)`,
			Text: `A file of the fleet as a Nix path, relative to the declaring .star file; it is copied
into the output tree with the module that uses it.`}},
		{Fn: builtinNixPriority("force"), Doc: Doc{Name: "nix.force", Group: "nix", Signature: `nix.force(value)`,
			Text: `lib.mkForce value: wins over definitions of normal priority.`}},
		{Fn: builtinNixPriority("default"), Doc: Doc{Name: "nix.default", Group: "nix", Signature: `nix.default(value)`,
			Text: `lib.mkDefault value: loses to definitions of normal priority.`}},
		{Fn: builtinNixOrder, Doc: Doc{Name: "nix.order", Group: "nix", Signature: `nix.order(value, before = True)`,
			Text: `lib.mkBefore value (before = True) or lib.mkAfter value: orders list and string
definitions merged from several modules.`}},
	}
}

func builtinNixExpr(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var code string
	if err := unpack(b.Name(), args, kwargs, "code", &code); err != nil {
		return nil, err
	}
	if strings.TrimSpace(code) == "" {
		return nil, fmt.Errorf("nix.expr: empty expression")
	}
	if strings.IndexByte(code, 0) >= 0 {
		return nil, fmt.Errorf("nix.expr: expression contains a NUL byte")
	}
	return &NixValue{v: model.Expr{Code: code}, repr: callRepr(b.Name(), []string{quote(code)}, nil)}, nil
}

func builtinNixPkg(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var name string
	if err := unpack(b.Name(), args, kwargs, "name", &name); err != nil {
		return nil, err
	}
	if _, err := model.ParseAttrPath(name); err != nil {
		return nil, fmt.Errorf("nix.pkg: %w", err)
	}
	return &NixValue{v: model.Pkg{Name: name}, repr: callRepr(b.Name(), []string{quote(name)}, nil)}, nil
}

func builtinNixPath(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var p string
	if err := unpack(b.Name(), args, kwargs, "path", &p); err != nil {
		return nil, err
	}
	r := recorderOf(thread)
	if r == nil {
		return nil, fmt.Errorf("nix.path: called outside a fleet evaluation")
	}
	rel, err := r.path(thread, p)
	if err != nil {
		return nil, fmt.Errorf("nix.path: %w", err)
	}
	return &NixValue{v: model.Path{Path: rel}, repr: callRepr(b.Name(), []string{quote(rel)}, nil)}, nil
}

func builtinNixPriority(fn string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var v starlark.Value
		if err := unpack(b.Name(), args, kwargs, "value", &v); err != nil {
			return nil, err
		}
		return wrapPriority(b.Name(), fn, v)
	}
}

func builtinNixOrder(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var v starlark.Value
	before := true
	if err := unpack(b.Name(), args, kwargs, "value", &v, "before?", &before); err != nil {
		return nil, err
	}
	fn := "after"
	if before {
		fn = "before"
	}
	return wrapPriority(b.Name(), fn, v)
}

func wrapPriority(name, fn string, v starlark.Value) (starlark.Value, error) {
	mv, err := toValue(v, name)
	if err != nil {
		return nil, err
	}
	return &NixValue{v: model.Priority{Fn: fn, Value: mv}, repr: fmt.Sprintf("%s(%s)", name, v)}, nil
}
