package outdir

import (
	"bytes"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// File is one generated file. Path is slash-separated and relative to the
// output folder. Mode is 0644 (the default, also for 0) or 0755.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// Report says what Write did. Every list is sorted.
type Report struct {
	Written   []string // created or rewritten
	Unchanged []string // already as wanted: not touched
	Removed   []string // written by fleet earlier, no longer produced, removed
	Kept      []string // no longer produced but edited since fleet wrote them: left in place, now the user's
}

// Write makes dir hold files, as described in the package documentation:
// it writes what differs, atomically; removes what fleet wrote earlier and
// no longer produces; never touches a file fleet did not write; and
// records what it wrote in dir's manifest. dir is created if missing.
//
// Invalid files, and foreign files in the way (a *ForeignError), fail
// Write before anything is changed. An I/O error part way leaves a folder
// the next Write completes; the Report then says what was done.
func Write(dir string, files []File) (Report, error) {
	return (&writer{root: dir}).run(files)
}

// Diff says how an output folder differs from what Write would make of
// it. Every list is sorted; a path is in at most one of them.
type Diff struct {
	Missing []string // wanted, not on disk (includes the manifest if there is none)
	Changed []string // on disk but different: stale, hand-edited, wrong executable bit, or an outdated manifest
	Extra   []string // written by fleet earlier but no longer produced
	Foreign []string // not written by fleet but in the way of a wanted file: Write would fail
	Temp    []string // fleet's temporary files, left by an interrupted run (or one running now): Write removes them
}

// Empty reports whether the folder is up to date: Write would write and
// remove nothing.
func (d Diff) Empty() bool {
	return len(d.Missing)+len(d.Changed)+len(d.Extra)+len(d.Foreign)+len(d.Temp) == 0
}

// String lists the differences one per line, in path order, each prefixed
// with its kind: "changed: machines/nixos/web.nix". It is "" for an empty
// Diff.
func (d Diff) String() string {
	type line struct{ path, kind string }
	var lines []line
	for _, l := range []struct {
		kind  string
		paths []string
	}{{"missing:", d.Missing}, {"changed:", d.Changed}, {"extra:", d.Extra}, {"foreign:", d.Foreign}, {"temp:", d.Temp}} {
		for _, p := range l.paths {
			lines = append(lines, line{p, l.kind})
		}
	}
	slices.SortFunc(lines, func(a, b line) int {
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return strings.Compare(a.kind, b.kind)
	})
	var b strings.Builder
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%-8s %s", l.kind, l.path)
	}
	return b.String()
}

// Check compares dir with files and returns how they differ, without
// changing anything. Content is compared byte for byte, so a hand-edited
// file is reported even though the manifest still records fleet's hash.
// An error means the files are invalid or dir cannot be read.
func Check(dir string, files []File) (Diff, error) {
	files, err := normalize(files)
	if err != nil {
		return Diff{}, err
	}
	p, err := scan(dir, files)
	if err != nil {
		return Diff{}, err
	}
	tmps, err := temporaries(dir)
	if err != nil {
		return Diff{}, err
	}
	d := Diff{
		Temp:    tmps,
		Missing: slices.Clone(p.missing),
		Changed: slices.Clone(p.changed),
		Foreign: slices.Clone(p.foreign),
	}
	for _, name := range slices.Concat(p.remove, p.kept) {
		if !slices.Contains(p.foreign, name) {
			d.Extra = append(d.Extra, name)
		}
	}
	switch {
	case p.raw == nil:
		d.Missing = append(d.Missing, ManifestName)
	case !bytes.Equal(p.raw, p.final):
		d.Changed = append(d.Changed, ManifestName)
	}
	for _, l := range [][]string{d.Missing, d.Changed, d.Extra, d.Foreign} {
		slices.Sort(l)
	}
	return d, nil
}

// ForeignError is returned by Write when files fleet did not write stand
// where it wants to write. Nothing has been changed.
type ForeignError struct {
	Dir   string   // the output folder
	Paths []string // the files in the way, sorted, relative to Dir
	why   map[string]string
}

func (e *ForeignError) Error() string {
	var b strings.Builder
	if len(e.Paths) == 1 {
		fmt.Fprintf(&b, "%s: fleet did not write this file, and it is in the way of a file fleet generates:", e.Dir)
	} else {
		fmt.Fprintf(&b, "%s: fleet did not write these %d files, and they are in the way of files fleet generates:", e.Dir, len(e.Paths))
	}
	for _, p := range e.Paths {
		b.WriteString("\n\t" + p)
		if why := e.why[p]; why != "" {
			b.WriteString(" (" + why + ")")
		}
	}
	b.WriteString("\nfleet never overwrites or removes a file it did not write: " +
		"move these out of the folder, or generate into another folder with --out")
	return b.String()
}
