package nixgen_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// The generated modules are evaluated by real Nix against stubs written
// here: lib.mkForce and friends return tagged sets shaped like the
// model's own JSON ({"__nix": "force", "value": ...}), pkgs.<x> is a
// marker {"__nix": "pkg", "name": "x"}, and `clean` turns paths into
// "path:<relative path>" strings and functions into "<function>" so that
// the result can be compared as JSON without touching the Nix store.
const stubsNix = `{ root, pkgNames, secretNames }:
let
  tag = t: v: { __nix = t; value = v; };
  lib = {
    mkForce = tag "force";
    mkDefault = tag "default";
    mkBefore = tag "before";
    mkAfter = tag "after";
    mkMerge = contents: { __nix = "merge"; inherit contents; };
  };
  # pkgs.<a>.<b> for every dotted name the fleet uses.
  setAt = path: value: if path == [ ] then value else { ${builtins.head path} = setAt (builtins.tail path) value; };
  merge = a: b: a // builtins.mapAttrs (n: v: if a ? ${n} && builtins.isAttrs v && builtins.isAttrs a.${n} && !(v ? __nix) then merge a.${n} v else v) b;
  pkgs = builtins.foldl' (acc: name: merge acc (setAt (builtins.filter builtins.isString (builtins.split "\\." name)) { __nix = "pkg"; inherit name; })) { } pkgNames;
  module = input: kind: name: "module:" + input + "." + kind + "." + name;
  inputs = {
    __stubInputs = true;
    home-manager = { nixosModules.home-manager = module "home-manager" "nixosModules" "home-manager"; darwinModules.home-manager = module "home-manager" "darwinModules" "home-manager"; };
    agenix = { nixosModules.default = module "agenix" "nixosModules" "default"; darwinModules.default = module "agenix" "darwinModules" "default"; };
  };
  prefix = builtins.stringLength root + 1;
  clean = v:
    let t = builtins.typeOf v; in
    if t == "path" then "path:" + builtins.substring prefix 100000 (toString v)
    else if t == "set" && v ? __stubInputs then "<inputs>"
    else if t == "set" then builtins.mapAttrs (n: clean) v
    else if t == "list" then map clean v
    else if t == "lambda" then "<function>"
    else v;
  # what machine files read of config: where agenix puts each secret
  config.age.secrets = builtins.listToAttrs (map (name: { inherit name; value.path = "/run/agenix/" + name; }) secretNames);
  call = file: clean (import file { inherit config lib pkgs inputs; });
in
{ inherit call clean config lib pkgs inputs; }
`

// evalNix evaluates src (a file in dir) with --strict --json into out.
func evalNix(t testing.TB, dir, src string, out any) error {
	t.Helper()
	bin := testtool.Require(t, "nix-instantiate", "nix-bin")
	file := filepath.Join(dir, fmt.Sprintf("test-%d.nix", len(src)))
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// The dummy store: a path in a string (a tmpfiles rule) gets its
	// store path computed, and nothing is written to /nix/store.
	cmd := exec.Command(bin, "--store", "dummy://", "--eval", "--strict", "--json", file)
	cmd.Env = nixEnv(t)
	b, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return fmt.Errorf("%v\n%s", err, ee.Stderr)
		}
		return err
	}
	return json.Unmarshal(b, out)
}

// stubEnv writes the tree and the stubs to a temporary folder and returns
// it with the Nix expression that loads the stubs.
func stubEnv(t *testing.T, f *model.Fleet, files []nixgen.File) (dir, stubs string) {
	t.Helper()
	dir = t.TempDir()
	testtool.WriteFiles(t, dir, files)
	if err := os.WriteFile(filepath.Join(dir, "stubs.nix"), []byte(stubsNix), 0o644); err != nil {
		t.Fatal(err)
	}
	names, _ := json.Marshal(f.PackageNames())
	var secretNames []string
	for _, s := range f.Secrets {
		for _, file := range s.Files {
			if file.Secret {
				secretNames = append(secretNames, nixgen.SecretName(s, file))
			}
		}
	}
	secrets, _ := json.Marshal(secretNames)
	return dir, fmt.Sprintf("(import ./stubs.nix { root = %q; pkgNames = builtins.fromJSON %q; secretNames = builtins.fromJSON %q; })",
		dir, string(names), string(secrets))
}

