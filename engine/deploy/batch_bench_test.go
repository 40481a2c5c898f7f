package deploy

import (
	"context"
	"fmt"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
)

// BenchmarkEvalBatch: the first build of a 1,000-machine fleet with a
// recording stand-in nix (batchNix), at --parallel 10, for batch sizes
// 1 (no batching: one nix build per machine), 16 (an 8 GiB budget) and
// 100. It reports the nix processes that evaluate (nix-evals; at most
// ceil(N / batch), checked) and all nix processes (nix-procs: those
// plus one nix-store --realise per machine, which evaluates nothing).
func BenchmarkEvalBatch(b *testing.B) {
	const n = 1000
	var ms []*model.Machine
	for i := range n {
		ms = append(ms, &model.Machine{Name: fmt.Sprintf("m%04d", i), Class: model.NixOS})
	}
	for _, batch := range []int{1, 16, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var evals, procs int
			for b.Loop() {
				nix := &batchNix{}
				steps, err := BuildSteps(ms, Options{Tree: "/tree", Runner: nix, EvalBatch: batch}, nil)
				if err != nil {
					b.Fatal(err)
				}
				if sum := Execute(context.Background(), steps, ExecOptions{Parallel: 10}); sum.Failed() {
					b.Fatal("a build failed")
				}
				evals = len(nix.evals) + len(nix.other)
				procs = evals + len(nix.realised)
			}
			if want := (n + batch - 1) / batch; evals > want {
				b.Errorf("%d nix processes evaluated, want at most ceil(%d / %d) = %d", evals, n, batch, want)
			}
			b.ReportMetric(float64(evals), "nix-evals")
			b.ReportMetric(float64(procs), "nix-procs")
		})
	}
}
