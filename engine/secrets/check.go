package secrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/model"
)

// FileState is one secret file in a Report. It never holds a value.
type FileState struct {
	// Path is relative to the fleet root.
	Path   string `json:"path"`
	Secret string `json:"secret"`
	// Owner is the machine, or "shared".
	Owner string `json:"owner"`
	// File is the stored file name.
	File string `json:"file"`
	// Reason says why the file is listed, when that is not obvious.
	Reason string `json:"reason,omitempty"`
	// Want are the recipients the fleet declares now; Have those the
	// file was encrypted to (stale files).
	Want []string `json:"want,omitempty"`
	Have []string `json:"have,omitempty"`
}

// Report is what Check, Rekey and GenerateMissing found and did.
type Report struct {
	// Missing files are declared but absent.
	Missing []FileState `json:"missing,omitempty"`
	// NeedsPrompt files are missing and asked of a person (gen.prompt),
	// and no terminal was there to ask on.
	NeedsPrompt []FileState `json:"needs_prompt,omitempty"`
	// Stale files are encrypted to other recipients than the fleet now
	// declares (an admin or a host key changed): `fleet secrets rekey`.
	Stale []FileState `json:"stale,omitempty"`
	// Foreign files are valid age files that are not what fleet wrote:
	// their hash differs from the record, or the record does not know
	// them (edited with agenix, written by another tool, or a write whose
	// record update was lost). Rekey adopts those it can decrypt.
	Foreign []FileState `json:"foreign,omitempty"`
	// Corrupt files are where a secret file should be but are not age
	// files. Nothing overwrites them.
	Corrupt []FileState `json:"corrupt,omitempty"`
	// Failed files could not be generated or rekeyed; Reason says why.
	Failed []FileState `json:"failed,omitempty"`
	// Generated and Rekeyed files were written.
	Generated []FileState `json:"generated,omitempty"`
	Rekeyed   []FileState `json:"rekeyed,omitempty"`
	// NoHostKey are machines that read secrets but whose host key is not
	// known, so they are not recipients yet.
	NoHostKey []string `json:"no_host_key,omitempty"`
	// Unknown are files under secrets/ that no declaration names
	// (a removed machine or secret). Informational.
	Unknown []string `json:"unknown,omitempty"`
}

// OK reports whether nothing is missing, stale, foreign, corrupt or failed.
func (r *Report) OK() bool {
	return len(r.Missing)+len(r.NeedsPrompt)+len(r.Stale)+len(r.Foreign)+len(r.Corrupt)+len(r.Failed) == 0
}

// Write prints the report for a person, one line per file.
func (r *Report) Write(w io.Writer) {
	list := func(title string, xs []FileState, detail bool) {
		if len(xs) == 0 {
			return
		}
		fmt.Fprintf(w, "%s (%d):\n", title, len(xs))
		for _, x := range xs {
			line := "  " + x.Path
			if x.Reason != "" {
				line += ": " + x.Reason
			}
			if detail && (len(x.Want) > 0 || len(x.Have) > 0) {
				add, del := diff(x.Want, x.Have)
				for _, a := range add {
					line += "\n      + " + short(a)
				}
				for _, d := range del {
					line += "\n      - " + short(d)
				}
			}
			fmt.Fprintln(w, line)
		}
	}
	list("generated", r.Generated, false)
	list("rekeyed", r.Rekeyed, false)
	list("missing", r.Missing, false)
	list("missing, asked on a terminal (run `fleet secrets generate` on one)", r.NeedsPrompt, false)
	list("stale: recipients changed, run `fleet secrets rekey`", r.Stale, true)
	list("changed outside fleet", r.Foreign, false)
	list("not age files (left alone)", r.Corrupt, false)
	list("failed", r.Failed, false)
	if len(r.NoHostKey) > 0 {
		fmt.Fprintf(w, "machines without a known host key (not recipients yet): %s\n", strings.Join(r.NoHostKey, ", "))
	}
	if len(r.Unknown) > 0 {
		fmt.Fprintf(w, "files no secret declares (%d):\n", len(r.Unknown))
		for _, u := range r.Unknown {
			fmt.Fprintf(w, "  %s\n", u)
		}
	}
}

