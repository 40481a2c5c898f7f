package deploy

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
)

// cacheNix plays nix for the cached-build tests: path-info accepts only
// the paths in valid; build prints one system.
type cacheNix struct {
	valid map[string]bool
	calls []string
}

func (r *cacheNix) Local(_ context.Context, argv []string, stdio IO) error {
	r.calls = append(r.calls, strings.Join(argv[3:], " "))
	switch argv[3] {
	case "path-info":
		if !r.valid[argv[4]] {
			return &CommandError{Argv: argv, ExitCode: 1}
		}
	case "build":
		fmt.Fprint(stdio.Stdout, `[{"outputs":{"out":"/nix/store/00000000000000000000000000000000-new"}}]`)
	}
	return nil
}

func (r *cacheNix) Remote(context.Context, string, []string, IO) error { return nil }

// A machine with a cached system still in the store is not evaluated;
// one whose cached path is gone is built and recorded; the dry run says
// which is which; building on the target ignores the cache.
func TestCachedBuild(t *testing.T) {
	m := &model.Machine{Name: "web", Class: model.NixOS, Target: "root@web"}
	f := &model.Fleet{Name: "t", Machines: []*model.Machine{m}}
	const old = "/nix/store/00000000000000000000000000000000-old"
	var recorded []string
	run := func(valid bool, buildOn string) (*cacheNix, []Step) {
		nix := &cacheNix{valid: map[string]bool{old: valid}}
		opts := Options{Tree: "/tree", Goal: Switch, BuildOn: buildOn, Runner: nix,
			Cached: map[string]CachedBuild{"web": {Path: old, Fingerprint: "0123456789abcdef0123"}},
			Built:  func(m, p string) { recorded = append(recorded, m+" "+p) }}
		steps, err := Steps(f, []*model.Machine{m}, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if s.Action == "build" {
				var out bytes.Buffer
				if err := s.Run(context.Background(), &out); err != nil {
					t.Fatal(err)
				}
				return nix, steps
			}
		}
		t.Fatal("no build step")
		return nil, nil
	}
	nix, steps := run(true, "local")
	if got := strings.Join(nix.calls, "|"); got != "path-info "+old || len(recorded) != 0 {
		t.Errorf("valid cached path: nix %q, recorded %q", got, recorded)
	}
	for _, s := range steps {
		if s.Action == "build" && s.Commands[0] != "cached "+old+" (fingerprint 0123456789ab)" {
			t.Errorf("build step shows %q", s.Commands)
		}
	}
	nix, _ = run(false, "local")
	if got := strings.Join(nix.calls, "|"); !strings.HasPrefix(got, "path-info "+old+"|build --no-link --json path:/tree#nixosConfigurations.web.") ||
		strings.Join(recorded, "|") != "web /nix/store/00000000000000000000000000000000-new" {
		t.Errorf("collected cached path: nix %q, recorded %q", got, recorded)
	}
	recorded = nil
	nix, _ = run(true, "target")
	if len(nix.calls) != 1 || !strings.HasPrefix(nix.calls[0], "build ") || len(recorded) != 0 {
		t.Errorf("--build-on target: nix %q, recorded %q", nix.calls, recorded)
	}
}
