package deps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// CacheEnv names the environment variable that moves fleet's cache
// (dependencies go to its deps/ folder).
const CacheEnv = "FLEET_CACHE_DIR"

// Cache holds fetched dependency trees: Root/<url key>/<commit>/.
type Cache struct {
	Root string
}

// DefaultCache is $FLEET_CACHE_DIR/deps, else <user cache dir>/fleet/deps.
func DefaultCache() (*Cache, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, err
		}
		return &Cache{Root: filepath.Join(abs, "deps")}, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return nil, fmt.Errorf("no cache folder for dependencies (%v): set %s", err, CacheEnv)
	}
	return &Cache{Root: filepath.Join(d, "fleet", "deps")}, nil
}

// urlKey names the folder of one repository: the first 16 hex digits of
// the sha256 of its URL as written.
func urlKey(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:8])
}

// Dir is where the files of commit of url are (or would be) cached.
func (c *Cache) Dir(url, commit string) string {
	return filepath.Join(c.Root, urlKey(url), commit)
}

// Has reports whether the entry of commit of url exists.
func (c *Cache) Has(url, commit string) bool {
	st, err := os.Stat(c.Dir(url, commit))
	return err == nil && st.IsDir()
}

// Ensure returns the entry of commit of url, fetching it when it is missing.
func (c *Cache) Ensure(ctx context.Context, url, commit string) (dir string, fetched bool, err error) {
	dir = c.Dir(url, commit)
	if c.Has(url, commit) {
		return dir, false, nil
	}
	tmp, err := c.fetchTemp(ctx, url, commit)
	if err != nil {
		return "", false, err
	}
	if err := c.install(tmp, dir); err != nil {
		return "", false, err
	}
	return dir, true, nil
}

// fetchTemp fetches commit into a new temporary folder inside the cache
// (so that the final rename stays on one file system) and removes its
// .git. On error nothing is left behind.
func (c *Cache) fetchTemp(ctx context.Context, url, commit string) (tmp string, err error) {
	if err := os.MkdirAll(c.Root, 0o755); err != nil {
		return "", fmt.Errorf("dependency cache: %w (set %s to use another folder)", err, CacheEnv)
	}
	c.sweep()
	short := commit
	if len(short) > 12 {
		short = short[:12]
	}
	dir, err := os.MkdirTemp(c.Root, ".tmp-"+short+"-")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	tmp = dir
	if err := fetchInto(ctx, tmp, url, commit); err != nil {
		return "", fmt.Errorf("fetching commit %s of %s: %w", commit, url, err)
	}
	if err := os.RemoveAll(filepath.Join(tmp, ".git")); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return "", err
	}
	return tmp, nil
}

// install renames the fetched folder tmp to dir. If dir appeared meanwhile
// (another fleet fetched the same commit), tmp is dropped and dir kept.
func (c *Cache) install(tmp, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		if st, serr := os.Stat(dir); serr == nil && st.IsDir() {
			return nil
		}
		return err
	}
	return nil
}

// fetchFresh fetches commit afresh and returns the hash of its files,
// installing them when the entry is missing. An existing entry whose hash
// differs from the fresh files is an error (it was changed after it was
// fetched); it is left alone for the user to look at and delete.
func (c *Cache) fetchFresh(ctx context.Context, url, commit string) (hash string, err error) {
	tmp, err := c.fetchTemp(ctx, url, commit)
	if err != nil {
		return "", err
	}
	hash, err = TreeHash(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	dir := c.Dir(url, commit)
	if c.Has(url, commit) {
		os.RemoveAll(tmp)
		have, err := TreeHash(dir)
		if err != nil {
			return "", err
		}
		if have != hash {
			return "", &cacheDamaged{dir: dir, commit: commit, got: have, want: hash, wantFrom: "the files of the commit"}
		}
		return hash, nil
	}
	return hash, c.install(tmp, dir)
}

// sweep removes temporary folders of fetches that were killed more than a
// day ago (a fetch that fails removes its own).
func (c *Cache) sweep() {
	entries, err := os.ReadDir(c.Root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Join(c.Root, e.Name()))
		}
	}
}

// cacheDamaged is a cache entry whose files do not hash to what they should.
type cacheDamaged struct {
	dir, commit, got, want, wantFrom string
}

func (e *cacheDamaged) Error() string {
	return fmt.Sprintf("the cached files of commit %s hash to %s, but %s hash to %s: the cache entry was changed after it was fetched; delete it (rm -rf %s) and run again to fetch it afresh",
		e.commit, e.got, e.wantFrom, e.want, e.dir)
}

// isNotExist reports a missing file.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
