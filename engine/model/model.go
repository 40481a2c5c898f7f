// Package model is the typed fleet: plain Go structs that describe channels,
// inputs, overlays, features, users, machines, hosts and secrets.
//
// The model is the contract between the Starlark front end (engine, builtins)
// and everything downstream (graph, nix lowering, cloud plan, deploy). It
// knows nothing of Starlark: every value a .star file produced has been
// converted into a Value tree, and every reference by name has been resolved
// and checked before a Fleet is handed out. Downstream packages may therefore
// trust that a Machine's Features exist, that its System is a known platform
// and that names are unique.
//
// Every declaration carries the Pos it was declared at, so that any later
// stage (a Nix file header, a cloud error, a deploy failure) can point the
// user back at the .star line responsible.
//
// Collections are kept sorted by name. Together with Value's sorted
// attribute sets this makes every rendering of the model (JSON, Nix, plans)
// deterministic without each consumer sorting again.
package model

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Pos is a position in a .star file. File is relative to the fleet root
// (slash-separated) so that output does not depend on where the repository
// is checked out; @stdlib and @dep files keep their label ("@stdlib//x.star").
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (p Pos) String() string {
	if p.File == "" {
		return "<unknown>"
	}
	if p.Line == 0 { // a whole file
		return p.File
	}
	if p.Col > 0 {
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// MarshalText renders a Pos as "file:line:col", which keeps JSON compact.
func (p Pos) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Less orders positions by file, then line, then column.
func (p Pos) Less(q Pos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	if p.Line != q.Line {
		return p.Line < q.Line
	}
	return p.Col < q.Col
}

// Class is the kind of system configuration a machine or module targets.
type Class string

const (
	NixOS  Class = "nixos"
	Darwin Class = "darwin"
	Home   Class = "home"
)

// Systems lists the Nix platform doubles a machine may declare.
var Systems = []string{"aarch64-darwin", "aarch64-linux", "x86_64-darwin", "x86_64-linux"}

// ClassOf returns the system class of a Nix platform double: *-linux
// machines are NixOS, *-darwin machines nix-darwin. ok is false for
// anything outside Systems.
func ClassOf(system string) (c Class, ok bool) {
	switch system {
	case "x86_64-linux", "aarch64-linux":
		return NixOS, true
	case "x86_64-darwin", "aarch64-darwin":
		return Darwin, true
	}
	return "", false
}

// Fleet is the whole evaluated fleet.
type Fleet struct {
	Name   string `json:"name"`
	Domain string `json:"domain,omitempty"`
	// Admins are the recipients every secret is encrypted to: user names
	// (resolved to their age key), raw age recipients or ssh-ed25519 keys.
	Admins []string `json:"admins,omitempty"`
	// Credentials name, per cloud provider, the secret that holds its
	// API credentials ("hetzner": a token, "gcp": a service account key
	// as JSON), used when the environment does not provide them.
	Credentials map[string]string `json:"credentials,omitempty"`
	// Cache is the fleet's binary cache (fleet(cache = ...)): deploys
	// push each system built there once, and every machine substitutes
	// from it. Nil when the fleet has none.
	Cache *Cache `json:"cache,omitempty"`
	// Builders are remote build machines in nix's own machine format
	// (one nix.conf builders entry each), used by local builds on top
	// of the builders the user's nix.conf names.
	Builders []string `json:"builders,omitempty"`
	Pos      Pos      `json:"pos"`
	// Root is the absolute directory of the fleet: relative paths in
	// modules, packages and nix.path values are relative to it.
	Root string `json:"-"`
	// Deps are the directories of the pinned dependencies whose files
	// the fleet names ("@team//nix/ssh.nix" is Deps["team"]/nix/ssh.nix).
	Deps map[string]string `json:"-"`

	Channels []*Channel `json:"channels"`
	Inputs   []*Input   `json:"inputs"`
	Overlays []*Overlay `json:"overlays"`
	Features []*Feature `json:"features"`
	Users    []*User    `json:"users"`
	Machines []*Machine `json:"machines"`
	Secrets  []*Secret  `json:"secrets"`
	// Firewalls are cloud firewalls the fleet manages (hetzner.firewall).
	Firewalls []*Firewall `json:"firewalls,omitempty"`
}

// Cache is a Nix binary cache the fleet shares: the deployer pushes to
// it, the machines substitute from it.
type Cache struct {
	// URL is the Nix store URL: s3://bucket?endpoint=... (S3, R2),
	// https:// or http:// (a served cache), file:///abs/path.
	URL string `json:"url"`
	// PublicKey is the cache's signing key's public half, "name:base64",
	// which every machine trusts (trusted-public-keys).
	PublicKey string `json:"public_key"`
	// SecretKeyFile is where, on the deployer's machine, the secret half
	// is (an absolute or ~/ path, never in the repository): what the
	// deployer pushes is signed with it. Empty: paths are pushed with the
	// signatures they have (nix.conf's secret-key-files signs what nix
	// builds).
	SecretKeyFile string `json:"secret_key_file,omitempty"`
	Pos           Pos    `json:"pos"`
}

// Firewall is a cloud firewall fleet creates and keeps as declared. Hosts
// name it in their firewalls list. Rules allow inbound traffic; anything
// not allowed is dropped, as cloud firewalls do.
type Firewall struct {
	Provider Provider          `json:"provider"`
	Name     string            `json:"name"`
	Rules    []FirewallRule    `json:"rules"`
	Labels   map[string]string `json:"labels,omitempty"`
	Pos      Pos               `json:"pos"`
}

// FirewallRule allows inbound traffic of one protocol (and port or port
// range for tcp and udp) from the Sources networks.
type FirewallRule struct {
	Protocol string   `json:"protocol"`       // tcp, udp, icmp, esp, gre
	Port     string   `json:"port,omitempty"` // "22", "60000-61000"; empty for icmp, esp, gre
	Sources  []string `json:"sources"`        // CIDRs
}

// PatchedChannel is the channel overlay layer 1 makes of nixpkgs with every
// overlay.patch applied. It exists when a patch does and cannot be declared.
const PatchedChannel = "patched"

// Channel is a nixpkgs instance made available as pkgs.<Name>.
type Channel struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// DarwinURL, when set, is used instead of URL on darwin machines
	// (nixpkgs publishes separate *-darwin release branches).
	DarwinURL string `json:"darwin_url,omitempty"`
	Pos       Pos    `json:"pos"`
}

// Input is a flake input that is not a package channel.
type Input struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Follows maps an input of this input to one of ours
	// (inputs.<Name>.inputs.<key>.follows = <value>).
	Follows map[string]string `json:"follows,omitempty"`
	// Flake is false for plain source inputs (flake = false in Nix).
	Flake bool `json:"flake"`
	Pos   Pos  `json:"pos"`
}

