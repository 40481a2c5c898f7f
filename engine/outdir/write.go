package outdir

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// workers is how many files Write writes at once. Writing is bound by
// fsync latency, not CPU, so this is more than the number of cores; past
// 16 the disk, not the waiting, is the limit.
const workers = 16

// writer carries out plans. Its fields other than root exist for tests.
type writer struct {
	root string

	// beforeWrite, if set, is called with the path (relative to root) of
	// every file, manifest included, just before it is written. An error
	// stops the run there as a crash would, and is returned. It may be
	// called from several goroutines at once.
	beforeWrite func(name string) error
}

func (w *writer) full(p string) string { return filepath.Join(w.root, filepath.FromSlash(p)) }

func (w *writer) run(files []File) (Report, error) {
	files, err := normalize(files)
	if err != nil {
		return Report{}, err
	}
	if w.root == "" {
		return Report{}, errors.New("outdir: no output folder given")
	}
	if err := os.MkdirAll(w.root, 0o755); err != nil {
		return Report{}, err
	}
	unlock, err := lock(w.root)
	if err != nil {
		return Report{}, err
	}
	defer unlock()
	if err := sweep(w.root); err != nil {
		return Report{}, err
	}
	p, err := scan(w.root, files)
	if err != nil {
		return Report{}, err
	}
	if len(p.foreign) > 0 {
		return Report{}, &ForeignError{Dir: w.root, Paths: p.foreign, why: p.why}
	}
	rep := Report{Unchanged: p.unchanged, Kept: slices.Clone(p.kept)}
	if len(p.write) == 0 && len(p.remove) == 0 && bytes.Equal(p.raw, p.final) {
		return rep, nil
	}
	err = w.apply(p, &rep)
	slices.Sort(rep.Written)
	slices.Sort(rep.Removed)
	slices.Sort(rep.Kept)
	return rep, err
}

