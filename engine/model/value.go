package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/plural"
)

// Value is configuration data on its way to Nix: the Starlark values of a
// nixos/darwin/home dict, converted. Plain data (String, Int, Float, Bool,
// Null, List, *Attrs) means the Nix value of the same meaning; the other
// kinds (Expr, Pkg, Priority, Path) are Nix constructs that have no data
// equivalent and are printed as Nix syntax by the lowering.
type Value interface {
	// Kind names the value's kind for messages ("string", "attrs", "nix.expr" ...).
	Kind() string
}

type (
	// String is a Nix string with exactly these characters.
	String string
	// Int is a Nix integer (64-bit, as in Nix).
	Int int64
	// Float is a Nix float.
	Float float64
	// Bool is true or false.
	Bool bool
	// Null is Nix null (Starlark None).
	Null struct{}
	// List is a Nix list.
	List []Value
	// Expr is a raw Nix expression, inserted parenthesized.
	Expr struct{ Code string }
	// Pkg is pkgs.<Name>.
	Pkg struct{ Name string }
	// Path is a Nix path relative to the fleet root.
	Path struct{ Path string }
	// Priority wraps a value in lib.mkForce (Fn "force"), lib.mkDefault
	// ("default"), lib.mkBefore ("before") or lib.mkAfter ("after").
	Priority struct {
		Fn    string
		Value Value
	}
)

func (String) Kind() string     { return "string" }
func (Int) Kind() string        { return "int" }
func (Float) Kind() string      { return "float" }
func (Bool) Kind() string       { return "bool" }
func (Null) Kind() string       { return "null" }
func (List) Kind() string       { return "list" }
func (Expr) Kind() string       { return "nix.expr" }
func (Pkg) Kind() string        { return "nix.pkg" }
func (Path) Kind() string       { return "nix.path" }
func (p Priority) Kind() string { return "nix." + p.Fn }
func (*Attrs) Kind() string     { return "attrs" }

// Binding is one name = value pair of an attribute set. Name is a single
// attribute name, taken literally (it may contain dots).
type Binding struct {
	Name  string
	Value Value
}

// Attrs is a Nix attribute set with bindings kept sorted by name.
type Attrs struct {
	Bindings []Binding
}

// Len returns the number of bindings.
func (a *Attrs) Len() int {
	if a == nil {
		return 0
	}
	return len(a.Bindings)
}

// Get returns the value bound to name, or nil.
func (a *Attrs) Get(name string) Value {
	if a == nil {
		return nil
	}
	i := sort.Search(len(a.Bindings), func(i int) bool { return a.Bindings[i].Name >= name })
	if i < len(a.Bindings) && a.Bindings[i].Name == name {
		return a.Bindings[i].Value
	}
	return nil
}

// ConflictError reports that one attribute path is set both as a value
// and as a parent of other attributes (or twice as a value).
type ConflictError struct {
	Path     []string // where the two definitions meet
	Existing string   // kind of what was there
	New      string   // kind of what was set
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("attribute %s is set twice (as %s and as %s)", JoinAttrPath(e.Path), e.Existing, e.New)
}

// Set binds value at path, creating intermediate attribute sets. Attribute
// sets meet by merging, as Nix merges `a = { b = 1; }; a.c = 2;`; anything
// else meeting an existing binding is a *ConflictError.
func (a *Attrs) Set(path []string, v Value) error {
	return a.set(path, 0, v)
}

func (a *Attrs) set(path []string, depth int, v Value) error {
	name := path[depth]
	i := sort.Search(len(a.Bindings), func(i int) bool { return a.Bindings[i].Name >= name })
	exists := i < len(a.Bindings) && a.Bindings[i].Name == name
	last := depth == len(path)-1
	if !exists {
		var nv Value = v
		if !last {
			child := &Attrs{}
			if err := child.set(path, depth+1, v); err != nil {
				return err
			}
			nv = child
		}
		a.Bindings = append(a.Bindings, Binding{})
		copy(a.Bindings[i+1:], a.Bindings[i:])
		a.Bindings[i] = Binding{Name: name, Value: nv}
		return nil
	}
	cur, isAttrs := a.Bindings[i].Value.(*Attrs)
	if !isAttrs {
		return &ConflictError{Path: path[:depth+1], Existing: describe(a.Bindings[i].Value), New: describeAt(path, depth, v)}
	}
	if !last {
		return cur.set(path, depth+1, v)
	}
	nv, ok := v.(*Attrs)
	if !ok {
		return &ConflictError{Path: path[:depth+1], Existing: "an attribute set", New: describe(v)}
	}
	for _, b := range nv.Bindings {
		if err := cur.set(append(append([]string(nil), path[:depth+1]...), b.Name), depth+1, b.Value); err != nil {
			return err
		}
	}
	return nil
}

func describe(v Value) string {
	if _, ok := v.(*Attrs); ok {
		return "an attribute set"
	}
	return plural.Article(v.Kind())
}

func describeAt(path []string, depth int, v Value) string {
	if depth < len(path)-1 {
		return "the parent of " + JoinAttrPath(path)
	}
	return describe(v)
}