// OverlayKind is one of the five overlay layers. Their order is fixed and
// is the order of the constants below.
type OverlayKind string

const (
	OverlayPatch    OverlayKind = "patch"    // layer 1: patches on a channel
	OverlayFallback OverlayKind = "fallback" // layer 2
	OverlayPackage  OverlayKind = "package"  // layer 3
	OverlayOverride OverlayKind = "override" // layer 4
	OverlayFlake    OverlayKind = "flake"    // layer 5
)

// Layer returns the 1-based overlay layer of a kind.
func (k OverlayKind) Layer() int {
	switch k {
	case OverlayPatch:
		return 1
	case OverlayFallback:
		return 2
	case OverlayPackage:
		return 3
	case OverlayOverride:
		return 4
	case OverlayFlake:
		return 5
	}
	return 0
}

// Overlay is one entry of the layered overlay. Which fields are set
// depends on Kind.
type Overlay struct {
	Kind OverlayKind `json:"kind"`
	// Name is the package name (fallback, package, override), the overlay
	// name (flake) or a name derived from the URL (patch).
	Name string `json:"name"`
	// Channel is the channel a fallback takes its package from (possibly
	// PatchedChannel), or the channel a patch applies to (always nixpkgs).
	Channel string `json:"channel,omitempty"`
	// Platforms restricts a fallback to these systems; empty means all.
	Platforms []string `json:"platforms,omitempty"`
	// Path is the package.nix of a custom package, relative to the root.
	Path string `json:"path,omitempty"`
	// Attrs are overrideAttrs settings of an override.
	Attrs *Attrs `json:"attrs,omitempty"`
	// Args are override (callPackage argument) settings of an override.
	Args *Attrs `json:"args,omitempty"`
	// URL and Hash locate a patch.
	URL  string `json:"url,omitempty"`
	Hash string `json:"hash,omitempty"`
	// Input and Attr name the flake input and its overlay attribute path.
	Input string `json:"input,omitempty"`
	Attr  string `json:"attr,omitempty"`
	// Reason says why a workaround exists; Added is when (YYYY-MM-DD).
	Reason string `json:"reason,omitempty"`
	Added  string `json:"added,omitempty"`
	Pos    Pos    `json:"pos"`
}

