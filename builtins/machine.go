package builtins

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// machineGroup is user() and machine().
func machineGroup() []Builtin {
	return []Builtin{
		{Fn: builtinUser, Doc: Doc{Name: "user", Group: "declarations",
			Signature: `user(name, uid = 0, groups = [], ssh_keys = [], age = "", home = [], shell = "", description = "")`,
			Text: `Declares a person. Machines list the users that get an account (uid, groups,
authorized ssh_keys, login shell as a nixpkgs attribute name). home lists features
whose home-manager modules the user gets on every machine they are on. age is the
user's age recipient, used when the user is one of the fleet's admins.`}},
		{Fn: builtinMachine, Doc: Doc{Name: "machine", Group: "declarations",
			Signature: `machine(name, system, tags = [], features = [], users = [], target = "", host = None, host_key = None, checks = [], rollback = False, nixos = {}, darwin = {}, home = {})`,
			Text: `Declares a machine. system is a Nix platform double: *-linux machines are NixOS,
*-darwin machines nix-darwin. name must match ^[a-z0-9-]+$ (it is the host name).

tags are free-form words for selectors ("@cloud"). features and users are names or
values. target is the ssh destination for deploys (default: root@ the public address
of its cloud host, asked of the cloud at deploy time; without a host,
root@<name>.<domain>). host is hetzner.server(...) or gcp.instance(...) for cloud machines.
host_key is the machine's ssh-ed25519 host public key, or a secret declared with
generate = gen.ssh_keypair() for this machine, generated before its first install: the
machine decrypts its secrets with it. checks (check.command, check.http, check.tcp) must
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
	var uid int
	var groups, sshKeys stringList
	home := refList{kind: "feature"}
	if err := unpack(b.Name(), args, kwargs, "name", &name, "uid?", &uid, "groups?", &groups,
		"ssh_keys?", &sshKeys, "age?", &age, "home?", &home, "shell?", &shell, "description?", &description); err != nil {
		return nil, err
	}
	if err := checkName("user", name, userNameRE, "use lower-case letters, digits, '_' and '-', starting with a letter or '_'"); err != nil {
		return nil, err
	}
	if uid < 0 || uid > 65535 {
		return nil, fmt.Errorf("user: uid %d is out of range 0..65535 (0 lets the system choose)", uid)
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
	r.users = append(r.users, &model.User{Name: name, UID: uid, Groups: groups, SSHKeys: sshKeys, Age: age,
		Home: homes, Shell: shell, Description: description, Pos: callerPos(thread)})
	return newDecl("user", name, starlark.StringDict{
		"uid":         starlark.MakeInt(uid),
		"groups":      strList(groups),
		"ssh_keys":    strList(sshKeys),
		"age":         starlark.String(age),
		"home":        strList(homes),
		"shell":       starlark.String(shell),
		"description": starlark.String(description),
	}), nil
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
	if err := unpack(b.Name(), args, kwargs, "name", &name, "system", &system, "tags?", &tags,
		"features?", &features, "users?", &users, "target?", &target, "host??", &host, "host_key??", &hostKey,
		"checks?", &checks, "rollback?", &rollback,
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
	if class == model.Darwin && nixos.attrs.Len() > 0 {
		return nil, fmt.Errorf("machine %s: nixos = {...} on a nix-darwin machine (system %s): use darwin = {...}", name, system)
	}
	if class == model.NixOS && darwin.attrs.Len() > 0 {
		return nil, fmt.Errorf("machine %s: darwin = {...} on a NixOS machine (system %s): use nixos = {...}", name, system)
	}
	if host.set && class != model.NixOS {
		return nil, fmt.Errorf("machine %s: cloud hosts run NixOS, but system %s is nix-darwin", name, system)
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
		Checks: checks, Rollback: rollback,
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
		"system":   starlark.String(system),
		"kind":     starlark.String(class), // "class" is a Starlark keyword
		"tags":     strList(tagSet),
		"features": strList(features.names),
		"users":    strList(users.names),
		"target":   starlark.String(target),
		"host":     hostAttr,
		"nixos":    AttrsDict(m.NixOS),
		"darwin":   AttrsDict(m.Darwin),
		"home":     AttrsDict(m.Home),
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
