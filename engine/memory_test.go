package engine_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine"
)

// The memory guard measures the whole process, so these tests do not run
// in parallel with others (none of them calls t.Parallel): a neighbour's
// garbage would count against the small limits they set.

// A value doubled in a loop is stopped at the statement that grew it,
// with the loop's caller as a note; the step limit alone would let it
// take gigabytes (issue 12, item 5).
func TestMemoryLimitStopsGrowth(t *testing.T) {
	cases := []struct {
		name, src, at string
	}{
		{"string doubled", "def f():\n    s = \"x\"\n    for i in range(64):\n        s = s + s\n    return s\nt = f()\n", "fleet.star:6:"},
		{"list doubled", "def f():\n    l = [0]\n    for i in range(64):\n        l = l + l\n    return l\nt = f()\n", "fleet.star:6:"},
		{"dict of lists", "d = {i: [i] * 1000 for i in range(10000000)}\n", "fleet.star:3:"},
		// One statement that crosses the limit and ends the file: no step
		// is left to stop, so the end of the run reports it.
		{"last statement", "s = \"x\" * 200000000\n", "fleet.star:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, map[string]string{"fleet.star": header + c.src})
			runtime.GC()
			_, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{MaxMemory: 64 << 20})
			if err == nil {
				t.Fatal("evaluation passed; want the memory limit")
			}
			msg := err.Error()
			if !strings.Contains(msg, "evaluation used more than 64MiB of memory") || !strings.Contains(msg, "--max-memory") {
				t.Fatalf("want the memory-limit message, got:\n%v", msg)
			}
			if !strings.HasPrefix(msg, c.at) {
				t.Fatalf("want the error at %s, got:\n%v", c.at, msg)
			}
			if c.name == "string doubled" && !strings.Contains(msg, "fleet.star:8:6: in <toplevel>, calling f") {
				t.Fatalf("want the call that led there as a note, got:\n%v", msg)
			}
		})
	}
}

// A fleet that allocates far more than the limit in all, but keeps
// little of it, is not stopped: the guard is about what a fleet holds.
// The margin is wide (a few MB live against 256 MiB) because garbage
// counts until the collector, which a loaded machine slows, gets to it.
func TestMemoryLimitAllowsChurn(t *testing.T) {
	src := "def f():\n    n = 0\n    for i in range(1000):\n        s = \"x\" * 1000000\n        n += len(s)\n    return n\ntotal = f()\n"
	dir := writeTree(t, map[string]string{"fleet.star": header + src})
	runtime.GC()
	if _, err := engine.Eval(context.Background(), filepath.Join(dir, "fleet.star"), engine.Options{MaxMemory: 256 << 20}); err != nil {
		t.Fatalf("1 GB of short-lived strings under a 256 MiB limit: %v", err)
	}
}

func TestParseBytes(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		err  string
	}{
		{"512MiB", 512 << 20, ""},
		{"2GiB", 2 << 30, ""},
		{"2G", 2 << 30, ""},
		{"2gb", 2 << 30, ""},
		{"64 MiB", 64 << 20, ""},
		{"1048576", 1 << 20, ""},
		{"100B", 100, ""},
		{"", 0, "not a size"},
		{"GiB", 0, "not a size"},
		{"1.5GiB", 0, "not a whole number"},
		{"2PB", 0, "unknown unit"},
		{"99999999999TiB", 0, "too large"},
	} {
		got, err := engine.ParseBytes(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseBytes(%q) = %d, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
		if back, err := engine.ParseBytes(engine.FormatBytes(got)); err != nil || back != got {
			t.Errorf("FormatBytes(%d) = %q does not read back", got, engine.FormatBytes(got))
		}
	}
}
