package repl

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
	"go.starlark.net/starlark"
)

// show renders x for reading: a machine, feature, secret, host or any
// value with attributes as one "attr = value" line per non-empty
// attribute, dicts and lists indented when they do not fit on one line.
//
// Secret material is never printed. fleet does not decrypt anything in
// the REPL, so what could leak is only what a fleet file itself holds:
// secrets are shown by name (<secret ssh-host-key>), their stored files as
// <secret NAME/FILE> (public halves by name), strings that look like
// private keys and the string values of attributes whose name says
// password, token, secret and the like (but not ...File or ...Path, which
// hold paths) as <redacted>. nix() is not redacted: it is the text fleet
// writes to disk.
func show(st *state, x starlark.Value) string {
	p := &printer{st: st}
	p.top(x)
	return p.b.String()
}

type printer struct {
	st *state
	b  strings.Builder
}

// width is where an inline rendering is given up for an indented one.
const width = 100

func (p *printer) top(x starlark.Value) {
	x = p.resolveDecl(x)
	names, ok := p.attrNames(x)
	if !ok {
		p.b.WriteString(p.block(x, "", ""))
		p.b.WriteString("\n")
		return
	}
	p.b.WriteString(x.String())
	if pos := attr(x, "pos"); pos != nil {
		if s, ok := pos.(starlark.String); ok && s != "" && s != ":0:0" {
			fmt.Fprintf(&p.b, "  # %s", string(s))
		}
	}
	p.b.WriteString("\n")
	type line struct{ name, value string }
	var lines []line
	pad := 0
	for _, name := range names {
		if name == "pos" {
			continue
		}
		v := attr(x, name)
		if v == nil || isEmpty(v) {
			continue
		}
		if sv, ok := x.(*secretView); ok && name == "files" {
			v = secretFiles(sv)
		}
		lines = append(lines, line{name, p.block(v, "  ", name)})
		pad = max(pad, len(name))
	}
	for _, l := range lines {
		fmt.Fprintf(&p.b, "  %-*s = %s\n", pad, l.name, l.value)
	}
}

// resolveDecl shows a declaration value of the fleet (what machine(...)
// returned in the file) as the model's view of it, which says more.
func (p *printer) resolveDecl(x starlark.Value) starlark.Value {
	d, ok := x.(*builtins.Decl)
	if !ok || p.st == nil {
		return x
	}
	switch d.Kind() {
	case "machine":
		if m := p.st.fleet.Machine(d.Name()); m != nil {
			return &machineView{st: p.st, m: m}
		}
	case "feature":
		if f := p.st.fleet.Feature(d.Name()); f != nil {
			return &featureView{st: p.st, f: f}
		}
	case "secret":
		if s := p.st.fleet.Secret(d.Name()); s != nil {
			return &secretView{st: p.st, s: s}
		}
	}
	return x
}

// attrNames is the order of a value's attributes for show, if it has any
// worth listing (not strings, lists and dicts, whose methods these are).
func (p *printer) attrNames(x starlark.Value) ([]string, bool) {
	switch x := x.(type) {
	case *machineView:
		return machineAttrs, true
	case *featureView:
		return featureAttrs, true
	case *secretView:
		return secretAttrs, true
	case *hostView:
		return x.attrs(), true
	case starlark.String, *starlark.List, starlark.Tuple, *starlark.Dict, *starlark.Set, starlark.Bytes, *nixHelper:
		return nil, false
	}
	if h, ok := x.(starlark.HasAttrs); ok {
		if names := h.AttrNames(); len(names) > 0 {
			return names, true
		}
	}
	return nil, false
}

func attr(x starlark.Value, name string) starlark.Value {
	h, ok := x.(starlark.HasAttrs)
	if !ok {
		return nil
	}
	v, err := h.Attr(name)
	if err != nil {
		return nil
	}
	return v
}

func isEmpty(v starlark.Value) bool {
	switch v := v.(type) {
	case starlark.NoneType:
		return true
	case starlark.String:
		return v == ""
	case starlark.Indexable: // lists, tuples
		return v.Len() == 0
	case *starlark.Dict:
		return v.Len() == 0
	}
	return false
}

