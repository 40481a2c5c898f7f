package sopsfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// metadataKey is the top-level key (INI: section) of sops' metadata;
// dotenv files flatten it into keys starting with metadataKey + "_".
const metadataKey = "sops"

// Parse errors say where, never what: a value left in clear could be in
// the text an error would quote.

func parseYAML(data []byte) ([]leaf, *metadata, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %v", yamlWhere(err))
	}
	var next yaml.Node
	if err := dec.Decode(&next); err != io.EOF {
		return nil, nil, errors.New("it holds several YAML documents, which fleet does not read: split it into one file per document")
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, errors.New("not a sops YAML file: its top level is not a mapping")
	}
	var leaves []leaf
	var md *metadata
	top := doc.Content[0]
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, nil, fmt.Errorf("line %d: a key that is not a string", k.Line)
		}
		if k.Value == metadataKey {
			var m map[string]any
			if err := v.Decode(&m); err != nil {
				return nil, nil, fmt.Errorf("line %d: the sops metadata is not a mapping", v.Line)
			}
			var err error
			if md, err = metadataFrom(m); err != nil {
				return nil, nil, err
			}
			continue
		}
		var err error
		if leaves, err = walkYAML(v, []string{k.Value}, []string{k.Value}, leaves); err != nil {
			return nil, nil, err
		}
	}
	return leaves, md, nil
}

// yamlWhere keeps the position of a YAML error and drops what it quotes.
func yamlWhere(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i:]
		if j := strings.Index(rest, ":"); j > 0 {
			return rest[:j]
		}
	}
	return "syntax error"
}

func walkYAML(n *yaml.Node, aad, path []string, leaves []leaf) ([]leaf, error) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a key that is not a string", k.Line)
			}
			var err error
			if leaves, err = walkYAML(n.Content[i+1], with(aad, k.Value), with(path, k.Value), leaves); err != nil {
				return nil, err
			}
		}
	case yaml.SequenceNode:
		// sops' additional data leaves list positions out.
		for i, item := range n.Content {
			var err error
			if leaves, err = walkYAML(item, aad, with(path, strconv.Itoa(i)), leaves); err != nil {
				return nil, err
			}
		}
	case yaml.ScalarNode:
		l := leaf{aad: aad, path: path, raw: n.Value, canon: n.Value}
		switch n.ShortTag() {
		case "!!str":
			l.str = true
		case "!!null":
			l.skip = true
		case "!!int":
			var i int
			if n.Decode(&i) == nil {
				l.canon = strconv.Itoa(i)
			}
		case "!!float":
			var f float64
			if n.Decode(&f) == nil {
				l.canon = strconv.FormatFloat(f, 'f', -1, 64)
			}
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				l.canon = pyBool(b)
			}
		case "!!timestamp":
			var t time.Time
			if n.Decode(&t) == nil {
				if text, err := t.MarshalText(); err == nil {
					l.canon = string(text)
				}
			}
		}
		leaves = append(leaves, l)
	case yaml.AliasNode:
		return nil, fmt.Errorf("line %d: a YAML alias, which fleet does not read", n.Line)
	default:
		return nil, fmt.Errorf("line %d: unexpected YAML", n.Line)
	}
	return leaves, nil
}

// pyBool is a boolean as sops hashes it.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// with is append to a copy.
func with(s []string, x string) []string {
	return append(append(make([]string, 0, len(s)+1), s...), x)
}

func parseJSON(data []byte) ([]leaf, *metadata, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, nil, errors.New("not a sops JSON file: its top level is not an object")
	}
	var leaves []leaf
	var md *metadata
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, jsonWhere(dec)
		}
		key, _ := tok.(string)
		if key == metadataKey {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				return nil, nil, errors.New("the sops metadata is not an object")
			}
			if md, err = metadataFrom(m); err != nil {
				return nil, nil, err
			}
			continue
		}
		if leaves, err = walkJSON(dec, []string{key}, []string{key}, leaves); err != nil {
			return nil, nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, jsonWhere(dec)
	}
	return leaves, md, nil
}

func jsonWhere(dec *json.Decoder) error {
	return fmt.Errorf("not valid JSON (near byte %d)", dec.InputOffset())
}

func walkJSON(dec *json.Decoder, aad, path []string, leaves []leaf) ([]leaf, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, jsonWhere(dec)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, jsonWhere(dec)
				}
				k, _ := kt.(string)
				if leaves, err = walkJSON(dec, with(aad, k), with(path, k), leaves); err != nil {
					return nil, err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if leaves, err = walkJSON(dec, aad, with(path, strconv.Itoa(i)), leaves); err != nil {
					return nil, err
				}
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, jsonWhere(dec)
		}
	case string:
		leaves = append(leaves, leaf{aad: aad, path: path, raw: t, str: true, canon: t})
	case json.Number:
		l := leaf{aad: aad, path: path, raw: t.String(), canon: t.String()}
		if i, err := strconv.Atoi(t.String()); err == nil {
			l.canon = strconv.Itoa(i)
		} else if f, err := t.Float64(); err == nil {
			l.canon = strconv.FormatFloat(f, 'f', -1, 64)
		}
		leaves = append(leaves, l)
	case bool:
		leaves = append(leaves, leaf{aad: aad, path: path, raw: strconv.FormatBool(t), canon: pyBool(t)})
	case nil:
		leaves = append(leaves, leaf{aad: aad, path: path, skip: true})
	}
	return leaves, nil
}

