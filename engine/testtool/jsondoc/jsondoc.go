// Package jsondoc checks fleet's JSON output against the documents that
// describe it (docs/*-json.md), by the fields' JSON names: a test parses
// the output into generic JSON, not into the program's own structs, so a
// renamed struct field or a changed type cannot pass unnoticed.
//
// A document describes a JSON form in tables under one "## " heading:
// every table whose header starts with "| field | type |" lists fields
// by their path from the top of the document, `version`,
// `changes[].action`, `monthly_cost_cents.before` (a "[]" is an element of
// an array), and their type: string, integer, number, boolean, object,
// array of objects, array of strings. ", optional" after the type: the
// field may be absent.
package jsondoc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// Field is a documented field.
type Field struct {
	Path     string
	Type     string
	Optional bool
}

// Doc is the fields of one JSON form, and which of them a test has seen.
type Doc struct {
	Fields map[string]Field
	seen   map[string]bool
}

var types = map[string]bool{"string": true, "integer": true, "number": true, "boolean": true, "object": true,
	"array of objects": true, "array of strings": true}

// Load reads the fields listed under the "## " heading that starts with
// heading in the markdown file.
func Load(file, heading string) (*Doc, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	d := &Doc{Fields: map[string]Field{}, seen: map[string]bool{}}
	in, table := false, false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(strings.TrimPrefix(line, "## "), heading)
			table = false
			continue
		}
		if !in {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			table = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if len(cells) >= 2 && cells[0] == "field" && cells[1] == "type" {
			table = true
			continue
		}
		if !table || strings.HasPrefix(cells[0], "---") {
			continue
		}
		if len(cells) < 3 {
			return nil, fmt.Errorf("%s:%d: a field's row needs a field, a type and a meaning", file, n)
		}
		f := Field{Path: strings.Trim(cells[0], "`"), Type: strings.Trim(cells[1], "`")}
		if t, ok := strings.CutSuffix(f.Type, ", optional"); ok {
			f.Type, f.Optional = t, true
		}
		if !types[f.Type] {
			return nil, fmt.Errorf("%s:%d: field %s: unknown type %q", file, n, f.Path, f.Type)
		}
		if _, dup := d.Fields[f.Path]; dup {
			return nil, fmt.Errorf("%s:%d: field %s is listed twice", file, n, f.Path)
		}
		d.Fields[f.Path] = f
	}
	if len(d.Fields) == 0 {
		return nil, fmt.Errorf("%s: no fields under a heading %q", file, heading)
	}
	return d, nil
}

// Check compares one JSON document (an object) with the fields: every
// field it has must be documented, with its type; every documented
// field that is not optional must be there. It returns the differences.
func (d *Doc) Check(data []byte) []string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return []string{"not JSON: " + err.Error()}
	}
	if dec.More() {
		return []string{"more than one JSON value"}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("the document is %s, not an object", kind(v))}
	}
	var problems []string
	d.object("", obj, &problems)
	return problems
}

func (d *Doc) object(prefix string, obj map[string]any, problems *[]string) {
	for key, v := range obj {
		path := prefix + key
		f, ok := d.Fields[path]
		if !ok {
			*problems = append(*problems, fmt.Sprintf("%s is not in the document", path))
			continue
		}
		d.seen[path] = true
		d.value(f, v, problems)
	}
	for path, f := range d.Fields {
		if f.Optional || !strings.HasPrefix(path, prefix) || strings.ContainsAny(path[len(prefix):], ".[") {
			continue
		}
		if _, ok := obj[path[len(prefix):]]; !ok {
			*problems = append(*problems, fmt.Sprintf("%s is missing", path))
		}
	}
}

func (d *Doc) value(f Field, v any, problems *[]string) {
	got := kind(v)
	switch f.Type {
	case "array of objects", "array of strings":
		if got != "array" {
			break
		}
		elem := strings.TrimSuffix(strings.TrimPrefix(f.Type, "array of "), "s")
		for _, e := range v.([]any) {
			if k := kind(e); k != elem {
				*problems = append(*problems, fmt.Sprintf("%s: an element is %s, not %s", f.Path, k, elem))
				return
			}
			if elem == "object" {
				d.object(f.Path+"[].", e.(map[string]any), problems)
			}
		}
		return
	case "number":
		if got == "integer" {
			return
		}
	}
	if got == "array" && strings.HasPrefix(f.Type, "array") {
		return
	}
	if got != f.Type {
		*problems = append(*problems, fmt.Sprintf("%s is %s, the document says %s", f.Path, got, f.Type))
		return
	}
	if got == "object" {
		d.object(f.Path+".", v.(map[string]any), problems)
	}
}

func kind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		if strings.ContainsAny(v.String(), ".eE") {
			return "number"
		}
		return "integer"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// Unseen lists the documented fields no checked document had: a test
// calls it after checking all its outputs, so that the document lists
// no field the program never writes.
func (d *Doc) Unseen() []string {
	var out []string
	for path := range d.Fields {
		if !d.seen[path] {
			out = append(out, path)
		}
	}
	sort.Strings(out)
	return out
}
