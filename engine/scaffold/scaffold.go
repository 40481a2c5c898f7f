// Package scaffold writes a new fleet: the files `fleet init` makes, which
// evaluate, lower and pass their own tests as they are, and whose comments
// teach the layout (an entry file, features included from a folder, a
// test beside them, what to commit).
//
// Nothing is overwritten: Write checks every file first and refuses, naming
// them all, if any exists; then it writes each one whole (a temporary file
// renamed into place), so an interrupted init leaves whole files only.
package scaffold

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Options shape the new fleet.
type Options struct {
	// Name is the fleet's name (default: from the folder's name).
	Name string
	// AdminKey is an ssh public key line ("ssh-ed25519 AAAA... you@host")
	// for fleet(admins = ...); empty: admins is left for the user to fill.
	AdminKey string
}

// File is one file of the scaffold, by path relative to the fleet root.
type File struct {
	Path string
	Data string
}

// Files returns the scaffold for a fleet in dir.
func Files(dir string, opts Options) ([]File, error) {
	name := opts.Name
	if name == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		name = NameFor(filepath.Base(abs))
	}
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("fleet name %q: use lower-case letters, digits and '-' (it becomes a cloud label)", name)
	}
	if strings.ContainsAny(opts.AdminKey, "\"\\\n\r") {
		return nil, fmt.Errorf("admin key %q: not an ssh public key line", opts.AdminKey)
	}
	admins := `    # Who may log in as root on every machine, and read every secret: your
    # ssh public key (~/.ssh/id_ed25519.pub), or a user() name.
    admins = [],`
	if opts.AdminKey != "" {
		admins = `    # Who may log in as root on every machine, and read every secret.
    admins = ["` + opts.AdminKey + `"],`
	}
	fleetStar := strings.NewReplacer("NAME", name, "ADMINS", admins).Replace(fleetTemplate)
	return []File{
		{"fleet.star", fleetStar},
		{"features/base.star", featuresTemplate},
		{"fleet_test.star", strings.ReplaceAll(testTemplate, "NAME", name)},
		{".gitignore", gitignoreTemplate},
	}, nil
}

// Write writes files under dir, refusing if any of them exists.
func Write(dir string, files []File) error {
	var exist []string
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.Path)); err == nil {
			exist = append(exist, f.Path)
		}
	}
	if len(exist) > 0 {
		return fmt.Errorf("%s already has %s: fleet init makes a new fleet and overwrites nothing; use an empty folder, or move them away", dir, strings.Join(exist, ", "))
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(p), ".fleet-init-*")
		if err != nil {
			return err
		}
		_, werr := tmp.WriteString(f.Data)
		cerr := tmp.Close()
		if err := firstErr(werr, cerr, os.Chmod(tmp.Name(), 0o644)); err != nil {
			os.Remove(tmp.Name())
			return err
		}
		if err := os.Rename(tmp.Name(), p); err != nil {
			os.Remove(tmp.Name())
			return err
		}
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

var validName = regexp.MustCompile(`^[a-z0-9-]+$`)

// NameFor turns a folder name into a fleet name: lower case, runs of
// anything else than letters and digits become one '-'; "fleet" if
// nothing is left.
func NameFor(folder string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(folder) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.TrimSuffix(b.String(), "-")
	if name == "" {
		return "fleet"
	}
	return name
}

const fleetTemplate = `# The fleet NAME: every machine, what it runs, and where.
#
#   fleet run             evaluate, summarise, write the Nix tree to .fleet/nix
#   fleet test            run fleet_test.star
#   fleet doc machine     the reference of a builtin (fleet doc lists them all)
#   fleet deploy --dry-run    what a deploy would do
#
# Layout: this file is the entry point. Features (what machines run) live in
# features/*.star, pulled in by include() below; a new file there is picked
# up by itself. Tests live in *_test.star files beside what they test.

fleet(
    name = "NAME",
ADMINS
)

# Every machine is built from this nixpkgs.
channel("nixpkgs", url = "github:NixOS/nixpkgs/nixos-unstable")

# Each file in features/ declares features (see features/base.star).
include("features/*.star")

machine(
    "web",
    system = "x86_64-linux",  # *-linux: NixOS, *-darwin: nix-darwin
    state_version = "26.05",  # the NixOS release it was installed with; never change it
    features = ["base"],
    target = "root@web.example.org",  # where fleet deploy reaches it over ssh
    nixos = {
        # What nixos-generate-config finds on the machine: NixOS builds no
        # system without a root file system and a boot loader target.
        "fileSystems./": {"device": "/dev/disk/by-label/nixos", "fsType": "ext4"},
        "boot.loader.grub.devices": ["/dev/sda"],
    },
)
`

const featuresTemplate = `# A feature is a named piece of configuration that machines opt into:
# options for NixOS (nixos = {...}) and nix-darwin (darwin = {...}),
# and packages. Machines list features by name; fleet checks the names.

feature(
    "base",
    doc = "what every machine has: ssh with keys only, a few tools",
    nixos = {
        "services.openssh.enable": True,
        "services.openssh.settings.PasswordAuthentication": False,
    },
    packages = ["git", "htop"],
)
`

const testTemplate = `# Tests of this fleet: run them with fleet test. Each test_ function is
# one test; assert.* checks, fleet.load_file evaluates a fleet file.

FLEET = fleet.load_file("fleet.star")

def test_machines():
    assert.eq([m.name for m in FLEET.machines], ["web"])
    assert.eq(FLEET.machine("web").features, ["base"])

def test_web_gets_ssh():
    web = FLEET.nix("machines/nixos/web.nix")
    assert.contains(web, 'hostName = "web";')
    assert.contains(FLEET.nix("modules/nixos/base.nix"), "openssh")
`

// gitignoreTemplate keeps the generated tree out of git except its lock
// file, which pins nixpkgs (README: The Nix tree).
const gitignoreTemplate = `# fleet's generated Nix tree and run logs: regenerated by fleet run.
.fleet/*
# ...except the flake lock, which pins nixpkgs: commit it.
!.fleet/nix/
.fleet/nix/*
!.fleet/nix/flake.lock
`
