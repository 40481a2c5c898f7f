package builtins

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// This file checks fleet(cache = ...) and fleet(builders = ...): the
// two ways a fleet reaches past the deployer's own machine, both in
// Nix's own terms, so that what is written here is what nix accepts.
//
// cache is a dict rather than a builtin of its own: a fleet has at most
// one, it is three strings, and a dict keeps the declaration where the
// fleet is named.
//
// builders are nix's own machine lines (nix.conf's builders, the lines of
// /etc/nix/machines), not a structured form: that format already holds
// every field nix reads (store URL, systems, ssh key, jobs, speed,
// features, mandatory features, host key), users copy lines between
// nix.conf and fleet.star unchanged, and the manual documents it. fleet
// checks the fields it can check, so a typo is an error at the .star line
// instead of a build that silently runs locally.

// cacheKeys are the keys of fleet(cache = {...}).
var cacheKeys = []string{"public_key", "secret_key_file", "url"}

// cacheSchemes are the store URL schemes a binary cache may have.
var cacheSchemes = []string{"file", "http", "https", "s3"}

// checkCache turns fleet(cache = {...}) into the model's Cache.
func checkCache(d map[string]string, pos model.Pos) (*model.Cache, error) {
	for k := range d {
		if !slices.Contains(cacheKeys, k) {
			return nil, fmt.Errorf("fleet: cache: unknown key %q%s: it takes %s", k, DidYouMean(k, cacheKeys), strings.Join(cacheKeys, ", "))
		}
	}
	c := &model.Cache{URL: d["url"], PublicKey: d["public_key"], SecretKeyFile: d["secret_key_file"], Pos: pos}
	if err := checkCacheURL(c.URL); err != nil {
		return nil, fmt.Errorf("fleet: cache: url: %w", err)
	}
	if err := checkPublicKey(c.PublicKey); err != nil {
		return nil, fmt.Errorf("fleet: cache: public_key: %w", err)
	}
	if f := c.SecretKeyFile; f != "" && !strings.HasPrefix(f, "/") && !strings.HasPrefix(f, "~/") {
		return nil, fmt.Errorf("fleet: cache: secret_key_file: %q is relative: the secret key stays out of the repository; give where it is on the deployer's machine as an absolute or ~/ path (or leave it out and sign with nix.conf's secret-key-files)", f)
	}
	return c, nil
}

// checkCacheURL accepts a binary cache's store URL.
func checkCacheURL(u string) error {
	if u == "" {
		return fmt.Errorf("missing: name the binary cache (s3://bucket, https://cache.example.org, file:///srv/cache)")
	}
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		return fmt.Errorf("%q is not a store URL: use s3://bucket, https://cache.example.org or file:///srv/cache", u)
	}
	if !slices.Contains(cacheSchemes, p.Scheme) {
		return fmt.Errorf("%q: a binary cache is reached over s3://, https://, http:// or file://, not %s://", u, p.Scheme)
	}
	if p.Scheme == "file" && (p.Host != "" || !strings.HasPrefix(p.Path, "/")) {
		return fmt.Errorf("%q: a file:// cache names an absolute folder: file:///srv/cache", u)
	}
	if p.Scheme != "file" && p.Host == "" {
		return fmt.Errorf("%q names no host or bucket", u)
	}
	if q := p.Query(); q.Has("secret-key") {
		return fmt.Errorf("%q carries secret-key: say where the key is with secret_key_file instead (the URL is written into every machine's nix.conf)", u)
	}
	return nil
}

// checkPublicKey accepts "name:base64" of a 32-byte ed25519 key, what
// nix-store --generate-binary-cache-key writes to its public file.
func checkPublicKey(k string) error {
	const how = "give the cache's public key as \"name:base64\" (the file nix-store --generate-binary-cache-key writes, or nix key convert-secret-to-public prints)"
	name, b64, ok := strings.Cut(k, ":")
	if k == "" {
		return fmt.Errorf("missing: %s", how)
	}
	if !ok || name == "" || strings.ContainsAny(k, " \t\n") {
		return fmt.Errorf("%q is not a public key: %s", k, how)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("%q: the key after %q is not base64: %s", k, name+":", how)
	}
	switch len(raw) {
	case 32:
		return nil
	case 64:
		return fmt.Errorf("%q is a secret key: never put it in the repository; give its public half (nix key convert-secret-to-public < key)", name+":…")
	}
	return fmt.Errorf("%q: the key is %d bytes, an ed25519 public key is 32: %s", k, len(raw), how)
}

// builderSchemes are the store URL schemes of a remote builder.
var builderSchemes = []string{"ssh", "ssh-ng"}

// checkBuilder checks one nix machine line: URI, then optional systems,
// ssh key, max jobs, speed factor, supported and mandatory features, and
// the base64 host key, "-" for a field left at its default.
func checkBuilder(line string) error {
	if strings.ContainsAny(line, ";\n") {
		return fmt.Errorf("%q holds ';' or a newline: give one builder per list element", line)
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return fmt.Errorf("empty builder: give nix's machine line, like \"ssh-ng://builder@host x86_64-linux - 8\"")
	}
	if len(f) > 8 {
		return fmt.Errorf("%q has %d fields: a nix builder line has at most 8 (URI, systems, ssh key, max jobs, speed factor, features, mandatory features, host key)", line, len(f))
	}
	scheme, rest, ok := strings.Cut(f[0], "://")
	if !ok || !slices.Contains(builderSchemes, scheme) || rest == "" {
		return fmt.Errorf("%q: a builder is reached as ssh-ng://user@host (or ssh://user@host)", f[0])
	}
	if len(f) > 1 && f[1] != "-" {
		for _, s := range strings.Split(f[1], ",") {
			if !slices.Contains(model.Systems, s) {
				return fmt.Errorf("%q: system %q%s: systems are %s, comma-separated", line, s, DidYouMean(s, model.Systems), strings.Join(model.Systems, ", "))
			}
		}
	}
	if len(f) > 2 && f[2] != "-" && !path.IsAbs(f[2]) {
		return fmt.Errorf("%q: the ssh key %q is relative: give its absolute path on the deployer's machine", line, f[2])
	}
	for i, what := range map[int]string{3: "max jobs", 4: "speed factor"} {
		if len(f) > i && f[i] != "-" {
			if n, err := strconv.Atoi(f[i]); err != nil || n < 0 {
				return fmt.Errorf("%q: %s %q is not a number", line, what, f[i])
			}
		}
	}
	if len(f) > 7 && f[7] != "-" {
		if _, err := base64.StdEncoding.DecodeString(f[7]); err != nil {
			return fmt.Errorf("%q: the host key is not base64 (base64 -w0 of the builder's ssh host public key line)", line)
		}
	}
	return nil
}