// stubbed evaluates a fleet, generates its tree and lays it out with the
// stubs (see stubEnv).
func stubbed(t *testing.T, file string) (f *model.Fleet, files []nixgen.File, dir, stubs string) {
	t.Helper()
	f = evalFleet(t, file)
	testtool.StandInSecrets(t, f)
	files, err := nixgen.Generate(f)
	if err != nil {
		t.Fatal(err)
	}
	dir, stubs = stubEnv(t, f, files)
	return f, files, dir, stubs
}

// exprValues evaluates the fleet's raw nix.expr values against the stubs;
// an expression that needs more than the stubs have (config.boot...) is
// absent from the result, and the modules holding it are not compared.
func exprValues(t *testing.T, dir, stubs string, f *model.Fleet) map[string]any {
	out := map[string]any{}
	f.WalkValues(func(v model.Value) {
		e, ok := v.(model.Expr)
		if !ok {
			return
		}
		if _, done := out[e.Code]; done {
			return
		}
		var got any
		src := fmt.Sprintf("let s = %s; in s.clean (let inherit (s) lib pkgs inputs; config = { }; in (%s))", stubs, e.Code)
		if err := evalNix(t, dir, src, &got); err != nil {
			t.Logf("nix.expr(%q) needs more than the stubs provide; its modules are not compared", e.Code)
			return
		}
		out[e.Code] = got
	})
	return out
}

// expect builds the JSON a model value should evaluate to under the stubs.
// ok is false when it holds a raw expression the stubs cannot evaluate.
type expect struct {
	exprs map[string]any
}

func (x expect) value(v model.Value) (any, bool) {
	switch v := v.(type) {
	case model.Expr:
		got, ok := x.exprs[v.Code]
		return got, ok
	case model.Pkg:
		return map[string]any{"__nix": "pkg", "name": v.Name}, true
	case model.Path:
		return "path:files/" + v.Path, true
	case model.Priority:
		inner, ok := x.value(v.Value)
		return map[string]any{"__nix": v.Fn, "value": inner}, ok
	case model.List:
		out := []any{}
		ok := true
		for _, e := range v {
			y, k := x.value(e)
			out, ok = append(out, y), ok && k
		}
		return out, ok
	case *model.Attrs:
		out := map[string]any{}
		ok := true
		for _, b := range v.Bindings {
			y, k := x.value(b.Value)
			out[b.Name], ok = y, ok && k
		}
		return out, ok
	}
	b, _ := model.MarshalValue(v)
	var out any
	json.Unmarshal(b, &out)
	return out, true
}

// set puts value at path in m, merging sets and turning any other
// collision into {"__nix": "merge", "contents": [old, new]}, which is
// what the generator promises (lib.mkMerge [ old new ]).
func set(m map[string]any, value any, path ...string) {
	old, exists := m[path[0]]
	if len(path) > 1 {
		if !exists {
			old = map[string]any{}
			m[path[0]] = old
		}
		if child, ok := old.(map[string]any); ok && child["__nix"] == nil {
			set(child, value, path[1:]...)
			return
		}
		nested := map[string]any{}
		set(nested, value, path[1:]...)
		value = nested
	}
	if !exists {
		m[path[0]] = value
		return
	}
	oldSet, ok1 := old.(map[string]any)
	newSet, ok2 := value.(map[string]any)
	if ok1 && ok2 && oldSet["__nix"] == nil && newSet["__nix"] == nil {
		for k, v := range newSet {
			set(oldSet, v, k)
		}
		return
	}
	m[path[0]] = map[string]any{"__nix": "merge", "contents": []any{old, value}}
}

