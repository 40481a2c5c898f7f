package builtins

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// This file holds the argument types shared by the builtins. Each
// implements starlark.Unpacker, so a wrong argument is reported by
// starlark.UnpackArgs as "fn: for parameter p: <what we say here>".

// unpack is starlark.UnpackArgs with a complete "did you mean" for unknown
// keyword arguments (the library's suggestion only considers some names).
func unpack(fn string, args starlark.Tuple, kwargs []starlark.Tuple, pairs ...any) error {
	var names []string
	for i := 0; i < len(pairs); i += 2 {
		names = append(names, strings.TrimRight(pairs[i].(string), "?"))
	}
	for _, kv := range kwargs {
		k := string(kv[0].(starlark.String))
		found := false
		for _, n := range names {
			if n == k {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("%s: unexpected keyword argument %s%s; it takes %s",
				fn, k, DidYouMean(k, names), strings.Join(names, ", "))
		}
	}
	return starlark.UnpackArgs(fn, args, kwargs, pairs...)
}

// typeErr is the one wording of a wrong-type argument.
func typeErr(want string, got starlark.Value) error {
	return fmt.Errorf("got %s %s, want %s", got.Type(), shortRepr(got), want)
}

func shortRepr(v starlark.Value) string {
	s := v.String()
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// stringList accepts a list or tuple of strings.
type stringList []string

func (s *stringList) Unpack(v starlark.Value) error {
	it, ok := v.(starlark.Indexable)
	if !ok || v.Type() == "string" {
		return typeErr("a list of strings", v)
	}
	out := make([]string, it.Len())
	for i := range out {
		str, ok := starlark.AsString(it.Index(i))
		if !ok {
			return fmt.Errorf("element %d: %w", i, typeErr("string", it.Index(i)))
		}
		out[i] = str
	}
	*s = out
	return nil
}

// stringMap accepts a dict of string to string.
type stringMap map[string]string

func (s *stringMap) Unpack(v starlark.Value) error {
	d, ok := v.(*starlark.Dict)
	if !ok {
		return typeErr("a dict of strings", v)
	}
	out := make(map[string]string, d.Len())
	for _, kv := range d.Items() {
		k, ok1 := starlark.AsString(kv[0])
		val, ok2 := starlark.AsString(kv[1])
		if !ok1 || !ok2 {
			return fmt.Errorf("entry %s: %s", kv[0], typeErr("string: string", kv[1]))
		}
		out[k] = val
	}
	*s = out
	return nil
}

// refList accepts a list whose elements are names (strings) or declared
// values of one kind, e.g. features = ["base", ssh]. It keeps the names:
// whether they exist is checked once the whole fleet is known.
type refList struct {
	kind  string
	names []string
}

func (r *refList) Unpack(v starlark.Value) error {
	it, ok := v.(starlark.Indexable)
	if !ok || v.Type() == "string" {
		return typeErr(fmt.Sprintf("a list of %s names or %s values", r.kind, r.kind), v)
	}
	r.names = make([]string, 0, it.Len())
	for i := 0; i < it.Len(); i++ {
		x := it.Index(i)
		switch x := x.(type) {
		case starlark.String:
			r.names = append(r.names, string(x))
		case *Decl:
			if x.kind != r.kind {
				return fmt.Errorf("element %d: got %s, want a %s", i, x, r.kind)
			}
			r.names = append(r.names, x.name)
		default:
			return fmt.Errorf("element %d: %w", i, typeErr(fmt.Sprintf("a %s name or value", r.kind), x))
		}
	}
	return nil
}

// ref accepts one name or declared value of a kind (channel = stable).
type ref struct {
	kind string
	name string
}

func (r *ref) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.String:
		r.name = string(x)
		return nil
	case *Decl:
		if x.kind == r.kind {
			r.name = x.name
			return nil
		}
	}
	return typeErr(fmt.Sprintf("a %s name or value", r.kind), v)
}

// selectors accepts one selector string or a list of them.
type selectors []model.Selector

