package hetznerfake

import (
	"fmt"
	"strings"
)

// selector is a parsed label selector, in the API's syntax: a comma
// separated list of requirements, each one of k=v, k==v, k!=v, k, !k,
// k in (v1,v2), k notin (v1,v2). All must hold.
type selector []requirement

type requirement struct {
	key    string
	op     string // "=", "!=", "exists", "!exists", "in", "notin"
	values []string
}

func parseSelector(s string) (selector, error) {
	var sel selector
	for _, part := range splitTopLevel(s) {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("empty requirement in label selector %q", s)
		}
		r, err := parseRequirement(part)
		if err != nil {
			return nil, fmt.Errorf("label selector %q: %w", s, err)
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// splitTopLevel splits at commas outside parentheses, so that the values
// of "in (a,b)" stay together.
func splitTopLevel(s string) []string {
	if s == "" {
		return nil
	}
	var parts []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func parseRequirement(p string) (requirement, error) {
	if strings.HasPrefix(p, "!") {
		return requirement{key: strings.TrimSpace(p[1:]), op: "!exists"}, nil
	}
	if i := strings.Index(p, "!="); i >= 0 {
		return requirement{key: strings.TrimSpace(p[:i]), op: "!=", values: []string{strings.TrimSpace(p[i+2:])}}, nil
	}
	if i := strings.Index(p, "=="); i >= 0 {
		return requirement{key: strings.TrimSpace(p[:i]), op: "=", values: []string{strings.TrimSpace(p[i+2:])}}, nil
	}
	if i := strings.Index(p, "="); i >= 0 {
		return requirement{key: strings.TrimSpace(p[:i]), op: "=", values: []string{strings.TrimSpace(p[i+1:])}}, nil
	}
	for _, op := range []string{" notin ", " in "} {
		if i := strings.Index(p, op); i >= 0 {
			list := strings.TrimSpace(p[i+len(op):])
			if !strings.HasPrefix(list, "(") || !strings.HasSuffix(list, ")") {
				return requirement{}, fmt.Errorf("%q: values must be in parentheses", p)
			}
			var vals []string
			for _, v := range strings.Split(list[1:len(list)-1], ",") {
				vals = append(vals, strings.TrimSpace(v))
			}
			return requirement{key: strings.TrimSpace(p[:i]), op: strings.TrimSpace(op), values: vals}, nil
		}
	}
	if strings.ContainsAny(p, " ()") {
		return requirement{}, fmt.Errorf("cannot parse %q", p)
	}
	return requirement{key: p, op: "exists"}, nil
}

func (sel selector) matches(labels map[string]string) bool {
	for _, r := range sel {
		v, ok := labels[r.key]
		switch r.op {
		case "=":
			if !ok || v != r.values[0] {
				return false
			}
		case "!=":
			if ok && v == r.values[0] {
				return false
			}
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		case "in", "notin":
			found := false
			for _, x := range r.values {
				if ok && v == x {
					found = true
				}
			}
			if found != (r.op == "in") {
				return false
			}
		}
	}
	return true
}
