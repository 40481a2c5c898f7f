package nixgen

import (
	"github.com/fleet-nix/fleet/engine/model"
)

// scope is where model values are being lowered: the names that stand
// for nixpkgs and lib there (pkgs and lib in a module; final and
// final.lib in an overlay), and how a fleet file named by nix.path is
// referred to from the file being written.
type scope struct {
	pkgs Expr
	lib  Expr
	// file maps a root-relative fleet file to the path expression that
	// reaches its copy in the output tree from the file being written.
	file func(label string) Expr
	// raw sees the inline Nix code lowered here (nil: nobody asks).
	raw func(code string)
}

// value lowers a model value.
func (s scope) value(v model.Value) Expr {
	switch v := v.(type) {
	case model.String:
		return Str{string(v)}
	case model.Int:
		return Int{int64(v)}
	case model.Float:
		return Float{float64(v)}
	case model.Bool:
		return Bool{bool(v)}
	case model.Null:
		return Null{}
	case model.List:
		l := List{Elems: make([]Expr, len(v))}
		for i, x := range v {
			l.Elems[i] = s.value(x)
		}
		return l
	case *model.Attrs:
		return s.attrs(v)
	case model.Expr:
		if s.raw != nil {
			s.raw(v.Code)
		}
		return Raw{v.Code}
	case model.Pkg:
		return s.pkg(v.Name)
	case model.Path:
		return s.file(v.Path)
	case model.Priority:
		fn := map[string]string{"force": "mkForce", "default": "mkDefault", "before": "mkBefore", "after": "mkAfter"}[v.Fn]
		return Call(selectOn(s.lib, fn), s.value(v.Value))
	}
	panic("nixgen: unknown model value " + v.Kind())
}

// attrs lowers an attribute set; the model keeps bindings sorted.
func (s scope) attrs(a *model.Attrs) *Attrs {
	out := &Attrs{}
	if a == nil {
		return out
	}
	out.Binds = make([]Bind, len(a.Bindings))
	for i, b := range a.Bindings {
		out.Binds[i] = Bind{Path: []string{b.Name}, Value: s.value(b.Value)}
	}
	return out
}

// pkg is the package called name ("ripgrep", "python3Packages.requests").
func (s scope) pkg(name string) Expr {
	path, err := model.ParseAttrPath(name)
	if err != nil { // the builtin checked it; keep the name whole
		path = []string{name}
	}
	return selectOn(s.pkgs, path...)
}

// selectOn extends a selection (or selects from a variable).
func selectOn(x Expr, path ...string) Expr {
	if sel, ok := x.(Select); ok {
		return Select{X: sel.X, Path: append(append([]string(nil), sel.Path...), path...)}
	}
	return Select{X: x, Path: path}
}