// Feature is a named, reusable piece of configuration with one module per
// class. Requires are other features it pulls in.
type Feature struct {
	Name     string   `json:"name"`
	Doc      string   `json:"doc,omitempty"`
	NixOS    *Attrs   `json:"nixos,omitempty"`
	Darwin   *Attrs   `json:"darwin,omitempty"`
	Home     *Attrs   `json:"home,omitempty"`
	Packages []string `json:"packages,omitempty"`
	Requires []string `json:"requires,omitempty"`
	// Modules are hand-written Nix files, relative to the fleet root.
	Modules []string `json:"modules,omitempty"`
	Pos     Pos      `json:"pos"`
}

// Config returns the feature's configuration for a class (nil if none).
func (f *Feature) Config(c Class) *Attrs {
	switch c {
	case NixOS:
		return f.NixOS
	case Darwin:
		return f.Darwin
	case Home:
		return f.Home
	}
	return nil
}

// User is a person with an account on some machines.
type User struct {
	Name string `json:"name"`
	// UID is the account's uid on every class of machine, unless ClassUID
	// gives the class its own (user(uid = {"darwin": 502, "nixos": 1000})):
	// macOS gives the first accounts 501, 502 ..., while NixOS refuses a
	// normal user below 1000. 0 lets the system choose.
	UID         int           `json:"uid,omitempty"`
	ClassUID    map[Class]int `json:"class_uid,omitempty"`
	Description string        `json:"description,omitempty"`
	Groups      []string      `json:"groups,omitempty"`
	Shell       string        `json:"shell,omitempty"`
	SSHKeys     []string      `json:"ssh_keys,omitempty"`
	// Age is the user's age recipient (age1...), used when the user is an
	// admin of the fleet's secrets.
	Age string `json:"age,omitempty"`
	// Home lists features whose home-manager modules the user gets.
	Home []string `json:"home,omitempty"`
	// PasswordHash names a secret whose one encrypted file is the user's
	// password hash (crypt(3) format): on NixOS machines that read it, it
	// is users.users.<name>.hashedPasswordFile.
	PasswordHash string `json:"password_hash,omitempty"`
	Pos          Pos    `json:"pos"`
}

// UIDFor is the user's uid on machines of class c (0: the system chooses).
func (u *User) UIDFor(c Class) int {
	if u.ClassUID != nil {
		return u.ClassUID[c]
	}
	return u.UID
}

