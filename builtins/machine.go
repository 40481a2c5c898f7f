package builtins

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"filippo.io/age"
	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
	"golang.org/x/crypto/ssh"
)

// machineGroup is user() and machine().
func machineGroup() []Builtin {
	return []Builtin{
		{Fn: builtinUser, Doc: Doc{Name: "user", Group: "declarations",
			Signature: `user(name, uid = 0, groups = [], ssh_keys = [], age = "", home = [], shell = "", description = "", password_hash = None)`,
			Text: `Declares a person. Machines list the users that get an account (uid, groups,
authorized ssh_keys, login shell as a nixpkgs attribute name). home lists features
whose home-manager modules the user gets on every machine they are on. age is the
user's age recipient, used when the user is one of the fleet's admins.

uid is an int for every class, or one per class: {"darwin": 502, "nixos": 1000}.
macOS numbers accounts from 501, NixOS refuses a normal user below 1000; a class
left out lets its system choose. On nix-darwin a user with a uid is managed by
nix-darwin (users.knownUsers), so its uid, shell and description take effect.

password_hash is a secret (or its name) whose one encrypted file is the user's
password hash in crypt(3) format (mkpasswd): on every NixOS machine of the user it
becomes users.users.<name>.hashedPasswordFile, so the secret must be read by all of
them. macOS accounts keep the password set on the Mac.`}},
		{Fn: builtinMachine, Doc: Doc{Name: "machine", Group: "declarations",
			Signature: `machine(name, system, state_version, tags = [], features = [], users = [], target = "", host = None, host_key = None, checks = [], rollback = False, nixos = {}, darwin = {}, home = {})`,
			Text: `Declares a machine. system is a Nix platform double: *-linux machines are NixOS,
*-darwin machines nix-darwin. name must match ^[a-z0-9-]+$ (it is the host name).

state_version is system.stateVersion: the NixOS release the machine was first
installed with ("25.05"), or nix-darwin's state version (6). It is required and is
written in the machine's own file: it records the format of the machine's state, so
it never follows a shared default and changes only when you edit it here.

tags are free-form words for selectors ("@cloud"). features and users are names or
values. target is the ssh destination for deploys (default: root@ the public address
of its cloud host, asked of the cloud at deploy time; without a host,
root@<name>.<domain>). The fleet's admins' ssh keys are authorized for the target's
user (root on NixOS by default), so the machine stays reachable after an install;
a target user other than root must be one of the machine's users, and nix-darwin
machines need one (macOS has no root login over ssh). host is hetzner.server(...) or gcp.instance(...) for cloud machines.
host_key is the machine's ssh-ed25519 host public key, or a secret declared with
generate = gen.ssh_keypair() for this machine, generated before its first install: the
machine decrypts its secrets with it. A nix-darwin machine that reads secrets needs
its host key written here (ssh-keyscan -t ed25519 <host>): agenix decrypts with
/etc/ssh/ssh_host_ed25519_key, which macOS makes. checks (check.command, check.http, check.tcp) must
pass after each deploy; with rollback = True a machine whose checks fail, or that stops
answering, within the confirm timeout is switched back to its previous generation.
nixos or darwin (matching the class) is the machine's own configuration, written like
a feature's; home is home-manager configuration for every user on the machine.`}},
	}
}

