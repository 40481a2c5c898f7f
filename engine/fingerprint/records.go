package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Deploy records: what fleet last deployed to each machine from here.
//
// When fleet deploys a machine and it ends running the system built
// (activated with the switch goal and its checks passed, or found
// already running it by --only-changed's compare), it writes a Record:
// the system's store path, the fingerprint of the configuration it was
// built from, and every file that fingerprint covers with its sha256.
// fleet plan compares a machine's fingerprint now with its record: equal
// is "unchanged", different is "deploy", naming the files that differ.
//
// A record is a local note, not the truth. It says what this computer
// last deployed, not what the machine runs: another person, another
// checkout, a rollback or a hand-made switch on the machine do not
// update it. fleet plan says so ("as last deployed from here"); only
// asking the machine (deploy --only-changed compares the system it runs)
// is sure.
//
// Records live beside the build cache, outside the repository:
// <cache>/deployed/<sha256 of the fleet's absolute root, links
// resolved, 16 hex digits>/<machine>.json, so two checkouts of a fleet keep their own.
// Each is written to a temporary file and renamed into place: a reader
// sees the old record or the new one, never half of one.

// RecordVersion is the Version of the records written. A record of
// another version is unreadable (RecordError).
const RecordVersion = 1

// Record is a machine's last deploy from here.
type Record struct {
	Version int    `json:"version"`
	Machine string `json:"machine"`
	// System is the store path activated.
	System string `json:"system"`
	// Fingerprint is the configuration's fingerprint (Set.Of) when it
	// was deployed.
	Fingerprint string `json:"fingerprint"`
	// Inputs are the files the fingerprint covers (Set.Inputs).
	Inputs []Input `json:"inputs"`
	// Time is when the deploy completed (UTC).
	Time time.Time `json:"time"`
	// Goal is the activation goal (switch).
	Goal string `json:"goal"`
}

// Records is one fleet's deploy records, in Dir.
type Records struct {
	Dir string
}

// cacheRoot is $FLEET_CACHE_DIR, else <user cache folder>/fleet.
func cacheRoot() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder (%v): set %s", err, CacheEnv)
	}
	return filepath.Join(d, "fleet"), nil
}

// DefaultRecords are the deploy records of the fleet whose root folder
// is root, under $FLEET_CACHE_DIR/deployed (else the user's cache
// folder's fleet/deployed).
func DefaultRecords(root string) (*Records, error) {
	base, err := cacheRoot()
	if err != nil {
		return nil, fmt.Errorf("deploy records: %w", err)
	}
	return RecordsIn(filepath.Join(base, "deployed"), root)
}

// RecordsIn are the deploy records of the fleet at root under dir.
func RecordsIn(dir, root string) (*Records, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("deploy records: %w", err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real // the same fleet through a link is the same fleet
	}
	sum := sha256.Sum256([]byte(abs))
	return &Records{Dir: filepath.Join(dir, hex.EncodeToString(sum[:8]))}, nil
}

// RecordError is a record that exists and cannot be used: unreadable,
// not JSON, another version, or not about its machine. fleet treats the
// machine as never deployed from here.
type RecordError struct {
	File string
	Err  error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("deploy record %s: %v (remove it; the next deploy writes a new one)", e.File, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

func (r *Records) file(machine string) (string, error) {
	if machine == "" || strings.ContainsAny(machine, "/\\\x00") || machine == "." || machine == ".." {
		return "", fmt.Errorf("deploy records: %q is no machine name", machine)
	}
	return filepath.Join(r.Dir, machine+".json"), nil
}

// Remove forgets machine's record (none is no error): its host was
// created, replaced or deleted, so what the record says it runs is gone.
func (r *Records) Remove(machine string) error {
	p, err := r.file(machine)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deploy record of %s: %w", machine, err)
	}
	return nil
}

// Get is machine's record: nil and no error when there is none, a
// *RecordError when there is one that cannot be used.
func (r *Records) Get(machine string) (*Record, error) {
	p, err := r.file(machine)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &RecordError{File: p, Err: err}
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, &RecordError{File: p, Err: fmt.Errorf("not a deploy record: %w", err)}
	}
	switch {
	case rec.Version != RecordVersion:
		return nil, &RecordError{File: p, Err: fmt.Errorf("version %d, not %d", rec.Version, RecordVersion)}
	case rec.Machine != machine:
		return nil, &RecordError{File: p, Err: fmt.Errorf("about machine %q, not %s", rec.Machine, machine)}
	case !strings.HasPrefix(rec.System, "/nix/store/") || rec.Fingerprint == "" || rec.Time.IsZero():
		return nil, &RecordError{File: p, Err: errors.New("no system, fingerprint or time in it")}
	}
	return &rec, nil
}

// Put writes rec as its machine's record (Version set), atomically.
func (r *Records) Put(rec *Record) error {
	p, err := r.file(rec.Machine)
	if err != nil {
		return err
	}
	out := *rec
	out.Version = RecordVersion
	data, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return fmt.Errorf("deploy record of %s: %w", rec.Machine, err)
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return fmt.Errorf("deploy record of %s: %w (set %s to use another folder)", rec.Machine, err, CacheEnv)
	}
	if err := writeAtomic(p, append(data, '\n')); err != nil {
		return fmt.Errorf("deploy record of %s: %w", rec.Machine, err)
	}
	return nil
}

// Record is the record of machine deployed with system (goal, at when),
// from its fingerprint and inputs as they are now.
func (s *Set) Record(machine, system, goal string, when time.Time) (*Record, error) {
	head, in, err := s.inputs(machine)
	if err != nil {
		return nil, err
	}
	return &Record{Version: RecordVersion, Machine: machine, System: system, Fingerprint: hashOf(head, in),
		Inputs: in, Time: when.UTC(), Goal: goal}, nil
}
