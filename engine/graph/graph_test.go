package graph

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/testtool"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func pos(line int) model.Pos { return model.Pos{File: "fleet.star", Line: line, Col: 1} }

// smallFleet has one of everything, including two overrides of the same
// package and an input that follows a channel.
func smallFleet() *model.Fleet {
	return &model.Fleet{
		Name: "small",
		Channels: []*model.Channel{
			{Name: "nixpkgs", URL: "github:NixOS/nixpkgs/nixos-unstable", Pos: pos(1)},
			{Name: "stable", URL: "github:NixOS/nixpkgs/nixos-26.05", Pos: pos(2)},
		},
		Inputs: []*model.Input{
			{Name: "home-manager", Follows: map[string]string{"nixpkgs": "nixpkgs"}, Flake: true, Pos: pos(3)},
			{Name: "nuenv", Follows: map[string]string{"nixpkgs": "nixpkgs", "hm": "home-manager", "systems": ""}, Flake: true, Pos: pos(4)},
		},
		Overlays: []*model.Overlay{
			{Kind: model.OverlayPatch, Name: "fix-openssl", Channel: "nixpkgs", Pos: pos(5)},
			{Kind: model.OverlayFallback, Name: "atuin", Channel: "stable", Pos: pos(6)},
			{Kind: model.OverlayPackage, Name: "my-tool", Pos: pos(7)},
			{Kind: model.OverlayOverride, Name: "mactop", Pos: pos(9)},
			{Kind: model.OverlayOverride, Name: "mactop", Pos: pos(8)},
			{Kind: model.OverlayFlake, Name: "nuenv", Input: "nuenv", Pos: pos(10)},
		},
		Features: []*model.Feature{
			{Name: "base", Pos: pos(11)},
			{Name: "development", Requires: []string{"shell"}, Pos: pos(12)},
			{Name: "shell", Pos: pos(13)},
			{Name: "ssh", Requires: []string{"base"}, Pos: pos(14)},
		},
		Users: []*model.User{
			{Name: "cameron", Home: []string{"development", "shell"}, Pos: pos(15)},
		},
		Machines: []*model.Machine{
			{Name: "cinnabar", System: "x86_64-linux", Class: model.NixOS,
				Features: []string{"base", "ssh"}, Users: []string{"cameron"},
				Host: &model.Host{Provider: model.Hetzner, Enabled: true, Pos: pos(17)}, Pos: pos(16)},
			{Name: "stibnite", System: "aarch64-darwin", Class: model.Darwin,
				Features: []string{"ssh", "development"}, Users: []string{"cameron"}, Pos: pos(18)},
		},
		Secrets: []*model.Secret{
			{Name: "ssh-host-key", Machines: []string{"cinnabar", "stibnite"}, Pos: pos(19)},
			{Name: "zerotier-identity", Machines: []string{"cinnabar"}, Depends: []string{"ssh-host-key"}, Pos: pos(20)},
		},
	}
}

func TestBuildEdges(t *testing.T) {
	g := mustBuild(t, smallFleet())
	want := []Edge{
		{"channel:patched", "overlay:patch:fix-openssl", EdgePatch},
		{"feature:development", "feature:shell", EdgeRequires},
		{"feature:ssh", "feature:base", EdgeRequires},
		{"input:home-manager", "channel:nixpkgs", EdgeFollows},
		{"input:nuenv", "channel:nixpkgs", EdgeFollows},
		{"input:nuenv", "input:home-manager", EdgeFollows},
		{"machine:cinnabar", "feature:base", EdgeFeature},
		{"machine:cinnabar", "feature:ssh", EdgeFeature},
		{"machine:cinnabar", "host:cinnabar", EdgeHost},
		{"machine:cinnabar", "secret:ssh-host-key", EdgeSecret},
		{"machine:cinnabar", "secret:zerotier-identity", EdgeSecret},
		{"machine:cinnabar", "user:cameron", EdgeUser},
		{"machine:stibnite", "feature:development", EdgeFeature},
		{"machine:stibnite", "feature:ssh", EdgeFeature},
		{"machine:stibnite", "secret:ssh-host-key", EdgeSecret},
		{"machine:stibnite", "user:cameron", EdgeUser},
		{"overlay:fallback:atuin", "channel:stable", EdgeChannel},
		{"overlay:flake:nuenv", "input:nuenv", EdgeInput},
		{"overlay:patch:fix-openssl", "channel:nixpkgs", EdgeChannel},
		{"secret:zerotier-identity", "secret:ssh-host-key", EdgeDepends},
		{"user:cameron", "feature:development", EdgeHome},
		{"user:cameron", "feature:shell", EdgeHome},
	}
	if got := g.Edges(); !slices.Equal(got, want) {
		t.Errorf("Edges() =\n%s\nwant\n%s", edgeLines(got), edgeLines(want))
	}
}

