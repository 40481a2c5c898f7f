package conformance_test

import (
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
)

// checker checks one machine's report. Failures name the fleet, the
// machine and, for upstream verdicts, quote the upstream message as is.
type checker struct {
	t     *testing.T
	where string
	env   *fleetEnv
	m     *model.Machine
	// warningsSeen are the warnings already reported, so that the same
	// text printed on stderr is not reported twice.
	warningsSeen []string
}

// upstreamVerdicts reports failed assertions and warnings of a
// configuration: the real modules' own (home-manager, nix-darwin, agenix)
// and the NixOS rules the schema encodes.
func (c *checker) upstreamVerdicts(label string, failed, warnings []string) {
	c.t.Helper()
	for _, a := range failed {
		c.t.Errorf("%s: %s: failed assertion:\n%s", c.where, label, c.env.show(strings.TrimRight(a, "\n")))
	}
	for _, w := range warnings {
		c.warningsSeen = append(c.warningsSeen, w)
		c.t.Errorf("%s: %s: warning:\n%s", c.where, label, c.env.show(strings.TrimRight(w, "\n")))
	}
}

// show puts <tree> and <upstream> for the temporary folders in a message
// from Nix, so that messages read the same from run to run.
func (e *fleetEnv) show(msg string) string {
	if e.tree != "" {
		msg = strings.ReplaceAll(msg, e.tree, "<tree>")
	}
	return strings.ReplaceAll(msg, e.upstream, "<upstream>")
}

func (c *checker) system(s *systemReport) {
	c.t.Helper()
	m := c.m
	label := fmt.Sprintf("%sConfigurations.%s", m.Class, m.Name)
	if m.Class == model.NixOS {
		label += " (NixOS schema, real home-manager and agenix modules)"
	} else {
		label += " (real darwinSystem, home-manager and agenix modules)"
	}
	c.upstreamVerdicts(label, s.FailedAssertions, s.Warnings)
	if testing.Verbose() {
		c.t.Logf("%s: options the tree sets, evaluated and type-checked: %s", c.where, strings.Join(s.Checked, ", "))
	}
	if m.Class == model.NixOS && len(s.FailedAssertions) == 0 && s.Toplevel == nil {
		c.t.Errorf("%s: config.system.build.toplevel does not evaluate", c.where)
	}

	// What the .star files declared is what came out.
	wantHost := m.Name
	if v := configValue(m.Config(), "networking", "hostName"); v != nil {
		if s, ok := plainValue(v); ok {
			wantHost, _ = s.(string)
		}
	}
	if s.HostName != wantHost {
		c.t.Errorf("%s: networking.hostName is %q, the fleet declares %q", c.where, s.HostName, wantHost)
	}
	if s.HostPlatform != m.System {
		c.t.Errorf("%s: nixpkgs.hostPlatform is %q, the fleet declares system = %q", c.where, s.HostPlatform, m.System)
	}
	c.cache(s)
	c.declared("", m.Config(), s.Declared)
	c.users(s)
	c.secrets(s)
	c.stateVersion(s)
	c.login(s)

	for _, u := range sortedKeys(s.Homes) {
		h := s.Homes[u]
		c.home(fmt.Sprintf("home-manager.users.%s", u), u, &h, filepath.Join(c.env.tree, "homes", "users", u+".nix"))
	}
}

