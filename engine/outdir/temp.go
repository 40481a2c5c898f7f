package outdir

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
)

// temporaries returns, sorted and relative to root, the temporary files
// an interrupted run left below root: a regular file ".fleet-tmp-<name>"
// beside a path the manifest names (fleet records a file in the manifest
// before it stages it), or beside the manifest. A file of that name
// anywhere else is not fleet's, and is left alone.
func temporaries(root string) ([]string, error) {
	m, _, err := readManifest(root)
	if err != nil {
		return nil, err
	}
	names := append(m.paths(), ManifestName)
	found := make([]bool, len(names))
	err = parallel(len(names), func(i int) error {
		t := path.Join(path.Dir(names[i]), tmpPrefix+path.Base(names[i]))
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(t)))
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			return nil
		case err != nil:
			return err
		}
		names[i], found[i] = t, fi.Mode().IsRegular()
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []string
	for i, ok := range found {
		if ok {
			out = append(out, names[i])
		}
	}
	slices.Sort(out)
	return out, nil
}

// sweep removes the temporary files an interrupted run left below root.
// It must only be called with the folder locked: another writer's
// temporary files are not orphans.
func sweep(root string) error {
	tmps, err := temporaries(root)
	if err != nil {
		return err
	}
	for _, t := range tmps {
		if err := os.Remove(filepath.Join(root, filepath.FromSlash(t))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