// diff returns what is in want and not have, and the reverse.
func diff(want, have []string) (add, del []string) {
	h := map[string]bool{}
	for _, x := range have {
		h[x] = true
	}
	w := map[string]bool{}
	for _, x := range want {
		w[x] = true
		if !h[x] {
			add = append(add, x)
		}
	}
	for _, x := range have {
		if !w[x] {
			del = append(del, x)
		}
	}
	return add, del
}

// Owners are the folders a secret's files are stored under: each of its
// machines, or "shared".
func Owners(s *model.Secret) []string {
	if s.Shared {
		return []string{SharedOwner}
	}
	return s.Machines
}

// ownerMachine is the machine argument of Recipients and FilePath for an
// owner folder.
func ownerMachine(owner string) string {
	if owner == SharedOwner {
		return ""
	}
	return owner
}

// Check compares the declared secrets with the files under secrets/ and
// the recipients record: missing files, stale files, foreign and corrupt
// ones, and files no declaration names. It reads headers and hashes only;
// it is given no identity and cannot decrypt anything. The error is for
// what keeps it from checking at all (an unreadable record, a recipient
// that does not parse); a secret that nobody could read is listed in
// Failed.
func (st *Store) Check(f *model.Fleet, hostKeys map[string]string) (Report, error) {
	var rep Report
	entries, err := st.recordCopy()
	if err != nil {
		return rep, err
	}
	declared := map[string]bool{}
	noHK := map[string]bool{}
	for _, s := range f.Secrets {
		for _, owner := range Owners(s) {
			m := ownerMachine(owner)
			var want []string
			var recipErr error
			for _, file := range s.Files {
				x := FileState{Path: FilePath(s, m, file), Secret: s.Name, Owner: owner, File: file.Name}
				declared[x.Path] = true
				if err := st.noSymlink(x.Path); err != nil {
					x.Reason = err.Error()
					rep.Failed = append(rep.Failed, x)
					continue
				}
				if !file.Secret {
					if _, err := os.Stat(st.abs(x.Path)); err != nil {
						rep.Missing = append(rep.Missing, x)
					}
					continue
				}
				if want == nil && recipErr == nil {
					var missingKeys []string
					want, missingKeys, recipErr = Recipients(f, s, m, hostKeys)
					for _, k := range missingKeys {
						noHK[k] = true
					}
				}
				data, err := os.ReadFile(st.abs(x.Path))
				if errors.Is(err, os.ErrNotExist) {
					if s.Generator != nil && s.Generator.Kind == KindPrompt {
						x.Reason = "asked of a person (gen.prompt)"
					}
					rep.Missing = append(rep.Missing, x)
					continue
				}
				if err != nil {
					x.Reason = err.Error()
					rep.Failed = append(rep.Failed, x)
					continue
				}
				if _, err := parseHeader(data); err != nil {
					x.Reason = fmt.Sprintf("not an age file (%v)", err)
					rep.Corrupt = append(rep.Corrupt, x)
					continue
				}
				if recipErr != nil {
					x.Reason = recipErr.Error()
					rep.Failed = append(rep.Failed, x)
					continue
				}
				x.Want = want
				e, ok := entries[x.Path]
				switch {
				case !ok:
					x.Reason = "not in " + RecordFile + ": written by another tool, or its record was lost (fleet stopped while writing): " +
						"`fleet secrets rekey` records it again if it decrypts"
					rep.Foreign = append(rep.Foreign, x)
				case e.SHA256 != hashOf(data):
					x.Reason = "changed since fleet wrote it (its sha256 differs from " + RecordFile + ")"
					x.Have = e.Recipients
					rep.Foreign = append(rep.Foreign, x)
				case !equalStrings(e.Recipients, want):
					x.Have = e.Recipients
					rep.Stale = append(rep.Stale, x)
				}
			}
		}
	}
	for k := range noHK {
		rep.NoHostKey = append(rep.NoHostKey, k)
	}
	sort.Strings(rep.NoHostKey)
	rep.Unknown = st.unknownFiles(declared)
	return rep, nil
}

