package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine"
	"github.com/fleet-nix/fleet/engine/graph"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/nixgen"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// fleetCase is one fleet whose tree the tier evaluates.
type fleetCase struct {
	name string
	file string
	// deps resolves @name// loads (the shared-library example's pinned
	// library, taken from the folder next to it as --override does).
	deps map[string]string
}

// fleets are the reference fleet, every example, the test fleets of
// engine/nixgen (the golden trees), and this package's own test fleets.
func fleets(t testing.TB) []fleetCase {
	t.Helper()
	out := []fleetCase{{name: "fleet", file: "../../fleet.star"}}
	examples, _ := filepath.Glob("../../examples/*/fleet.star")
	for _, m := range examples {
		out = append(out, fleetCase{name: "example-" + filepath.Base(filepath.Dir(m)), file: m})
	}
	out = append(out, fleetCase{
		name: "example-shared-library",
		file: "../../examples/shared-library/fleet/fleet.star",
		deps: map[string]string{"team": "../../examples/shared-library/lib"},
	})
	tests, _ := filepath.Glob("../nixgen/testdata/fleets/*/fleet.star")
	for _, m := range tests {
		out = append(out, fleetCase{name: "test-" + filepath.Base(filepath.Dir(m)), file: m})
	}
	// The positive control: a fleet whose tree must pass.
	own, _ := filepath.Glob("testdata/fleets/*/fleet.star")
	for _, m := range own {
		out = append(out, fleetCase{name: "conformance-" + filepath.Base(filepath.Dir(m)), file: m})
	}
	return out
}

func evalFleet(t testing.TB, fc fleetCase) *model.Fleet {
	t.Helper()
	opts := engine.Options{Stderr: io.Discard}
	if fc.deps != nil {
		opts.Deps = func(name string) (string, error) {
			dir, ok := fc.deps[name]
			if !ok {
				return "", fmt.Errorf("unknown dependency %q", name)
			}
			return filepath.Abs(dir)
		}
	}
	f, err := engine.Eval(context.Background(), fc.file, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := graph.Build(f); err != nil {
		t.Fatal(err)
	}
	testtool.StandInSecrets(t, f)
	return f
}

// nixTool runs nix-instantiate isolated from the user's Nix: no daemon, no
// NIX_PATH, its own state and configuration, and the dummy store, so that
// evaluation cannot copy anything into /nix/store (a path interpolated into
// a string only gets its store path computed).
type nixTool struct {
	bin string
	env []string
}

func newNixTool(t testing.TB) nixTool {
	bin := testtool.Require(t, "nix-instantiate", "nix-bin")
	home := t.TempDir()
	env := append(os.Environ(),
		"NIX_REMOTE=", "NIX_PATH=",
		"NIX_STATE_DIR="+t.TempDir(), "NIX_CONF_DIR="+t.TempDir(),
		"HOME="+home, "XDG_CACHE_HOME="+filepath.Join(home, ".cache"),
	)
	return nixTool{bin: bin, env: env}
}

// eval evaluates testdata/report.nix with params and decodes its JSON.
func (n nixTool) eval(ctx context.Context, params map[string]any, out any) (stderr string, err error) {
	pf, err := os.CreateTemp("", "conformance-params-*.json")
	if err != nil {
		return "", err
	}
	defer os.Remove(pf.Name())
	if err := json.NewEncoder(pf).Encode(params); err != nil {
		pf.Close()
		return "", err
	}
	if err := pf.Close(); err != nil {
		return "", err
	}
	report, err := filepath.Abs(filepath.Join("testdata", "report.nix"))
	if err != nil {
		return "", err
	}
	expr := fmt.Sprintf("import %s (builtins.fromJSON (builtins.readFile %s))", report, pf.Name())
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, "--store", "dummy://", "--eval", "--strict", "--json", "-E", expr)
	cmd.Env = n.env
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	runErr := cmd.Run()
	stderr = stripANSI(se.String())
	if runErr != nil {
		return stderr, &nixError{msg: nixErrorText(stderr), err: runErr}
	}
	if err := json.Unmarshal(so.Bytes(), out); err != nil {
		return stderr, fmt.Errorf("decoding the report: %v\n%s", err, so.Bytes())
	}
	return stderr, nil
}

type nixError struct {
	msg string
	err error
}

func (e *nixError) Error() string { return e.msg }
func (e *nixError) Unwrap() error { return e.err }

var (
	ansi      = regexp.MustCompile("\x1b\\[[0-9;]*m")
	errorLine = regexp.MustCompile(`(?m)^error:`)
)

func stripANSI(s string) string { return ansi.ReplaceAllString(s, "") }