func edgeLines(es []Edge) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString("\t" + e.From + " -> " + e.To + " (" + string(e.Kind) + ")\n")
	}
	return b.String()
}

func TestNodes(t *testing.T) {
	g := mustBuild(t, smallFleet())
	tests := []struct {
		id   string
		kind NodeKind
		name string
		pos  model.Pos
	}{
		{"channel:nixpkgs", KindChannel, "nixpkgs", pos(1)},
		{"host:cinnabar", KindHost, "cinnabar", pos(17)},
		{"machine:cinnabar", KindMachine, "cinnabar", pos(16)},
		// The first declared of two overrides keeps the plain ID, whatever
		// the order of the slice.
		{"overlay:override:mactop", KindOverlay, "mactop", pos(8)},
		{"overlay:override:mactop#2", KindOverlay, "mactop", pos(9)},
		{"secret:zerotier-identity", KindSecret, "zerotier-identity", pos(20)},
	}
	for _, tt := range tests {
		n := g.Node(tt.id)
		if n == nil {
			t.Errorf("Node(%q) = nil", tt.id)
			continue
		}
		if n.ID != tt.id || n.Kind != tt.kind || n.Name != tt.name || n.Pos != tt.pos {
			t.Errorf("Node(%q) = %+v, want kind %s name %s pos %s", tt.id, *n, tt.kind, tt.name, tt.pos)
		}
	}
	if n := g.Node("machine:nope"); n != nil {
		t.Errorf("Node(unknown) = %+v, want nil", n)
	}
	if n := g.Node("host:stibnite"); n != nil {
		t.Errorf("a machine without Host has a host node: %+v", n)
	}
	nodes := g.Nodes()
	if len(nodes) != 21 { // 20 declarations and the channel "patched"
		t.Errorf("len(Nodes()) = %d, want 21", len(nodes))
	}
	if !slices.IsSortedFunc(nodes, func(a, b *Node) int { return strings.Compare(a.ID, b.ID) }) {
		t.Errorf("Nodes() is not sorted by ID")
	}
}