func (st *Store) recordCopy() (map[string]recordEntry, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec, err := st.loadRecordLocked()
	if err != nil {
		return nil, err
	}
	out := make(map[string]recordEntry, len(rec.Files))
	for k, v := range rec.Files {
		out[k] = v
	}
	return out, nil
}

// unknownFiles lists the files under secrets/ that are not declared.
func (st *Store) unknownFiles(declared map[string]bool) []string {
	var out []string
	root := st.abs(Dir)
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, rerr := filepath.Rel(st.Root, p)
		if rerr != nil {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if rel == RecordFile || declared[rel] {
			return nil
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Rekey re-encrypts every stale file (and every foreign one, adopting it)
// to the recipients the fleet declares now, decrypting with ids. Each
// file is replaced by rename: it is either old or new, never partial, and
// the record is updated after it. A file ids cannot decrypt is listed in
// Failed and left as it is; corrupt files are never touched. The error
// is for what stops the whole run (cancellation, the record).
func (st *Store) Rekey(ctx context.Context, f *model.Fleet, hostKeys map[string]string, ids []age.Identity) (Report, error) {
	rep, err := st.Check(f, hostKeys)
	if err != nil {
		return rep, err
	}
	todo := append(append([]FileState(nil), rep.Stale...), rep.Foreign...)
	rep.Stale, rep.Foreign = nil, nil
	err = st.batch(func() error {
		for _, x := range todo {
			if err := ctx.Err(); err != nil {
				return err
			}
			data, err := st.readFile(x.Path)
			if err != nil {
				x.Reason = err.Error()
				rep.Failed = append(rep.Failed, x)
				continue
			}
			pt, err := st.decrypt(x.Path, data, ids)
			if err != nil {
				x.Reason = err.Error()
				rep.Failed = append(rep.Failed, x)
				continue
			}
			err = st.writeSecret(x.Path, pt, x.Want, hashOf(data))
			wipe(pt)
			if err != nil {
				x.Reason = err.Error()
				rep.Failed = append(rep.Failed, x)
				continue
			}
			x.Reason = ""
			rep.Rekeyed = append(rep.Rekeyed, x)
		}
		return nil
	})
	return rep, err
}

// NotReady says why a machine may not be deployed with the secrets r
// (a Check) describes: every file it reads (its own, and those of the
// shared secrets it is a machine of) that is missing, stale, changed
// outside fleet or damaged, not age, or could not be checked, each named
// with what to do. nil means they are all in order. The deploy's secrets
// step is this, so that deploy and `fleet secrets check` judge a file the
// same way.
func (r *Report) NotReady(f *model.Fleet, machine string) error {
	var probs []string
	add := func(xs []FileState, what func(FileState) string) {
		for _, x := range xs {
			if !reads(f, x, machine) {
				continue
			}
			probs = append(probs, x.Path+": "+what(x))
		}
	}
	add(r.Missing, func(x FileState) string { return "missing: run `fleet secrets generate`" })
	add(r.NeedsPrompt, func(x FileState) string { return "missing: run `fleet secrets generate` on a terminal" })
	add(r.Stale, func(x FileState) string {
		return "encrypted to other recipients than the fleet declares: run `fleet secrets rekey`"
	})
	add(r.Foreign, func(x FileState) string {
		return x.Reason + "; it may be damaged or foreign, and the machine could not decrypt it: `fleet secrets check` lists it, " +
			"`fleet secrets rekey` re-encrypts it if it still decrypts, else `fleet secrets generate --regenerate " + x.Secret + "` makes a new value"
	})
	add(r.Corrupt, func(x FileState) string {
		return x.Reason + ": look at it and move it away, then run `fleet secrets generate --regenerate " + x.Secret + "`"
	})
	add(r.Failed, func(x FileState) string { return "could not be checked: " + x.Reason + " (see `fleet secrets check`)" })
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("the secrets of %s are not ready, refusing to deploy them: %s", machine, strings.Join(probs, "; "))
}

// reads reports whether machine reads the file x: its own, or a shared
// one of a secret declared for it.
func reads(f *model.Fleet, x FileState, machine string) bool {
	if x.Owner == machine {
		return true
	}
	if x.Owner != SharedOwner {
		return false
	}
	s := f.Secret(x.Secret)
	return s != nil && slices.Contains(s.Machines, machine)
}
