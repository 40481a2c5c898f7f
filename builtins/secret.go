package builtins

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// secretGroup is secret() and the gen module. Declaring a secret records
// who reads it and how it is made; no value exists at evaluation time.
func secretGroup() []Builtin {
	gen := func(name, sig, text string, fn func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error)) Builtin {
		return Builtin{Fn: fn, Doc: Doc{Name: "gen." + name, Group: "secrets", Signature: "gen." + sig, Text: text}}
	}
	return []Builtin{
		{Fn: builtinSecret, Doc: Doc{Name: "secret", Group: "secrets",
			Signature: `secret(name, machines = None, shared = False, generate = gen.prompt(), files = {}, needed_for = "services", owner = "root", group = "root", mode = "0400", restart_units = [], depends = [], paths = {})`,
			Text: `Declares a secret. machines is a selector ("cinnabar", "@cloud", "elec*", "all") or a
list of them: the machines that can decrypt it, besides the fleet's admins. A
per-machine secret (the default) is generated once for each machine, under
secrets/<machine>/<name>/; shared = True generates one value under secrets/shared/<name>/
for all of them. A shared secret without machines is read by the admins only (an API
token that fleet itself uses).

generate says how the value is made (gen.*). files renames a generator's outputs:
{"key": "ssh_host_ed25519_key"}. needed_for is when the machine needs it:
"activation", "users" (before user accounts, e.g. password hashes) or "services".
owner, group and mode set the decrypted file's ownership; restart_units are systemd
units (services, sockets, timers, paths) restarted by the activation that changes it.
They are NixOS only, and refused on a secret nix-darwin machines read: their services
are launchd daemons, which nothing restarts when a secret changes. depends are secrets
whose values the generator uses.

paths puts files where the program that reads them looks: {"identity.secret":
"/var/lib/zerotier-one/identity.secret"} (stored file names, absolute paths). An
encrypted file is linked there by agenix (age.secrets.<name>.path); elsewhere it is at
/run/agenix/<name>. A public file (a .pub output) is deployed only when it has a
path: from the Nix store, by systemd-tmpfiles on NixOS, under /etc/ on nix-darwin.`}},
		gen("password", `password(length = 32)`, `A random password of letters and digits. Output: value.`, genPassword),
		gen("passphrase", `passphrase(words = 6, separator = "-")`, `A passphrase of random words from a word list. Output: value.`, genPassphrase),
		gen("hex", `hex(bytes = 32)`, `Random bytes, hex encoded. Output: value.`, genHex),
		gen("ssh_keypair", `ssh_keypair()`, `An ed25519 ssh key pair. Outputs: key (secret), key.pub (public, stored in plain text).`, genKeypair("ssh_keypair")),
		gen("age_keypair", `age_keypair()`, `An age X25519 identity. Outputs: key (secret), key.pub (the recipient, public).`, genKeypair("age_keypair")),
		gen("wireguard_keypair", `wireguard_keypair()`, `A WireGuard key pair. Outputs: key (secret), key.pub (public).`, genKeypair("wireguard_keypair")),
		gen("prompt", `prompt(type = "hidden", label = "", help = "")`, `Asks a person on a terminal: type "hidden" (not echoed), "line" or "multiline". Output: value.`, genPrompt),
		gen("command", `command(argv, outputs)`, `Runs argv in a private temporary folder ($out) and collects the files named in outputs;
outputs ending in .pub are public, the rest secret. The folder is removed afterwards (also
when fleet is stopped with Ctrl-C or SIGTERM, which kill the program's process group; after a
kill -9 the next fleet run removes it).
The values of the secrets it depends on are files $in/<secret>/<file>, in a second private folder.
In argv, fleet replaces only the words $out and $in, alone or followed by / ($out/key, $in/db/value),
and ${out} and ${in}; anything else, such as a script's own $input or $index, is left as written.
Both folders are also in the program's environment as out and in, so a shell script may use "$out".`, genCommand),
	}
}

// secretDecl is a secret as declared; its selector is resolved against the
// machines once the whole fleet is known.
type secretDecl struct {
	s    *model.Secret
	sels selectors
}

var neededFor = []string{"activation", "users", "services"}

