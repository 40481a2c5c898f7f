package builtins

import (
	"fmt"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// Rules of NixOS, nix-darwin and agenix that a fleet can break, checked
// here so that the user reads them at the .star line that breaks them
// instead of as a failed assertion in the middle of a Nix evaluation. Each
// names the upstream code it stands for; the conformance tests
// (engine/conformance) evaluate the generated trees with that code.

// currentState is the state version suggested for a new machine: the
// newest NixOS release, and nix-darwin's newest state version
// (system.maxStateVersion in nix-darwin's modules/system/version.nix).
func currentState(c model.Class) string {
	if c == model.Darwin {
		return "7"
	}
	return "26.05"
}

func quotedState(c model.Class, v string) string {
	if c == model.Darwin {
		return v
	}
	return fmt.Sprintf("%q", v)
}

// checkUpstreamRules runs after references and secrets are resolved.
func checkUpstreamRules(f *model.Fleet, errf func(model.Pos, string, ...any) *model.Error) {
	// A state version in a shared module changes the state version of
	// every machine that uses it when the module changes.
	for _, x := range f.Features {
		for _, c := range []model.Class{model.NixOS, model.Darwin} {
			if attrAt(x.Config(c), "system", "stateVersion") != nil {
				errf(x.Pos, "feature %s sets system.stateVersion for %s: a shared default changes the state version of every machine "+
					"that did not pin its own whenever it changes, which %s treats as a change of the format of the machine's data; "+
					"remove it here and give each machine its own: machine(..., state_version = %s)", x.Name, c, className(c), quotedState(c, currentState(c)))
			}
		}
	}
	for _, m := range f.Machines {
		inConfig := attrAt(m.Config(), "system", "stateVersion")
		switch {
		case m.StateVersion != "" && inConfig != nil:
			errf(m.Pos, "machine %s: the state version is set twice, with state_version and in %s = {\"system.stateVersion\": ...}: keep state_version", m.Name, m.Class)
		case m.StateVersion == "" && inConfig == nil:
			errf(m.Pos, "machine %s: no state version: add state_version = %s, the %s it is first installed with "+
				"(for a machine already installed: the system.stateVersion of the configuration it runs); it then stays until you change it here",
				m.Name, quotedState(m.Class, currentState(m.Class)), stateWhat(m.Class))
		}
	}

	// NixOS refuses a normal user with a uid below 1000
	// (nixos/modules/config/users-groups.nix: "A user cannot have a
	// users.users.<name>.uid set below 1000 and set
	// users.users.<name>.isNormalUser.").
	lowUID := map[string][]string{}
	for _, m := range f.Machines {
		if m.Class != model.NixOS {
			continue
		}
		for _, name := range m.Users {
			if u := f.User(name); u != nil {
				if uid := u.UIDFor(model.NixOS); uid > 0 && uid < 1000 {
					lowUID[name] = append(lowUID[name], m.Name)
				}
			}
		}
	}
	for _, u := range f.Users {
		if ms := lowUID[u.Name]; len(ms) > 0 {
			uid := u.UIDFor(model.NixOS)
			errf(u.Pos, "user %s: uid %d is below 1000, and NixOS refuses such a uid for a normal user "+
				"(nixos/modules/config/users-groups.nix), on %s: give NixOS its own, uid = {\"darwin\": %d, \"nixos\": 1000}, "+
				"or let NixOS choose: uid = {\"darwin\": %d}", u.Name, uid, strings.Join(ms, ", "), uid, uid)
		}
	}

	// Whoever deploys must be able to log in after a fresh install: fleet
	// authorizes the admins' ssh keys for the deploy user.
	adminKeys := f.AdminSSHKeys()
	noKeys := []string{}
	for _, m := range f.Machines {
		user := m.DeployUser()
		switch {
		case m.Class == model.Darwin && user == "root" && m.Target != "":
			errf(m.Pos, "machine %s: macOS allows no root login over ssh, so deploys need a user: "+
				"set target = \"<user>@<address>\" naming one of the machine's users (an administrator: activation runs through sudo)", m.Name)
		case user != "root" && !contains(m.Users, user):
			errf(m.Pos, "machine %s: target %q logs in as %s, who has no account on this machine: add %q to its users, or deploy as root",
				m.Name, m.Target, user, user)
		case user == "root" && len(adminKeys) == 0 && m.Host != nil:
			// fleet installs this one (nixos-anywhere wipes the disk), so
			// no key from before survives; a machine fleet did not install
			// keeps root's own ~/.ssh/authorized_keys.
			noKeys = append(noKeys, m.Name)
		}
	}
	if len(noKeys) > 0 {
		errf(f.Pos, "fleet: nobody could log in to %s after fleet installs it: deploys log in as root with the admins' ssh keys, "+
			"and no admin has one; name a user with ssh_keys in fleet(admins = [...]) (or an ssh public key)", strings.Join(noKeys, ", "))
	}

	// Password hashes reach every NixOS machine of their user.
	for _, u := range f.Users {
		if u.PasswordHash == "" {
			continue
		}
		s := f.Secret(u.PasswordHash)
		if s == nil {
			names := make([]string, len(f.Secrets))
			for i, x := range f.Secrets {
				names[i] = x.Name
			}
			errf(u.Pos, "user %s: password_hash names no secret %q%s", u.Name, u.PasswordHash, DidYouMean(u.PasswordHash, names))
			continue
		}
		if n := len(encryptedFiles(s)); n != 1 {
			errf(u.Pos, "user %s: password_hash secret %s has %d encrypted files: it must have one, the hash", u.Name, s.Name, n)
			continue
		}
		var missing []string
		for _, m := range f.Machines {
			if m.Class == model.NixOS && contains(m.Users, u.Name) && !contains(s.Machines, m.Name) {
				missing = append(missing, m.Name)
			}
		}
		if len(missing) > 0 {
			errf(u.Pos, "user %s: password_hash secret %s is not read by %s, where %s has an account: add them to the secret's machines (now %q)",
				u.Name, s.Name, strings.Join(missing, ", "), u.Name, s.Selector)
		}
	}

	// agenix on nix-darwin decrypts with the host key macOS makes
	// (agenix modules/age.nix, identityPaths on darwin); fleet must know
	// its public half to encrypt to it, and installs no host key there.
	for _, m := range f.Machines {
		if m.Class != model.Darwin {
			continue
		}
		if m.HostKeySecret != "" {
			errf(m.Pos, "machine %s: host_key is a generated secret, but nothing installs a host key on nix-darwin (fleet installs one only with NixOS's first install): "+
				"write the key macOS made: host_key = \"ssh-ed25519 ...\" (ssh-keyscan -t ed25519 <host>, or /etc/ssh/ssh_host_ed25519_key.pub on the Mac)", m.Name)
			continue
		}
		var reads []string
		for _, s := range f.Secrets {
			if contains(s.Machines, m.Name) && len(encryptedFiles(s)) > 0 {
				reads = append(reads, s.Name)
			}
		}
		if len(reads) > 0 && m.HostKey == "" {
			errf(m.Pos, "machine %s reads the secrets %s, but has no host_key to encrypt them to: agenix on nix-darwin decrypts with "+
				"/etc/ssh/ssh_host_ed25519_key; write its public half: host_key = \"ssh-ed25519 ...\" (ssh-keyscan -t ed25519 <host>, "+
				"or /etc/ssh/ssh_host_ed25519_key.pub on the Mac)", m.Name, strings.Join(reads, ", "))
		}
		for _, s := range f.Secrets {
			if !contains(s.Machines, m.Name) {
				continue
			}
			for _, file := range s.Files {
				if p, ok := s.Paths[file.Name]; ok && !file.Secret && !strings.HasPrefix(p, "/etc/") {
					errf(s.Pos, "secret %s: paths: the public file %s goes to %s on nix-darwin machine %s, which can place files only under /etc/ (environment.etc)",
						s.Name, file.Name, p, m.Name)
				}
			}
		}
	}
}

func encryptedFiles(s *model.Secret) []model.SecretFile {
	var out []model.SecretFile
	for _, f := range s.Files {
		if f.Secret {
			out = append(out, f)
		}
	}
	return out
}

// attrAt follows a path of single attribute names.
func attrAt(a *model.Attrs, path ...string) model.Value {
	var v model.Value = a
	for _, name := range path {
		x, ok := v.(*model.Attrs)
		if !ok {
			return nil
		}
		v = x.Get(name)
		if v == nil {
			return nil
		}
	}
	return v
}

func className(c model.Class) string {
	if c == model.Darwin {
		return "nix-darwin"
	}
	return "NixOS"
}

func stateWhat(c model.Class) string {
	if c == model.Darwin {
		return "nix-darwin state version"
	}
	return "NixOS release"
}