// parseDotenv reads KEY=VALUE lines as sops does: "#" starts a comment
// line, "\n" in a value is a newline, and sops_ keys are the metadata.
func parseDotenv(data []byte) ([]leaf, *metadata, error) {
	var leaves []leaf
	flat := map[string]string{}
	for n, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, nil, fmt.Errorf("line %d: not KEY=VALUE", n+1)
		}
		v = strings.ReplaceAll(v, `\n`, "\n")
		if rest, ok := strings.CutPrefix(k, metadataKey+"_"); ok {
			flat[rest] = v
			continue
		}
		leaves = append(leaves, leaf{aad: []string{k}, path: []string{k}, raw: v, str: true, canon: v})
	}
	if len(flat) == 0 {
		return leaves, nil, nil
	}
	md, err := metadataFrom(unflatten(flat))
	return leaves, md, err
}

// parseINI reads an INI file as sops writes it: [section] lines, then
// "key = value" lines; keys before the first section are in DEFAULT; the
// [sops] section is the metadata, with "\n" standing for newlines.
func parseINI(data []byte) ([]leaf, *metadata, error) {
	var leaves []leaf
	flat := map[string]string{}
	section := "DEFAULT"
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, nil, fmt.Errorf("line %d: a section header without ]", n+1)
			}
			section = strings.TrimSpace(line[1 : len(line)-1])
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, nil, fmt.Errorf("line %d: not key = value", n+1)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		if section == metadataKey {
			flat[k] = strings.ReplaceAll(v, `\n`, "\n")
			continue
		}
		leaves = append(leaves, leaf{aad: []string{section, k}, path: []string{section, k}, raw: v, str: true, canon: v})
	}
	if len(flat) == 0 {
		return leaves, nil, nil
	}
	md, err := metadataFrom(unflatten(flat))
	return leaves, md, err
}

// unflatten undoes sops' flattening of the metadata for dotenv and INI:
// "age__list_0__map_enc" is age[0].enc.
func unflatten(flat map[string]string) map[string]any {
	type node struct {
		value any
		keys  map[string]*node
		items map[int]*node
	}
	root := &node{keys: map[string]*node{}}
	for k, v := range flat {
		n := root
		rest := k
		isIndex := false
		for {
			i := strings.Index(rest, "__")
			var tok string
			if i >= 0 && (strings.HasPrefix(rest[i:], "__map_") || strings.HasPrefix(rest[i:], "__list_")) {
				tok = rest[:i]
			} else {
				tok, i = rest, -1
			}
			var child *node
			if isIndex {
				pos, _ := strconv.Atoi(tok)
				if n.items == nil {
					n.items = map[int]*node{}
				}
				if child = n.items[pos]; child == nil {
					child = &node{}
					n.items[pos] = child
				}
			} else {
				if n.keys == nil {
					n.keys = map[string]*node{}
				}
				if child = n.keys[tok]; child == nil {
					child = &node{}
					n.keys[tok] = child
				}
			}
			n = child
			if i < 0 {
				n.value = v
				break
			}
			if strings.HasPrefix(rest[i:], "__map_") {
				rest, isIndex = rest[i+len("__map_"):], false
			} else {
				rest, isIndex = rest[i+len("__list_"):], true
			}
		}
	}
	var conv func(n *node) any
	conv = func(n *node) any {
		switch {
		case n.items != nil:
			var idx []int
			for i := range n.items {
				idx = append(idx, i)
			}
			sort.Ints(idx)
			var out []any
			for _, i := range idx {
				out = append(out, conv(n.items[i]))
			}
			return out
		case n.keys != nil:
			out := map[string]any{}
			for k, c := range n.keys {
				out[k] = conv(c)
			}
			return out
		}
		return n.value
	}
	m, _ := conv(root).(map[string]any)
	return m
}

// metadataFrom reads the sops metadata fleet needs.
func metadataFrom(m map[string]any) (*metadata, error) {
	md := &metadata{}
	str := func(k string) string {
		switch v := m[k].(type) {
		case string:
			return v
		case time.Time:
			return v.Format(time.RFC3339)
		case nil:
			return ""
		default:
			return fmt.Sprint(v)
		}
	}
	if list, ok := m["age"].([]any); ok {
		for _, x := range list {
			e, _ := x.(map[string]any)
			r, _ := e["recipient"].(string)
			enc, _ := e["enc"].(string)
			if enc == "" {
				return nil, fmt.Errorf("sops.age: the entry for %q has no enc", r)
			}
			md.age = append(md.age, ageKey{recipient: r, enc: enc})
		}
	}
	if groups, ok := m["key_groups"].([]any); ok && len(groups) > 0 {
		md.keyGroups = true
	}
	for _, kind := range []string{"pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"} {
		if list, ok := m[kind].([]any); ok && len(list) > 0 {
			md.others = append(md.others, kind)
		}
	}
	md.lastModified = str("lastmodified")
	md.mac = str("mac")
	switch v := m["mac_only_encrypted"].(type) {
	case bool:
		md.macOnlyEnc = v
	case string:
		md.macOnlyEnc = v == "true"
	}
	md.unencSuffix = str("unencrypted_suffix")
	md.encSuffix = str("encrypted_suffix")
	md.unencRegex = str("unencrypted_regex")
	md.encRegex = str("encrypted_regex")
	md.commentRegex = str("unencrypted_comment_regex") != "" || str("encrypted_comment_regex") != ""
	return md, nil
}