// JoinAttrPath renders an attribute path the way Nix would accept it,
// quoting segments that are not plain identifiers.
func JoinAttrPath(path []string) string {
	parts := make([]string, len(path))
	for i, p := range path {
		if IsIdent(p) {
			parts[i] = p
		} else {
			b, _ := MarshalReadable(p)
			parts[i] = strings.ReplaceAll(string(b), "${", `\${`)
		}
	}
	return strings.Join(parts, ".")
}

// nixKeywords may not be used as bare attribute names.
var nixKeywords = map[string]bool{
	"assert": true, "else": true, "if": true, "in": true, "inherit": true,
	"let": true, "or": true, "rec": true, "then": true, "with": true,
}

// IsIdent reports whether s can be written as a bare Nix attribute name.
func IsIdent(s string) bool {
	if s == "" || nixKeywords[s] {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z'):
		case i > 0 && (r == '-' || r == '\'' || (r >= '0' && r <= '9')):
		default:
			return false
		}
	}
	return true
}

// ParseAttrPath splits a dotted key such as `environment.etc."resolv.conf".text`
// into its segments. Segments may be double-quoted to contain dots; inside
// quotes \" and \\ are escapes. An empty segment is an error.
func ParseAttrPath(key string) ([]string, error) {
	var segs []string
	var cur strings.Builder
	quoted, inQuote, escaped := false, false, false
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case inQuote && escaped:
			cur.WriteByte(c)
			escaped = false
		case inQuote && c == '\\':
			escaped = true
		case inQuote && c == '"':
			inQuote = false
		case inQuote:
			cur.WriteByte(c)
		case c == '"':
			if cur.Len() > 0 || quoted {
				return nil, fmt.Errorf("key %q: a quote may only start a segment", key)
			}
			inQuote, quoted = true, true
		case c == '.':
			if cur.Len() == 0 && !quoted {
				return nil, fmt.Errorf("key %q has an empty segment", key)
			}
			segs = append(segs, cur.String())
			cur.Reset()
			quoted = false
		default:
			if quoted {
				return nil, fmt.Errorf("key %q: text after a closing quote must be a dot", key)
			}
			cur.WriteByte(c)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("key %q has an unterminated quote", key)
	}
	if cur.Len() == 0 && !quoted {
		return nil, fmt.Errorf("key %q has an empty segment", key)
	}
	return append(segs, cur.String()), nil
}

// MarshalJSON renders the attribute set as a JSON object in binding order.
func (a *Attrs) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, b := range a.Bindings {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := MarshalReadable(b.Name)
		buf.Write(k)
		buf.WriteByte(':')
		v, err := MarshalValue(b.Value)
		if err != nil {
			return nil, err
		}
		buf.Write(v)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// MarshalValue renders a Value as JSON. Nix constructs that are not data
// become objects tagged with "__nix" so that they cannot be mistaken for
// configuration data.
func MarshalValue(v Value) ([]byte, error) {
	switch v := v.(type) {
	case String, Int, Bool:
		return MarshalReadable(v)
	case Float:
		return MarshalReadable(float64(v))
	case Null:
		return []byte("null"), nil
	case List:
		var buf bytes.Buffer
		buf.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			b, err := MarshalValue(x)
			if err != nil {
				return nil, err
			}
			buf.Write(b)
		}
		buf.WriteByte(']')
		return buf.Bytes(), nil
	case *Attrs:
		return v.MarshalJSON()
	case Expr:
		return MarshalReadable(map[string]string{"__nix": "expr", "code": v.Code})
	case Pkg:
		return MarshalReadable(map[string]string{"__nix": "pkg", "name": v.Name})
	case Path:
		return MarshalReadable(map[string]string{"__nix": "path", "path": v.Path})
	case Priority:
		inner, err := MarshalValue(v.Value)
		if err != nil {
			return nil, err
		}
		fn, _ := MarshalReadable(v.Fn)
		return []byte(`{"__nix":` + string(fn) + `,"value":` + string(inner) + `}`), nil
	}
	return nil, fmt.Errorf("model: cannot marshal %T", v)
}

// MarshalReadable is json.Marshal without escaping <, > and &: fleet's
// JSON is read by people too ("a && b", not "a \u0026\u0026 b"; a plan's
// "cx22 -> cx32").
func MarshalReadable(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// Walk calls fn for v and for every value inside it, depth first.
func Walk(v Value, fn func(Value)) {
	fn(v)
	switch v := v.(type) {
	case List:
		for _, x := range v {
			Walk(x, fn)
		}
	case *Attrs:
		if v != nil {
			for _, b := range v.Bindings {
				Walk(b.Value, fn)
			}
		}
	case Priority:
		Walk(v.Value, fn)
	}
}

// WalkValues calls fn for every configuration value of the fleet: those of
// features, machines and overlay overrides.
func (f *Fleet) WalkValues(fn func(Value)) {
	visit := func(a *Attrs) {
		if a != nil {
			Walk(a, fn)
		}
	}
	for _, x := range f.Features {
		visit(x.NixOS)
		visit(x.Darwin)
		visit(x.Home)
	}
	for _, m := range f.Machines {
		visit(m.NixOS)
		visit(m.Darwin)
		visit(m.Home)
	}
	for _, o := range f.Overlays {
		visit(o.Attrs)
		visit(o.Args)
	}
}
