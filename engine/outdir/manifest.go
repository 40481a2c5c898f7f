package outdir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// manifestVersion is bumped when the format changes in a way an older
// fleet must not misread; a manifest with another version is refused.
const manifestVersion = 1

const manifestComment = "Written by fleet: the files it generated in this folder and the sha256 " +
	"of their content, so that it can update and remove them without touching yours. Do not edit."

// manifest says which files in the output folder fleet wrote. files maps a
// path to the hash of the content fleet wrote there. pending is only set in
// an intent record: it maps each path being written to the hash of its
// new content, so a path may have two acceptable hashes until the run
// completes.
type manifest struct {
	files   map[string]string
	pending map[string]string
}

// manifestJSON is the manifest on disk, as read; encode writes it.
type manifestJSON struct {
	Comment string            `json:"comment"`
	Version int               `json:"version"`
	Files   map[string]string `json:"files"`
	Pending map[string]string `json:"pending,omitempty"`
}

// owns reports whether fleet wrote, or was about to write, path p.
func (m manifest) owns(p string) bool {
	_, a := m.files[p]
	_, b := m.pending[p]
	return a || b
}

// wrote reports whether content hashing to h at path p is what fleet
// wrote there.
func (m manifest) wrote(p, h string) bool {
	return m.files[p] == h || m.pending[p] == h
}

// paths returns every path the manifest names, sorted.
func (m manifest) paths() []string {
	out := make([]string, 0, len(m.files)+len(m.pending))
	for p := range m.files {
		out = append(out, p)
	}
	for p := range m.pending {
		if _, ok := m.files[p]; !ok {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// encode renders m as indented JSON with sorted keys, as encoding/json's
// MarshalIndent would, but in a fraction of the time: a run that changes
// nothing still encodes the manifest to compare it with the one on disk.
// Paths are valid UTF-8 without control characters (checkPath), so only
// quotes and backslashes need escaping.
func (m manifest) encode() []byte {
	b := make([]byte, 0, 256+(len(m.files)+len(m.pending))*(2*sha256.Size+64))
	b = append(b, "{\n  \"comment\": "...)
	b = appendString(b, manifestComment)
	b = fmt.Appendf(b, ",\n  \"version\": %d,\n  \"files\": ", manifestVersion)
	b = appendMap(b, m.files)
	if len(m.pending) > 0 {
		b = append(b, ",\n  \"pending\": "...)
		b = appendMap(b, m.pending)
	}
	return append(b, "\n}\n"...)
}

func appendMap(b []byte, m map[string]string) []byte {
	if len(m) == 0 {
		return append(b, "{}"...)
	}
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n    "...)
		b = appendString(b, k)
		b = append(b, ": "...)
		b = appendString(b, m[k])
	}
	return append(b, "\n  }"...)
}

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// readManifest reads the manifest in root. A missing manifest (or a
// missing root) is an empty one, with raw nil.
func readManifest(root string) (m manifest, raw []byte, err error) {
	name := filepath.Join(root, ManifestName)
	fi, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return manifest{}, nil, nil
	}
	if err != nil {
		return manifest{}, nil, err
	}
	if !fi.Mode().IsRegular() {
		return manifest{}, nil, fmt.Errorf("%s: not a regular file; fleet cannot tell which files it wrote", name)
	}
	raw, err = os.ReadFile(name)
	if err != nil {
		return manifest{}, nil, err
	}
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%s: corrupt manifest: %s; fleet cannot tell which files it wrote: "+
			"restore the manifest from version control, or remove the output folder, and run again",
			name, fmt.Sprintf(format, args...))
	}
	var j manifestJSON
	if err := json.Unmarshal(raw, &j); err != nil {
		return manifest{}, nil, corrupt("%v", err)
	}
	if j.Version != manifestVersion {
		return manifest{}, nil, fmt.Errorf("%s: manifest version %d, this fleet understands version %d: upgrade fleet",
			name, j.Version, manifestVersion)
	}
	for _, hashes := range []map[string]string{j.Files, j.Pending} {
		for p, h := range hashes {
			if why := checkPath(p); why != "" {
				return manifest{}, nil, corrupt("path %q: %s", p, why)
			}
			if p == ManifestName {
				return manifest{}, nil, corrupt("lists itself")
			}
			if !validHash(h) {
				return manifest{}, nil, corrupt("path %q: %q is not a sha256", p, h)
			}
		}
	}
	return manifest{files: j.Files, pending: j.Pending}, raw, nil
}

func hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func validHash(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(h) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
