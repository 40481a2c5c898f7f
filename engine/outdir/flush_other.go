//go:build !linux

package outdir

import "os"

// flushFiles makes the staged files durable, one fsync each (in parallel)
// where there is no syncfs.
func flushFiles(_ string, files []string) error {
	return parallel(len(files), func(i int) error { return syncFile(files[i]) })
}

// flushDirs makes renames and new entries in dirs durable.
func flushDirs(_ string, dirs []string) error {
	return parallel(len(dirs), func(i int) error { return syncFile(dirs[i]) })
}

func syncFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