// nixErrorText is Nix's error message without the traces printed before
// it and the --show-trace hint after it.
func nixErrorText(stderr string) string {
	loc := errorLine.FindStringIndex(stderr)
	if loc == nil {
		return strings.TrimSpace(stderr)
	}
	msg := stderr[loc[0]:]
	msg = strings.TrimSuffix(strings.TrimSpace(msg), "(use '--show-trace' to show detailed location information)")
	return strings.TrimSpace(msg)
}

// traces splits stderr into the messages of builtins.trace (lib.warn,
// home-manager's showWarnings ...), each without its "trace: " prefix.
func traces(stderr string) []string {
	var out []string
	for _, block := range strings.Split("\n"+stderr, "\ntrace: ")[1:] {
		if i := strings.Index(block, "\nerror:"); i >= 0 {
			block = block[:i]
		}
		out = append(out, strings.TrimSpace(block))
	}
	return out
}

// part is one tryEval-guarded part of the report.
type part[T any] struct {
	OK    bool `json:"ok"`
	Value T    `json:"value"`
}

type report struct {
	System      part[systemReport]          `json:"system"`
	Homes       map[string]part[homeReport] `json:"homes"`
	SecretRules part[map[string][]string]   `json:"secretRules"`
}

type systemReport struct {
	FailedAssertions  []string              `json:"failedAssertions"`
	Warnings          []string              `json:"warnings"`
	Toplevel          *string               `json:"toplevel"`
	HostName          string                `json:"hostName"`
	HostPlatform      string                `json:"hostPlatform"`
	NixEnable         bool                  `json:"nixEnable"`
	Substituters      []string              `json:"substituters"`
	TrustedPublicKeys []string              `json:"trustedPublicKeys"`
	StateVersion      any                   `json:"stateVersion"`
	StateVersionFiles []string              `json:"stateVersionFiles"`
	StateVersionPrio  int                   `json:"stateVersionPriority"`
	SSHEnable         *bool                 `json:"sshEnable"`
	MutableUsers      *bool                 `json:"mutableUsers"`
	KnownUsers        []string              `json:"knownUsers"`
	PrimaryUser       *string               `json:"primaryUser"`
	UserNames         []string              `json:"userNames"`
	Users             map[string]userReport `json:"users"`
	AgeSecrets        map[string]ageSecret  `json:"ageSecrets"`
	IdentityPaths     []string              `json:"identityPaths"`
	Homes             map[string]homeReport `json:"homes"`
	Declared          []declaredValue       `json:"declared"`
	Checked           []string              `json:"checked"`
}

type userReport struct {
	Name               string   `json:"name"`
	UID                *int     `json:"uid"`
	Description        *string  `json:"description"`
	IsNormalUser       *bool    `json:"isNormalUser"`
	Group              *string  `json:"group"`
	ExtraGroups        []string `json:"extraGroups"`
	Home               *string  `json:"home"`
	Shell              any      `json:"shell"`
	HashedPassword     *string  `json:"hashedPassword"`
	HashedPasswordFile *string  `json:"hashedPasswordFile"`
	Password           *string  `json:"password"`
	Keys               []string `json:"keys"`
	KeyFiles           []string `json:"keyFiles"`
}

type ageSecret struct {
	Name  string `json:"name"`
	File  string `json:"file"`
	Path  string `json:"path"`
	Owner string `json:"owner"`
	Group string `json:"group"`
	Mode  string `json:"mode"`
}

type homeReport struct {
	System           *string         `json:"system"`
	Username         string          `json:"username"`
	HomeDirectory    string          `json:"homeDirectory"`
	StateVersion     string          `json:"stateVersion"`
	Packages         []pkgReport     `json:"packages"`
	PackagesFiles    []string        `json:"packagesFiles"`
	Declared         []declaredValue `json:"declared"`
	Checked          []string        `json:"checked"`
	FailedAssertions []string        `json:"failedAssertions"`
	Warnings         []string        `json:"warnings"`
}

type pkgReport struct {
	Name  string `json:"name"`
	Pname string `json:"pname"`
	Out   string `json:"out"`
	Attr  string `json:"attr"`
}

