package deploy

import "os"

// MemAvailableBytes is the memory this machine has available for new
// work (/proc/meminfo's MemAvailable, else MemTotal) and its name; 0
// when it cannot be read.
func MemAvailableBytes() (uint64, string) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	return ParseMeminfo(f)
}