// users: every fleet user of the machine exists with the uid, description,
// groups, keys and shell the fleet declares.
func (c *checker) users(s *systemReport) {
	c.t.Helper()
	for _, name := range c.m.Users {
		u := c.env.fleet.User(name)
		got, ok := s.Users[name]
		if u == nil {
			continue
		}
		if !ok {
			c.t.Errorf("%s: users.users.%s does not exist; the fleet puts user %s on the machine", c.where, name, name)
			continue
		}
		// A uid below 1000 is macOS's range for people: on NixOS a normal
		// user cannot have it (users-groups.nix asserts so), and leaving
		// the uid to NixOS's allocation is the way to honour the rest.
		macOnly := c.m.Class == model.NixOS && u.UID < 1000 && got.UID == nil
		if u.UID != 0 && !macOnly && (got.UID == nil || *got.UID != u.UID) {
			c.t.Errorf("%s: users.users.%s.uid is %s, the fleet declares %d", c.where, name, ptrString(got.UID), u.UID)
		}
		if u.Description != "" && (got.Description == nil || *got.Description != u.Description) {
			c.t.Errorf("%s: users.users.%s.description is %s, the fleet declares %q", c.where, name, ptrString(got.Description), u.Description)
		}
		if c.m.Class == model.NixOS {
			for _, g := range u.Groups {
				if !slices.Contains(got.ExtraGroups, g) {
					c.t.Errorf("%s: users.users.%s.extraGroups %q lacks %q, which the fleet declares", c.where, name, got.ExtraGroups, g)
				}
			}
		}
		for _, k := range u.SSHKeys {
			if !slices.Contains(got.Keys, k) {
				c.t.Errorf("%s: users.users.%s.openssh.authorizedKeys.keys lacks the fleet's key %q", c.where, name, k)
			}
		}
		if u.Shell != "" {
			if p, ok := got.Shell.(map[string]any); !ok || p["attr"] != u.Shell {
				c.t.Errorf("%s: users.users.%s.shell is %v, the fleet declares pkgs.%s", c.where, name, got.Shell, u.Shell)
			}
		}
		if f := got.HashedPasswordFile; f != nil && !strings.HasPrefix(*f, "/") {
			c.t.Errorf("%s: users.users.%s.hashedPasswordFile is %q, not an absolute path: the users activation reads it at that path", c.where, name, *f)
		}
	}
	if c.m.Class == model.NixOS {
		c.passwords(s)
	} else {
		c.knownUsers(s)
	}
}

// passwords: a user with password_hash (user(password_hash = secret))
// logs in with the hash agenix decrypts: users.users.<u>.hashedPasswordFile
// is that secret's age.secrets.<name>.path on every NixOS machine of the
// user (the builtins refuse a secret that does not reach one of them).
func (c *checker) passwords(s *systemReport) {
	c.t.Helper()
	for _, name := range c.m.Users {
		user := c.env.fleet.User(name)
		sec := c.env.fleet.Secret(user.PasswordHash)
		u, ok := s.Users[name]
		if sec == nil || !ok {
			continue
		}
		var want []string
		for _, file := range sec.Files {
			if a, ok := s.AgeSecrets[nixgen.SecretName(sec, file)]; ok && file.Secret {
				want = append(want, a.Path)
			}
		}
		if len(want) != 1 || u.HashedPasswordFile == nil || *u.HashedPasswordFile != want[0] {
			c.t.Errorf("%s: users.users.%s.hashedPasswordFile is %s, want the path agenix decrypts password_hash secret %s to (%q)",
				c.where, name, ptrString(u.HashedPasswordFile), sec.Name, want)
		}
	}
}

// knownUsers: nix-darwin creates and changes only the users named in
// users.knownUsers (nix-darwin modules/users/default.nix: uids and shells
// of other users.users entries are never applied), so a fleet user with a
// uid that is not known keeps whatever account macOS has.
func (c *checker) knownUsers(s *systemReport) {
	c.t.Helper()
	for _, name := range c.m.Users {
		u, ok := s.Users[name]
		if !ok || u.UID == nil {
			continue
		}
		if !slices.Contains(s.KnownUsers, name) {
			c.t.Errorf("%s: users.users.%s sets uid %d but %s is not in users.knownUsers: nix-darwin manages only users.knownUsers, so its uid, shell and keys are not applied (nix-darwin modules/users/default.nix)", c.where, name, *u.UID, name)
		}
	}
}

// secrets: age.secrets has every secret file the fleet sends to the
// machine, read from the file fleet copies into the tree, with the
// owner, group and mode the fleet declares.
func (c *checker) secrets(s *systemReport) {
	c.t.Helper()
	want := map[string]bool{}
	for _, sec := range c.env.fleet.Secrets {
		if !slices.Contains(sec.Machines, c.m.Name) {
			continue
		}
		for _, file := range sec.Files {
			if !file.Secret {
				continue
			}
			name := nixgen.SecretName(sec, file)
			want[name] = true
			got, ok := s.AgeSecrets[name]
			if !ok {
				c.t.Errorf("%s: age.secrets.%s does not exist; secret %s reaches the machine", c.where, name, sec.Name)
				continue
			}
			wantFile := filepath.Join(c.env.tree, filepath.FromSlash(nixgen.SecretPath(sec, c.m.Name, file)))
			if got.File != wantFile {
				c.t.Errorf("%s: age.secrets.%s.file is %s, want %s", c.where, name, got.File, wantFile)
			}
			for _, f := range []struct{ opt, got, want string }{
				{"owner", got.Owner, sec.Owner}, {"group", got.Group, sec.Group}, {"mode", got.Mode, sec.Mode},
			} {
				if f.want != "" && f.got != f.want {
					c.t.Errorf("%s: age.secrets.%s.%s is %q, the fleet declares %q", c.where, name, f.opt, f.got, f.want)
				}
			}
		}
	}
	for _, name := range sortedKeys(s.AgeSecrets) {
		if !want[name] {
			c.t.Errorf("%s: age.secrets.%s is not a secret the fleet sends to the machine", c.where, name)
		}
	}
}

