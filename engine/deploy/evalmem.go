package deploy

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// EvalMemoryPerMachine is the memory one machine's evaluation is
// estimated to take in a batch: a NixOS system evaluated on its own
// peaks at some 300 to 600 MB of nix's heap (nixpkgs and the module
// system), and machines evaluated in one process share the parsed
// files but not their module fixpoints. 512 MiB a machine errs on the
// safe side for ordinary systems; a fleet of heavy ones (many modules,
// large home-manager setups) wants a smaller --batch or --eval-memory.
const EvalMemoryPerMachine = 512 << 20

// EvalBatchSize is how many machines one nix process may evaluate
// within budget bytes: budget / EvalMemoryPerMachine, at least 1.
func EvalBatchSize(budget uint64) int {
	n := budget / EvalMemoryPerMachine
	if n < 1 {
		return 1
	}
	if n > 1<<16 {
		return 1 << 16
	}
	return int(n)
}

// FallbackEvalMemory is the eval memory budget where the machine's
// memory cannot be read: 2 GiB, four machines a batch.
const FallbackEvalMemory = 2 << 30

// DefaultEvalMemory is the default budget for evaluations: half of the
// memory this machine has available (the other half is left to the
// builds that run meanwhile, and to everything else), and how it was
// found, for the user to read. available is what the operating system
// says (MemAvailableBytes); 0 means it could not say.
func DefaultEvalMemory(available uint64, source string) (uint64, string) {
	if available == 0 {
		return FallbackEvalMemory, "the machine's memory is unknown: " + formatSize(FallbackEvalMemory)
	}
	return available / 2, "half of " + source + " " + formatSize(available)
}

// ParseMeminfo reads /proc/meminfo: MemAvailable, or on kernels
// without it MemTotal, in bytes, and which of the two it is.
func ParseMeminfo(r io.Reader) (bytes uint64, field string) {
	var total uint64
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n <<= 10
		}
		switch name {
		case "MemAvailable":
			return n, "MemAvailable"
		case "MemTotal":
			total = n
		}
	}
	if total > 0 {
		return total, "MemTotal"
	}
	return 0, ""
}

// formatSize is n bytes in GiB with one decimal, or MiB below 1 GiB.
func formatSize(n uint64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%dMiB", n>>20)
}
