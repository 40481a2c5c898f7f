package deploy

import (
	"context"
	"errors"
	"io"
)

// reportDeployed makes a machine's steps tell Options.Deployed when its
// deploy completes with the switch goal: when the last step (check, or
// activate without checks) succeeds with the machine not left degraded,
// or when the compare step finds the system built already running
// (ErrUpToDate, the steps after it not needed). Those are the outcomes
// OutcomeOK and OutcomeUnchanged of a machine, seen from inside its own
// steps, which alone know the system path.
//
// Other goals leave the running system as it was (boot, dry-activate)
// or run it until the next reboot only (test), and an install through
// nixos-anywhere does not say which path it built: they report nothing.
func (d *machineDeploy) reportDeployed(steps []Step) {
	if d.o.Deployed == nil || d.o.Goal != Switch || d.o.Install[d.m.Name] || len(steps) == 0 {
		return
	}
	last := &steps[len(steps)-1]
	if last.Action == "activate" || last.Action == "check" {
		run := last.Run
		last.Run = func(ctx context.Context, w io.Writer) error {
			err := run(ctx, w)
			if err == nil && d.unitsFailed == nil && d.system != "" {
				d.o.Deployed(d.m.Name, d.system)
			}
			return err
		}
	}
	for i := range steps {
		if steps[i].Action != "compare" {
			continue
		}
		run := steps[i].Run
		steps[i].Run = func(ctx context.Context, w io.Writer) error {
			err := run(ctx, w)
			if errors.Is(err, ErrUpToDate) && d.system != "" {
				d.o.Deployed(d.m.Name, d.system)
			}
			return err
		}
	}
}