// stateVersion: system.stateVersion records what the machine was installed
// with, so it must come from the machine's own file, once: a value from a
// shared module (base) changes for every machine when the module changes,
// and one overridden with lib.mkForce hides that two definitions disagree.
// This is a fleet rule about the tree, not a NixOS assertion.
func (c *checker) stateVersion(s *systemReport) {
	c.t.Helper()
	own := filepath.Join(c.env.tree, "machines", string(c.m.Class), c.m.Name+".nix")
	var rel []string
	for _, f := range s.StateVersionFiles {
		r, err := filepath.Rel(c.env.tree, f)
		if err != nil {
			r = f
		}
		rel = append(rel, r)
	}
	switch {
	case len(s.StateVersionFiles) != 1 || s.StateVersionFiles[0] != own:
		c.t.Errorf("%s: system.stateVersion (= %v) is defined in %q; it must be defined once, in machines/%s/%s.nix",
			c.where, s.StateVersion, rel, c.m.Class, c.m.Name)
	case s.StateVersionPrio != 100:
		how := fmt.Sprintf("with priority %d", s.StateVersionPrio)
		if s.StateVersionPrio == 50 {
			how = "with lib.mkForce"
		}
		c.t.Errorf("%s: system.stateVersion (= %v) is defined %s in machines/%s/%s.nix: a forced value overrides another definition (a shared module's) instead of being the only one",
			c.where, s.StateVersion, how, c.m.Class, c.m.Name)
	}
}

// login: the account deploys log in as exists and accepts one of the
// admins' ssh keys, and on NixOS sshd runs.
func (c *checker) login(s *systemReport) {
	c.t.Helper()
	admins := adminKeys(c.env.fleet)
	user := targetUser(c.m)
	if c.m.Class == model.NixOS && (s.SSHEnable == nil || !*s.SSHEnable) {
		c.t.Errorf("%s: services.openssh.enable is not true: deploys to %s cannot log in", c.where, targetOf(c.m))
	}
	u, ok := s.Users[user]
	if !ok {
		c.t.Errorf("%s: the deploy target %s logs in as %s, but users.users.%s does not exist", c.where, targetOf(c.m), user, user)
		return
	}
	if len(admins) == 0 {
		c.t.Errorf("%s: the deploy target %s logs in as %s, but the fleet names no admin with an ssh key (fleet(admins = [...]) with users that have ssh_keys): no declared key lets deploys log in after a fresh install",
			c.where, targetOf(c.m), user)
		return
	}
	for _, k := range u.Keys {
		if slices.Contains(admins, keyMaterial(k)) {
			return
		}
	}
	c.t.Errorf("%s: the deploy target %s logs in as %s, but users.users.%s.openssh.authorizedKeys.keys (%d keys) holds none of the admins' ssh keys: the admins are locked out",
		c.where, targetOf(c.m), user, user, len(u.Keys))
}

func targetOf(m *model.Machine) string {
	if m.Target != "" {
		return m.Target
	}
	return "root@<address of " + m.Name + ">"
}

// adminKeys are the ssh keys of the fleet's admins (fleet(admins = ...)
// names users, whose ssh_keys count, or ssh keys directly), without
// their comments.
func adminKeys(f *model.Fleet) []string {
	var out []string
	for _, a := range f.Admins {
		if u := f.User(a); u != nil {
			for _, k := range u.SSHKeys {
				out = append(out, keyMaterial(k))
			}
		} else if strings.HasPrefix(a, "ssh-") {
			out = append(out, keyMaterial(a))
		}
	}
	return out
}

