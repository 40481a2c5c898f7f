package deploy

import "golang.org/x/sys/unix"

// MemAvailableBytes is the memory this machine has: macOS has no
// "available" figure as Linux does (it counts cached and compressed
// pages apart), so it is the whole memory (sysctl hw.memsize), of which
// DefaultEvalMemory takes half; 0 when it cannot be read.
func MemAvailableBytes() (uint64, string) {
	n, err := unix.SysctlUint64("hw.memsize")
	if err != nil {
		return 0, ""
	}
	return n, "hw.memsize"
}
