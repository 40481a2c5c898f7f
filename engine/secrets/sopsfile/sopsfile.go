// Package sopsfile reads files encrypted by sops (getsops/sops) to age
// recipients, as sops-nix uses them, so that their values can be imported
// as fleet secrets. It is a reader of sops' documented file format written
// on filippo.io/age and the standard library (plus a YAML parser); it does
// not link sops itself, whose key services bring the AWS, GCP, Azure and
// Vault SDKs with them.
//
// # The format
//
// A sops file is the original document with every value replaced by
// "ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]": AES-256-GCM under a
// random data key, with the value's path (its keys joined by ":", plus a
// trailing ":"; list positions are not part of it) as additional data. The
// metadata under "sops" (a [sops] section in INI, sops_ keys in dotenv)
// holds the data key encrypted to each age recipient (an armored age file
// in age[].enc) and the MAC: the upper-case hex SHA-512 of every value's
// plaintext in document order, itself encrypted with the data key and the
// lastmodified time as additional data. Decrypt checks the MAC, so a value
// that was changed, removed, added or moved is refused.
//
// Supported: the YAML, JSON, dotenv, INI and binary formats (binary is a
// JSON document whose one value, "data", is the whole file), age
// recipients, and sops' rules for values left in clear (unencrypted_suffix,
// encrypted_suffix, unencrypted_regex, encrypted_regex, mac_only_encrypted).
// Not supported, each refused with a message: key groups (Shamir's secret
// sharing), files encrypted to PGP or a cloud KMS only, the comment
// regexes, and YAML files with several documents.
//
// # Plaintext
//
// Values are decrypted into memory only. The caller owns the []byte of
// each Value and wipes it (Wipe) when done; the data key is wiped before
// Decrypt returns. Errors name paths and recipients, never values.
package sopsfile

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// Format is the syntax of a sops file.
type Format string

// The formats sops writes.
const (
	YAML   Format = "yaml"
	JSON   Format = "json"
	Dotenv Format = "dotenv"
	INI    Format = "ini"
	Binary Format = "binary"
)

// Formats lists the formats, for messages.
var Formats = []Format{YAML, JSON, Dotenv, INI, Binary}

// FormatOf is the format sops assumes for a file name: by extension, and
// binary when the extension is none of the others.
func FormatOf(name string) Format {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		return YAML
	case ".json":
		return JSON
	case ".env":
		return Dotenv
	case ".ini":
		return INI
	}
	return Binary
}

// ParseFormat parses a format name as sops' --input-type takes it.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown sops format %q: use yaml, json, dotenv, ini or binary", s)
}

// Value is one decrypted leaf of a sops file.
type Value struct {
	// Path is the value's place in the document: keys, and list
	// positions as decimal numbers. A binary file's one value is ["data"].
	Path []string
	// Data is the plaintext: a string's bytes, a number as sops writes it
	// ("5432", "0.75"), a boolean as "true" or "false".
	Data []byte
	// Encrypted is false for a value sops left in clear (unencrypted_suffix
	// and the like).
	Encrypted bool
}

// Wipe overwrites the values' plaintext with zeros.
func Wipe(vs []Value) {
	for _, v := range vs {
		wipe(v.Data)
	}
}

func wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// NoIdentityError says that none of the identities given can decrypt the
// file's data key, and whom it is encrypted to.
type NoIdentityError struct {
	// Recipients are the age recipients the file's data key is
	// encrypted to, as the file lists them.
	Recipients []string
	// Others names the other kinds of keys it has (pgp, kms ...).
	Others []string
}

func (e *NoIdentityError) Error() string {
	var b strings.Builder
	b.WriteString("none of the given identities can decrypt it")
	if len(e.Recipients) > 0 {
		fmt.Fprintf(&b, ": it is encrypted to the age recipients %s", strings.Join(e.Recipients, ", "))
	} else {
		b.WriteString(": it is encrypted to no age recipient")
	}
	if len(e.Others) > 0 {
		fmt.Fprintf(&b, " (and to %s keys, which fleet does not use)", strings.Join(e.Others, ", "))
	}
	b.WriteString("; use an identity of one of them (--identity or FLEET_AGE_IDENTITY)")
	return b.String()
}

// ErrMACMismatch: the values do not match the file's MAC.
var ErrMACMismatch = errors.New("MAC mismatch: the values are not the ones sops encrypted (the file was changed, or a value was added, removed or moved); refusing it")

// metadata is what Decrypt needs of the sops metadata.
type metadata struct {
	age          []ageKey
	others       []string // kinds of non-age keys present
	keyGroups    bool
	lastModified string
	mac          string
	macOnlyEnc   bool
	unencSuffix  string
	encSuffix    string
	unencRegex   string
	encRegex     string
	commentRegex bool
}

type ageKey struct{ recipient, enc string }

