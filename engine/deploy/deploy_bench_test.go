package deploy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
)

// BenchmarkDeploySSHD deploys 40 machines through the real loopback sshd
// whose activation (switch-to-configuration) takes 0.5 s, at --parallel
// 1, 10 and 40. The target: at 10, within 20% of the ideal
// ceil(40/10) x the per-machine time. "per-machine-s" is that time,
// measured as the wall time of deploying one machine alone (the best of
// three); "ideal-s" is ceil(40/parallel) x per-machine-s, and "ratio"
// the measured time over it.
func BenchmarkDeploySSHD(b *testing.B) {
	for _, parallel := range []int{1, 10, 40} {
		b.Run(fmt.Sprintf("parallel=%d", parallel), func(b *testing.B) {
			var machines []*model.Machine
			for i := 0; i < 40; i++ {
				machines = append(machines, nixos(fmt.Sprintf("m%02d", i)))
			}
			r := newRig(b, machines...)
			r.srv.Sleep("switch-to-configuration", 500*time.Millisecond)
			run := func(ms []*model.Machine) time.Duration {
				// Steps hold per-deploy state: make them anew each time.
				steps, err := deploy.Steps(r.fleet, ms, deploy.Options{Runner: r.runner, Tree: "/tree"})
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{Parallel: parallel, LogDir: b.TempDir()})
				if sum.Failed() {
					var bad []string
					for _, m := range sum.Machines {
						if m.Outcome != deploy.OutcomeOK {
							bad = append(bad, m.Machine+": "+fmt.Sprint(m.Err))
						}
					}
					b.Fatalf("deploy failed: %s", strings.Join(bad, "; "))
				}
				return time.Since(start)
			}
			one := time.Hour
			for range 3 {
				one = min(one, run(machines[:1]))
			}
			b.ResetTimer()
			var total time.Duration
			n := 0
			for b.Loop() {
				total += run(machines)
				n++
			}
			ideal := time.Duration((40+parallel-1)/parallel) * one
			b.ReportMetric(one.Seconds(), "per-machine-s")
			b.ReportMetric(ideal.Seconds(), "ideal-s")
			b.ReportMetric(float64(total)/float64(n)/float64(ideal), "ratio")
		})
	}
}