func builtinSecret(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	r, err := declare(thread, b.Name())
	if err != nil {
		return nil, err
	}
	var name string
	var sels selectors
	var shared bool
	generate := valueOf[*GenValue]{want: "a generator such as gen.password()"}
	var files, paths stringMap
	s := &model.Secret{NeededFor: "services", Owner: "root", Group: "root", Mode: "0400"}
	var restart stringList
	depends := refList{kind: "secret"}
	if err := unpack(b.Name(), args, kwargs, "name", &name, "machines??", &sels, "shared?", &shared,
		"generate??", &generate, "files?", &files, "needed_for?", &s.NeededFor, "owner?", &s.Owner,
		"group?", &s.Group, "mode?", &s.Mode, "restart_units?", &restart, "depends?", &depends, "paths?", &paths); err != nil {
		return nil, err
	}
	if err := checkName("secret", name, identNameRE, "it becomes a folder name: use letters, digits, '_' and '-'"); err != nil {
		return nil, err
	}
	if len(sels) == 0 && !shared {
		return nil, fmt.Errorf("secret %s: say which machines read it: machines = \"name\", \"@tag\", \"glob*\" or \"all\"; "+
			"or shared = True without machines for a secret only the admins read (an API token fleet itself uses)", name)
	}
	if !contains(neededFor, s.NeededFor) {
		return nil, fmt.Errorf("secret %s: needed_for = %q: use one of %s%s", name, s.NeededFor,
			strings.Join(neededFor, ", "), DidYouMean(s.NeededFor, neededFor))
	}
	if len(s.Mode) != 4 || strings.Trim(s.Mode, "01234567") != "" {
		return nil, fmt.Errorf("secret %s: mode = %q: write an octal mode like \"0400\"", name, s.Mode)
	}
	units := map[string]string{}
	for _, u := range restart {
		kind, unit, ok := model.SplitUnit(u)
		if !ok || !restartUnitRE.MatchString(u) {
			return nil, fmt.Errorf("secret %s: restart_units: %q is not a unit fleet can restart: name a service, socket, timer or path unit (\"nginx.service\"; no suffix means a service)", name, u)
		}
		if prev, dup := units[kind+"."+unit]; dup {
			return nil, fmt.Errorf("secret %s: restart_units names one unit twice: %q and %q", name, prev, u)
		}
		units[kind+"."+unit] = u
	}
	if !generate.set {
		generate.v = newGen("prompt", map[string]model.Value{"type": model.String("hidden"), "label": model.String(name)},
			[]model.SecretFile{{Output: "value", Secret: true}})
	}
	out, err := secretFiles(generate.v, files)
	if err != nil {
		return nil, fmt.Errorf("secret %s: files: %w", name, err)
	}
	if err := checkSecretPaths(out, paths); err != nil {
		return nil, fmt.Errorf("secret %s: paths: %w", name, err)
	}
	if len(paths) > 0 {
		s.Paths = paths
	}
	deps, dup := sortedUnique(depends.names)
	if dup != "" {
		return nil, fmt.Errorf("secret %s: depends names %q twice", name, dup)
	}
	s.Name, s.Shared, s.Generator, s.Files, s.RestartUnits, s.Depends = name, shared, generate.v.gen, out, restart, deps
	s.Pos = callerPos(thread)
	strs := make([]string, len(sels))
	for i, x := range sels {
		strs[i] = string(x)
	}
	s.Selector = strings.Join(strs, ", ")
	r.secrets = append(r.secrets, &secretDecl{s: s, sels: sels})
	fileNames := make([]string, len(out))
	for i, f := range out {
		fileNames[i] = f.Name
	}
	return newDecl("secret", name, starlark.StringDict{
		"shared":     starlark.Bool(shared),
		"machines":   strList(strs),
		"generate":   generate.v,
		"files":      strList(fileNames),
		"needed_for": starlark.String(s.NeededFor),
		"owner":      starlark.String(s.Owner),
		"group":      starlark.String(s.Group),
		"mode":       starlark.String(s.Mode),
		"depends":    strList(deps),
	}), nil
}

