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
// ceil(40/10) x the per-machine time. "ideal-s" is that figure.
func BenchmarkDeploySSHD(b *testing.B) {
	for _, parallel := range []int{1, 10, 40} {
		b.Run(fmt.Sprintf("parallel=%d", parallel), func(b *testing.B) {
			var machines []*model.Machine
			for i := 0; i < 40; i++ {
				machines = append(machines, nixos(fmt.Sprintf("m%02d", i)))
			}
			r := newRig(b, machines...)
			r.srv.Sleep("switch-to-configuration", 500*time.Millisecond)
			for b.Loop() {
				// Steps hold per-deploy state: make them anew each time.
				steps, err := deploy.Steps(r.fleet, machines, deploy.Options{Runner: r.runner, Tree: "/tree"})
				if err != nil {
					b.Fatal(err)
				}
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
			}
			ideal := float64((40+parallel-1)/parallel) * 0.5
			b.ReportMetric(ideal, "ideal-s")
		})
	}
}