// leaf is a value as the document has it, before decryption.
type leaf struct {
	aad  []string // keys only: sops' additional data
	path []string // keys and list positions
	// raw is the value's text; for values left in clear, canon is what
	// sops' MAC hashes and skip says it hashes nothing (null).
	raw   string
	str   bool // raw is a string (only strings can be encrypted)
	canon string
	skip  bool
}

// Decrypt decrypts a sops file of the given format with ids, checks its
// MAC, and returns its values in document order. A file none of ids can
// decrypt is a *NoIdentityError; one whose MAC does not match is
// ErrMACMismatch.
func Decrypt(data []byte, format Format, ids []age.Identity) ([]Value, error) {
	var leaves []leaf
	var md *metadata
	var err error
	switch format {
	case YAML:
		leaves, md, err = parseYAML(data)
	case JSON:
		leaves, md, err = parseJSON(data)
	case Binary:
		leaves, md, err = parseJSON(data)
		if err == nil && (len(leaves) != 1 || strings.Join(leaves[0].path, "/") != "data") {
			err = errors.New(`not a sops binary file: it should hold one value, "data", besides "sops"`)
		}
	case Dotenv:
		leaves, md, err = parseDotenv(data)
	case INI:
		leaves, md, err = parseINI(data)
	default:
		_, err = ParseFormat(string(format))
	}
	if err != nil {
		return nil, err
	}
	if md == nil {
		return nil, errors.New("not a sops file: it has no sops metadata")
	}
	if md.keyGroups {
		return nil, errors.New("it uses sops key groups (Shamir's secret sharing), which fleet does not read: " +
			"`sops updatekeys` or `sops decrypt | sops encrypt --age ...` makes a file with plain age recipients")
	}
	if md.commentRegex {
		return nil, errors.New("it uses sops' unencrypted_comment_regex or encrypted_comment_regex, which fleet does not read")
	}
	if md.mac == "" {
		return nil, errors.New("it has no MAC (sops.mac): refusing a file whose values cannot be checked")
	}
	if len(ids) == 0 {
		return nil, errors.New("no age identity given")
	}
	key, err := md.dataKey(ids)
	if err != nil {
		return nil, err
	}
	defer wipe(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}

	var out []Value
	ok := false
	defer func() {
		if !ok {
			Wipe(out)
		}
	}()
	h := sha512.New()
	if md.macOnlyEnc {
		h.Write(macOnlyEncryptedInit)
	}
	for _, l := range leaves {
		if l.skip { // null: sops neither encrypts nor hashes it
			continue
		}
		enc, err := md.encrypted(l.aad)
		if err != nil {
			return nil, err
		}
		if !enc {
			out = append(out, Value{Path: l.path, Data: []byte(l.raw)})
			if !md.macOnlyEnc {
				h.Write([]byte(l.canon))
			}
			continue
		}
		if !l.str {
			return nil, fmt.Errorf("value %s is not encrypted, though sops' rules say it should be", show(l.path))
		}
		if l.raw == "" { // sops leaves empty strings as they are
			out = append(out, Value{Path: l.path, Data: []byte{}, Encrypted: true})
			continue
		}
		pt, macBytes, err := decryptValue(aead, l.raw, strings.Join(l.aad, ":")+":")
		if err != nil {
			return nil, fmt.Errorf("value %s: %v", show(l.path), err)
		}
		out = append(out, Value{Path: l.path, Data: pt, Encrypted: true})
		h.Write(macBytes)
		if len(macBytes) > 0 && len(pt) > 0 && &macBytes[0] != &pt[0] {
			wipe(macBytes)
		}
	}
	// The MAC: its additional data is lastmodified as RFC 3339.
	lm, err := time.Parse(time.RFC3339, md.lastModified)
	if err != nil {
		return nil, fmt.Errorf("sops.lastmodified %q is not a time: %v", md.lastModified, err)
	}
	fileMAC, _, err := decryptValue(aead, md.mac, lm.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("the MAC does not decrypt (%v): the file was changed", err)
	}
	sum := strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
	if subtle.ConstantTimeCompare([]byte(sum), fileMAC) != 1 {
		return nil, ErrMACMismatch
	}
	ok = true
	return out, nil
}

// macOnlyEncryptedInit starts the MAC of a file with mac_only_encrypted,
// so that it differs from the MAC of the same values without it (sops'
// MACOnlyEncryptedInitialization).
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
	0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// show is a path for messages.
func show(path []string) string { return strings.Join(path, "/") }

