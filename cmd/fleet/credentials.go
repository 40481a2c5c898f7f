package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/plaintext"
	"github.com/fleet-nix/fleet/engine/secrets"
	"github.com/urfave/cli/v2"
)

// credentialVars are the environment variables each cloud reads its
// credentials from, and whether the value is a file's path (a GCE service
// account key) rather than the credential itself (a Hetzner token).
var credentialVars = map[string]struct {
	name   string
	isFile bool
}{
	string(model.Hetzner): {"HCLOUD_TOKEN", false},
	string(model.GCP):     {"GOOGLE_APPLICATION_CREDENTIALS", true},
}

// clouds returns the providers for the fleet f. Each cloud's credentials
// come from the environment, as its own tools read them; when a cloud the
// fleet uses has none there and fleet(credentials = ...) names a secret
// for it, the secret is decrypted with the admin's age identity (flag
// --identity, FLEET_AGE_IDENTITY, or the default file) and given to the
// provider: a token in memory, a key file in a private temporary folder
// that done removes. A secret not generated yet is skipped silently, one
// that cannot be decrypted is a note on notes; either way the provider then
// reports its missing credentials as usual.
func (d deps) clouds(c *cli.Context, f *model.Fleet, notes io.Writer) (provs []cloud.Provider, done func()) {
	if d.getenv == nil {
		d.getenv = os.Getenv
	}
	if d.providers == nil {
		return nil, func() {}
	}
	sweepPlaintext(notes)
	env := map[string]string{}
	var tmp string
	done = func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}
	for provider, secret := range f.Credentials {
		v, ok := credentialVars[provider]
		if !ok || d.getenv(v.name) != "" || !usesCloud(f, provider) {
			continue
		}
		value, err := readCredential(c, d, f, secret)
		if errors.Is(err, errNotGenerated) {
			continue // the provider says what is missing
		}
		if err != nil {
			fmt.Fprintf(notes, "note: %s is not set, and the %s credentials in secret %s could not be read: %v\n", v.name, provider, secret, err)
			continue
		}
		if v.isFile {
			if tmp == "" {
				if tmp, err = plaintext.MkdirTemp("fleet-credentials-"); err != nil {
					fmt.Fprintf(notes, "note: %v\n", err)
					continue
				}
			}
			p := filepath.Join(tmp, provider+".json")
			if err := os.WriteFile(p, value, 0o600); err != nil {
				fmt.Fprintf(notes, "note: %v\n", err)
				continue
			}
			env[v.name] = p
			continue
		}
		env[v.name] = strings.TrimSpace(string(value))
	}
	getenv := d.getenv
	if len(env) > 0 {
		getenv = func(k string) string {
			if v, ok := env[k]; ok {
				return v
			}
			return d.getenv(k)
		}
	}
	return d.providers(getenv), done
}

// usesCloud reports whether the fleet has anything on provider: a host
// (on or off: switched-off hosts are looked for, to delete them) or a
// Hetzner firewall.
func usesCloud(f *model.Fleet, provider string) bool {
	for _, m := range f.Machines {
		if m.Host != nil && string(m.Host.Provider) == provider {
			return true
		}
	}
	return provider == string(model.Hetzner) && len(f.Firewalls) > 0
}

// errNotGenerated: the credentials secret has no file yet.
var errNotGenerated = errors.New("not generated yet")

// readCredential decrypts the one encrypted file of a credentials secret
// (the builtins made sure there is one, and one copy of it).
func readCredential(c *cli.Context, d deps, f *model.Fleet, name string) ([]byte, error) {
	s := f.Secret(name)
	if s == nil {
		return nil, fmt.Errorf("no such secret")
	}
	machine := ""
	if !s.Shared && len(s.Machines) > 0 {
		machine = s.Machines[0]
	}
	rel := ""
	for _, file := range s.Files {
		if file.Secret {
			rel = secrets.FilePath(s, machine, file)
			break
		}
	}
	if rel == "" {
		return nil, fmt.Errorf("it has no encrypted file")
	}
	st := &secrets.Store{Root: f.Root}
	if _, err := os.Stat(filepath.Join(f.Root, filepath.FromSlash(rel))); errors.Is(err, fs.ErrNotExist) {
		return nil, errNotGenerated
	}
	path := c.String("identity")
	if path == "" {
		path = d.getenv("FLEET_AGE_IDENTITY")
	}
	if path == "" {
		var err error
		if path, err = identityPath(c); err != nil {
			return nil, err
		}
	}
	ids, err := secrets.LoadIdentities(path)
	if err != nil {
		return nil, fmt.Errorf("loading the age identity %s (set --identity or FLEET_AGE_IDENTITY, or create one with fleet secrets keygen): %w", path, err)
	}
	return st.Read(rel, ids)
}

// sweepPlaintext removes the plaintext folders that a killed run left in
// fleet's private place (package plaintext); every command that makes such
// folders calls it first. A failure is a note: the command goes on, and
// making its own folders fails if the place is not private.
func sweepPlaintext(notes io.Writer) {
	if err := plaintext.Sweep(); err != nil {
		fmt.Fprintf(notes, "note: %v\n", err)
	}
}
