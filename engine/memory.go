package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultMaxMemory bounds the heap while a fleet is evaluated. A
// 10,000-machine fleet keeps about 16 MiB live and allocates 136 MB in
// all (BenchmarkEval); the limit is there to stop mistakes
// ("x" * 1000000000, then doubled), not real fleets.
const DefaultMaxMemory = 512 << 20

// memCheckEvery is how often the guard looks at the heap. Reading the
// heap metric costs well under a microsecond; a value that grows in a
// loop cannot get far in 5 ms. One step that allocates a lot at once is
// bounded by Starlark itself: a repeat may not make 2^30 elements or
// more.
const memCheckEvery = 5 * time.Millisecond

// MemoryGuard bounds the heap while Starlark runs. go.starlark.net has no
// allocation accounting, so the guard cannot attribute bytes to a
// thread: it measures the whole process, which during evaluation is
// almost entirely the evaluation's values, and cancels a context when
// the heap is over the limit. Threads already stop when their context is
// cancelled (engine, fleet test, the REPL), so the error is positioned at
// the statement that was running.
type MemoryGuard struct {
	limit uint64
}

// NewMemoryGuard is a guard for limit bytes (0: DefaultMaxMemory).
func NewMemoryGuard(limit uint64) *MemoryGuard {
	if limit == 0 {
		limit = DefaultMaxMemory
	}
	return &MemoryGuard{limit: limit}
}

// Limit is the guard's limit in bytes.
func (g *MemoryGuard) Limit() uint64 { return g.limit }

// memoryLimitReason is the cause of a context the guard cancelled; a
// cancelled thread reports "Starlark computation cancelled: " and it.
const memoryLimitReason = "memory limit"

// errMemoryLimit is that cause, as an error to compare with errors.Is;
// IsMemoryLimit is for Starlark's errors, which carry only its text.
var errMemoryLimit = errors.New(memoryLimitReason)

// IsMemoryLimit reports whether an error message says the guard stopped
// a thread.
func IsMemoryLimit(msg string) bool {
	return strings.Contains(msg, "cancelled: "+memoryLimitReason)
}

// MemoryLimitMessage is what the user reads when what (an evaluation, a
// test) crossed the limit.
func (g *MemoryGuard) MemoryLimitMessage(what string) string {
	return fmt.Sprintf("%s used more than %s of memory: look for a value that grows without bound, such as a string or list doubled in a loop, or raise --max-memory", what, FormatBytes(g.limit))
}

// Context is parent, cancelled with a memory-limit cause as soon as the
// heap is over the limit. stop ends the watch (and cancels the context);
// call it when the Starlark work is done.
func (g *MemoryGuard) Context(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	go func() {
		heap := []metrics.Sample{{Name: heapMetric}}
		tick := time.NewTicker(memCheckEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-tick.C:
				if g.over(heap) {
					cancel(errMemoryLimit)
					return
				}
			}
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			close(done)
			cancel(nil)
		})
	}
}

// Over reports, now, whether the heap is over the limit: for the end of
// a run, where the last statement may have crossed it with no step left
// for the watch to stop.
func (g *MemoryGuard) Over() bool {
	return g.over([]metrics.Sample{{Name: heapMetric}})
}

// heapMetric is the heap the guard measures.
const heapMetric = "/memory/classes/heap/objects:bytes"

// Exceeded reports whether ctx was cancelled by a guard.
func Exceeded(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errMemoryLimit)
}

// over reports whether the heap holds more than the limit. The heap
// counts garbage not yet collected too: Go collects when the heap has
// grown to about twice what was live, so a program keeping less than
// half the limit alive is never stopped. Confirming a reading with a
// collection would spare more, but a collection waits for the evaluating
// goroutine, which may be in the middle of a long copy, and the next
// doubling would already be under way by the time it said so (measured:
// 4 GB instead of 1 GB for a string doubled in a loop).
func (g *MemoryGuard) over(heap []metrics.Sample) bool {
	metrics.Read(heap)
	if heap[0].Value.Kind() != metrics.KindUint64 {
		return false // unknown metric: never stop a run for it
	}
	return heap[0].Value.Uint64() > g.limit
}

// FormatBytes writes n the way --max-memory reads it: "1GiB", "512MiB",
// or bytes.
func FormatBytes(n uint64) string {
	for _, u := range []struct {
		suffix string
		size   uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatUint(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10)
}

// sizeUnits are the units ParseBytes takes, as shifts of 1.
var sizeUnits = map[string]uint{
	"": 0, "B": 0,
	"K": 10, "KB": 10, "KIB": 10,
	"M": 20, "MB": 20, "MIB": 20,
	"G": 30, "GB": 30, "GIB": 30,
	"T": 40, "TB": 40, "TIB": 40,
}

// ParseBytes reads a size as --max-memory takes it: a whole number with
// an optional unit, KiB/MiB/GiB/TiB (powers of 1024; K, M, G, T, KB, MB,
// GB, TB mean the same, as memory sizes usually do) or B.
func ParseBytes(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size: write a number with a unit, like 2GiB or 512MiB", s)
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size: %v", s, err)
	}
	if i < len(t) && (t[i] == '.' || t[i] == ',') {
		return 0, fmt.Errorf("%q is not a whole number: use a smaller unit, like 1536MiB for 1.5GiB", s)
	}
	unit := strings.ToUpper(strings.TrimSpace(t[i:]))
	sh, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%q has an unknown unit: use KiB, MiB, GiB or TiB", s)
	}
	if n > (^uint64(0))>>sh {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << sh, nil
}
