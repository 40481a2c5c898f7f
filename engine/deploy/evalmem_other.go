//go:build !linux && !darwin

package deploy

// MemAvailableBytes cannot read this system's memory: 0
// (DefaultEvalMemory then uses FallbackEvalMemory).
func MemAvailableBytes() (uint64, string) { return 0, "" }
