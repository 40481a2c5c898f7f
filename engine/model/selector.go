package model

import (
	"fmt"
	"path"
	"strings"
)

// Selector picks machines: "name", "@tag", a glob such as "elec*" (path.Match
// syntax), or "all". Several selectors are combined with Select (union).
type Selector string

// Validate reports a malformed selector (an empty tag, a broken glob).
func (s Selector) Validate() error {
	str := string(s)
	switch {
	case str == "":
		return fmt.Errorf("empty selector: use a machine name, \"@tag\", a glob or \"all\"")
	case str == "@":
		return fmt.Errorf("selector \"@\" names no tag")
	case strings.HasPrefix(str, "@"):
		return nil
	}
	if _, err := path.Match(str, ""); err != nil {
		return fmt.Errorf("selector %q is not a valid glob: %v", str, err)
	}
	return nil
}

// Match reports whether the machine is selected.
func (s Selector) Match(m *Machine) bool {
	str := string(s)
	switch {
	case str == "all":
		return true
	case strings.HasPrefix(str, "@"):
		return m.HasTag(str[1:])
	case strings.ContainsAny(str, "*?["):
		ok, _ := path.Match(str, m.Name)
		return ok
	}
	return str == m.Name
}

// IsPattern reports whether the selector may match machines other than one
// named exactly (so matching nothing is not necessarily a mistake).
func (s Selector) IsPattern() bool {
	str := string(s)
	return str == "all" || strings.HasPrefix(str, "@") || strings.ContainsAny(str, "*?[")
}

// Select returns the machines of f matched by any of sels, in name order.
func (f *Fleet) Select(sels ...Selector) []*Machine {
	var out []*Machine
	for _, m := range f.Machines {
		for _, s := range sels {
			if s.Match(m) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}
