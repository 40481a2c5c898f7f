package builtins

import (
	"math"
	"runtime"
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

// nested returns {"a": {"a": ... {"a": leaf}}}, depth dicts deep, with
// a list level every tenth level so both kinds of step are exercised.
func nested(depth int, leaf starlark.Value) starlark.Value {
	v := leaf
	for i := range depth {
		if i%10 == 5 {
			v = starlark.NewList([]starlark.Value{v})
			continue
		}
		d := starlark.NewDict(1)
		d.SetKey(starlark.String("a"), v)
		v = d
	}
	return v
}

// TestDeepNestingLinear checks that converting a deeply nested value costs
// memory in proportion to its depth. The error path ("x.a.a[0].a...") used
// to be built at every level, which made 20,000 levels take 480 MB.
// AllocsPerRun bounds the number of allocations; the bytes, which is what
// was quadratic, are bounded through the allocator's running total.
func TestDeepNestingLinear(t *testing.T) {
	const depth = 20_000
	v := nested(depth, starlark.MakeInt(1))
	allocs := testing.AllocsPerRun(3, func() {
		if _, err := toValueNested(v, "x", depth); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 20*depth {
		t.Errorf("%v allocations for %d levels, want at most %d", allocs, depth, 20*depth)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := toValueNested(v, "x", depth); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	// Linear is a few hundred bytes a level; quadratic is tens of kB.
	if b := after.TotalAlloc - before.TotalAlloc; b > 2000*depth {
		t.Errorf("converting %d levels allocated %d bytes, want at most %d", depth, b, 2000*depth)
	}

	// The path is still given in full when there is an error at the bottom.
	_, err := toValue(nested(12, starlark.Float(math.Inf(1))), "x")
	if err == nil || !strings.HasPrefix(err.Error(), "x.a.a.a.a.a.a[0].a.a.a.a.a: ") {
		t.Errorf("error = %v, want the full path", err)
	}
}

func BenchmarkDeepNesting(b *testing.B) {
	v := nested(20_000, starlark.MakeInt(1))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := toValueNested(v, "x", 20_000); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNestingLimit checks that a runaway nesting is refused, quickly and
// with a path short enough to read.
func TestNestingLimit(t *testing.T) {
	if _, err := toValue(nested(maxNesting, starlark.MakeInt(1)), "x"); err != nil {
		t.Errorf("%d levels: %v", maxNesting, err)
	}
	_, err := toValue(nested(100_000, starlark.MakeInt(1)), "x")
	if err == nil || !strings.Contains(err.Error(), "nested more than") || len(err.Error()) > 300 {
		t.Errorf("100,000 levels: got %v, want a short nesting error", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "x.a.a.a.a[0].a.a.a...(985 more).a.a[0]") {
		t.Errorf("error path = %q", err)
	}
}