// Machine is one NixOS or nix-darwin system.
type Machine struct {
	Name     string   `json:"name"`
	System   string   `json:"system"`
	Class    Class    `json:"class"`
	Tags     []string `json:"tags,omitempty"`
	Features []string `json:"features,omitempty"`
	Users    []string `json:"users,omitempty"`
	// Target is the ssh destination for deploys; empty means root@ the
	// public address of Host once it is known.
	Target string `json:"target,omitempty"`
	// StateVersion is the release the machine was first installed with
	// (NixOS "25.05", nix-darwin "6"): system.stateVersion, written in the
	// machine's own file. It is declared with the machine and changed only
	// by editing that declaration, never by a shared default.
	StateVersion string `json:"state_version,omitempty"`
	// HostKey is the machine's ssh-ed25519 host public key, when written
	// in the fleet; HostKeySecret instead names a per-machine secret
	// (gen.ssh_keypair) whose public half is the host key, generated
	// before the first install. Either makes the machine a recipient of
	// the secrets it reads.
	HostKey       string `json:"host_key,omitempty"`
	HostKeySecret string `json:"host_key_secret,omitempty"`
	Host          *Host  `json:"host,omitempty"`
	// Checks must pass after activation; with Rollback, a machine whose
	// checks do not pass (or that stops answering) within the confirm
	// timeout is switched back to its previous generation.
	Checks   []Check `json:"checks,omitempty"`
	Rollback bool    `json:"rollback,omitempty"`
	NixOS    *Attrs  `json:"nixos,omitempty"`
	Darwin   *Attrs  `json:"darwin,omitempty"`
	Home     *Attrs  `json:"home,omitempty"`
	Pos      Pos     `json:"pos"`
}

// Config returns the machine's own configuration for its class.
func (m *Machine) Config() *Attrs {
	if m.Class == Darwin {
		return m.Darwin
	}
	return m.NixOS
}

