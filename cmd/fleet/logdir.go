package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// runLogDir makes the log folder of one run of kind ("" for deploy,
// "build-", "exec-", "apply-", "diff-"): .fleet/logs/<kind><UTC time>, created
// 0700 here, so that two runs in the same second get two folders
// (<time>-2, -3 ...) instead of interleaving their logs in one.
func runLogDir(root, kind string, now time.Time) (string, error) {
	logs := filepath.Join(root, ".fleet", "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return "", fmt.Errorf("making the log folder: %w", err)
	}
	base := filepath.Join(logs, kind+now.UTC().Format("20060102-150405"))
	dir := base
	for n := 2; ; n++ {
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) || n > 1000 {
			return "", fmt.Errorf("making the log folder: %w", err)
		}
		dir = fmt.Sprintf("%s-%d", base, n)
	}
}
