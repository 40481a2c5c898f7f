package startest

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plural"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// assertModule is the predeclared assert.
func assertModule() *starlarkstruct.Module {
	return &starlarkstruct.Module{Name: "assert", Members: starlark.StringDict{
		"eq":       starlark.NewBuiltin("assert.eq", assertEq),
		"ne":       starlark.NewBuiltin("assert.ne", assertNe),
		"true":     starlark.NewBuiltin("assert.true", assertTrue),
		"contains": starlark.NewBuiltin("assert.contains", assertContains),
		"fails":    starlark.NewBuiltin("assert.fails", assertFails),
	}}
}

// Values whose repr is longer than this, or that are multi-line strings,
// are shown on lines of their own.
const inlineWidth = 60

// maxShownLines caps a multi-line string shown in a failure (a generated
// Nix file can be long; the start is what identifies it).
const maxShownLines = 40

func assertEq(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x, y, msg starlark.Value = nil, nil, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "a", &x, "b", &y, "msg?", &msg); err != nil {
		return nil, err
	}
	eq, err := equal(x, y)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if eq {
		return starlark.None, nil
	}
	return starlark.None, fail(thread, b.Name(), msg, differ(x, y))
}

func assertNe(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var x, y, msg starlark.Value = nil, nil, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "a", &x, "b", &y, "msg?", &msg); err != nil {
		return nil, err
	}
	eq, err := equal(x, y)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if !eq {
		return starlark.None, nil
	}
	return starlark.None, fail(thread, b.Name(), msg, "both are "+shown(thread, x))
}

func assertTrue(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cond, msg starlark.Value = nil, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "cond", &cond, "msg?", &msg); err != nil {
		return nil, err
	}
	if cond.Truth() {
		return starlark.None, nil
	}
	return starlark.None, fail(thread, b.Name(), msg, "got "+shown(thread, cond))
}

func assertContains(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var container, item, msg starlark.Value = nil, nil, starlark.None
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "container", &container, "item", &item, "msg?", &msg); err != nil {
		return nil, err
	}
	found, err := contains(container, item)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", b.Name(), err)
	}
	if found {
		return starlark.None, nil
	}
	var where string
	switch container.(type) {
	case starlark.String:
		where = "not found in"
	case *starlark.Dict:
		where = "is not a key of"
	default:
		where = "is not an element of"
	}
	return starlark.None, fail(thread, b.Name(), msg, item.String()+" "+where+" "+shown(thread, container))
}

func assertFails(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var fn starlark.Callable
	var pattern string
	if err := starlark.UnpackArgs(b.Name(), args, kwargs, "fn", &fn, "pattern", &pattern); err != nil {
		return nil, err
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("%s: bad pattern: %v", b.Name(), err)
	}
	v, err := starlark.Call(thread, fn, nil, nil)
	if err == nil {
		return starlark.None, fail(thread, b.Name(), starlark.None,
			fmt.Sprintf("%s returned %s, wanted an error matching /%s/", fn.Name(), shown(thread, v), pattern))
	}
	var ee *starlark.EvalError
	text := err.Error()
	if errors.As(err, &ee) {
		text = ee.Msg
	}
	// The thread is dead after its budget ran out or it was cancelled:
	// that is the test's failure, not the expected one.
	if strings.Contains(text, "Starlark computation cancelled") {
		return nil, err
	}
	if !re.MatchString(text) {
		return starlark.String(text), fail(thread, b.Name(), starlark.None,
			fmt.Sprintf("the error does not match /%s/:\n%s", pattern, indent(text, "    ")))
	}
	return starlark.String(text), nil
}

// fail records a failed assertion against the running test: the position
// of the assert call and, when that is in a helper, the test line that
// called it. Outside a test it is an error, which stops the file.
func fail(thread *starlark.Thread, fn string, msg starlark.Value, detail string) error {
	text := fn + ": "
	if msg != starlark.None {
		if s, ok := starlark.AsString(msg); ok {
			text += s + ": "
		} else {
			text += msg.String() + ": "
		}
	}
	text += detail
	st, ok := thread.Local(localTest).(*testState)
	if !ok {
		return errors.New(text)
	}
	depth := thread.CallStackDepth()
	e := &model.Error{Pos: posOf(thread.CallFrame(1).Pos), Msg: text}
	if depth > 2 { // the assert, helpers ..., the test
		test := thread.CallFrame(depth - 1)
		e.Notes = append(e.Notes, model.Note{Pos: posOf(test.Pos), Msg: "called from " + test.Name})
	}
	st.failures = append(st.failures, e)
	return nil
}