// dataKey decrypts the data key with the first age stanza ids open.
func (md *metadata) dataKey(ids []age.Identity) ([]byte, error) {
	var recipients []string
	for _, k := range md.age {
		recipients = append(recipients, k.recipient)
		r, err := age.Decrypt(armor.NewReader(strings.NewReader(strings.TrimSpace(k.enc)+"\n")), ids...)
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("the data key for %s does not decrypt: %v", k.recipient, err)
		}
		key, err := io.ReadAll(r)
		if err != nil {
			wipe(key)
			return nil, fmt.Errorf("the data key for %s is damaged: %v", k.recipient, err)
		}
		if len(key) != 32 {
			wipe(key)
			return nil, fmt.Errorf("the data key for %s is %d bytes, not 32", k.recipient, len(key))
		}
		return key, nil
	}
	return nil, &NoIdentityError{Recipients: recipients, Others: md.others}
}

// encrypted applies sops' rules (Tree.shouldBeEncrypted) to a value's keys.
func (md *metadata) encrypted(keys []string) (bool, error) {
	enc := true
	if md.unencSuffix != "" {
		for _, k := range keys {
			if strings.HasSuffix(k, md.unencSuffix) {
				enc = false
				break
			}
		}
	}
	if md.encSuffix != "" {
		enc = false
		for _, k := range keys {
			if strings.HasSuffix(k, md.encSuffix) {
				enc = true
				break
			}
		}
	}
	for _, rule := range []struct {
		re   string
		want bool
	}{{md.unencRegex, false}, {md.encRegex, true}} {
		if rule.re == "" {
			continue
		}
		re, err := regexp.Compile(rule.re)
		if err != nil {
			return false, fmt.Errorf("sops regex %q: %v", rule.re, err)
		}
		if rule.want {
			enc = false
		}
		for _, k := range keys {
			if re.MatchString(k) {
				enc = rule.want
				break
			}
		}
	}
	return enc, nil
}

func newGCM(key []byte) (*gcmCache, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return &gcmCache{block: block, by: map[int]cipher.AEAD{}}, nil
}

var encRE = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// decryptValue opens one ENC[...] value with additional data aad. It
// returns the plaintext as the value's text and the bytes sops' MAC
// hashes for it (the same slice, except for booleans and numbers).
func decryptValue(g *gcmCache, value, aad string) (pt, mac []byte, err error) {
	m := encRE.FindStringSubmatch(value)
	if m == nil {
		return nil, nil, errors.New("not a sops encrypted value (ENC[AES256_GCM,...])")
	}
	var parts [3][]byte
	for i, name := range []string{"data", "iv", "tag"} {
		if parts[i], err = base64.StdEncoding.DecodeString(m[i+1]); err != nil {
			return nil, nil, fmt.Errorf("its %s is not base64", name)
		}
	}
	ivLen := len(parts[1])
	if ivLen == 0 || len(parts[2]) != 16 {
		return nil, nil, errors.New("its iv or tag has the wrong length")
	}
	gcm, err := g.withNonce(ivLen)
	if err != nil {
		return nil, nil, err
	}
	ct := append(parts[0], parts[2]...)
	pt, err = gcm.Open(nil, parts[1], ct, []byte(aad))
	if err != nil {
		return nil, nil, errors.New("it does not decrypt: it was changed, moved from another key, or encrypted with another data key")
	}
	switch typ := m[4]; typ {
	case "str", "bytes":
		return pt, pt, nil
	case "int":
		n, err := strconv.Atoi(string(pt))
		if err != nil {
			wipe(pt)
			return nil, nil, errors.New("its type is int but it is not an integer")
		}
		return pt, []byte(strconv.Itoa(n)), nil
	case "float":
		f, err := strconv.ParseFloat(string(pt), 64)
		if err != nil {
			wipe(pt)
			return nil, nil, errors.New("its type is float but it is not a number")
		}
		return pt, []byte(strconv.FormatFloat(f, 'f', -1, 64)), nil
	case "bool":
		b, err := strconv.ParseBool(string(pt))
		wipe(pt)
		if err != nil {
			return nil, nil, errors.New("its type is bool but it is not a boolean")
		}
		if b {
			return []byte("true"), []byte("True"), nil
		}
		return []byte("false"), []byte("False"), nil
	case "time":
		var t time.Time
		if err := t.UnmarshalText(pt); err != nil {
			wipe(pt)
			return nil, nil, errors.New("its type is time but it is not a time")
		}
		canon, _ := t.MarshalText()
		return pt, canon, nil
	default:
		wipe(pt)
		return nil, nil, fmt.Errorf("unknown sops value type %q", typ)
	}
}

// gcmCache is AES-GCM under the data key for the nonce sizes met (sops
// writes 32-byte IVs; GCM with a non-standard nonce size needs its own
// instance).
type gcmCache struct {
	block cipher.Block
	by    map[int]cipher.AEAD
}

func (g *gcmCache) withNonce(n int) (cipher.AEAD, error) {
	if a, ok := g.by[n]; ok {
		return a, nil
	}
	a, err := cipher.NewGCMWithNonceSize(g.block, n)
	if err != nil {
		return nil, err
	}
	g.by[n] = a
	return a, nil
}
