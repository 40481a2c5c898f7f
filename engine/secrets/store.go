package secrets

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"filippo.io/age"
	"filippo.io/age/armor"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plural"
	"golang.org/x/crypto/ssh"
)

const (
	// Dir is the folder of the fleet root that holds the secrets.
	Dir = "secrets"
	// SharedOwner is the folder of shared secrets, in place of a machine.
	SharedOwner = "shared"
	// RecordFile is the recipients record, relative to the fleet root.
	RecordFile = Dir + "/.recipients.json"
	// AgeSuffix ends the name of every encrypted file.
	AgeSuffix = ".age"
)

// Owner is the folder a secret's files are stored under: the machine,
// or "shared".
func Owner(s *model.Secret, machine string) string {
	if s.Shared {
		return SharedOwner
	}
	return machine
}

// FilePath is where file of secret s is stored for machine, relative to
// the fleet root (slash-separated): secrets/<machine|shared>/<secret>/<file>.age
// for secret files (as nixgen.SecretPath), without .age for public ones.
func FilePath(s *model.Secret, machine string, file model.SecretFile) string {
	p := Dir + "/" + Owner(s, machine) + "/" + s.Name + "/" + file.Name
	if file.Secret {
		p += AgeSuffix
	}
	return p
}

// Store reads and writes the secret files under a fleet root. Its
// methods may be called from several goroutines.
type Store struct {
	// Root is the fleet root; files live under Root/secrets.
	Root string

	mu       sync.Mutex
	batching int     // > 0: the record is kept in memory and saved at the end
	rec      *record // the record while batching
	unsaved  int     // record changes not yet saved while batching
}

// record is secrets/.recipients.json.
type record struct {
	Note    string                 `json:"note"`
	Version int                    `json:"version"`
	Files   map[string]recordEntry `json:"files"`
}

type recordEntry struct {
	// Recipients are the normalized recipients the file was encrypted to.
	Recipients []string `json:"recipients"`
	// SHA256 is the hash of the file's bytes (the ciphertext).
	SHA256 string `json:"sha256"`
}

const recordNote = "Written by fleet: the recipients each secret file was encrypted to and the sha256 of its " +
	"ciphertext, so that `fleet secrets check` can tell stale files without decrypting. Do not edit."

func (st *Store) abs(rel string) string { return filepath.Join(st.Root, filepath.FromSlash(rel)) }

// checkRel refuses paths outside secrets/.
func checkRel(rel string, encrypted bool) error {
	clean := path.Clean(rel)
	if clean != rel || !strings.HasPrefix(rel, Dir+"/") || strings.Contains(rel, "/../") || strings.HasPrefix(path.Base(rel), ".") {
		return fmt.Errorf("%q is not a path under %s/", rel, Dir)
	}
	if encrypted != strings.HasSuffix(rel, AgeSuffix) {
		if encrypted {
			return fmt.Errorf("%s: an encrypted file's name must end in %s", rel, AgeSuffix)
		}
		return fmt.Errorf("%s: a public file's name must not end in %s", rel, AgeSuffix)
	}
	return nil
}

// noSymlink refuses rel (relative to the fleet root, under secrets/)
// when it, or a folder on the way to it below secrets/, is a symlink:
// fleet would write or read outside the fleet root, where nothing keeps
// the files private or in git. Parts that do not exist yet are fine.
func (st *Store) noSymlink(rel string) error {
	parts := strings.Split(rel, "/")
	p := st.Root
	for i, part := range parts {
		p = filepath.Join(p, part)
		if i == 0 {
			continue // secrets/ itself
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symlink: fleet follows no symlink under %s/ (it could lead outside the fleet root); "+
				"replace it with a real folder or file", strings.Join(parts[:i+1], "/"), Dir)
		}
	}
	return nil
}

// WriteSecret encrypts plaintext to recipients and stores it at rel
// (relative to the fleet root, under secrets/), atomically, mode 0600,
// and records the recipients. An existing file is replaced only if it is
// the one fleet recorded: a file that is not age, or that changed since
// fleet wrote it, is left alone and reported.
func (st *Store) WriteSecret(rel string, plaintext []byte, recipients []string) error {
	return st.writeSecret(rel, plaintext, recipients, "")
}