func builtinUser(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := declare(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var name, age, shell, description string
	uid := uidArg{value: starlark.MakeInt(0)}
	var groups, sshKeys stringList
	password := ref{kind: "secret"}
	home := refList{kind: "feature"}
	if err := unpack(b.Name(), args, kwargs, "name", &name, "uid?", &uid, "groups?", &groups,
		"ssh_keys?", &sshKeys, "age?", &age, "home?", &home, "shell?", &shell, "description?", &description,
		"password_hash??", &password); err != nil {
		return nil, err
	}
	if err := checkName("user", name, userNameRE, "use lower-case letters, digits, '_' and '-', starting with a letter or '_'"); err != nil {
		return nil, err
	}
	for _, k := range sshKeys {
		if err := checkSSHKey(k); err != nil {
			return nil, fmt.Errorf("user: ssh_keys: %w", err)
		}
	}
	if age != "" {
		if err := checkRecipient(age); err != nil {
			return nil, fmt.Errorf("user: age: %w", err)
		}
	}
	homes, dup := sortedUnique(home.names)
	if dup != "" {
		return nil, fmt.Errorf("user: home names %q twice", dup)
	}
	r.users = append(r.users, &model.User{Name: name, UID: uid.all, ClassUID: uid.byClass, Groups: groups,
		SSHKeys: sshKeys, Age: age, Home: homes, Shell: shell, Description: description,
		PasswordHash: password.name, Pos: callerPos(thread)})
	return newDecl("user", name, starlark.StringDict{
		"uid":           uid.value,
		"groups":        strList(groups),
		"ssh_keys":      strList(sshKeys),
		"age":           starlark.String(age),
		"home":          strList(homes),
		"shell":         starlark.String(shell),
		"description":   starlark.String(description),
		"password_hash": starlark.String(password.name),
	}), nil
}

// uidArg is a uid for every class (502), or one per class
// ({"darwin": 502, "nixos": 1000}; a class left out lets its system
// choose).
type uidArg struct {
	all     int
	byClass map[model.Class]int
	value   starlark.Value
}

func (u *uidArg) Unpack(v starlark.Value) error {
	check := func(what string, x starlark.Value) (int, error) {
		var n int
		if err := starlark.AsInt(x, &n); err != nil {
			return 0, fmt.Errorf("%s: got %s, want an int", what, x.Type())
		}
		if n < 0 || n > 65535 {
			return 0, fmt.Errorf("%s %d is out of range 0..65535 (0 lets the system choose)", what, n)
		}
		return n, nil
	}
	u.value = v
	switch x := v.(type) {
	case starlark.Int:
		n, err := check("uid", x)
		u.all = n
		return err
	case *starlark.Dict:
		u.byClass = map[model.Class]int{}
		for _, item := range x.Items() {
			k, ok := starlark.AsString(item[0])
			c := model.Class(k)
			if !ok || (c != model.NixOS && c != model.Darwin) {
				return fmt.Errorf("uid: key %s: use \"nixos\" and \"darwin\"", item[0])
			}
			n, err := check("uid "+k, item[1])
			if err != nil {
				return err
			}
			u.byClass[c] = n
		}
		return nil
	}
	return typeErr(`an int, or a dict {"darwin": 502, "nixos": 1000}`, v)
}

func builtinMachine(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := declare(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var name, system, target string
	var tags stringList
	features := refList{kind: "feature"}
	users := refList{kind: "user"}
	host := valueOf[*HostValue]{want: "hetzner.server(...) or gcp.instance(...)"}
	var hostKey hostKeyArg
	var checks checkList
	var rollback bool
	var nixos, darwin, home config
	var stateVersion stateVersionArg
	if err := unpack(b.Name(), args, kwargs, "name", &name, "system", &system, "tags?", &tags,
		"features?", &features, "users?", &users, "target?", &target, "host??", &host, "host_key??", &hostKey,
		"checks?", &checks, "rollback?", &rollback, "state_version??", &stateVersion,
		"nixos?", &nixos, "darwin?", &darwin, "home?", &home); err != nil {
		return nil, err
	}
	if err := checkName("machine", name, machineNameRE, "it must match ^[a-z0-9-]+$ (it becomes the host name)"); err != nil {
		return nil, err
	}
	if name == "shared" {
		return nil, fmt.Errorf(`machine name "shared" is reserved: secrets/shared/ holds the secrets machines share`)
	}
	class, err := checkSystem(system)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	if err := stateVersion.check(class); err != nil {
		return nil, fmt.Errorf("machine %s: %w", name, err)
	}
	if class == model.Darwin && nixos.attrs.Len() > 0 {
		return nil, fmt.Errorf("machine %s: nixos = {...} on a nix-darwin machine (system %s): use darwin = {...}", name, system)
	}
	if class == model.NixOS && darwin.attrs.Len() > 0 {
		return nil, fmt.Errorf("machine %s: darwin = {...} on a NixOS machine (system %s): use nixos = {...}", name, system)
	}
	if host.set && class != model.NixOS {
		return nil, fmt.Errorf("machine %s: cloud hosts run NixOS, but system %s is nix-darwin", name, system)
	}
	if host.set && host.v.host.Hetzner != nil {
		if err := checkHetznerArch(host.v.host.Hetzner.Type, system); err != nil {
			return nil, fmt.Errorf("machine %s: %w", name, err)
		}
	}
	tagSet, dup := sortedUnique(tags)
	if dup != "" {
		return nil, fmt.Errorf("machine %s: tag %q given twice", name, dup)
	}
	for _, t := range tagSet {
		if err := checkName("tag", t, identNameRE, "use letters, digits, '_' and '-'"); err != nil {
			return nil, fmt.Errorf("machine %s: %w", name, err)
		}
	}
	if _, dup := sortedUnique(features.names); dup != "" {
		return nil, fmt.Errorf("machine %s: feature %q listed twice", name, dup)
	}
	if _, dup := sortedUnique(users.names); dup != "" {
		return nil, fmt.Errorf("machine %s: user %q listed twice", name, dup)
	}
	m := &model.Machine{Name: name, System: system, Class: class, Tags: tagSet, Features: features.names,
		Users: users.names, Target: target, HostKey: hostKey.key, HostKeySecret: hostKey.secret,
		Checks: checks, Rollback: rollback, StateVersion: stateVersion.v,
		NixOS: nonEmpty(nixos.attrs), Darwin: nonEmpty(darwin.attrs),
		Home: nonEmpty(home.attrs), Pos: callerPos(thread)}
	var hostAttr starlark.Value = starlark.None
	if host.set {
		h := *host.v.host
		m.Host = &h
		hostAttr = host.v
	}
	r.machines = append(r.machines, m)
	return newDecl("machine", name, starlark.StringDict{
		"system":        starlark.String(system),
		"kind":          starlark.String(class), // "class" is a Starlark keyword
		"tags":          strList(tagSet),
		"features":      strList(features.names),
		"users":         strList(users.names),
		"target":        starlark.String(target),
		"host":          hostAttr,
		"state_version": starlark.String(stateVersion.v),
		"nixos":         AttrsDict(m.NixOS),
		"darwin":        AttrsDict(m.Darwin),
		"home":          AttrsDict(m.Home),
	}), nil
}

// checkSSHKey accepts an OpenSSH public key line ("type base64 [comment]")
// whose base64 part decodes to a key of the type it claims: a key pasted
// with a character missing is caught here, at its .star line, not when a
// cloud API or sshd refuses it.
func checkSSHKey(k string) error {
	var typ, data string
	if n, _ := fmt.Sscan(k, &typ, &data); n < 2 {
		return fmt.Errorf("%q is not an OpenSSH public key (\"ssh-ed25519 AAAA... comment\")", k)
	}
	switch typ {
	case "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
		"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com":
	default:
		return fmt.Errorf("%q: unknown ssh key type %q", k, typ)
	}
	blob, err := base64.StdEncoding.DecodeString(data)
	if err != nil || len(blob) < 4 {
		return fmt.Errorf("%s key %q...: the base64 part does not decode: copy the whole line of the .pub file", typ, shorten(data))
	}
	n := int(binary.BigEndian.Uint32(blob))
	if len(blob) < 4+n || string(blob[4:4+n]) != typ {
		return fmt.Errorf("%s key %q...: the key inside is not a %s key", typ, shorten(data), typ)
	}
	// The key itself, as ssh and age read it: a made-up or truncated key
	// is refused here rather than by fleet secrets generate.
	if _, err := ssh.ParsePublicKey(blob); err != nil {
		why := strings.TrimPrefix(err.Error(), "ssh: ")
		switch why {
		case "short read":
			why = "it is cut short"
		case "trailing junk in public key":
			why = "there are extra bytes after the key"
		}
		return fmt.Errorf("%s key %q...: not a valid public key (%s): copy the whole line of the .pub file", typ, shorten(data), why)
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 24 {
		return s[:24]
	}
	return s
}

// checkRecipient accepts an age recipient (age1..., including plugin
// recipients like age1yubikey1...) or an ssh-ed25519 public key.
func checkRecipient(s string) error {
	if len(s) > 4 && s[:4] == "age1" {
		// Bech32 has no 1 in its alphabet: a second 1 ends a plugin's
		// name (age1yubikey1...), which only the plugin can check.
		var err error
		switch {
		case strings.HasPrefix(s, "age1pq1"):
			_, err = age.ParseHybridRecipient(s)
		case strings.Count(s, "1") > 1:
		default:
			_, err = age.ParseX25519Recipient(s)
		}
		if err != nil {
			// age's error repeats the whole string; what is wrong in it
			// is of no use to someone who pasted it.
			return fmt.Errorf("%q is not a valid age recipient: copy the line age-keygen printed (\"Public key: age1...\")", shorten(s))
		}
		return nil
	}
	if len(s) > 12 && s[:12] == "ssh-ed25519 " {
		return checkSSHKey(s)
	}
	return fmt.Errorf("%q is not an age recipient (\"age1...\") or ssh-ed25519 public key", s)
}

// hostKeyArg is a host key: a literal ssh-ed25519 public key, or a secret
// (by value) whose ssh key pair is the host key.
type hostKeyArg struct{ key, secret string }

func (h *hostKeyArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.String:
		if !strings.HasPrefix(string(x), "ssh-ed25519 ") {
			return fmt.Errorf("got %q, want an ssh-ed25519 public key (age encrypts to ed25519 host keys) or a secret", shorten(string(x)))
		}
		if err := checkSSHKey(string(x)); err != nil {
			return err
		}
		h.key = string(x)
		return nil
	case *Decl:
		if x.kind == "secret" {
			h.secret = x.name
			return nil
		}
	}
	return typeErr(`an ssh-ed25519 public key or secret(..., generate = gen.ssh_keypair())`, v)
}

// stateVersionArg is machine(state_version = ...): a NixOS release
// ("25.05") or a nix-darwin state version (6, or "6").
type stateVersionArg struct{ v string }

func (s *stateVersionArg) Unpack(v starlark.Value) error {
	switch x := v.(type) {
	case starlark.String:
		s.v = string(x)
		return nil
	case starlark.Int:
		s.v = x.String()
		return nil
	}
	return typeErr(`a release such as "25.05" (NixOS) or a number such as 6 (nix-darwin)`, v)
}

var nixosReleaseRE = regexp.MustCompile(`^[0-9]{2}\.(05|11)$`)

func (s *stateVersionArg) check(c model.Class) error {
	switch {
	case s.v == "":
		return nil // missing: refused with the fleet's other checks, naming the value to write
	case c == model.NixOS && !nixosReleaseRE.MatchString(s.v):
		return fmt.Errorf("state_version = %q: a NixOS state version is a release, YY.05 or YY.11, such as \"25.05\"", s.v)
	case c == model.Darwin:
		n, err := strconv.Atoi(s.v)
		if err != nil || n < 1 {
			return fmt.Errorf("state_version = %q: a nix-darwin state version is a whole number such as 6 (darwin-rebuild prints it on a new install)", s.v)
		}
	}
	return nil
}