func (s *selectors) Unpack(v starlark.Value) error {
	if str, ok := starlark.AsString(v); ok {
		*s = selectors{model.Selector(str)}
	} else {
		var l stringList
		if err := l.Unpack(v); err != nil {
			return typeErr(`a selector ("name", "@tag", "glob*", "all") or a list of them`, v)
		}
		for _, x := range l {
			*s = append(*s, model.Selector(x))
		}
	}
	for _, x := range *s {
		if err := x.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// config accepts a configuration dict: nixos = {"services.openssh.enable": True}.
// Its top-level keys are dotted attribute paths (a segment may be quoted:
// 'environment.etc."resolv.conf".text'); keys of nested dicts are taken
// literally. Values become model values at once, so a mistake is reported
// at the call that made it.
type config struct{ attrs *model.Attrs }

func (c *config) Unpack(v starlark.Value) error {
	d, ok := v.(*starlark.Dict)
	if !ok {
		return typeErr("a dict of option paths to values", v)
	}
	c.attrs = &model.Attrs{}
	for _, kv := range d.Items() {
		key, ok := starlark.AsString(kv[0])
		if !ok {
			return fmt.Errorf("key %s: %w", kv[0], typeErr("string", kv[0]))
		}
		path, err := model.ParseAttrPath(key)
		if err != nil {
			return err
		}
		val, err := toValue(kv[1], key)
		if err != nil {
			return err
		}
		if err := c.attrs.Set(path, val); err != nil {
			return fmt.Errorf("key %q: %w", key, err)
		}
	}
	return nil
}

// toValue converts a Starlark value to the model value of the same
// meaning. where names the value in errors (its dotted key).
func toValue(v starlark.Value, where string) (model.Value, error) {
	return toValueNested(v, where, maxNesting)
}

// toValueNested is toValue with room for limit levels of nesting (tests
// measure deeper values than a fleet may give).
func toValueNested(v starlark.Value, where string, limit int) (model.Value, error) {
	mv, err := convert(v, limit)
	if err != nil {
		return nil, err.withPath(where)
	}
	return mv, nil
}

// convertError is a conversion failure deep inside a value. The path to
// it is collected on the way out (innermost step first) and joined only
// when the error is reported: building it on the way in cost a string per
// level, quadratic in the depth of nesting.
type convertError struct {
	steps []string // ".key" or "[i]", innermost first
	msg   string   // what is wrong, after the path
	err   error    // wrapped, if any
}

func (e *convertError) step(s string) *convertError {
	e.steps = append(e.steps, s)
	return e
}

// elideSteps is how many steps of a long error path are shown at each end.
const elideSteps = 8

func (e *convertError) withPath(where string) error {
	var b strings.Builder
	b.WriteString(where)
	for i := len(e.steps) - 1; i >= 0; i-- {
		if n := len(e.steps); n > 2*elideSteps && i == n-1-elideSteps {
			// A path as deep as maxNesting is no use in full.
			fmt.Fprintf(&b, "...(%d more)", n-2*elideSteps)
			i = elideSteps
		}
		b.WriteString(e.steps[i])
	}
	if e.err != nil {
		return fmt.Errorf("%s: %s%w", b.String(), e.msg, e.err)
	}
	return fmt.Errorf("%s: %s", b.String(), e.msg)
}

func convertErrorf(format string, args ...any) *convertError {
	return &convertError{msg: fmt.Sprintf(format, args...)}
}

// maxNesting is how deeply lists and dicts may nest in a value given to
// the model. Configuration is a few levels deep; a value nested deeper
// than this is a runaway program, and every later stage (checks, the Nix
// printer, Nix itself) would recurse as deep.
const maxNesting = 1000

// convert converts v, which may nest left more levels of lists and dicts.
func convert(v starlark.Value, left int) (model.Value, *convertError) {
	if left < 0 {
		return nil, convertErrorf("nested more than %d lists and dicts deep; configuration is never this deep", maxNesting)
	}
	switch v := v.(type) {
	case starlark.NoneType:
		return model.Null{}, nil
	case starlark.Bool:
		return model.Bool(v), nil
	case starlark.Int:
		i, ok := v.Int64()
		if !ok {
			return nil, convertErrorf("integer %s does not fit in Nix's 64-bit integers", v)
		}
		return model.Int(i), nil
	case starlark.Float:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, convertErrorf("Nix has no float %s", v)
		}
		return model.Float(f), nil
	case starlark.String:
		if strings.IndexByte(string(v), 0) >= 0 {
			return nil, convertErrorf("a Nix string cannot hold a NUL byte")
		}
		return model.String(v), nil
	case *starlark.List, starlark.Tuple:
		it := v.(starlark.Indexable)
		out := make(model.List, it.Len())
		for i := range out {
			x, err := convert(it.Index(i), left-1)
			if err != nil {
				return nil, err.step(fmt.Sprintf("[%d]", i))
			}
			out[i] = x
		}
		return out, nil
	case *starlark.Dict:
		a := &model.Attrs{}
		for _, kv := range v.Items() {
			k, ok := starlark.AsString(kv[0])
			if !ok {
				return nil, &convertError{msg: fmt.Sprintf("key %s: ", kv[0]), err: typeErr("string", kv[0])}
			}
			x, err := convert(kv[1], left-1)
			if err != nil {
				return nil, err.step("." + model.JoinAttrPath([]string{k}))
			}
			// Nested keys are literal: one segment each, so no conflicts.
			_ = a.Set([]string{k}, x)
		}
		return a, nil
	case *NixValue:
		return v.v, nil
	}
	return nil, convertErrorf("%s %s has no Nix equivalent; use nix.expr(...) for raw Nix", v.Type(), shortRepr(v))
}

// FromValue converts a model value back to the Starlark that declares
// it: data as frozen data, Nix constructs as NixValues whose repr reads
// like the call that made them. Declared values' attributes (f.nixos),
// fleet test's fixture and the REPL all show configuration through it.
func FromValue(v model.Value) starlark.Value {
	switch v := v.(type) {
	case nil, model.Null:
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
			l[i] = FromValue(x)
		}
		list := starlark.NewList(l)
		list.Freeze()
		return list
	case *model.Attrs:
		return AttrsDict(v)
	}
	return &NixValue{v: v, repr: NixRepr(v)}
}

