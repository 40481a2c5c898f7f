package engine

import (
	"errors"
	"os"
	"strings"
	"testing"

	"go.starlark.net/syntax"
)

// TestExplainSyntaxAnySource guards explainSyntax's reading of the source
// at a parse error's position: whatever the file holds (every prefix of
// the Python habits' test file, cut anywhere, and no source at all), it
// returns a positioned message and does not panic.
func TestExplainSyntaxAnySource(t *testing.T) {
	data, err := os.ReadFile("testdata/errors/python.star")
	if err != nil {
		t.Fatal(err)
	}
	src := string(data)
	for i := 0; i <= len(src); i += 7 {
		prefix := src[:i]
		_, err := syntax.Parse("x.star", prefix, 0)
		var serr syntax.Error
		if !errors.As(err, &serr) {
			continue
		}
		for _, s := range [][]byte{[]byte(prefix), nil, []byte(strings.Repeat("{", 3))} {
			e := explainSyntax(serr, s)
			if e.Msg == "" || e.Pos.Line < 1 || e.Pos.Col < 1 {
				t.Fatalf("prefix %d: %+v", i, e)
			}
		}
	}
}

// TestExplainSyntaxWithoutSource: the keyword habits need no source.
func TestExplainSyntaxWithoutSource(t *testing.T) {
	_, err := syntax.Parse("x.star", "class A:\n    pass\n", 0)
	var serr syntax.Error
	if !errors.As(err, &serr) {
		t.Fatalf("want a syntax error, got %v", err)
	}
	if e := explainSyntax(serr, nil); !strings.Contains(e.Msg, "which has no classes") || e.Pos.Line != 1 || e.Pos.Col != 1 {
		t.Errorf("got %s", e)
	}
}