func pkgList(names []string) []any {
	out := []any{}
	for _, n := range names {
		out = append(out, map[string]any{"__nix": "pkg", "name": n})
	}
	return out
}

// TestModulesEvaluate applies every generated module of every pinned
// fleet to the stubs and compares the result with what the model says.
func TestModulesEvaluate(t *testing.T) {
	testtool.Require(t, "nix-instantiate", "nix-bin")
	for name, file := range fleets(t) {
		t.Run(name, func(t *testing.T) {
			f, files, dir, stubs := stubbed(t, file)
			x := expect{exprs: exprValues(t, dir, stubs, f)}
			have := map[string]bool{}
			for _, fl := range files {
				have[fl.Path] = true
			}

			want := map[string]any{}
			skip := map[string]bool{}
			add := func(path string, v map[string]any, ok bool) {
				if !have[path] {
					t.Errorf("%s was not generated", path)
					return
				}
				if !ok {
					skip[path] = true
					return
				}
				want[path] = v
			}
			for _, ft := range f.Features {
				for _, c := range []model.Class{model.NixOS, model.Darwin, model.Home} {
					path := "modules/" + string(c) + "/" + ft.Name + ".nix"
					if !have[path] {
						continue
					}
					m, ok := x.module(f, ft, c, have)
					add(path, m, ok)
				}
			}
			for _, m := range f.Machines {
				v, ok := x.machine(f, m, have)
				add("machines/"+string(m.Class)+"/"+m.Name+".nix", v, ok)
				if p := "homes/machines/" + m.Name + ".nix"; have[p] {
					v, ok := x.value(m.Home)
					add(p, v.(map[string]any), ok)
				}
			}
			for _, u := range f.Users {
				if p := "homes/users/" + u.Name + ".nix"; have[p] {
					add(p, userHome(f, u, have), true)
				}
			}
			for _, fl := range files {
				if (strings.HasPrefix(fl.Path, "modules/") || strings.HasPrefix(fl.Path, "machines/") || strings.HasPrefix(fl.Path, "homes/")) && want[fl.Path] == nil && !skip[fl.Path] {
					t.Errorf("%s: generated, but the model does not call for it", fl.Path)
				}
			}

			var b strings.Builder
			fmt.Fprintf(&b, "let s = %s; in {\n", stubs)
			paths := make([]string, 0, len(want))
			for p := range want {
				paths = append(paths, p)
			}
			sort.Strings(paths)
			for _, p := range paths {
				fmt.Fprintf(&b, "  %q = s.call ./%s;\n", p, p)
			}
			b.WriteString("}\n")
			var got map[string]any
			if err := evalNix(t, dir, b.String(), &got); err != nil {
				t.Fatal(err)
			}
			for _, p := range paths {
				if !reflect.DeepEqual(storeNames(normalize(got[p])), normalize(want[p])) {
					g, _ := json.MarshalIndent(got[p], "", "  ")
					w, _ := json.MarshalIndent(want[p], "", "  ")
					t.Errorf("%s evaluates to\n%s\nwant\n%s", p, g, w)
				}
			}
			t.Logf("compared %d modules, skipped %d with raw expressions the stubs cannot evaluate", len(paths), len(skip))
		})
	}
}

var storePathRE = regexp.MustCompile(`/nix/store/[0-9a-z]{32}-`)