// writeSecret is WriteSecret; an existing file whose sha256 is expect
// may be replaced too (Rekey, which has just decrypted it).
func (st *Store) writeSecret(rel string, plaintext []byte, recipients []string, expect string) error {
	if err := checkRel(rel, true); err != nil {
		return err
	}
	if err := st.noSymlink(rel); err != nil {
		return err
	}
	norm, err := normalizeAll(recipients)
	if err != nil {
		return fmt.Errorf("%s: %v", rel, err)
	}
	if len(norm) == 0 {
		return fmt.Errorf("%s: refusing to encrypt to nobody: no recipients", rel)
	}
	rs, err := parseRecipients(norm)
	if err != nil {
		return fmt.Errorf("%s: %v", rel, err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rs...)
	if err != nil {
		return fmt.Errorf("encrypting %s: %v", rel, err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return fmt.Errorf("encrypting %s: %v", rel, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encrypting %s: %v", rel, err)
	}
	ct := buf.Bytes()

	if old, err := os.ReadFile(st.abs(rel)); err == nil {
		h := hashOf(old)
		entry, recorded, err := st.recorded(rel)
		if err != nil {
			return err
		}
		if h != expect && !(recorded && entry.SHA256 == h) {
			if _, perr := parseHeader(old); perr != nil {
				return fmt.Errorf("%s exists and is not an age file: not overwriting it; look at it and move it away", rel)
			}
			return fmt.Errorf("%s exists and is not the file fleet wrote (it changed since, or was written by another tool): "+
				"not overwriting it; `fleet secrets rekey` adopts it if you can decrypt it, or move it away", rel)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Files are written outside the lock, so that several can be written
	// at once; fleet never writes one path from two goroutines.
	if err := atomicWrite(st.abs(rel), ct, 0o600); err != nil {
		return fmt.Errorf("writing %s: %v", rel, err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	rec, err := st.loadRecordLocked()
	if err != nil {
		return err
	}
	rec.Files[rel] = recordEntry{Recipients: norm, SHA256: hashOf(ct)}
	return st.recordChangedLocked(rec)
}

// WritePublic stores a public file (a public key) in plain text, mode
// 0644, atomically.
func (st *Store) WritePublic(rel string, data []byte) error {
	if err := checkRel(rel, false); err != nil {
		return err
	}
	if err := st.noSymlink(rel); err != nil {
		return err
	}
	if err := atomicWrite(st.abs(rel), data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %v", rel, err)
	}
	return nil
}

// Read decrypts the secret file at rel with ids. A file that is not age
// is an error naming it; when no identity matches, the error
// (*NoIdentityError) lists the recipients the file needs, from the record
// and from what its header shows.
func (st *Store) Read(rel string, ids []age.Identity) ([]byte, error) {
	data, err := st.readFile(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s does not exist: run `fleet secrets generate`", rel)
		}
		return nil, err
	}
	return st.decrypt(rel, data, ids)
}

func (st *Store) decrypt(rel string, data []byte, ids []age.Identity) ([]byte, error) {
	stanzas, err := parseHeader(data)
	if err != nil {
		return nil, &NotAgeError{Path: rel, Err: err}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("cannot decrypt %s: no age identity given (fleet secrets keygen makes one; --identity or FLEET_AGE_IDENTITY chooses it)", rel)
	}
	r, err := age.Decrypt(ageReader(data), ids...)
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) {
		nerr := &NoIdentityError{Path: rel}
		st.mu.Lock()
		rec, rerr := st.loadRecordLocked()
		st.mu.Unlock()
		if rerr == nil {
			if e, ok := rec.Files[rel]; ok && e.SHA256 == hashOf(data) {
				nerr.Recipients = e.Recipients
			}
		}
		nerr.Header = describeStanzas(stanzas, nerr.Recipients)
		return nil, nerr
	}
	if err != nil {
		return nil, fmt.Errorf("cannot decrypt %s: %v", rel, err)
	}
	pt, err := io.ReadAll(r)
	if err != nil {
		wipe(pt)
		return nil, fmt.Errorf("%s is damaged: %v", rel, err)
	}
	return pt, nil
}

// ReadPublic reads the public file at rel (a public key, in plain text).
func (st *Store) ReadPublic(rel string) ([]byte, error) {
	return st.readFile(rel)
}

// readFile reads the file at rel, refusing symlinks (noSymlink).
func (st *Store) readFile(rel string) ([]byte, error) {
	if err := st.noSymlink(rel); err != nil {
		return nil, err
	}
	return os.ReadFile(st.abs(rel))
}

// NotAgeError is a file where an age file should be that is not one.
type NotAgeError struct {
	Path string
	Err  error
}

func (e *NotAgeError) Error() string {
	return fmt.Sprintf("%s is not an age file (%v): it is damaged or was not written by fleet or age; fleet leaves it alone", e.Path, e.Err)
}

func (e *NotAgeError) Unwrap() error { return e.Err }

// NoIdentityError says that none of the identities given can decrypt a
// file, and whom it is encrypted to.
type NoIdentityError struct {
	Path string
	// Recipients the file was encrypted to, from the record (nil when the
	// record does not know this version of the file).
	Recipients []string
	// Header describes the file's recipient stanzas: "X25519" for the
	// anonymous age ones, "ssh-ed25519 <tag>" with the key when known.
	Header []string
}

func (e *NoIdentityError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot decrypt %s: none of the given identities is among its recipients", e.Path)
	if len(e.Recipients) > 0 {
		fmt.Fprintf(&b, "; it is encrypted to %s", strings.Join(e.Recipients, ", "))
	}
	if len(e.Header) > 0 {
		fmt.Fprintf(&b, " (its header has: %s)", strings.Join(e.Header, ", "))
	}
	b.WriteString("; use an identity of one of them (--identity or FLEET_AGE_IDENTITY)")
	return b.String()
}

// ageReader undoes ASCII armor if the file has it.
func ageReader(data []byte) io.Reader {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if bytes.HasPrefix(trimmed, []byte(armor.Header)) {
		return armor.NewReader(bytes.NewReader(trimmed))
	}
	return bytes.NewReader(data)
}

// stanzaRecorder is an identity that matches nothing: given to
// age.Decrypt it makes age parse a header and hand over its stanzas,
// without any decryption taking place.
type stanzaRecorder struct{ stanzas []*age.Stanza }

func (r *stanzaRecorder) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	r.stanzas = stanzas
	return nil, age.ErrIncorrectIdentity
}

// parseHeader checks that data is an age file and returns its recipient
// stanzas. It reads the header only; nothing is decrypted.
func parseHeader(data []byte) ([]*age.Stanza, error) {
	rec := &stanzaRecorder{}
	_, err := age.Decrypt(bufio.NewReader(ageReader(data)), rec)
	var nomatch *age.NoIdentityMatchError
	if errors.As(err, &nomatch) {
		if len(rec.stanzas) == 0 {
			return nil, errors.New("no recipient stanza")
		}
		return rec.stanzas, nil
	}
	// age's own parse errors quote the bytes they choke on, which could
	// be a plaintext someone put where a ciphertext belongs: say what is
	// wrong without them.
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case len(data) == 0:
		return nil, errors.New("the file is empty")
	case bytes.HasPrefix(trimmed, []byte(armor.Header)):
		return nil, errors.New("its armored age header is malformed")
	case bytes.HasPrefix(data, []byte("age-encryption.org/")):
		return nil, errors.New("its age header is malformed or truncated")
	}
	return nil, errors.New("it does not start with an age header")
}

// describeStanzas names the recipients a header shows: ssh stanzas carry
// a tag of the key, which is matched against the known recipients.
func describeStanzas(stanzas []*age.Stanza, known []string) []string {
	tags := map[string]string{}
	for _, k := range known {
		if t := SSHTag(k); t != "" {
			tags[t] = k
		}
	}
	x25519 := 0
	var out []string
	for _, s := range stanzas {
		switch s.Type {
		case "X25519":
			x25519++
		case "ssh-ed25519", "ssh-rsa":
			d := s.Type + " key with tag " + first(s.Args)
			if k, ok := tags[first(s.Args)]; ok {
				d += " (" + short(k) + ")"
			}
			out = append(out, d)
		default:
			out = append(out, s.Type)
		}
	}
	if x25519 > 0 {
		out = append([]string{plural.Count(x25519, "age X25519 recipient") + ", anonymous"}, out...)
	}
	return out
}

func first(xs []string) string {
	if len(xs) == 0 {
		return ""
	}
	return xs[0]
}

// SSHTag is the tag age writes in an ssh recipient stanza for an ssh
// public key (the first 4 bytes of the sha256 of the key, base64), or ""
// for anything else.
func SSHTag(key string) string {
	if !strings.HasPrefix(key, "ssh-") {
		return ""
	}
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(key))
	if err != nil {
		return ""
	}
	h := sha256.Sum256(pk.Marshal())
	return base64.RawStdEncoding.EncodeToString(h[:4])
}

func hashOf(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func normalizeAll(rs []string) ([]string, error) {
	set := map[string]bool{}
	for _, r := range rs {
		n, err := NormalizeRecipient(r)
		if err != nil {
			return nil, err
		}
		set[n] = true
	}
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out, nil
}

// loadRecordLocked returns the record: the in-memory one while batching,
// else read afresh (another fleet process may have written it).
func (st *Store) loadRecordLocked() (*record, error) {
	if st.batching > 0 && st.rec != nil {
		return st.rec, nil
	}
	rec := &record{Version: 1, Files: map[string]recordEntry{}}
	data, err := os.ReadFile(st.abs(RecordFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(data, rec); err != nil {
			return nil, fmt.Errorf("%s is damaged (%v): delete it and run `fleet secrets rekey` to rebuild it", RecordFile, err)
		}
		if rec.Files == nil {
			rec.Files = map[string]recordEntry{}
		}
	}
	if st.batching > 0 {
		st.rec = rec
	}
	return rec, nil
}

// recordSaveEvery bounds how many record changes a batch keeps in memory
// only; a crash loses at most these, and the files concerned then show
// up as changed outside fleet, which Rekey repairs.
const recordSaveEvery = 256

func (st *Store) recordChangedLocked(rec *record) error {
	if st.batching > 0 {
		st.unsaved++
		if st.unsaved < recordSaveEvery {
			return nil
		}
	}
	return st.saveRecordLocked(rec)
}

// saveRecordLocked writes the record atomically, dropping entries whose
// file is gone.
func (st *Store) saveRecordLocked(rec *record) error {
	for rel := range rec.Files {
		if _, err := os.Stat(st.abs(rel)); errors.Is(err, fs.ErrNotExist) {
			delete(rec.Files, rel)
		}
	}
	rec.Note, rec.Version = recordNote, 1
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if err := atomicWrite(st.abs(RecordFile), data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %v", RecordFile, err)
	}
	st.unsaved = 0
	return nil
}

// batch runs fn with the record kept in memory, saved every
// recordSaveEvery changes and when fn returns (whatever it returns).
func (st *Store) batch(fn func() error) (err error) {
	st.mu.Lock()
	st.batching++
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		st.batching--
		if st.batching == 0 {
			if st.rec != nil && st.unsaved > 0 {
				if serr := st.saveRecordLocked(st.rec); serr != nil && err == nil {
					err = serr
				}
			}
			st.rec, st.unsaved = nil, 0
		}
	}()
	return fn()
}

// recorded returns the record entry of rel.
func (st *Store) recorded(rel string) (recordEntry, bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	rec, err := st.loadRecordLocked()
	if err != nil {
		return recordEntry{}, false, err
	}
	e, ok := rec.Files[rel]
	return e, ok, nil
}

// atomicWrite writes data to a temporary file next to p, syncs it and
// renames it over p: p is either its old or its new content. Folders
// created on the way have mode 0700.
func atomicWrite(p string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(p)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, p); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
