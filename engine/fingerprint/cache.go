package fingerprint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CacheEnv moves fleet's cache folder (as for engine/deps).
const CacheEnv = "FLEET_CACHE_DIR"

// Cache maps fingerprints to the store paths built from them: one file
// per fingerprint, Dir/<first two hex digits>/<fingerprint>, holding the
// path and a newline. It is a local record, not the truth: a path may
// have been garbage-collected since (callers check it with nix
// path-info), and a missing or unreadable entry is a miss.
type Cache struct {
	Dir string
}

// DefaultCache is $FLEET_CACHE_DIR/builds, else <user cache
// folder>/fleet/builds: outside the repository.
func DefaultCache() (*Cache, error) {
	base, err := cacheRoot()
	if err != nil {
		return nil, fmt.Errorf("build cache: %w", err)
	}
	return &Cache{Dir: filepath.Join(base, "builds")}, nil
}

func (c *Cache) file(fp string) (string, bool) {
	if len(fp) < 3 || strings.Trim(fp, "0123456789abcdef") != "" {
		return "", false
	}
	return filepath.Join(c.Dir, fp[:2], fp), true
}

// Get is the store path recorded for fingerprint fp, if any.
func (c *Cache) Get(fp string) (string, bool) {
	p, ok := c.file(fp)
	if !ok {
		return "", false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return "", false
	}
	path := strings.TrimSuffix(string(data), "\n")
	if !strings.HasPrefix(path, "/nix/store/") || strings.ContainsAny(path, "\n\x00") {
		return "", false
	}
	return path, true
}

// Put records that fp built path. The entry is written to a temporary
// file and renamed into place: a reader sees the old entry or the new
// one, never half of one.
func (c *Cache) Put(fp, path string) error {
	p, ok := c.file(fp)
	if !ok {
		return fmt.Errorf("build cache: %q is no fingerprint", fp)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("build cache: %w (set %s to use another folder)", err, CacheEnv)
	}
	if err := writeAtomic(p, []byte(path+"\n")); err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	return nil
}

// writeAtomic writes data to a temporary file beside p and renames it
// into place: a reader sees the old contents or the new, never half.
func writeAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		os.Remove(tmp.Name())
	}
	return werr
}
