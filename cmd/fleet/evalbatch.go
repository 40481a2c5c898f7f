package main

import (
	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/urfave/cli/v2"
)

// evalBatchFlags are --eval-memory and --batch, of build and deploy:
// how many machines one nix process evaluates (engine/deploy/batch.go).
func evalBatchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "eval-memory", EnvVars: []string{"FLEET_EVAL_MEMORY"},
			Usage: "memory the Nix evaluations may take at once, `SIZE` (MiB, GiB): one nix process evaluates up to SIZE / 512MiB machines (default: half of the memory available)"},
		&cli.IntFlag{Name: "batch", Usage: "machines one nix process evaluates (`N`), instead of what --eval-memory allows; 1: each machine's own nix build"},
	}
}

// evalBatch is the batch size the flags ask for: --batch, else
// --eval-memory (or FLEET_EVAL_MEMORY) divided by the estimate per
// machine, else half of the memory available divided by it.
func evalBatch(c *cli.Context) (int, error) {
	if c.IsSet("batch") {
		n := c.Int("batch")
		if n < 1 {
			return 0, usagef("%s: --batch %d: give the number of machines one nix process evaluates, 1 or more", commandPath(c), n)
		}
		return n, nil
	}
	if s := c.String("eval-memory"); s != "" {
		budget, err := engine.ParseBytes(s)
		if err != nil {
			return 0, usagef("%s: --eval-memory: %v", commandPath(c), err)
		}
		return deploy.EvalBatchSize(budget), nil
	}
	budget, _ := deploy.DefaultEvalMemory(deploy.MemAvailableBytes())
	return deploy.EvalBatchSize(budget), nil
}