type declaredValue struct {
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// TestConformance evaluates every machine of every fleet's generated tree
// with the real home-manager, nix-darwin and agenix and the NixOS schema
// (see the package documentation), and checks what comes out against the
// fleet's model.
func TestConformance(t *testing.T) {
	nix := newNixTool(t)
	upstream := t.TempDir()
	unpack(t, testtool.Upstream(t), upstream)
	baseNames := upstreamNames(t, upstream)

	t.Run("schema", func(t *testing.T) {
		t.Parallel()
		nixpkgs := t.TempDir()
		fakeNixpkgs(t, nixpkgs, upstream, baseNames)
		env := &fleetEnv{name: "schema", upstream: upstream, nixpkgs: nixpkgs, nix: nix}
		env.schema(t)
	})

	for _, fc := range fleets(t) {
		t.Run(fc.name, func(t *testing.T) {
			t.Parallel()
			f := evalFleet(t, fc)
			files, err := nixgen.Generate(f)
			if err != nil {
				t.Fatal(err)
			}
			tree := t.TempDir()
			testtool.WriteFiles(t, tree, files)

			names := trie{}
			names.merge(baseNames)
			if err := names.scanNix(tree); err != nil {
				t.Fatal(err)
			}
			for _, p := range f.PackageNames() {
				names.add(strings.Split(p, "."))
			}
			nixpkgs := t.TempDir()
			fakeNixpkgs(t, nixpkgs, upstream, names)

			env := &fleetEnv{
				name:     fc.name,
				fleet:    f,
				tree:     tree,
				upstream: upstream,
				nixpkgs:  nixpkgs,
				nix:      nix,
			}
			for _, m := range f.Machines {
				t.Run(m.Name, func(t *testing.T) {
					t.Parallel()
					env.machine(t, m)
				})
			}
		})
	}
}

// fleetEnv is what every machine of one fleet shares.
type fleetEnv struct {
	name     string
	fleet    *model.Fleet
	tree     string
	upstream string
	nixpkgs  string
	nix      nixTool
}

func (e *fleetEnv) params(m *model.Machine, only any) map[string]any {
	wanted := append([]string{"root", targetUser(m)}, m.Users...)
	return map[string]any{
		"upstream":     e.upstream,
		"nixpkgs":      e.nixpkgs,
		"tree":         e.tree,
		"standInAttrs": standInAttrs(e.fleet),
		"machine":      m.Name,
		"class":        string(m.Class),
		"users":        wanted,
		"declared":     declaredPaths(m.Config()),
		"homeDeclared": declaredPaths(m.Home),
		"only":         only,
	}
}

// standInAttrs are, per flake input, the attributes the fleet reads from
// it: the overlays of overlay.flake.
func standInAttrs(f *model.Fleet) map[string][][]string {
	out := map[string][][]string{}
	if f == nil {
		return out
	}
	for _, o := range f.Overlays {
		if o.Kind == model.OverlayFlake {
			out[o.Input] = append(out[o.Input], strings.Split(o.Attr, "."))
		}
	}
	return out
}

// machine evaluates one machine and checks its report.
func (e *fleetEnv) machine(t *testing.T, m *model.Machine) {
	where := fmt.Sprintf("%s: %s machine %s", e.name, m.Class, m.Name)
	var r report
	stderr, err := e.nix.eval(t.Context(), e.params(m, nil), &r)
	if err != nil {
		t.Fatalf("%s: Nix cannot evaluate the machine's configuration:\n%s", where, e.show(err.Error()))
	}
	c := &checker{t: t, where: where, env: e, m: m}

	if !r.System.OK {
		c.partError("system", fmt.Sprintf("%sConfigurations.%s", m.Class, m.Name))
	} else {
		c.system(&r.System.Value)
	}
	for _, name := range sortedKeys(r.Homes) {
		h := r.Homes[name]
		label := fmt.Sprintf("homeConfigurations.%q", name)
		if !h.OK {
			c.partError("home:"+name, label)
			continue
		}
		c.upstreamVerdicts(label+" (real homeManagerConfiguration)", h.Value.FailedAssertions, h.Value.Warnings)
		user, _, _ := strings.Cut(name, "@")
		c.home(label, user, &h.Value, "")
		if r.System.OK {
			c.standalone(label, user, &h.Value, &r.System.Value)
		}
	}
	if r.SecretRules.OK && r.System.OK {
		c.decryptable(&r.System.Value, r.SecretRules.Value)
	}

	// Warnings printed while evaluating (lib.warn, builtins.trace, home-manager's
	// showWarnings): those not already reported as a configuration's warnings.
	reported := map[string]bool{}
	for _, w := range c.warningsSeen {
		reported[strings.TrimSpace(w)] = true
	}
	for _, tr := range traces(stderr) {
		msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(tr, "warning: "), "evaluation warning: "))
		if reported[msg] {
			continue
		}
		reported[msg] = true
		t.Errorf("%s: printed while evaluating:\n%s", where, e.show(tr))
	}
}

// targetUser is the account deploys log in as: the user of the machine's
// ssh target, root when there is none (fleet's default, root@<address>).
func targetUser(m *model.Machine) string {
	if u, _, ok := strings.Cut(m.Target, "@"); ok && u != "" {
		return u
	}
	return "root"
}

var errNoPart = errors.New("part not found")

// partError evaluates one failed part of the report alone, unguarded,
// to show Nix's error for it.
func (c *checker) partError(only, label string) {
	c.t.Helper()
	var v any
	_, err := c.env.nix.eval(c.t.Context(), c.env.params(c.m, only), &v)
	if err == nil {
		err = errNoPart
	}
	c.t.Errorf("%s: %s does not evaluate:\n%s", c.where, label, c.env.show(err.Error()))
}