// NixRepr reads like the call that makes a Nix construct.
func NixRepr(v model.Value) string {
	switch v := v.(type) {
	case model.Expr:
		return "nix.expr(" + quote(v.Code) + ")"
	case model.Pkg:
		return "nix.pkg(" + quote(v.Name) + ")"
	case model.Path:
		return "nix.path(" + quote(v.Path) + ")"
	case model.Priority:
		inner := FromValue(v.Value).String()
		switch v.Fn {
		case "before":
			return "nix.order(" + inner + ")"
		case "after":
			return "nix.order(" + inner + ", before = False)"
		}
		return "nix." + v.Fn + "(" + inner + ")"
	}
	return "<" + v.Kind() + ">"
}

// AttrsDict renders attrs as a nested, frozen Starlark dict (nil -> {}).
func AttrsDict(a *model.Attrs) *starlark.Dict {
	d := starlark.NewDict(a.Len())
	if a != nil {
		for _, b := range a.Bindings {
			_ = d.SetKey(starlark.String(b.Name), FromValue(b.Value))
		}
	}
	d.Freeze()
	return d
}

// Name patterns. Machine names become host names and file names, so they
// are the strictest.
var (
	// restartUnitRE: a systemd unit name (model.SplitUnit says which).
	restartUnitRE = regexp.MustCompile(`^[A-Za-z0-9@_:.\\-]+$`)
	machineNameRE = regexp.MustCompile(`^[a-z0-9-]+$`)
	// Features, channels and inputs become file names and Nix attribute
	// names.
	identNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	userNameRE  = regexp.MustCompile(`^[a-z_][a-z0-9_-]*$`)
	dateRE      = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)
)

func checkName(what, name string, re *regexp.Regexp, hint string) error {
	if !re.MatchString(name) {
		return fmt.Errorf("%s name %q is not valid: %s", what, name, hint)
	}
	return nil
}

// checkSystem validates a Nix platform double.
func checkSystem(system string) (model.Class, error) {
	c, ok := model.ClassOf(system)
	if !ok {
		return "", fmt.Errorf("system %q is not a supported platform: use one of %s%s",
			system, strings.Join(model.Systems, ", "), DidYouMean(system, model.Systems))
	}
	return c, nil
}

// sortedUnique returns xs sorted without duplicates; dup is the first
// repeated element, if any.
func sortedUnique(xs []string) (out []string, dup string) {
	out = append([]string(nil), xs...)
	sort.Strings(out)
	w := 0
	for i, x := range out {
		if i > 0 && x == out[w-1] {
			if dup == "" {
				dup = x
			}
			continue
		}
		out[w] = x
		w++
	}
	return out[:w], dup
}

// valueOf accepts one of fleet's own value types (a host, a generator),
// naming what it wants in the error.
type valueOf[T starlark.Value] struct {
	want string
	v    T
	set  bool
}

func (a *valueOf[T]) Unpack(v starlark.Value) error {
	x, ok := v.(T)
	if !ok {
		return typeErr(a.want, v)
	}
	a.v, a.set = x, true
	return nil
}
