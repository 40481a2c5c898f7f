package deploy

import (
	"context"
	"fmt"
	"io"
)

// A late target is a machine's ssh destination known only once the run
// is under way: the public address of a cloud host that fleet apply
// creates in the same graph (Options.LateTargets). Its steps are built
// with AddressPlaceholder in their commands (what --dry-run shows), and
// the machine's first step to run asks for the address; the steps after
// it use it. Steps of one machine run one after another (each needs the
// one before), so the resolved address needs no lock.

// lateTarget makes each of d's steps resolve d.target before it runs,
// once.
func lateTarget(steps []Step, d *machineDeploy, resolve func() (string, error)) {
	resolved := false
	for i := range steps {
		run := steps[i].Run
		steps[i].Run = func(ctx context.Context, w io.Writer) error {
			if !resolved {
				t, err := resolve()
				if err != nil {
					return fmt.Errorf("machine %s: its address: %w", d.m.Name, err)
				}
				if err := ValidateTarget(t); err != nil {
					return fmt.Errorf("machine %s: %w", d.m.Name, err)
				}
				d.target, resolved = t, true
				fmt.Fprintf(w, "target: %s\n", t)
			}
			return run(ctx, w)
		}
	}
}