// keyMaterial is "<type> <base64>" of an OpenSSH public key.
func keyMaterial(k string) string {
	f := strings.Fields(k)
	if len(f) >= 2 {
		return f[0] + " " + f[1]
	}
	return k
}

// decryptable: agenix decrypts each secret with the machine's identities
// (age.identityPaths). A machine whose host key the fleet knows (host_key)
// must be a recipient of each of its secrets in secrets.nix, and its host
// key's path among the identities; a machine without a host key in the
// fleet can only decrypt with another identity named in age.identityPaths.
func (c *checker) decryptable(s *systemReport, rules map[string][]string) {
	c.t.Helper()
	if len(s.AgeSecrets) == 0 {
		return
	}
	hostKeyPaths := []string{"/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"}
	var other []string
	for _, p := range s.IdentityPaths {
		if !slices.Contains(hostKeyPaths, p) {
			other = append(other, p)
		}
	}
	hasHostKeyPath := slices.Contains(s.IdentityPaths, "/etc/ssh/ssh_host_ed25519_key")
	for _, name := range sortedKeys(s.AgeSecrets) {
		a := s.AgeSecrets[name]
		rel, err := filepath.Rel(c.env.tree, a.File)
		if err != nil {
			continue
		}
		recipients, ok := rules[filepath.ToSlash(rel)]
		if !ok {
			c.t.Errorf("%s: age.secrets.%s reads %s, which has no rule in secrets.nix", c.where, name, filepath.ToSlash(rel))
			continue
		}
		switch {
		case c.m.HostKey != "":
			if !slices.Contains(keyMaterials(recipients), keyMaterial(c.m.HostKey)) {
				c.t.Errorf("%s: age.secrets.%s: the machine's host key is not a recipient of %s in secrets.nix", c.where, name, filepath.ToSlash(rel))
			}
			if !hasHostKeyPath && len(other) == 0 {
				c.t.Errorf("%s: age.secrets.%s: age.identityPaths %q does not name the host key (/etc/ssh/ssh_host_ed25519_key)", c.where, name, s.IdentityPaths)
			}
		case c.m.HostKeySecret != "":
			// The key is generated before the first install; secrets.nix
			// names it once it exists. It is installed at the ed25519 path.
			if !hasHostKeyPath && len(other) == 0 {
				c.t.Errorf("%s: age.secrets.%s: age.identityPaths %q does not name the host key (/etc/ssh/ssh_host_ed25519_key)", c.where, name, s.IdentityPaths)
			}
		default:
			if len(other) == 0 {
				c.t.Errorf("%s: age.secrets.%s cannot be decrypted on the machine: the fleet knows no host key of %s (machine(host_key = ...)), so its ssh host key is no recipient of %s, and age.identityPaths %q names no other identity",
					c.where, name, c.m.Name, filepath.ToSlash(rel), s.IdentityPaths)
			}
		}
	}
}

func keyMaterials(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = keyMaterial(k)
	}
	return out
}

// home checks one home-manager configuration (a user's, inside the system
// or standalone) against the fleet: home.stateVersion, the packages of the
// user's home features, no two variants of one package in home.packages,
// and (inside the system) that the user's own module file is known to the
// module system.
func (c *checker) home(label, user string, h *homeReport, userFile string) {
	c.t.Helper()
	if testing.Verbose() {
		c.t.Logf("%s: %s: options the tree sets, evaluated and type-checked: %s", c.where, label, strings.Join(h.Checked, ", "))
	}
	c.declared(label+": ", c.m.Home, h.Declared)
	if u := c.env.fleet.User(user); u != nil {
		for _, p := range c.env.fleet.HomePackages(u.Home) {
			if !hasPackage(h.Packages, p) {
				c.t.Errorf("%s: %s: home.packages lacks pkgs.%s, a package of the user's home features", c.where, label, p)
			}
		}
	}
	byPname := map[string][]pkgReport{}
	for _, p := range h.Packages {
		if p.Pname == "" {
			continue
		}
		dup := false
		for _, q := range byPname[p.Pname] {
			dup = dup || q.Out == p.Out
		}
		if !dup {
			byPname[p.Pname] = append(byPname[p.Pname], p)
		}
	}
	for _, pname := range sortedKeys(byPname) {
		if ps := byPname[pname]; len(ps) > 1 {
			var attrs []string
			for _, p := range ps {
				attrs = append(attrs, "pkgs."+p.Attr)
			}
			c.t.Errorf("%s: %s: home.packages holds %s, variants of %s: their files collide in the home profile (buildEnv)", c.where, label, strings.Join(attrs, " and "), pname)
		}
	}
	if userFile != "" && homeSetsPackages(c.env.fleet, user) && !slices.Contains(h.PackagesFiles, userFile) {
		var files []string
		for _, f := range h.PackagesFiles {
			if r, err := filepath.Rel(c.env.tree, f); err == nil && !strings.HasPrefix(r, "..") {
				files = append(files, r)
			}
		}
		c.t.Errorf("%s: %s: the module system does not know homes/users/%s.nix, which sets home.packages (home.packages is defined in %q): a module given as `import ./file.nix` loses its file, so errors and definitions name the machine instead; give the path",
			c.where, label, user, files)
	}
}