// HasTag reports whether the machine carries tag.
func (m *Machine) HasTag(tag string) bool {
	for _, t := range m.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// Check is a health check run after activation. Command runs on the
// machine (exit 0 passes); HTTP is fetched from where fleet runs and must
// answer Status; TCP must accept a connection.
type Check struct {
	Kind    string `json:"kind"` // command, http, tcp
	Command string `json:"command,omitempty"`
	URL     string `json:"url,omitempty"`
	Status  int    `json:"status,omitempty"`
	Address string `json:"address,omitempty"`
}

// FilePath is where the file of a label is on disk: under Root, or
// under the dependency's directory for "@name//path".
func (f *Fleet) FilePath(label string) (string, error) {
	if name, rest, ok := strings.Cut(strings.TrimPrefix(label, "@"), "//"); ok && strings.HasPrefix(label, "@") {
		dir, found := f.Deps[name]
		if !found {
			return "", fmt.Errorf("%s: the dependency @%s is not available", label, name)
		}
		return filepath.Join(dir, filepath.FromSlash(rest)), nil
	}
	return filepath.Join(f.Root, filepath.FromSlash(label)), nil
}

// SplitUnit splits a systemd unit a secret restarts into its kind as
// NixOS names the option set ("services", "sockets", "timers", "paths")
// and its name without the suffix; no suffix means a service. Other unit
// types (mounts, targets ...) have no restart triggers: ok is false.
func SplitUnit(unit string) (kind, name string, ok bool) {
	for _, k := range []string{"service", "socket", "timer", "path"} {
		if n, found := strings.CutSuffix(unit, "."+k); found && n != "" {
			return k + "s", n, true
		}
	}
	for _, other := range []string{".mount", ".automount", ".target", ".device", ".scope", ".slice", ".swap"} {
		if strings.HasSuffix(unit, other) {
			return "", "", false
		}
	}
	return "services", unit, unit != ""
}

// Provider names a cloud provider.
type Provider string

const (
	Hetzner Provider = "hetzner"
	GCP     Provider = "gcp"
)

// Host is the cloud resource a machine runs on. Exactly one of the
// provider structs is set, matching Provider.
type Host struct {
	Provider Provider `json:"provider"`
	// Enabled false is the cost toggle: the host is deleted but the
	// machine stays in the fleet and its configuration is still built.
	Enabled bool           `json:"enabled"`
	Hetzner *HetznerServer `json:"hetzner,omitempty"`
	GCP     *GCPInstance   `json:"gcp,omitempty"`
	Pos     Pos            `json:"pos"`
}

// HetznerServer is a Hetzner Cloud server.
type HetznerServer struct {
	Type      string            `json:"type"`
	Location  string            `json:"location"`
	Image     string            `json:"image"`
	Labels    map[string]string `json:"labels,omitempty"`
	Firewalls []string          `json:"firewalls,omitempty"`
	IPv4      bool              `json:"ipv4"`
	IPv6      bool              `json:"ipv6"`
}

// GCPInstance is a Google Compute Engine instance.
type GCPInstance struct {
	Project string            `json:"project"`
	Zone    string            `json:"zone"`
	Type    string            `json:"type"`
	Image   string            `json:"image"`
	DiskGB  int               `json:"disk_gb"`
	GPU     string            `json:"gpu,omitempty"`
	GPUs    int               `json:"gpus,omitempty"`
	Tags    []string          `json:"tags,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Secret declares a secret: who may read it and how it is generated. The
// model never holds secret values, only their description.
type Secret struct {
	Name string `json:"name"`
	// Shared secrets live under secrets/shared/; others per machine.
	Shared bool `json:"shared"`
	// Machines are the machines that use the secret, resolved from the
	// declared selector and sorted.
	Machines []string `json:"machines,omitempty"`
	// Selector is the selector as written, kept for messages.
	Selector  string     `json:"selector,omitempty"`
	Generator *Generator `json:"generator"`
	// Files maps generator output names to the file names stored.
	Files        []SecretFile `json:"files"`
	NeededFor    string       `json:"needed_for"`
	Owner        string       `json:"owner,omitempty"`
	Group        string       `json:"group,omitempty"`
	Mode         string       `json:"mode,omitempty"`
	RestartUnits []string     `json:"restart_units,omitempty"`
	Depends      []string     `json:"depends,omitempty"`
	// Paths maps stored file names to where the program that reads them
	// expects them on the machine (zerotierone's
	// /var/lib/zerotier-one/identity.secret). Encrypted files are linked
	// there by agenix; public ones from the Nix store. Files without a
	// path are at /run/agenix/<name> (encrypted) or not deployed (public).
	Paths map[string]string `json:"paths,omitempty"`
	Pos   Pos               `json:"pos"`
}

// SecretFile is one file a secret consists of.
type SecretFile struct {
	// Name is the stored file name; Output the generator output it holds.
	Name   string `json:"name"`
	Output string `json:"output"`
	// Secret files are encrypted; public ones (a public key) are not.
	Secret bool `json:"secret"`
}

// Generator describes how a secret's files are produced. Params hold the
// generator's arguments (length, words, argv, label ...).
type Generator struct {
	Kind   string `json:"kind"`
	Params *Attrs `json:"params,omitempty"`
}

// Lookup helpers. The collections are sorted by name, so binary search.

// Machine returns the machine called name, or nil.
func (f *Fleet) Machine(name string) *Machine {
	return find(f.Machines, name, func(m *Machine) string { return m.Name })
}

// Feature returns the feature called name, or nil.
func (f *Fleet) Feature(name string) *Feature {
	return find(f.Features, name, func(x *Feature) string { return x.Name })
}

// User returns the user called name, or nil.
func (f *Fleet) User(name string) *User {
	return find(f.Users, name, func(x *User) string { return x.Name })
}

// Channel returns the channel called name, or nil.
func (f *Fleet) Channel(name string) *Channel {
	return find(f.Channels, name, func(x *Channel) string { return x.Name })
}

// Input returns the input called name, or nil.
func (f *Fleet) Input(name string) *Input {
	return find(f.Inputs, name, func(x *Input) string { return x.Name })
}

// Firewall returns the firewall called name, or nil.
func (f *Fleet) Firewall(name string) *Firewall {
	return find(f.Firewalls, name, func(x *Firewall) string { return x.Name })
}

// Secret returns the secret called name, or nil.
func (f *Fleet) Secret(name string) *Secret {
	return find(f.Secrets, name, func(x *Secret) string { return x.Name })
}

func find[T any](xs []T, name string, key func(T) string) T {
	i := sort.Search(len(xs), func(i int) bool { return key(xs[i]) >= name })
	if i < len(xs) && key(xs[i]) == name {
		return xs[i]
	}
	var zero T
	return zero
}

// Sort puts every collection of f in name order (overlays by layer, then
// name, then position). Builders call it once; the lookups rely on it.
func (f *Fleet) Sort() {
	sort.Slice(f.Channels, func(i, j int) bool { return f.Channels[i].Name < f.Channels[j].Name })
	sort.Slice(f.Inputs, func(i, j int) bool { return f.Inputs[i].Name < f.Inputs[j].Name })
	sort.Slice(f.Features, func(i, j int) bool { return f.Features[i].Name < f.Features[j].Name })
	sort.Slice(f.Users, func(i, j int) bool { return f.Users[i].Name < f.Users[j].Name })
	sort.Slice(f.Machines, func(i, j int) bool { return f.Machines[i].Name < f.Machines[j].Name })
	sort.Slice(f.Secrets, func(i, j int) bool { return f.Secrets[i].Name < f.Secrets[j].Name })
	sort.Slice(f.Firewalls, func(i, j int) bool { return f.Firewalls[i].Name < f.Firewalls[j].Name })
	sort.SliceStable(f.Overlays, func(i, j int) bool {
		a, b := f.Overlays[i], f.Overlays[j]
		if a.Kind.Layer() != b.Kind.Layer() {
			return a.Kind.Layer() < b.Kind.Layer()
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Pos.Less(b.Pos)
	})
}

// AdminRecipients resolves fleet(admins = ...) to recipient strings, in
// order and without repeats: a user's age key, or else the user's
// ssh-ed25519 keys; a raw recipient ("age1...", "ssh-ed25519 ...") as
// written. Every secret is encrypted to all of them.
func (f *Fleet) AdminRecipients() []string {
	var out []string
	seen := map[string]bool{}
	add := func(r string) {
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	for _, a := range f.Admins {
		u := f.User(a)
		switch {
		case u == nil:
			add(a)
		case u.Age != "":
			add(u.Age)
		default:
			for _, k := range u.SSHKeys {
				if len(k) > 12 && k[:12] == "ssh-ed25519 " {
					add(k)
				}
			}
		}
	}
	return out
}

// AdminSSHKeys are the ssh public keys of fleet(admins = ...): every key
// of an admin user, and admins given as an ssh key. They may log in as
// the deploy user of every machine (root on NixOS unless the target says
// otherwise), so that a machine stays reachable after a fresh install.
func (f *Fleet) AdminSSHKeys() []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range f.Admins {
		keys := []string{a}
		if u := f.User(a); u != nil {
			keys = u.SSHKeys
		} else if !strings.HasPrefix(a, "ssh-") {
			continue // an age recipient
		}
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

// DeployUser is the account deploys log in as: the user of Target, or
// root.
func (m *Machine) DeployUser() string {
	if user, _, ok := strings.Cut(m.Target, "@"); ok && user != "" {
		return user
	}
	return "root"
}

// HomePackages are the packages a home with these home features gets:
// those of the features and of what they require, but only of features
// that have a home part. A feature's packages go where its parts go: base
// (system configuration only) puts git on the machine, and does not add
// it to the home of a user whose ssh feature requires base, next to the
// gitFull of programs.git (home-manager's buildEnv refuses two packages
// with the same file). Sorted, without repeats.
func (f *Fleet) HomePackages(features []string) []string {
	seen := map[string]bool{}
	set := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		if seen[name] {
			return
		}
		seen[name] = true
		x := f.Feature(name)
		if x == nil {
			return
		}
		if x.Home != nil {
			for _, p := range x.Packages {
				set[p] = true
			}
		}
		for _, r := range x.Requires {
			visit(r)
		}
	}
	for _, name := range features {
		visit(name)
	}
	return slices.Sorted(maps.Keys(set))
}

// PackageNames are the nixpkgs attribute names the fleet refers to:
// nix.pkg values, features' packages and users' shells. Sorted.
func (f *Fleet) PackageNames() []string {
	set := map[string]bool{}
	f.WalkValues(func(v Value) {
		if p, ok := v.(Pkg); ok {
			set[p.Name] = true
		}
	})
	for _, x := range f.Features {
		for _, p := range x.Packages {
			set[p] = true
		}
	}
	for _, u := range f.Users {
		if u.Shell != "" {
			set[u.Shell] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