// secretFiles applies files = {output: stored name} to a generator's outputs.
func secretFiles(g *GenValue, rename map[string]string) ([]model.SecretFile, error) {
	known := make([]string, len(g.outputs))
	for i, o := range g.outputs {
		known[i] = o.Output
	}
	for k := range rename {
		if !contains(known, k) {
			return nil, fmt.Errorf("%s produces %s, not %q%s", g.gen.Kind, strings.Join(known, ", "), k, DidYouMean(k, known))
		}
	}
	out := make([]model.SecretFile, len(g.outputs))
	seen := map[string]bool{}
	for i, o := range g.outputs {
		o.Name = o.Output
		if n, ok := rename[o.Output]; ok {
			o.Name = n
		}
		if o.Name == "" || strings.ContainsAny(o.Name, "/\\") || o.Name == "." || o.Name == ".." {
			return nil, fmt.Errorf("file name %q must be a plain file name", o.Name)
		}
		if seen[o.Name] {
			return nil, fmt.Errorf("two outputs are stored as %q", o.Name)
		}
		seen[o.Name] = true
		out[i] = o
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// newGen builds a generator value; params are sorted into an Attrs.
func newGen(kind string, params map[string]model.Value, outputs []model.SecretFile) *GenValue {
	a := &model.Attrs{}
	kw := map[string]string{}
	for k, v := range params {
		_ = a.Set([]string{k}, v)
		kw[k] = fmt.Sprint(FromValue(v))
	}
	return &GenValue{gen: &model.Generator{Kind: kind, Params: nonEmpty(a)}, outputs: outputs, repr: callRepr("gen."+kind, nil, kw)}
}

func genPassword(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	length := 32
	if err := unpack(b.Name(), args, kwargs, "length?", &length); err != nil {
		return nil, err
	}
	if length < 8 || length > 1024 {
		return nil, fmt.Errorf("gen.password: length = %d: use 8 to 1024", length)
	}
	return newGen("password", map[string]model.Value{"length": model.Int(length)}, []model.SecretFile{{Output: "value", Secret: true}}), nil
}

func genPassphrase(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	words, sep := 6, "-"
	if err := unpack(b.Name(), args, kwargs, "words?", &words, "separator?", &sep); err != nil {
		return nil, err
	}
	if words < 3 || words > 64 {
		return nil, fmt.Errorf("gen.passphrase: words = %d: use 3 to 64", words)
	}
	return newGen("passphrase", map[string]model.Value{"words": model.Int(words), "separator": model.String(sep)},
		[]model.SecretFile{{Output: "value", Secret: true}}), nil
}

func genHex(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	n := 32
	if err := unpack(b.Name(), args, kwargs, "bytes?", &n); err != nil {
		return nil, err
	}
	if n < 1 || n > 4096 {
		return nil, fmt.Errorf("gen.hex: bytes = %d: use 1 to 4096", n)
	}
	return newGen("hex", map[string]model.Value{"bytes": model.Int(n)}, []model.SecretFile{{Output: "value", Secret: true}}), nil
}

func genKeypair(kind string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		if err := unpack(b.Name(), args, kwargs); err != nil {
			return nil, err
		}
		return newGen(kind, nil, []model.SecretFile{{Output: "key", Secret: true}, {Output: "key.pub"}}), nil
	}
}

var promptTypes = []string{"hidden", "line", "multiline"}

func genPrompt(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	typ, label, help := "hidden", "", ""
	if err := unpack(b.Name(), args, kwargs, "type?", &typ, "label?", &label, "help?", &help); err != nil {
		return nil, err
	}
	if !contains(promptTypes, typ) {
		return nil, fmt.Errorf("gen.prompt: type = %q: use one of %s%s", typ, strings.Join(promptTypes, ", "), DidYouMean(typ, promptTypes))
	}
	params := map[string]model.Value{"type": model.String(typ)}
	if label != "" {
		params["label"] = model.String(label)
	}
	if help != "" {
		params["help"] = model.String(help)
	}
	return newGen("prompt", params, []model.SecretFile{{Output: "value", Secret: true}}), nil
}

func genCommand(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var argv, outputs stringList
	if err := unpack(b.Name(), args, kwargs, "argv", &argv, "outputs", &outputs); err != nil {
		return nil, err
	}
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("gen.command: argv is empty: give the program and its arguments")
	}
	if len(outputs) == 0 {
		return nil, fmt.Errorf("gen.command: outputs is empty: name the files the program writes into $out")
	}
	files := make([]model.SecretFile, len(outputs))
	for i, o := range outputs {
		if o == "" || strings.ContainsAny(o, "/\\") {
			return nil, fmt.Errorf("gen.command: output %q must be a plain file name", o)
		}
		files[i] = model.SecretFile{Output: o, Secret: !strings.HasSuffix(o, ".pub")}
	}
	argvList := make(model.List, len(argv))
	for i, a := range argv {
		argvList[i] = model.String(a)
	}
	outList := make(model.List, len(outputs))
	for i, o := range outputs {
		outList[i] = model.String(o)
	}
	return newGen("command", map[string]model.Value{"argv": argvList, "outputs": outList}, files), nil
}

// checkSecretPaths accepts paths = {stored file: absolute path}.
func checkSecretPaths(files []model.SecretFile, paths map[string]string) error {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(paths)) {
		p := paths[k]
		if !contains(names, k) {
			return fmt.Errorf("%q is no file of this secret (its files: %s)%s", k, strings.Join(names, ", "), DidYouMean(k, names))
		}
		if !path.IsAbs(p) || path.Clean(p) != p || strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return fmt.Errorf("%s: %q: write an absolute, clean path without spaces or control characters", k, p)
		}
		if prev, ok := seen[p]; ok {
			return fmt.Errorf("%s and %s both go to %s", prev, k, p)
		}
		seen[p] = k
	}
	return nil
}