func TestTopo(t *testing.T) {
	g := mustBuild(t, smallFleet())
	want := []string{
		"channel:nixpkgs",
		"channel:stable",
		"feature:base",
		"feature:shell",
		"feature:development",
		"feature:ssh",
		"host:cinnabar",
		"input:home-manager",
		"input:nuenv",
		"overlay:fallback:atuin",
		"overlay:flake:nuenv",
		"overlay:override:mactop",
		"overlay:override:mactop#2",
		"overlay:package:my-tool",
		"overlay:patch:fix-openssl",
		"channel:patched",
		"secret:ssh-host-key",
		"secret:zerotier-identity",
		"user:cameron",
		"machine:cinnabar",
		"machine:stibnite",
	}
	if got := g.Topo(); !slices.Equal(got, want) {
		t.Errorf("Topo() =\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
	checkTopo(t, g)
}

// checkTopo verifies that every node comes after everything it depends on.
func checkTopo(t *testing.T, g *Graph) {
	t.Helper()
	rank := make(map[string]int)
	for i, id := range g.Topo() {
		rank[id] = i
	}
	for _, e := range g.Edges() {
		if rank[e.To] >= rank[e.From] {
			t.Errorf("Topo(): %s (%d) comes before its dependency %s (%d)", e.From, rank[e.From], e.To, rank[e.To])
		}
	}
}

// TestDeterministic builds the same fleet with every collection reversed
// and expects identical renderings.
func TestDeterministic(t *testing.T) {
	a := render(t, mustBuild(t, smallFleet()))
	f := smallFleet()
	slices.Reverse(f.Channels)
	slices.Reverse(f.Inputs)
	slices.Reverse(f.Overlays)
	slices.Reverse(f.Features)
	slices.Reverse(f.Machines)
	slices.Reverse(f.Secrets)
	for _, m := range f.Machines {
		slices.Reverse(m.Features)
	}
	b := render(t, mustBuild(t, f))
	for format := range a {
		if !bytes.Equal(a[format], b[format]) {
			t.Errorf("%s output depends on the order of the model's collections", format)
		}
	}
}

func TestNeighbours(t *testing.T) {
	g := mustBuild(t, smallFleet())
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"DependsOn(machine)", g.DependsOn("machine:cinnabar"),
			[]string{"feature:base", "feature:ssh", "host:cinnabar", "secret:ssh-host-key", "secret:zerotier-identity", "user:cameron"}},
		{"DependsOn(leaf)", g.DependsOn("feature:base"), nil},
		{"DependsOn(unknown)", g.DependsOn("feature:nope"), nil},
		{"Dependents(feature)", g.Dependents("feature:ssh"), []string{"machine:cinnabar", "machine:stibnite"}},
		{"Dependents(shared)", g.Dependents("feature:shell"), []string{"feature:development", "user:cameron"}},
		{"Dependents(secret)", g.Dependents("secret:ssh-host-key"),
			[]string{"machine:cinnabar", "machine:stibnite", "secret:zerotier-identity"}},
		{"Closure(machine)", g.Closure("machine:stibnite"),
			[]string{"feature:base", "feature:shell", "feature:development", "feature:ssh", "secret:ssh-host-key", "user:cameron", "machine:stibnite"}},
		{"Closure(two, repeated, unknown)", g.Closure("input:nuenv", "feature:ssh", "input:nuenv", "nope"),
			[]string{"channel:nixpkgs", "feature:base", "feature:ssh", "input:home-manager", "input:nuenv"}},
		{"Closure()", g.Closure(), []string{}},
	}
	for _, tt := range tests {
		if !slices.Equal(tt.got, tt.want) {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestCycles(t *testing.T) {
	features := func(fs ...*model.Feature) *model.Fleet { return &model.Fleet{Features: fs} }
	feat := func(name string, line int, requires ...string) *model.Feature {
		return &model.Feature{Name: name, Requires: requires, Pos: pos(line)}
	}
	tests := []struct {
		name  string
		fleet *model.Fleet
		want  []string // each error's message, then its notes
	}{
		{
			name:  "self",
			fleet: features(feat("a", 1, "a")),
			want: []string{
				`fleet.star:1:1: requires cycle: feature "a" -> feature "a"`,
				`	fleet.star:1:1: feature "a" requires feature "a"`,
			},
		},
		{
			name:  "two",
			fleet: features(feat("b", 1, "a"), feat("a", 2, "b")),
			want: []string{
				`fleet.star:2:1: requires cycle: feature "a" -> feature "b" -> feature "a"`,
				`	fleet.star:2:1: feature "a" requires feature "b"`,
				`	fleet.star:1:1: feature "b" requires feature "a"`,
			},
		},
		{
			name:  "three, with a dependent and a shortcut",
			fleet: features(feat("a", 1, "b"), feat("b", 2, "c", "x"), feat("c", 3, "a"), feat("x", 4, "y"), feat("y", 5, "b"), feat("top", 6, "a")),
			want: []string{
				`fleet.star:1:1: requires cycle: feature "a" -> feature "b" -> feature "c" -> feature "a"`,
				`	fleet.star:1:1: feature "a" requires feature "b"`,
				`	fleet.star:2:1: feature "b" requires feature "c"`,
				`	fleet.star:3:1: feature "c" requires feature "a"`,
			},
		},
		{
			name:  "two separate cycles",
			fleet: features(feat("a", 1, "b"), feat("b", 2, "a"), feat("c", 3, "a", "d"), feat("d", 4, "e"), feat("e", 5, "d")),
			want: []string{
				`fleet.star:1:1: requires cycle: feature "a" -> feature "b" -> feature "a"`,
				`	fleet.star:1:1: feature "a" requires feature "b"`,
				`	fleet.star:2:1: feature "b" requires feature "a"`,
				`fleet.star:4:1: requires cycle: feature "d" -> feature "e" -> feature "d"`,
				`	fleet.star:4:1: feature "d" requires feature "e"`,
				`	fleet.star:5:1: feature "e" requires feature "d"`,
			},
		},
		{
			name: "secrets",
			fleet: &model.Fleet{Secrets: []*model.Secret{
				{Name: "k", Depends: []string{"j"}, Pos: pos(1)},
				{Name: "j", Depends: []string{"k"}, Pos: pos(2)},
			}},
			want: []string{
				`fleet.star:2:1: depends cycle: secret "j" -> secret "k" -> secret "j"`,
				`	fleet.star:2:1: secret "j" depends on secret "k"`,
				`	fleet.star:1:1: secret "k" depends on secret "j"`,
			},
		},
		{
			name: "inputs",
			fleet: &model.Fleet{Inputs: []*model.Input{
				{Name: "a", Follows: map[string]string{"x": "b/nixpkgs"}, Pos: pos(1)},
				{Name: "b", Follows: map[string]string{"y": "a"}, Pos: pos(2)},
			}},
			want: []string{
				`fleet.star:1:1: follows cycle: input "a" -> input "b" -> input "a"`,
				`	fleet.star:1:1: input "a" follows input "b"`,
				`	fleet.star:2:1: input "b" follows input "a"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Build(tt.fleet)
			if g != nil {
				t.Errorf("Build returned a graph along with errors")
			}
			var errs model.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Build error = %v (%T), want model.Errors", err, err)
			}
			got := strings.Split(err.Error(), "\n")
			if !slices.Equal(got, tt.want) {
				t.Errorf("error =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestReferenceErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(f *model.Fleet)
		want   string
	}{
		{"machine feature", func(f *model.Fleet) { f.Machines[0].Features = append(f.Machines[0].Features, "nope") },
			`fleet.star:16:1: machine "cinnabar" refers to unknown feature "nope" in features`},
		{"machine user", func(f *model.Fleet) { f.Machines[1].Users = []string{"alice"} },
			`fleet.star:18:1: machine "stibnite" refers to unknown user "alice" in users`},
		{"requires", func(f *model.Fleet) { f.Features[0].Requires = []string{"nope"} },
			`fleet.star:11:1: feature "base" refers to unknown feature "nope" in requires`},
		{"home", func(f *model.Fleet) { f.Users[0].Home = []string{"nope"} },
			`fleet.star:15:1: user "cameron" refers to unknown feature "nope" in home`},
		{"secret machine", func(f *model.Fleet) { f.Secrets[0].Machines = []string{"galena"} },
			`fleet.star:19:1: secret "ssh-host-key" refers to unknown machine "galena" in machines`},
		{"secret depends", func(f *model.Fleet) { f.Secrets[0].Depends = []string{"nope"} },
			`fleet.star:19:1: secret "ssh-host-key" refers to unknown secret "nope" in depends`},
		{"overlay channel", func(f *model.Fleet) { f.Overlays[1].Channel = "unstable" },
			`fleet.star:6:1: overlay "fallback:atuin" refers to unknown channel "unstable" in channel`},
		{"overlay input", func(f *model.Fleet) { f.Overlays[5].Input = "nope" },
			`fleet.star:10:1: overlay "flake:nuenv" refers to unknown input "nope" in input`},
		{"follows", func(f *model.Fleet) { f.Inputs[0].Follows["flake-utils"] = "utils/x" },
			`fleet.star:3:1: input "home-manager" refers to unknown input or channel "utils" in follows.flake-utils`},
		{"duplicate", func(f *model.Fleet) {
			f.Features = append(f.Features, &model.Feature{Name: "ssh", Pos: pos(30)})
		}, "fleet.star:30:1: duplicate feature \"ssh\"\n\tfleet.star:14:1: first declared here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := smallFleet()
			tt.modify(f)
			g, err := Build(f)
			if err == nil {
				t.Fatalf("Build succeeded, want error %q", tt.want)
			}
			if g != nil {
				t.Errorf("Build returned a graph along with errors")
			}
			if err.Error() != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

// TestAllErrorsAtOnce checks that dangling references and cycles found in
// one build are all reported, in position order.
func TestAllErrorsAtOnce(t *testing.T) {
	f := &model.Fleet{
		Features: []*model.Feature{
			{Name: "a", Requires: []string{"a"}, Pos: pos(2)},
			{Name: "b", Requires: []string{"nope"}, Pos: pos(1)},
		},
	}
	_, err := Build(f)
	var errs model.Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("Build error = %v, want two errors", err)
	}
	if !strings.Contains(errs[0].Msg, "unknown") || !strings.Contains(errs[1].Msg, "cycle") {
		t.Errorf("errors out of position order:\n%v", err)
	}
}

func TestEmpty(t *testing.T) {
	for _, f := range []*model.Fleet{nil, {}} {
		g := mustBuild(t, f)
		if len(g.Nodes()) != 0 || len(g.Edges()) != 0 || len(g.Topo()) != 0 {
			t.Errorf("empty fleet has a non-empty graph")
		}
		out := render(t, g)
		if got, want := string(out["json"]), "{\n  \"nodes\": [],\n  \"edges\": [],\n  \"order\": []\n}\n"; got != want {
			t.Errorf("empty JSON = %q, want %q", got, want)
		}
	}
}

// packagesFleet is smallFleet with packages that overlays make and a
// host switched off.
func packagesFleet() *model.Fleet {
	f := smallFleet()
	f.Features[2].Packages = []string{"atuin", "mactop", "ripgrep", "my-tool"}
	f.Features[3].Packages = []string{"fix-openssl", "nuenv"} // a patch and a flake overlay make no package
	f.Machines = append(f.Machines, &model.Machine{Name: "galena", System: "x86_64-linux", Class: model.NixOS,
		Features: []string{"base"}, Host: &model.Host{Provider: model.GCP, Enabled: false, Pos: pos(22)}, Pos: pos(21)})
	return f
}

// TestPackageEdges: a feature depends on the fallback, package and
// override overlays (all of them) of the packages it installs, and on
// nothing for a package from the channel or a name only a patch or flake
// overlay carries.
func TestPackageEdges(t *testing.T) {
	g := mustBuild(t, packagesFleet())
	var got []Edge
	for _, e := range g.Edges() {
		if e.Kind == EdgePackage {
			got = append(got, e)
		}
	}
	want := []Edge{
		{"feature:shell", "overlay:fallback:atuin", EdgePackage},
		{"feature:shell", "overlay:override:mactop", EdgePackage},
		{"feature:shell", "overlay:override:mactop#2", EdgePackage},
		{"feature:shell", "overlay:package:my-tool", EdgePackage},
	}
	if !slices.Equal(got, want) {
		t.Errorf("package edges =\n%s\nwant\n%s", edgeLines(got), edgeLines(want))
	}
	if deps := g.Closure("machine:stibnite"); !slices.Contains(deps, "overlay:fallback:atuin") || !slices.Contains(deps, "channel:stable") {
		t.Errorf("a machine's closure lacks the overlays of its features' packages: %q", deps)
	}
	checkTopo(t, g)
}

// TestDisabledHost: a host switched off is marked, in the node, the JSON
// and the DOT (dashed, grey, labelled), and the legend shows it.
func TestDisabledHost(t *testing.T) {
	g := mustBuild(t, packagesFleet())
	if n := g.Node("host:galena"); n == nil || !n.Disabled {
		t.Fatalf("host:galena = %+v, want Disabled", n)
	}
	if n := g.Node("host:cinnabar"); n == nil || n.Disabled {
		t.Fatalf("host:cinnabar = %+v, want enabled", n)
	}
	out := render(t, g)
	for _, want := range []string{
		`"host:galena" [label="galena\n(host, switched off)", shape=box3d, color="#bbbbbb", style="dashed", fontcolor="#999999"`,
		`"host:cinnabar" [label="cinnabar\n(host)", shape=box3d,`,
		`"machine:galena" [label="galena", shape=box, color="#000000", style="rounded,bold"`,
		`subgraph cluster_legend {`,
		`"legend:host-off" [label="host switched off"`,
		`"legend:package:from" -> "legend:package:to" [style=dashed];`,
	} {
		if !strings.Contains(string(out["dot"]), want) {
			t.Errorf("DOT lacks %s", want)
		}
	}
	if !strings.Contains(string(out["json"]), `"disabled": true`) || strings.Count(string(out["json"]), `"disabled"`) != 1 {
		t.Errorf("JSON should mark host:galena, and only it, disabled")
	}
	if small := render(t, mustBuild(t, smallFleet())); strings.Contains(string(small["dot"]), "legend:host-off") || strings.Contains(string(small["dot"]), "legend:package") {
		t.Error("the legend shows kinds the graph does not have")
	}
}

func TestGolden(t *testing.T) {
	for name, f := range map[string]*model.Fleet{"small": smallFleet(), "packages": packagesFleet()} {
		t.Run(name, func(t *testing.T) { golden(t, name, render(t, mustBuild(t, f))) })
	}
}

func golden(t *testing.T, name string, out map[string][]byte) {
	for _, format := range []string{"dot", "json", "txt"} {
		t.Run(format, func(t *testing.T) {
			path := filepath.Join("testdata", name+"."+format)
			if *update {
				if err := os.WriteFile(path, out[format], 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(out[format], want) {
				t.Errorf("%s differs from the output (run go test -update to accept):\n%s", path, out[format])
			}
		})
	}
}

// nastyFleet has names that DOT would choke on if they were not escaped.
func nastyFleet() *model.Fleet {
	odd := []string{`quo"te`, `back\slash`, `trailing\`, "new\nline", "cr\rlf", "ünïcödé ✓", "<html>&amp;", "bad\xffutf8", "tab\tnul\x00del\x7f", "a -> b; }", "-1", "graph"}
	f := &model.Fleet{}
	for i, name := range odd {
		f.Features = append(f.Features, &model.Feature{Name: name, Pos: pos(i + 1)})
	}
	f.Machines = []*model.Machine{{Name: `m "x"\`, Features: odd, Host: &model.Host{}, Pos: pos(99)}}
	return f
}

func TestDOTValid(t *testing.T) {
	dot := testtool.Require(t, "dot", "graphviz")
	for name, f := range map[string]*model.Fleet{"small": smallFleet(), "packages": packagesFleet(), "nasty": nastyFleet()} {
		t.Run(name, func(t *testing.T) {
			var in bytes.Buffer
			if err := mustBuild(t, f).WriteDOT(&in); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(dot, "-Tsvg")
			cmd.Stdin, cmd.Stdout, cmd.Stderr = &in, nil, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("dot -Tsvg: %v\n%s", err, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("dot -Tsvg warned:\n%s", stderr.String())
			}
		})
	}
}

func TestDOTQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{`end\`, `"end\\"`},
		{"two\nlines", `"two\nlines"`},
		{"cr\r", `"cr\r"`},
		{"tab\tnul\x00del\x7f", "\"tab\u2409nul\u2400del\u2421\""},
		{"bad\xff", "\"bad\uFFFD\""},
	}
	for _, tt := range tests {
		if got := dotQuote(tt.in); got != tt.want {
			t.Errorf("dotQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if got, want := dotLabel("a&amp;b"), `"a&amp;amp;b"`; got != want {
		t.Errorf("dotLabel = %s, want %s", got, want)
	}
}

func mustBuild(t testing.TB, f *model.Fleet) *Graph {
	t.Helper()
	g, err := Build(f)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return g
}

func render(t *testing.T, g *Graph) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	for format, write := range map[string]func(*bytes.Buffer) error{
		"dot":  func(b *bytes.Buffer) error { return g.WriteDOT(b) },
		"json": func(b *bytes.Buffer) error { return g.WriteJSON(b) },
		"txt":  func(b *bytes.Buffer) error { return g.WriteText(b) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatalf("Write %s: %v", format, err)
		}
		out[format] = b.Bytes()
	}
	return out
}

// TestKindCodes checks the internal edge kind codes: each names a kind,
// and they are in the order of the names, which the edge sort relies on.
func TestKindCodes(t *testing.T) {
	for c := kindCode(0); c < numCodes; c++ {
		if c.kind() == "" {
			t.Errorf("code %d has no kind", c)
		}
		if c > 0 && (c-1).kind() >= c.kind() {
			t.Errorf("code %d (%s) sorts before code %d (%s)", c-1, (c - 1).kind(), c, c.kind())
		}
	}
}

// TestRepeatedReference checks that a name listed twice is one edge.
func TestRepeatedReference(t *testing.T) {
	f := smallFleet()
	f.Machines[0].Features = []string{"ssh", "base", "ssh"}
	f.Secrets[0].Machines = []string{"cinnabar", "stibnite", "cinnabar"}
	g := mustBuild(t, f)
	want := []string{"feature:base", "feature:ssh", "host:cinnabar", "secret:ssh-host-key", "secret:zerotier-identity", "user:cameron"}
	if got := g.DependsOn("machine:cinnabar"); !slices.Equal(got, want) {
		t.Errorf("DependsOn = %q, want %q", got, want)
	}
	if got := len(g.Edges()); got != 22 {
		t.Errorf("len(Edges()) = %d, want 22", got)
	}
}