// secretFiles is a secret's stored files as show prints them.
func secretFiles(v *secretView) starlark.Value {
	out := make([]starlark.Value, len(v.s.Files))
	for i, f := range v.s.Files {
		if f.Secret {
			out[i] = &opaque{"secret", fmt.Sprintf("<secret %s/%s>", v.s.Name, f.Name)}
		} else {
			out[i] = starlark.String(f.Name)
		}
	}
	return starlark.NewList(out)
}

// block renders v starting at the current column, continuation lines
// indented by indent. key is the attribute or dict key v is bound to, for
// redaction.
func (p *printer) block(v starlark.Value, indent, key string) string {
	if s := p.inline(v, key); len(indent)+len(s) <= width || !isContainer(v) {
		return s
	}
	inner := indent + "  "
	var b strings.Builder
	switch v := v.(type) {
	case *starlark.Dict:
		b.WriteString("{\n")
		for _, kv := range v.Items() {
			k := keyString(kv[0])
			fmt.Fprintf(&b, "%s%s: %s,\n", inner, p.inline(kv[0], ""), p.block(kv[1], inner, k))
		}
		b.WriteString(indent + "}")
	case starlark.Indexable:
		open, close := "[", "]"
		if _, ok := v.(starlark.Tuple); ok {
			open, close = "(", ")"
		}
		b.WriteString(open + "\n")
		for i := 0; i < v.Len(); i++ {
			fmt.Fprintf(&b, "%s%s,\n", inner, p.block(v.Index(i), inner, key))
		}
		b.WriteString(indent + close)
	}
	return b.String()
}

func isContainer(v starlark.Value) bool {
	switch v.(type) {
	case *starlark.Dict, *starlark.List, starlark.Tuple:
		return true
	}
	return false
}

// inline renders v on one line.
func (p *printer) inline(v starlark.Value, key string) string {
	switch v := v.(type) {
	case starlark.String:
		if r := redact(key, string(v)); r != "" {
			return r
		}
		return v.String()
	case *starlark.Dict:
		parts := make([]string, 0, v.Len())
		for _, kv := range v.Items() {
			parts = append(parts, p.inline(kv[0], "")+": "+p.inline(kv[1], keyString(kv[0])))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case *starlark.List:
		return "[" + p.elems(v, key) + "]"
	case starlark.Tuple:
		s := p.elems(v, key)
		if v.Len() == 1 {
			s += ","
		}
		return "(" + s + ")"
	case *builtins.Decl:
		if v.Kind() == "secret" {
			return "<secret " + v.Name() + ">"
		}
	}
	return v.String()
}

func (p *printer) elems(v starlark.Indexable, key string) string {
	parts := make([]string, v.Len())
	for i := range parts {
		parts[i] = p.inline(v.Index(i), key)
	}
	return strings.Join(parts, ", ")
}

func keyString(k starlark.Value) string {
	if s, ok := k.(starlark.String); ok {
		return string(s)
	}
	return ""
}

var (
	// Private key material in any of the formats a fleet might hold.
	keyMaterial = regexp.MustCompile(`AGE-SECRET-KEY-1[0-9A-Z]+|-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|AGE-PLUGIN-[0-9A-Z-]+1[0-9A-Z]+`)
	// Attribute names whose string values are secrets...
	secretKey = regexp.MustCompile(`(?i)(password|passwd|passphrase|secret|token|private_?key|api_?key|credential)`)
	// ...unless they name where the secret is kept.
	pathKey = regexp.MustCompile(`(?i)(file|files|path|dir)$`)
)

// redact returns what to print instead of s bound to key, or "" to
// print s.
func redact(key, s string) string {
	switch {
	case keyMaterial.MatchString(s):
		return "<redacted: private key material>"
	case s != "" && secretKey.MatchString(key) && !pathKey.MatchString(key):
		return "<redacted>"
	}
	return ""
}
