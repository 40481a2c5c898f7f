package gcpfake

import (
	"fmt"
	"regexp"
	"strings"
)

// filter is the subset of GCE list filters the fake understands: a
// conjunction of comparisons, each optionally in parentheses, joined by
// AND or by nothing (GCE's implicit AND).
//
//	(labels.managed-by = "fleet") AND (labels.fleet = "demo")
//	labels.env != prod
//	labels.owner:*
//	name eq "demo-.*"
//
// As in GCE, = != and : (AIP-160) cannot be mixed with the regular
// expression operators eq and ne, and regular expressions may constrain
// only one field. OR is refused (GCE has it; fleet does not use it).
type filter []comparison

type comparison struct {
	field, op, value string
	re               *regexp.Regexp // for eq and ne
}

func parseFilter(s string) (filter, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	var f filter
	i := 0
	next := func() string {
		if i < len(toks) {
			i++
			return toks[i-1]
		}
		return ""
	}
	peek := func() string {
		if i < len(toks) {
			return toks[i]
		}
		return ""
	}
	for i < len(toks) {
		if len(f) > 0 && peek() == "AND" {
			next()
		}
		paren := peek() == "("
		if paren {
			next()
		}
		field, op, value := next(), next(), next()
		if field == "" || op == "" || value == "" || isPunct(field) || isPunct(value) {
			return nil, fmt.Errorf("incomplete comparison in %q", s)
		}
		if field == "OR" || op == "OR" || value == "OR" {
			return nil, fmt.Errorf("OR is not supported by the fake")
		}
		c := comparison{field: field, op: op, value: unquote(value)}
		switch op {
		case "=", "!=":
		case ":":
			if c.value != "*" {
				return nil, fmt.Errorf("the fake supports only the :* comparison")
			}
		case "eq", "ne":
			re, err := regexp.Compile(`^(?:` + c.value + `)$`)
			if err != nil {
				return nil, fmt.Errorf("bad regular expression %q: %v", c.value, err)
			}
			c.re = re
		default:
			return nil, fmt.Errorf("unknown operator %q", op)
		}
		if paren && next() != ")" {
			return nil, fmt.Errorf("missing ) in %q", s)
		}
		f = append(f, c)
	}
	regexFields := map[string]bool{}
	plain := false
	for _, c := range f {
		if c.re != nil {
			regexFields[c.field] = true
		} else {
			plain = true
		}
	}
	if plain && len(regexFields) > 0 {
		return nil, fmt.Errorf("regular expression (eq, ne) and AIP-160 (=, !=, :) comparisons cannot be mixed")
	}
	if len(regexFields) > 1 {
		return nil, fmt.Errorf("regular expressions can constrain only one field")
	}
	return f, nil
}

// match reports whether an object passes; get returns a field's value and
// whether the object has it. An unknown field is an error, as in GCE.
func (f filter) match(get func(field string) (string, bool, error)) (bool, error) {
	for _, c := range f {
		v, ok, err := get(c.field)
		if err != nil {
			return false, err
		}
		var pass bool
		switch c.op {
		case "=":
			pass = ok && v == c.value
		case "!=":
			pass = !ok || v != c.value
		case ":":
			pass = ok
		case "eq":
			pass = c.re.MatchString(v)
		case "ne":
			pass = !c.re.MatchString(v)
		}
		if !pass {
			return false, nil
		}
	}
	return true, nil
}

func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '(' || c == ')' || c == ':' || c == '=':
			toks = append(toks, string(c))
			i++
		case c == '!':
			if i+1 >= len(s) || s[i+1] != '=' {
				return nil, fmt.Errorf("stray ! in %q", s)
			}
			toks = append(toks, "!=")
			i += 2
		case c == '"' || c == '\'':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unterminated string in %q", s)
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n()=!:\"'", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

func isPunct(t string) bool { return t == "(" || t == ")" }

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}
