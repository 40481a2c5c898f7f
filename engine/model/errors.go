package model

import (
	"sort"
	"strings"
)

// Error is a problem with the fleet found after evaluation (an unknown
// reference, a duplicate name, a cycle). It points at the declaration
// responsible; Notes add further positions ("first declared here").
type Error struct {
	Pos   Pos
	Msg   string
	Notes []Note
}

// Note is a secondary position attached to an Error.
type Note struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	b.WriteString(e.Msg)
	for _, n := range e.Notes {
		b.WriteString("\n\t")
		b.WriteString(n.Pos.String())
		b.WriteString(": ")
		b.WriteString(n.Msg)
	}
	return b.String()
}

// Errors is every problem found in one pass, so the user fixes them all
// at once instead of one per run.
type Errors []*Error

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Sort orders errors by position (then message) for stable output.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Pos != es[j].Pos {
			return es[i].Pos.Less(es[j].Pos)
		}
		return es[i].Msg < es[j].Msg
	})
}

// Err returns nil for an empty list, so callers can `return errs.Err()`.
func (es Errors) Err() error {
	if len(es) == 0 {
		return nil
	}
	es.Sort()
	return es
}