// homeSetsPackages reports whether homes/users/<user>.nix sets home.packages:
// the user's home features have packages.
func homeSetsPackages(f *model.Fleet, user string) bool {
	u := f.User(user)
	return u != nil && len(f.HomePackages(u.Home)) > 0
}

func hasPackage(pkgs []pkgReport, name string) bool {
	for _, p := range pkgs {
		if p.Attr == name || p.Name == name || p.Name == path.Base(strings.ReplaceAll(name, ".", "/")) {
			return true
		}
	}
	return false
}

// declaredPaths are the option paths (tab-separated) of the plain values
// a machine's own configuration (nixos/darwin, or home) declares; the
// report returns their values and declared compares them.
func declaredPaths(config *model.Attrs) []string {
	out := []string{}
	walkDeclared(config, nil, func(p []string, _ model.Value) {
		out = append(out, strings.Join(p, "\t"))
	})
	return out
}

// walkDeclared calls fn for every value of a that can be compared with
// what Nix returns: plain data, lists of it or of packages, and those
// under lib.mkForce. Defaults (lib.mkDefault) may be overridden, and raw
// expressions and paths have no plain value.
func walkDeclared(a *model.Attrs, prefix []string, fn func([]string, model.Value)) {
	if a == nil {
		return
	}
	for _, b := range a.Bindings {
		p := append(slices.Clone(prefix), b.Name)
		v := b.Value
		if pr, ok := v.(model.Priority); ok && pr.Fn == "force" {
			v = pr.Value
		}
		switch x := v.(type) {
		case *model.Attrs:
			walkDeclared(x, p, fn)
		case model.String, model.Int, model.Bool, model.Float, model.List:
			if _, ok := plainValue(x); ok {
				fn(p, b.Value)
			}
		}
	}
}

// plainValue is the JSON-like value of v (strings, float64, bools,
// lists; packages as {"pkg": name}); ok is false for anything else.
func plainValue(v model.Value) (any, bool) {
	switch x := v.(type) {
	case model.String:
		return string(x), true
	case model.Int:
		return float64(x), true
	case model.Float:
		return float64(x), true
	case model.Bool:
		return bool(x), true
	case model.Pkg:
		return map[string]any{"pkg": x.Name}, true
	case model.Priority:
		if x.Fn == "force" {
			return plainValue(x.Value)
		}
		return nil, false
	case model.List:
		out := []any{}
		for _, e := range x {
			pv, ok := plainValue(e)
			if !ok {
				return nil, false
			}
			out = append(out, pv)
		}
		return out, true
	}
	return nil, false
}

