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
	i := len(a.Binds)
	// Sets are mostly built in order: appending then needs no search.
	if i == 0 || bindName(a.Binds[i-1]) < name {
		a.Binds = append(a.Binds, Bind{Path: []string{name}, Value: nest(path[1:], value)})
		return
	}
	i = sort.Search(len(a.Binds), func(i int) bool { return bindName(a.Binds[i]) >= name })
	if i == len(a.Binds) || bindName(a.Binds[i]) != name || len(a.Binds[i].Path) != 1 {
		a.Binds = append(a.Binds, Bind{})
		copy(a.Binds[i+1:], a.Binds[i:])
		a.Binds[i] = Bind{Path: []string{name}, Value: nest(path[1:], value)}
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
	cur.Value = Call(selectOn(lib, "mkMerge"), List{Elems: []Expr{cur.Value, nest(path[1:], value)}})
}

// nest wraps value in one single-binding set per name of path.
func nest(path []string, value Expr) Expr {
	for j := len(path) - 1; j >= 0; j-- {
		value = &Attrs{Binds: []Bind{{Path: []string{path[j]}, Value: value}}}
	}
	return value
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
