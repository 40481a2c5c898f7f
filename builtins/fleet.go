package builtins

import (
	"fmt"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// fleetGroup is fleet(), channel() and input(): what the flake is made of.
func fleetGroup() []Builtin {
	return []Builtin{
		{Fn: builtinFleet, Doc: Doc{Name: "fleet", Group: "declarations",
			Signature: `fleet(name, domain = "", admins = [], credentials = {}, cache = {}, builders = [])`,
			Text: `Names the fleet. Exactly one fleet() per fleet, in any fleet file.

name is used in cloud labels (fleet=<name>) and the generated flake's description.
domain is the DNS domain machines are reached under: a NixOS machine without a cloud
host or a target is deployed at root@<name>.<domain>.
admins are the recipients every secret is encrypted to: user names (their age key),
raw age recipients ("age1...") or ssh-ed25519 public keys.
credentials names, per cloud, the secret holding its API credentials, used when the
environment does not set them: {"hetzner": "hetzner-api-token"} (the token, for
HCLOUD_TOKEN), {"gcp": "gcp-service-account-json"} (a service account key, for
GOOGLE_APPLICATION_CREDENTIALS). fleet decrypts it with the admin's age identity.
cache is a Nix binary cache the fleet shares: {"url": ..., "public_key": ...,
"secret_key_file": ...}. url is its store URL (s3://bucket?endpoint=... for S3 or R2,
https://..., file:///srv/cache); public_key is "name:base64", the public file of
nix-store --generate-binary-cache-key. Every machine's nix settings list it in
substituters and trusted-public-keys; fleet deploy pushes each system it builds
there once (nix copy --to) and the machines fetch from it what they can (nix copy
--substitute-on-destination). secret_key_file is where the secret key is on the
deployer's machine (absolute or ~/, never in the repository): pushes are signed
with it; without it, paths keep the signatures nix.conf's secret-key-files gave them.
builders are remote build machines, each one line of nix's own machine format
("ssh-ng://builder@host x86_64-linux /root/.ssh/id_builder 8"), passed to local builds
with --builders after those the user's nix.conf names, which keep working.
With --build-on target, machines build their own systems and builders are unused.`}},
		{Fn: builtinChannel, Doc: Doc{Name: "channel", Group: "declarations",
			Signature: `channel(name, url, darwin_url = "")`,
			Text: `Declares a nixpkgs channel: a flake input that overlay layer 1 makes available as
pkgs.<name>. The channel named "nixpkgs" is the one every machine is built from.

darwin_url, when given, is used for darwin machines (nixpkgs-YY.MM-darwin branches).`}},
		{Fn: builtinInput, Doc: Doc{Name: "input", Group: "declarations",
			Signature: `input(name, url, follows = {}, flake = True)`,
			Text: `Declares a flake input that is not a package channel (home-manager, nix-darwin,
agenix ...). follows maps the input's own inputs to ours:
follows = {"nixpkgs": "nixpkgs"} writes inputs.<name>.inputs.nixpkgs.follows = "nixpkgs".
flake = False declares a plain source input.`}},
	}
}

// cloudProviders are the clouds fleet() may name credentials for.
var cloudProviders = []string{string(model.GCP), string(model.Hetzner)}

func builtinFleet(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := declare(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var name, domain string
	var admins stringList
	var credentials, cacheArg stringMap
	var builders stringList
	if err := unpack(b.Name(), args, kwargs, "name", &name, "domain?", &domain, "admins?", &admins, "credentials?", &credentials,
		"cache?", &cacheArg, "builders?", &builders); err != nil {
		return nil, err
	}
	var cache *model.Cache
	if cacheArg != nil {
		var err error
		if cache, err = checkCache(cacheArg, callerPos(thread)); err != nil {
			return nil, err
		}
	}
	for _, line := range builders {
		if err := checkBuilder(line); err != nil {
			return nil, fmt.Errorf("fleet: builders: %w", err)
		}
	}
	for provider := range credentials {
		if !contains(cloudProviders, provider) {
			return nil, fmt.Errorf("fleet: credentials: %q is not a cloud fleet knows: use %s%s", provider,
				strings.Join(cloudProviders, " or "), DidYouMean(provider, cloudProviders))
		}
	}
	if err := checkName("fleet", name, machineNameRE, "use lower-case letters, digits and '-' (it becomes a cloud label)"); err != nil {
		return nil, err
	}
	for _, a := range admins {
		if a == "" {
			return nil, fmt.Errorf("fleet: admins: empty entry")
		}
		// A key is checked here, where it is written; a user name once
		// the users are known.
		if strings.HasPrefix(a, "ssh-") || strings.HasPrefix(a, "age1") {
			if err := checkRecipient(a); err != nil {
				return nil, fmt.Errorf("fleet: admins: %w", err)
			}
		}
	}
	r.fleets = append(r.fleets, &model.Fleet{Name: name, Domain: domain, Admins: admins, Credentials: map[string]string(credentials),
		Cache: cache, Builders: builders, Pos: callerPos(thread)})
	return newDecl("fleet", name, starlark.StringDict{
		"domain": starlark.String(domain),
		"admins": strList(admins),
	}), nil
}

func builtinChannel(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := declare(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var name, url, darwinURL string
	if err := unpack(b.Name(), args, kwargs, "name", &name, "url", &url, "darwin_url?", &darwinURL); err != nil {
		return nil, err
	}
	if err := checkName("channel", name, identNameRE, "it becomes pkgs.<name>: use letters, digits, '_' and '-'"); err != nil {
		return nil, err
	}
	if name == model.PatchedChannel {
		return nil, fmt.Errorf("channel: %q is the channel overlay.patch makes: choose another name", name)
	}
	if err := checkFlakeURL(url); err != nil {
		return nil, fmt.Errorf("channel: url: %w", err)
	}
	if darwinURL != "" {
		if err := checkFlakeURL(darwinURL); err != nil {
			return nil, fmt.Errorf("channel: darwin_url: %w", err)
		}
	}
	r.channels = append(r.channels, &model.Channel{Name: name, URL: url, DarwinURL: darwinURL, Pos: callerPos(thread)})
	return newDecl("channel", name, starlark.StringDict{
		"url":        starlark.String(url),
		"darwin_url": starlark.String(darwinURL),
	}), nil
}

func builtinInput(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := declare(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var name, url string
	var follows stringMap
	flake := true
	if err := unpack(b.Name(), args, kwargs, "name", &name, "url", &url, "follows?", &follows, "flake?", &flake); err != nil {
		return nil, err
	}
	if err := checkName("input", name, identNameRE, "it becomes inputs.<name>: use letters, digits, '_' and '-'"); err != nil {
		return nil, err
	}
	if err := checkFlakeURL(url); err != nil {
		return nil, fmt.Errorf("input: url: %w", err)
	}
	r.inputs = append(r.inputs, &model.Input{Name: name, URL: url, Follows: follows, Flake: flake, Pos: callerPos(thread)})
	fd := starlark.NewDict(len(follows))
	for k, v := range follows {
		_ = fd.SetKey(starlark.String(k), starlark.String(v))
	}
	fd.Freeze()
	return newDecl("input", name, starlark.StringDict{
		"url":     starlark.String(url),
		"follows": fd,
		"flake":   starlark.Bool(flake),
	}), nil
}

// checkFlakeURL accepts flake references: "type:rest" (github:, git+https:,
// path: ...) or plain URLs. It rejects what cannot be one.
func checkFlakeURL(u string) error {
	if u == "" {
		return fmt.Errorf("empty flake reference")
	}
	i := strings.Index(u, ":")
	if i <= 0 || strings.ContainsAny(u, " \t\n\"") {
		return fmt.Errorf("%q is not a flake reference (like \"github:NixOS/nixpkgs/nixos-unstable\")", u)
	}
	return nil
}
