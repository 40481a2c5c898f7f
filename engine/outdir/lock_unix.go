//go:build unix

package outdir

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lock takes an exclusive lock on the output folder root, which must
// exist, and returns the function that releases it. The lock is a flock
// on the folder itself, not on a lock file in it: nothing appears in a
// folder users commit, and a folder fleet may read but not write can still
// be found up to date. It is released when the process dies, however it
// dies. A second writer does not wait: it fails at once, saying so.
func lock(root string) (unlock func(), err error) {
	f, err := os.Open(root)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	switch {
	case err == nil:
		return func() { f.Close() }, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return nil, fmt.Errorf("another fleet is writing %s; wait for it to finish and run again", root)
	case errors.Is(err, syscall.ENOLCK), errors.Is(err, syscall.EOPNOTSUPP), errors.Is(err, syscall.EBADF):
		// The file system cannot lock (some NFS setups): write unlocked,
		// as fleet did before it locked.
		return func() { f.Close() }, nil
	}
	f.Close()
	return nil, fmt.Errorf("%s: cannot lock the output folder: %w", root, err)
}
