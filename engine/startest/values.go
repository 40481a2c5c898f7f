package startest

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// attrsDict converts configuration (f.nixos) back to the nested dict it
// means, as declared values show it (nil: an empty dict).
func attrsDict(a *model.Attrs) *starlark.Dict {
	d := starlark.NewDict(a.Len())
	if a != nil {
		for _, b := range a.Bindings {
			_ = d.SetKey(starlark.String(b.Name), fromValue(b.Value))
		}
	}
	return d
}

// fromValue converts a model value to Starlark; Nix constructs become
// nixValues.
func fromValue(v model.Value) starlark.Value {
	switch v := v.(type) {
	case model.Null:
		return starlark.None
	case model.Bool:
		return starlark.Bool(v)
	case model.Int:
		return starlark.MakeInt64(int64(v))
	case model.Float:
		return starlark.Float(v)
	case model.String:
		return starlark.String(v)
	case model.List:
		l := make([]starlark.Value, len(v))
		for i, x := range v {
			l[i] = fromValue(x)
		}
		return starlark.NewList(l)
	case *model.Attrs:
		return attrsDict(v)
	}
	return nixValue{v}
}

// nixValue is a Nix construct read from the model (nix.force("25.05")).
// It equals another Nix value standing for the same Nix, including the one
// a test writes with the nix.* builtins (see equal).
type nixValue struct{ v model.Value }

var _ starlark.Comparable = nixValue{}

func (n nixValue) Model() model.Value    { return n.v }
func (n nixValue) String() string        { return nixRepr(n.v) }
func (n nixValue) Type() string          { return n.v.Kind() }
func (n nixValue) Freeze()               {}
func (n nixValue) Truth() starlark.Bool  { return starlark.True }
func (n nixValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", n.Type()) }

func (n nixValue) CompareSameType(op syntax.Token, y starlark.Value, depth int) (bool, error) {
	eq := reflect.DeepEqual(n.v, y.(nixValue).v)
	switch op {
	case syntax.EQL:
		return eq, nil
	case syntax.NEQ:
		return !eq, nil
	}
	return false, fmt.Errorf("%s %s %s not implemented", n.Type(), op, y.Type())
}

// nixRepr reads like the call that makes the value.
func nixRepr(v model.Value) string {
	switch v := v.(type) {
	case model.Expr:
		return "nix.expr(" + starlark.String(v.Code).String() + ")"
	case model.Pkg:
		return "nix.pkg(" + starlark.String(v.Name).String() + ")"
	case model.Path:
		return "nix.path(" + starlark.String(v.Path).String() + ")"
	case model.Priority:
		inner := fromValue(v.Value).String()
		switch v.Fn {
		case "before":
			return "nix.order(" + inner + ")"
		case "after":
			return "nix.order(" + inner + ", before = False)"
		}
		return "nix." + v.Fn + "(" + inner + ")"
	}
	return fromValue(v).String()
}

// known suggests the candidate closest to name, or lists a few.
func known(name string, candidates []string) string {
	if len(candidates) == 0 {
		return " (there are none)"
	}
	best, bestD := "", len(name)/2+2
	for _, c := range candidates {
		if d := distance(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	shown := append([]string(nil), candidates...)
	sort.Strings(shown)
	more := ""
	if len(shown) > 8 {
		more = fmt.Sprintf(", ... (%d in all)", len(shown))
		shown = shown[:8]
	}
	return " (there are " + strings.Join(shown, ", ") + more + ")"
}

// distance is the optimal string alignment distance: edits plus swaps of
// neighbours, the commonest typo ("wbe" for "web").
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
