package builtins

import (
	"testing"

	"go.starlark.net/starlark"
)

// exec runs src as a fleet file with a fresh recorder and returns its
// globals and the recorder.
func exec(t *testing.T, src string) (starlark.StringDict, *Recorder) {
	t.Helper()
	r := NewRecorder(nil)
	thread := &starlark.Thread{Name: "test.star"}
	Attach(thread, r, FleetModule)
	g, err := starlark.ExecFile(thread, "test.star", src, Predeclared())
	if err != nil {
		if ee, ok := err.(*starlark.EvalError); ok {
			t.Fatal(ee.Backtrace())
		}
		t.Fatal(err)
	}
	return g, r
}

// Declared values expose what was declared, as Starlark values.
func TestDeclAttributes(t *testing.T) {
	g, _ := exec(t, `
base = feature("base", nixos = {"a.b": 1, "c": nix.force(True)}, packages = ["git"], requires = ["z", "y"])
alice = user("alice", uid = 1000, groups = ["wheel"], home = [base])
m = machine("cinnabar", system = "x86_64-linux", state_version = "26.05", tags = ["b", "a"], features = [base, "ssh"], users = [alice],
    host = hetzner.server(type = "cx43", location = "fsn1", enabled = False))
s = secret("pw", machines = "@a", generate = gen.passphrase(words = 5), shared = True)
results = {
    "str": str(m),
    "type": type(m),
    "name": m.name,
    "kind": m.kind,
    "tags": m.tags,
    "features": m.features,
    "users": m.users,
    "host": str(m.host),
    "host.enabled": m.host.enabled,
    "host.type": m.host.type,
    "requires": base.requires,
    "nixos": base.nixos["a"]["b"],
    "force": str(base.nixos["c"]),
    "alice.home": alice.home,
    "secret.generate": str(s.generate),
    "secret.files": s.files,
    "pkg": str(nix.pkg("python3Packages.requests")),
    "dict key": {m: 1}[m],
}
`)
	want := map[string]string{
		"str":             `"machine(\"cinnabar\")"`,
		"type":            `"machine"`,
		"name":            `"cinnabar"`,
		"kind":            `"nixos"`,
		"tags":            `["a", "b"]`,
		"features":        `["base", "ssh"]`,
		"users":           `["alice"]`,
		"host":            `"hetzner.server(enabled = False, location = \"fsn1\", type = \"cx43\")"`,
		"host.enabled":    `False`,
		"host.type":       `"cx43"`,
		"requires":        `["y", "z"]`,
		"nixos":           `1`,
		"force":           `"nix.force(True)"`,
		"alice.home":      `["base"]`,
		"secret.generate": `"gen.passphrase(separator = \"-\", words = 5)"`,
		"secret.files":    `["value"]`,
		"pkg":             `"nix.pkg(\"python3Packages.requests\")"`,
		"dict key":        `1`,
	}
	results := g["results"].(*starlark.Dict)
	for k, w := range want {
		v, found, _ := results.Get(starlark.String(k))
		if !found {
			t.Errorf("%s: missing", k)
			continue
		}
		if got := v.String(); got != w {
			t.Errorf("%s = %s, want %s", k, got, w)
		}
	}
}

// Declared values are frozen: a library cannot change what a fleet declared.
func TestDeclFrozen(t *testing.T) {
	r := NewRecorder(nil)
	thread := &starlark.Thread{Name: "test.star"}
	Attach(thread, r, FleetModule)
	_, err := starlark.ExecFile(thread, "test.star", `
m = machine("a", system = "x86_64-linux", state_version = "26.05", tags = ["x"])
m.tags.append("y")
`, Predeclared())
	if err == nil {
		t.Fatal("appending to a declared machine's tags succeeded")
	}
}

func TestNearest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cands []string
		want  string
	}{
		{"sytem", []string{"system", "tags"}, "system"},
		{"bsae", []string{"base", "ssh"}, "base"},
		{"completely-different", []string{"base", "ssh"}, ""},
		{"x86_64-linx", []string{"x86_64-linux", "aarch64-linux"}, "x86_64-linux"},
	} {
		if got := Nearest(tc.name, tc.cands); got != tc.want {
			t.Errorf("Nearest(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
