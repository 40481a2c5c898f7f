// Package clanvars reads the vars of a clan repository (clan-core's sops
// secret store and in_repo public store) and the recipients clan recorded
// for them, so that `fleet secrets import clan` can store them as fleet
// secrets.
//
// The layout, as clan-core writes it (read from clan-core commit
// d7c35d9127af3f773b57d8e792818597a9aaa29c: clan_lib/vars/_types.py,
// clan_lib/vars/secret_modules/sops.py, clan_lib/vars/public_modules/in_repo.py,
// clan_cli/secrets/secrets.py and sops.py):
//
//	vars/per-machine/<machine>/<generator>/<file>/secret   a secret file
//	vars/shared/<generator>/<file>/secret                  a shared one
//	.../<file>/users/<user>, .../<file>/machines/<machine>, .../<file>/groups/<group>
//	                                                        symlinks to sops/users/<user> ...
//	.../<file>/value                                        a public file, in plain text
//	sops/users/<user>/key.json, sops/machines/<machine>/key.json
//	                     {"publickey": "age1...", "type": "age"}, or a list of them
//	sops/groups/<group>/{users,machines}/<name>             symlinks to the above
//
// A secret file is what `sops encrypt --in-place` makes of a file without
// an extension: sops' binary format, a JSON document whose one value is
// "data". Nothing here writes anything or holds a value longer than asked.
package clanvars

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/secrets/sopsfile"
)

// Repo is what a clan repository holds of its vars.
type Repo struct {
	Dir string
	// Users and Machines are the keys under sops/users and sops/machines,
	// by name (age recipients; other kinds are kept as "type:key").
	Users, Machines map[string][]string
	// Groups are sops/groups/<group>: its user and machine members.
	Groups map[string]Group
	// Generators are sorted: shared first, then by machine and name.
	Generators []*Generator
}

// Group is one of clan's sops groups.
type Group struct{ Users, Machines []string }

// Generator is one generator's files for one machine, or shared.
type Generator struct {
	Name    string
	Machine string // "" for a shared generator
	Files   []File // sorted by name
}

// File is one file of a generator.
type File struct {
	Name string
	// Secret files are sops files (Path is .../secret); public ones plain
	// (Path is .../value).
	Secret bool
	Path   string
	// Users, Machines and Groups are the recipients clan recorded for a
	// secret file (the names of its users/, machines/, groups/ links).
	Users, Machines, Groups []string
}

// Where names a generator for messages: "shared/wifi", "web/openssh".
func (g *Generator) Where() string {
	if g.Machine == "" {
		return "shared/" + g.Name
	}
	return g.Machine + "/" + g.Name
}

// Read reads the layout under dir (a clan repository's root). It decrypts
// nothing.
func Read(dir string) (*Repo, error) {
	r := &Repo{Dir: dir, Users: map[string][]string{}, Machines: map[string][]string{}, Groups: map[string]Group{}}
	vars := filepath.Join(dir, "vars")
	if fi, err := os.Stat(vars); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s has no vars folder: is it a clan repository (the folder with flake.nix, vars/ and sops/)?", dir)
	}
	for kind, into := range map[string]map[string][]string{"users": r.Users, "machines": r.Machines} {
		names, err := subdirs(filepath.Join(dir, "sops", kind))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			keys, err := readKeys(filepath.Join(dir, "sops", kind, n, "key.json"))
			if err != nil {
				return nil, err
			}
			into[n] = keys
		}
	}
	groups, err := subdirs(filepath.Join(dir, "sops", "groups"))
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		var grp Group
		if grp.Users, err = links(filepath.Join(dir, "sops", "groups", g, "users")); err != nil {
			return nil, err
		}
		if grp.Machines, err = links(filepath.Join(dir, "sops", "groups", g, "machines")); err != nil {
			return nil, err
		}
		r.Groups[g] = grp
	}

	shared, err := subdirs(filepath.Join(vars, "shared"))
	if err != nil {
		return nil, err
	}
	for _, g := range shared {
		gen, err := readGenerator(filepath.Join(vars, "shared", g), g, "")
		if err != nil {
			return nil, err
		}
		r.Generators = append(r.Generators, gen)
	}
	machines, err := subdirs(filepath.Join(vars, "per-machine"))
	if err != nil {
		return nil, err
	}
	for _, m := range machines {
		gens, err := subdirs(filepath.Join(vars, "per-machine", m))
		if err != nil {
			return nil, err
		}
		for _, g := range gens {
			gen, err := readGenerator(filepath.Join(vars, "per-machine", m, g), g, m)
			if err != nil {
				return nil, err
			}
			r.Generators = append(r.Generators, gen)
		}
	}
	return r, nil
}