// storeNames writes the store paths in v's strings as "store:<name>": the
// hash depends on the file's contents, the name on the rule under test.
func storeNames(v any) any {
	switch x := v.(type) {
	case string:
		return storePathRE.ReplaceAllString(x, "store:")
	case []any:
		for i := range x {
			x[i] = storeNames(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = storeNames(x[k])
		}
	}
	return v
}

// normalize round-trips through JSON so numbers and maps compare alike.
func normalize(v any) any {
	b, _ := json.Marshal(v)
	var out any
	json.Unmarshal(b, &out)
	return out
}

// module is the expected value of a feature's module of class c.
func (x expect) module(f *model.Fleet, ft *model.Feature, c model.Class, have map[string]bool) (map[string]any, bool) {
	m := map[string]any{}
	ok := true
	if cfg := ft.Config(c); cfg != nil {
		v, k := x.value(cfg)
		m, ok = v.(map[string]any), k
	}
	var imports []any
	for _, r := range ft.Requires {
		if p := "modules/" + string(c) + "/" + r + ".nix"; have[p] {
			imports = append(imports, "path:"+p)
		}
	}
	if c != model.Home {
		if ft.NixOS == nil && ft.Darwin == nil || ft.Config(c) != nil {
			for _, h := range ft.Modules {
				imports = append(imports, "path:files/"+h)
			}
		}
		if len(ft.Packages) > 0 {
			set(m, pkgList(ft.Packages), "environment", "systemPackages")
		}
	}
	if len(imports) > 0 {
		m["imports"] = imports
	}
	return m, ok
}

func (x expect) machine(f *model.Fleet, m *model.Machine, have map[string]bool) (map[string]any, bool) {
	out := map[string]any{}
	var imports []any
	for _, ft := range m.Features {
		if p := "modules/" + string(m.Class) + "/" + ft + ".nix"; have[p] {
			imports = append(imports, "path:"+p)
		}
	}
	kind := "nixosModules"
	if m.Class == model.Darwin {
		kind = "darwinModules"
	}
	set(out, m.Name, "networking", "hostName")
	set(out, m.System, "nixpkgs", "hostPlatform")
	if c := f.Cache; c != nil {
		set(out, []any{c.URL}, "nix", "settings", "substituters")
		set(out, []any{c.PublicKey}, "nix", "settings", "trusted-public-keys")
	}
	deploy := m.DeployUser()
	var known []any
	for _, name := range m.Users {
		u := f.User(name)
		acct := map[string]any{}
		if m.Class == model.NixOS {
			acct["isNormalUser"] = true
			if len(u.Groups) > 0 {
				acct["extraGroups"] = u.Groups
			}
			if s := f.Secret(u.PasswordHash); s != nil && contains(s.Machines, m.Name) {
				acct["hashedPasswordFile"] = "/run/agenix/" + u.PasswordHash
			}
		} else {
			acct["home"] = "/Users/" + name
			if u.UIDFor(model.Darwin) != 0 {
				known = append(known, name)
			}
		}
		if u.Description != "" {
			acct["description"] = u.Description
		}
		if uid := u.UIDFor(m.Class); uid != 0 {
			acct["uid"] = uid
		}
		if u.Shell != "" {
			acct["shell"] = map[string]any{"__nix": "pkg", "name": u.Shell}
		}
		keys := append([]string(nil), u.SSHKeys...)
		if name == deploy {
			for _, k := range f.AdminSSHKeys() {
				if !contains(keys, k) {
					keys = append(keys, k)
				}
			}
		}
		if len(keys) > 0 {
			set(acct, keys, "openssh", "authorizedKeys", "keys")
		}
		set(out, acct, "users", "users", name)
	}
	if deploy == "root" && m.Class == model.NixOS && len(f.AdminSSHKeys()) > 0 {
		set(out, f.AdminSSHKeys(), "users", "users", "root", "openssh", "authorizedKeys", "keys")
	}
	if len(known) > 0 {
		set(out, known, "users", "knownUsers")
	}
	if m.StateVersion != "" {
		var sv any = m.StateVersion
		if m.Class == model.Darwin {
			n, _ := strconv.Atoi(m.StateVersion)
			sv = n
		}
		set(out, sv, "system", "stateVersion")
	}
	// Home-manager: the machine's shared home modules, each user's own.
	var shared []any
	for _, ft := range m.Features {
		if p := "modules/home/" + ft + ".nix"; have[p] {
			shared = append(shared, "path:"+p)
		}
	}
	if p := "homes/machines/" + m.Name + ".nix"; have[p] {
		shared = append(shared, "path:"+p)
	}
	anyUserHome := false
	users := map[string]any{}
	for _, name := range m.Users {
		users[name] = map[string]any{}
		if have["homes/users/"+name+".nix"] {
			users[name] = "path:homes/users/" + name + ".nix" // the module file itself
			anyUserHome = true
		}
	}
	if len(m.Users) > 0 && (len(shared) > 0 || anyUserHome) {
		imports = append(imports, "module:home-manager."+kind+".home-manager")
		hm := map[string]any{"useGlobalPkgs": true, "useUserPackages": true, "extraSpecialArgs": map[string]any{"inputs": "<inputs>"}, "users": users}
		if len(shared) > 0 {
			hm["sharedModules"] = shared
		}
		set(out, hm, "home-manager")
	}
	secrets := map[string]any{}
	var rules []any
	for _, s := range f.Secrets {
		if !contains(s.Machines, m.Name) {
			continue
		}
		for _, file := range s.Files {
			target, hasPath := s.Paths[file.Name]
			if !file.Secret {
				if hasPath && m.Class == model.NixOS {
					stored := strings.TrimSuffix(nixgen.SecretPath(s, m.Name, file), ".age")
					rules = append(rules, "L+ "+target+" - - - - store:"+path.Base(stored))
				}
				continue
			}
			entry := map[string]any{
				"file": "path:" + nixgen.SecretPath(s, m.Name, file), "mode": s.Mode, "owner": s.Owner, "group": s.Group,
			}
			if hasPath {
				entry["path"] = target
			}
			secrets[nixgen.SecretName(s, file)] = entry
		}
	}
	if len(secrets) > 0 {
		imports = append(imports, "module:agenix."+kind+".default")
		set(out, secrets, "age", "secrets")
		set(out, []any{nixgen.HostKeyPath}, "age", "identityPaths")
	}
	if len(rules) > 0 {
		set(out, rules, "systemd", "tmpfiles", "rules")
	}
	// restart_units: each unit's triggers are the hashes of the stored
	// files of the secrets that restart it (files not generated: none).
	if m.Class == model.NixOS {
		triggers := map[string]map[string][]any{}
		for _, s := range f.Secrets {
			if !contains(s.Machines, m.Name) {
				continue
			}
			for _, u := range s.RestartUnits {
				kind, name, _ := model.SplitUnit(u)
				for _, file := range s.Files {
					data, err := os.ReadFile(filepath.Join(f.Root, nixgen.SecretPath(s, m.Name, file)))
					if !file.Secret || err != nil {
						continue
					}
					if triggers[kind] == nil {
						triggers[kind] = map[string][]any{}
					}
					sum := sha256.Sum256(data)
					triggers[kind][name] = append(triggers[kind][name], "sha256:"+hex.EncodeToString(sum[:])+" "+nixgen.SecretName(s, file))
				}
			}
		}
		for kind, units := range triggers {
			for name, ts := range units {
				set(out, ts, "systemd", kind, name, "restartTriggers")
			}
		}
	}
	ok := true
	if cfg := m.Config(); cfg != nil {
		v, k := x.value(cfg)
		ok = k
		for key, val := range v.(map[string]any) {
			set(out, val, key)
		}
	}
	if len(imports) > 0 {
		out["imports"] = imports
	}
	return out, ok
}

// userHome is the expected homes/users/<user>.nix.
func userHome(f *model.Fleet, u *model.User, have map[string]bool) map[string]any {
	out := map[string]any{}
	var imports []any
	for _, ft := range u.Home {
		if p := "modules/home/" + ft + ".nix"; have[p] {
			imports = append(imports, "path:"+p)
		}
	}
	if pk := f.HomePackages(u.Home); len(pk) > 0 {
		set(out, pkgList(pk), "home", "packages")
	}
	if len(imports) > 0 {
		out["imports"] = imports
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