// apply carries out p, recording what it did in rep.
func (w *writer) apply(p *plan, rep *Report) error {
	if err := os.MkdirAll(w.root, 0o755); err != nil {
		return err
	}

	// The intent record goes first, and must be on disk before any file
	// it announces is.
	if p.intent != nil {
		if err := w.writeFile(ManifestName, p.intent, 0o644); err != nil {
			return err
		}
		if err := syncDir(w.root); err != nil {
			return err
		}
	}

	// Clear the way: fleet's own stale files and directories where
	// wanted files go.
	cleared := make(map[string]bool, len(p.clearFiles))
	for _, name := range p.clearFiles {
		ok, err := w.removeIfUnchanged(name, p.removeHash[name])
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: edited while fleet was writing the folder; run again", w.full(name))
		}
		cleared[name] = true
		rep.Removed = append(rep.Removed, name)
	}
	for _, d := range p.clearDirs {
		if err := os.Remove(w.full(d)); err != nil {
			return err
		}
	}

	// Create directories one at a time (parents first), then write files
	// in parallel. Every directory that gained an entry is synced before
	// the final manifest claims the entry is there.
	made := map[string]bool{".": true}
	toSync := make(map[string]bool)
	var mkdir func(d string) error
	mkdir = func(d string) error {
		if made[d] {
			return nil
		}
		if err := mkdir(path.Dir(d)); err != nil {
			return err
		}
		err := os.Mkdir(w.full(d), 0o755)
		switch {
		case err == nil:
			// Mkdir's mode is filtered by the umask.
			err = os.Chmod(w.full(d), 0o755)
			toSync[path.Dir(d)] = true
		case errors.Is(err, fs.ErrExist):
			err = nil
		}
		made[d] = true
		return err
	}
	for _, f := range p.write {
		d := path.Dir(f.Path)
		if err := mkdir(d); err != nil {
			return err
		}
		toSync[d] = true
	}
	// Files go in three steps, so that thousands of them cost two disk
	// flushes instead of one each: stage every temporary file, flush them
	// all, then rename each into place (and flush the renames). A crash
	// at any point leaves each file either old or new, never partial.
	tmps := make([]string, len(p.write))
	err := parallel(len(p.write), func(i int) error {
		f := p.write[i]
		tmp, err := w.stage(f.Path, f.Data, f.Mode)
		tmps[i] = tmp
		return err
	})
	if err == nil {
		err = flushFiles(w.root, tmps)
	}
	if err != nil {
		for _, tmp := range tmps {
			if tmp != "" {
				os.Remove(tmp)
			}
		}
		return err
	}
	renamed := make([]bool, len(p.write))
	err = parallel(len(p.write), func(i int) error {
		if err := os.Rename(tmps[i], w.full(p.write[i].Path)); err != nil {
			return err
		}
		renamed[i] = true
		return nil
	})
	for i, ok := range renamed {
		if ok {
			rep.Written = append(rep.Written, p.write[i].Path)
		}
	}
	if err != nil {
		return err
	}
	dirs := make([]string, 0, len(toSync))
	for d := range toSync {
		dirs = append(dirs, w.full(d))
	}
	if err := flushDirs(w.root, dirs); err != nil {
		return err
	}

	// Remove what is no longer produced, then the directories that left
	// empty. A file edited since the scan is kept after all.
	for _, name := range p.remove {
		if cleared[name] {
			continue
		}
		ok, err := w.removeIfUnchanged(name, p.removeHash[name])
		if err != nil {
			return err
		}
		if ok {
			rep.Removed = append(rep.Removed, name)
		} else {
			rep.Kept = append(rep.Kept, name)
		}
	}
	if err := w.prune(slices.Concat(p.remove, p.gone)); err != nil {
		return err
	}

	if p.intent != nil || !bytes.Equal(p.raw, p.final) {
		if err := w.writeFile(ManifestName, p.final, 0o644); err != nil {
			return err
		}
		if err := syncDir(w.root); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes data to name atomically on its own: staged, flushed,
// renamed into place. The manifest goes this way; other files in bulk.
func (w *writer) writeFile(name string, data []byte, mode fs.FileMode) error {
	tmp, err := w.stage(name, data, mode)
	if err == nil {
		err = flushFiles(w.root, []string{tmp})
	}
	if err == nil {
		err = os.Rename(tmp, w.full(name))
	}
	if err != nil && tmp != "" {
		os.Remove(tmp)
	}
	return err
}

// stage writes data to a temporary file beside name, with its mode, and
// returns the temporary file's path. It does not flush it to disk.
func (w *writer) stage(name string, data []byte, mode fs.FileMode) (tmp string, err error) {
	if w.beforeWrite != nil {
		if err := w.beforeWrite(name); err != nil {
			return "", err
		}
	}
	full := w.full(name)
	tmp = filepath.Join(filepath.Dir(full), tmpPrefix+filepath.Base(full))
	// A temporary file of this name is an orphan of an interrupted run.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		// Name the folder fleet cannot write to, not the temporary file
		// the user never asked for.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = fmt.Errorf("cannot write %s in %s: %w", name, filepath.Dir(full), pe.Err)
		}
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			tmp = ""
		}
	}()
	if _, err = f.Write(data); err != nil {
		return tmp, err
	}
	// Chmod rather than OpenFile's mode, which the umask filters.
	if err = f.Chmod(mode); err != nil {
		return tmp, err
	}
	return tmp, f.Close()
}

// removeIfUnchanged removes name if its content still hashes to h, and
// reports whether it did. A file already gone counts as removed.
func (w *writer) removeIfUnchanged(name, h string) (bool, error) {
	data, err := os.ReadFile(w.full(name))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if hash(data) != h {
		return false, nil
	}
	if err := os.Remove(w.full(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return true, nil
}

// prune removes the directories above paths that are empty, deepest
// first, so that emptying a directory can empty its parent. The output
// folder itself stays.
func (w *writer) prune(paths []string) error {
	seen := make(map[string]bool)
	var dirs []string
	for _, p := range paths {
		for d := path.Dir(p); d != "." && !seen[d]; d = path.Dir(d) {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	slices.SortFunc(dirs, func(a, b string) int {
		if c := strings.Count(b, "/") - strings.Count(a, "/"); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, d := range dirs {
		empty, err := emptyDir(w.full(d))
		if err != nil {
			return err
		}
		if empty {
			if err := os.Remove(w.full(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// emptyDir reports whether full is a directory (not a link to one) with
// nothing in it.
func emptyDir(full string) (bool, error) {
	fi, err := os.Lstat(full)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		// Gone, or a file now stands where a directory above it was.
		return false, nil
	}
	if err != nil || !fi.IsDir() {
		return false, err
	}
	f, err := os.Open(full)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

func syncDir(full string) error {
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// parallel calls fn(0), ..., fn(n-1) from up to workers goroutines. After
// the first error no further calls start; every error is returned.
func parallel(n int, fn func(i int) error) error {
	var (
		next atomic.Int64
		stop atomic.Bool
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					stop.Store(true)
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