// equal is Starlark's ==. Nix constructs (builtins.NixValue) compare by
// the Nix they stand for, so nix.force("x") written in a test equals the
// one read from a result.
func equal(x, y starlark.Value) (bool, error) { return starlark.Equal(x, y) }

// contains is the test of assert.contains.
func contains(container, item starlark.Value) (bool, error) {
	switch c := container.(type) {
	case starlark.String:
		s, ok := starlark.AsString(item)
		if !ok {
			return false, fmt.Errorf("looking for %s in a string: want a string", item.Type())
		}
		return strings.Contains(string(c), s), nil
	case *starlark.List, starlark.Tuple:
		seq := c.(starlark.Indexable)
		for i := 0; i < seq.Len(); i++ {
			if eq, err := equal(seq.Index(i), item); err != nil || eq {
				return eq, err
			}
		}
		return false, nil
	case *starlark.Dict:
		_, found, err := c.Get(item)
		return found, err
	}
	v, err := starlark.Binary(syntax.IN, item, container)
	if err != nil {
		return false, err
	}
	return bool(v.Truth()), nil
}

// differ explains why x != y.
func differ(x, y starlark.Value) string {
	xs, xok := starlark.AsString(x)
	ys, yok := starlark.AsString(y)
	if xok && yok && (strings.Contains(xs, "\n") || strings.Contains(ys, "\n")) {
		return stringsDiffer(xs, ys)
	}
	a, b := x.String(), y.String()
	if len(a)+len(b) <= inlineWidth {
		return a + " != " + b
	}
	return "values differ\n    left:  " + a + "\n    right: " + b
}

// stringsDiffer shows the first line where two multi-line strings differ.
func stringsDiffer(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; ; i++ {
		switch {
		case i >= len(al):
			return fmt.Sprintf("strings differ: the left one ends after line %d; the right one goes on\n    right line %d: %s",
				len(al), i+1, starlark.String(bl[i]))
		case i >= len(bl):
			return fmt.Sprintf("strings differ: the right one ends after line %d; the left one goes on\n    left line %d: %s",
				len(bl), i+1, starlark.String(al[i]))
		case al[i] != bl[i]:
			return fmt.Sprintf("strings differ at line %d\n    left:  %s\n    right: %s",
				i+1, starlark.String(al[i]), starlark.String(bl[i]))
		}
	}
}

// shown renders a value for a failure: its repr inline when short, a
// multi-line string as its lines, anything long on a line of its own. A
// test that checks one generated file many times shows the file once.
func shown(thread *starlark.Thread, v starlark.Value) string {
	if s, ok := v.(starlark.String); ok && strings.Contains(string(s), "\n") {
		n := strings.Count(string(s), "\n") + 1
		if st, ok := thread.Local(localTest).(*testState); ok {
			if st.shown[string(s)] {
				return fmt.Sprintf("the %d-line string shown above", n)
			}
			if st.shown == nil {
				st.shown = map[string]bool{}
			}
			st.shown[string(s)] = true
		}
		lines := strings.Split(strings.TrimSuffix(string(s), "\n"), "\n")
		more := ""
		if len(lines) > maxShownLines {
			more = "\n    ... (" + plural.Count(len(lines)-maxShownLines, "more line") + ")"
			lines = lines[:maxShownLines]
		}
		for i, l := range lines {
			lines[i] = strings.TrimRight("    | "+l, " ")
		}
		return fmt.Sprintf("this %d-line string:\n%s%s", n, strings.Join(lines, "\n"), more)
	}
	r := v.String()
	if len(r) <= inlineWidth {
		return r
	}
	return "\n    " + r
}

// indent prefixes every line of s but empty ones (no trailing blanks).
func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			// Notes of engine errors start with a tab; keep to spaces.
			if strings.HasPrefix(l, "\t") {
				l = "    " + l[1:]
			}
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}
