package deploy

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// fleetSteps is machines × (build, copy, activate), each needing the one
// before; activate takes activate, the others nothing.
func fleetSteps(machines int, activate time.Duration) []Step {
	noop := func(context.Context, io.Writer) error { return nil }
	sleep := func(context.Context, io.Writer) error {
		time.Sleep(activate)
		return nil
	}
	steps := make([]Step, 0, 3*machines)
	for i := range machines {
		m := fmt.Sprintf("m%02d", i)
		steps = append(steps,
			Step{ID: m + "/build", Machine: m, Action: "build", Commands: []string{"nix build"}, Run: noop},
			Step{ID: m + "/copy", Machine: m, Action: "copy", Needs: []string{m + "/build"}, Commands: []string{"nix copy"}, Run: noop},
			Step{ID: m + "/activate", Machine: m, Action: "activate", Needs: []string{m + "/copy"}, Commands: []string{"switch-to-configuration switch"}, Run: sleep},
		)
	}
	return steps
}

// BenchmarkDeploy40 is the benchmark without ssh: 40 machines
// whose activation takes 0.5 s, with logs and progress lines, at
// --parallel 1, 10 and 40. s/deploy is the wall time, x-ideal its ratio
// to ceil(40/parallel) × 0.5 s (the target at 10 is under 1.2).
func BenchmarkDeploy40(b *testing.B) {
	const machines, activate = 40, 500 * time.Millisecond
	for _, parallel := range []int{1, 10, 40} {
		b.Run(fmt.Sprintf("parallel=%d", parallel), func(b *testing.B) {
			ideal := time.Duration((machines+parallel-1)/parallel) * activate
			dir := b.TempDir()
			events, done := Progress(io.Discard, false)
			var total time.Duration
			for i := range b.N {
				steps := fleetSteps(machines, activate)
				start := time.Now()
				s := Execute(context.Background(), steps, ExecOptions{
					Parallel: parallel,
					LogDir:   filepath.Join(dir, fmt.Sprint(i)),
					Events:   events,
				})
				total += time.Since(start)
				if s.Failed() {
					b.Fatal("deploy failed")
				}
			}
			done()
			wall := total / time.Duration(b.N)
			b.ReportMetric(wall.Seconds(), "s/deploy")
			b.ReportMetric(wall.Seconds()/ideal.Seconds(), "x-ideal")
		})
	}
}

// BenchmarkStepOverhead measures the executor's own cost per step:
// 10,000 steps that do nothing, as machines × chains of steps. Bare is
// scheduling alone; logs+json adds a log per machine and the JSON event
// stream (to io.Discard), over 40 machines so that creating log files,
// slow on some file systems, does not drown the per-step cost.
func BenchmarkStepOverhead(b *testing.B) {
	for _, tc := range []struct {
		name                 string
		machines, perMachine int
		parallel             int
		logs                 bool
	}{
		{"bare/2500x4/parallel=10", 2500, 4, 10, false},
		{"bare/2500x4/parallel=1000", 2500, 4, 1000, false},
		{"bare/40x250/parallel=10", 40, 250, 10, false},
		{"logs+json/40x250/parallel=10", 40, 250, 10, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			steps := chainSteps(tc.machines, tc.perMachine)
			dir := b.TempDir()
			b.ResetTimer()
			for i := range b.N {
				opts := ExecOptions{Parallel: tc.parallel}
				if tc.logs {
					opts.LogDir = filepath.Join(dir, fmt.Sprint(i))
					opts.Events = JSONEvents(io.Discard)
				}
				if s := Execute(context.Background(), steps, opts); s.Failed() {
					b.Fatal("failed")
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(steps)), "ns/step")
		})
	}
}

// chainSteps is machines × chains of perMachine no-op steps.
func chainSteps(machines, perMachine int) []Step {
	noop := func(context.Context, io.Writer) error { return nil }
	steps := make([]Step, 0, machines*perMachine)
	for i := range machines {
		m := fmt.Sprintf("m%04d", i)
		for k := range perMachine {
			s := Step{ID: fmt.Sprintf("%s/s%d", m, k), Machine: m, Action: "step", Commands: []string{"true"}, Run: noop}
			if k > 0 {
				s.Needs = []string{steps[len(steps)-1].ID}
			}
			steps = append(steps, s)
		}
	}
	return steps
}
