package nixgen

import "sort"

// setMerged binds value at path in a, keeping bindings sorted. Attribute
// sets meet by merging, as in Nix; any other meeting (the user set
// environment.systemPackages and the feature has packages, or a machine
// sets networking.hostName itself) becomes lib.mkMerge [ old new ], so
// that both definitions reach the module system, which knows how to
// combine them (lists concatenate; priorities such as mkForce decide).
func setMerged(a *Attrs, lib Expr, value Expr, path ...string) {
	name := path[0]
	i := sort.Search(len(a.Binds), func(i int) bool { return bindName(a.Binds[i]) >= name })
	if i == len(a.Binds) || bindName(a.Binds[i]) != name || len(a.Binds[i].Path) != 1 {
		nv := value
		for j := len(path) - 1; j >= 1; j-- {
			nv = &Attrs{Binds: []Bind{{Path: []string{path[j]}, Value: nv}}}
		}
		a.Binds = append(a.Binds, Bind{})
		copy(a.Binds[i+1:], a.Binds[i:])
		a.Binds[i] = Bind{Path: []string{name}, Value: nv}
		return
	}
	cur := &a.Binds[i]
	if child, ok := cur.Value.(*Attrs); ok {
		if len(path) > 1 {
			setMerged(child, lib, value, path[1:]...)
			return
		}
		if add, ok := value.(*Attrs); ok {
			for _, b := range add.Binds {
				setMerged(child, lib, b.Value, b.Path...)
			}
			return
		}
	}
	nv := value
	for j := len(path) - 1; j >= 1; j-- {
		nv = &Attrs{Binds: []Bind{{Path: []string{path[j]}, Value: nv}}}
	}
	cur.Value = Call(selectOn(lib, "mkMerge"), List{Elems: []Expr{cur.Value, nv}})
}

func bindName(b Bind) string {
	if len(b.Path) == 0 {
		return ""
	}
	return b.Path[0]
}

// mergeAttrs adds every binding of b into a (see setMerged).
func mergeAttrs(a, b *Attrs, lib Expr) {
	for _, x := range b.Binds {
		setMerged(a, lib, x.Value, x.Path...)
	}
}