func readGenerator(dir, name, machine string) (*Generator, error) {
	g := &Generator{Name: name, Machine: machine}
	files, err := subdirs(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		fdir := filepath.Join(dir, f)
		secret, value := filepath.Join(fdir, "secret"), filepath.Join(fdir, "value")
		sfi, serr := os.Lstat(secret)
		vfi, verr := os.Lstat(value)
		// Only regular files: a link could copy a file from elsewhere (a
		// private key) into the fleet as a public value.
		for _, x := range []struct {
			fi  fs.FileInfo
			err error
			p   string
		}{{sfi, serr, secret}, {vfi, verr, value}} {
			if x.err == nil && !x.fi.Mode().IsRegular() {
				return nil, fmt.Errorf("%s is not a regular file (a link?): refused", x.p)
			}
		}
		switch {
		case serr == nil && verr == nil:
			return nil, fmt.Errorf("%s has both a secret and a value", fdir)
		case serr == nil:
			file := File{Name: f, Secret: true, Path: secret}
			for _, l := range []struct {
				dir  string
				into *[]string
			}{{"users", &file.Users}, {"machines", &file.Machines}, {"groups", &file.Groups}} {
				if *l.into, err = links(filepath.Join(fdir, l.dir)); err != nil {
					return nil, err
				}
			}
			g.Files = append(g.Files, file)
		case verr == nil:
			g.Files = append(g.Files, File{Name: f, Path: value})
		}
		// A folder with neither is not a var (clan leaves none such).
	}
	return g, nil
}

// subdirs lists the folders in dir, sorted; none when dir is missing.
func subdirs(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// links lists the names in a users/, machines/ or groups/ folder: clan
// keeps symlinks there, named after the member (dangling ones included:
// the member was recorded but its key is gone).
func links(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out, nil
}

// readKeys reads a key.json: one {"publickey", "type"} or a list of them.
func readKeys(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type key struct {
		PublicKey string `json:"publickey"`
		Type      string `json:"type"`
	}
	var list []key
	if err := json.Unmarshal(data, &list); err != nil {
		var one key
		if err2 := json.Unmarshal(data, &one); err2 != nil {
			return nil, fmt.Errorf("%s: not a key or a list of keys: %w", path, err)
		}
		list = []key{one}
	}
	var out []string
	for _, k := range list {
		switch {
		case k.PublicKey == "":
			return nil, fmt.Errorf("%s: a key without publickey", path)
		case k.Type == "age" || k.Type == "":
			out = append(out, k.PublicKey)
		default:
			out = append(out, k.Type+":"+k.PublicKey)
		}
	}
	return out, nil
}

// Value reads a file's value: a public file as it is, a secret one
// decrypted with ids (sops' binary format; its MAC is checked).
func (f File) Value(ids []age.Identity) ([]byte, error) {
	data, err := os.ReadFile(f.Path)
	if err != nil {
		return nil, err
	}
	if !f.Secret {
		return data, nil
	}
	vs, err := sopsfile.Decrypt(data, sopsfile.Binary, ids)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	// Decrypt refuses a binary file that holds anything but one "data".
	return vs[0].Data, nil
}

// Recipients are the user and machine names a secret file is recorded
// for, groups resolved through r.Groups.
func (r *Repo) Recipients(f File) (users, machines []string) {
	users = append(users, f.Users...)
	machines = append(machines, f.Machines...)
	for _, g := range f.Groups {
		users = append(users, r.Groups[g].Users...)
		machines = append(machines, r.Groups[g].Machines...)
	}
	return uniq(users), uniq(machines)
}

func uniq(xs []string) []string {
	sort.Strings(xs)
	out := xs[:0]
	for i, x := range xs {
		if i == 0 || x != xs[i-1] {
			out = append(out, x)
		}
	}
	return out
}