// declared compares each declared value with the evaluated one: equal for
// scalars; for lists, every declared element is in the merged list (other
// modules add to lists); text of lines (it ends with a newline) is in the
// merged text, as types.lines joins every module's definition.
func (c *checker) declared(label string, config *model.Attrs, values []declaredValue) {
	c.t.Helper()
	for _, d := range values {
		p := strings.Split(d.Path, "\t")
		v := configValue(config, p...)
		want, ok := plainValue(v)
		if !ok {
			continue
		}
		opt := model.JoinAttrPath(p)
		if wl, isList := want.([]any); isList {
			gl, _ := d.Value.([]any)
			for _, w := range wl {
				if !slices.ContainsFunc(gl, func(g any) bool { return sameValue(g, w) }) {
					c.t.Errorf("%s: %s%s is %s, which lacks %s that the machine declares", c.where, label, opt, jsonString(d.Value), jsonString(w))
				}
			}
			continue
		}
		if ws, isText := want.(string); isText && strings.HasSuffix(ws, "\n") {
			if gs, _ := d.Value.(string); !strings.Contains(gs, ws) {
				c.t.Errorf("%s: %s%s is %s, which lacks the lines the machine declares, %s", c.where, label, opt, jsonString(d.Value), jsonString(want))
			}
			continue
		}
		if !sameValue(d.Value, want) {
			c.t.Errorf("%s: %s%s is %s, the machine declares %s", c.where, label, opt, jsonString(d.Value), jsonString(want))
		}
	}
}

// sameValue compares an evaluated value with a declared one. A package
// matches by its stub's attribute path; a string also matches a submodule
// value named by it (types.coercedTo str (name: { inherit name; }), as
// nix-darwin's homebrew.casks).
func sameValue(got, want any) bool {
	if w, ok := want.(map[string]any); ok {
		if name, ok := w["pkg"].(string); ok {
			g, _ := got.(map[string]any)
			gp, _ := g["pkg"].(map[string]any)
			return gp["attr"] == name
		}
	}
	if ws, ok := want.(string); ok {
		if g, ok := got.(map[string]any); ok {
			return g["name"] == ws
		}
	}
	return reflect.DeepEqual(got, want)
}

// configValue is the value at path in a, or nil.
func configValue(a *model.Attrs, path ...string) model.Value {
	var v model.Value = a
	for _, p := range path {
		x, ok := v.(*model.Attrs)
		if !ok || x == nil {
			return nil
		}
		v = x.Get(p)
		if v == nil {
			return nil
		}
	}
	return v
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%v", *p)
}

// jsonString shows a value in a message, cut at 300 bytes.
func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// standalone: a homeConfiguration of user@machine is built for the
// machine's platform, for the same account (name and home directory) as
// the machine's users.users entry.
func (c *checker) standalone(label, user string, h *homeReport, s *systemReport) {
	c.t.Helper()
	if h.System != nil && *h.System != c.m.System {
		c.t.Errorf("%s: %s: its pkgs are for %s, the machine is %s", c.where, label, *h.System, c.m.System)
	}
	if h.Username != user {
		c.t.Errorf("%s: %s: home.username is %q", c.where, label, h.Username)
	}
	if u, ok := s.Users[user]; ok && u.Home != nil && h.HomeDirectory != *u.Home {
		c.t.Errorf("%s: %s: home.homeDirectory is %q, but users.users.%s.home is %q", c.where, label, h.HomeDirectory, user, *u.Home)
	}
}

// cacheNixOS is the binary cache NixOS and nix-darwin configure by
// default, and its key.
const cacheNixOS, cacheNixOSKey = "https://cache.nixos.org/", "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="

// cache checks that a machine of a fleet with a binary cache substitutes
// from it first, and still from cache.nixos.org (the upstream modules
// define that one with mkAfter: the fleet's definition adds to it). A
// machine whose Nix its system does not manage (nix.enable = false, a
// Determinate Nix laptop) writes no nix.conf: its settings are unused,
// and nix-darwin's throw when read.
func (c *checker) cache(s *systemReport) {
	c.t.Helper()
	if !s.NixEnable {
		return
	}
	wantKeys := []string{cacheNixOSKey}
	if cache := c.env.fleet.Cache; cache != nil {
		wantKeys = append(wantKeys, cache.PublicKey)
		if len(s.Substituters) == 0 || s.Substituters[0] != cache.URL {
			c.t.Errorf("%s: nix.settings.substituters is %q, want the fleet's cache %s first", c.where, s.Substituters, cache.URL)
		}
	}
	if !slices.Contains(s.Substituters, cacheNixOS) {
		c.t.Errorf("%s: nix.settings.substituters is %q, without %s", c.where, s.Substituters, cacheNixOS)
	}
	for _, k := range wantKeys {
		if !slices.Contains(s.TrustedPublicKeys, k) {
			c.t.Errorf("%s: nix.settings.trusted-public-keys is %q, without %q", c.where, s.TrustedPublicKeys, k)
		}
	}
}
