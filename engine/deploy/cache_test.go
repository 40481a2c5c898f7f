package deploy_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
)

const testPublicKey = "cache-1:3dlN7fbLaFqmeNG/EZIAEdWdWqw26xGWzpyGGohFKQY="

// TestCacheSteps: what a deploy shows (--dry-run) with a binary cache and
// remote builders, and without them.
func TestCacheSteps(t *testing.T) {
	cache := &model.Cache{URL: "file:///srv/cache", PublicKey: testPublicKey, SecretKeyFile: "~/.config/fleet/cache.key"}
	const system = "/nix/store/HASH-nixos-system-web"
	for _, tc := range []struct {
		name     string
		cache    *model.Cache
		builders []string
		buildOn  string
		actions  string
		want     map[string]string // action -> its first command
	}{
		{name: "none", actions: "preflight build copy profile activate", want: map[string]string{
			"build": "nix --extra-experimental-features 'nix-command flakes' build --no-link --json 'path:/tree#nixosConfigurations.web.config.system.build.toplevel'",
			"copy":  "nix --extra-experimental-features 'nix-command flakes' copy --no-check-sigs --to ssh-ng://root@web.example " + system,
		}},
		{name: "cache", cache: cache, actions: "preflight build push copy profile activate", want: map[string]string{
			"push": "nix --extra-experimental-features 'nix-command flakes' copy --to 'file:///srv/cache?secret-key=~/.config/fleet/cache.key' " + system,
			"copy": "nix --extra-experimental-features 'nix-command flakes' copy --no-check-sigs --substitute-on-destination --builders-use-substitutes --to ssh-ng://root@web.example " + system,
		}},
		{name: "cache signed by nix.conf", cache: &model.Cache{URL: "s3://b?region=eu", PublicKey: testPublicKey}, actions: "preflight build push copy profile activate", want: map[string]string{
			"push": "nix --extra-experimental-features 'nix-command flakes' copy --to 's3://b?region=eu' " + system,
		}},
		{name: "builders", builders: []string{"ssh-ng://b x86_64-linux - 8", "ssh://c"}, actions: "preflight build copy profile activate", want: map[string]string{
			"build": "nix --extra-experimental-features 'nix-command flakes' build --no-link --json --builders '<nix.conf builders>;ssh-ng://b x86_64-linux - 8;ssh://c' 'path:/tree#nixosConfigurations.web.config.system.build.toplevel'",
		}},
		// The machine builds its own system: no builders, nothing pushed.
		{name: "build on target", cache: cache, builders: []string{"ssh-ng://b"}, buildOn: "target", actions: "preflight build profile activate", want: map[string]string{
			"build": "nix --extra-experimental-features 'nix-command flakes' build --no-link --json --eval-store auto --store ssh-ng://root@web.example 'path:/tree#nixosConfigurations.web.config.system.build.toplevel'",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			web := nixos("web")
			web.Target = "root@web.example"
			f := &model.Fleet{Name: "t", Cache: tc.cache, Builders: tc.builders, Machines: []*model.Machine{web}}
			steps, err := deploy.Steps(f, f.Machines, deploy.Options{Tree: "/tree", BuildOn: tc.buildOn})
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, s := range steps {
				actions = append(actions, s.Action)
				if want, ok := tc.want[s.Action]; ok && s.Commands[0] != want {
					t.Errorf("%s:\n got %s\nwant %s", s.Action, s.Commands[0], want)
				}
			}
			if got := strings.Join(actions, " "); got != tc.actions {
				t.Errorf("steps %s, want %s", got, tc.actions)
			}
		})
	}
}

// TestBuildersArgv: local builds get nix.conf's builders, then the
// fleet's, in one --builders; nix.conf is read once per run.
func TestBuildersArgv(t *testing.T) {
	for _, tc := range []struct {
		name, own, want string
	}{
		{"default nix.conf", "@/etc/nix/machines", "@/etc/nix/machines;ssh-ng://b x86_64-linux"},
		{"no builders of the user's", "", "ssh-ng://b x86_64-linux"},
		{"the user's own", "ssh://mine aarch64-linux ; @/etc/nix/more", "ssh://mine aarch64-linux ; @/etc/nix/more;ssh-ng://b x86_64-linux"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, nixos("a"), nixos("b"))
			r.srv.RecordScript("nix", nixPrelude+`case "$1" in
show-config) printf '{"builders":{"value":"%s"}}\n' `+"'"+tc.own+"'"+` ;;
build) for a; do case "$a" in *.a.*) `+builtJSON(r.srv.StorePath("a"))+` ;; *.b.*) `+builtJSON(r.srv.StorePath("b"))+` ;; esac; done ;;
esac
`)
			steps, err := deploy.BuildSteps(r.fleet.Machines, deploy.Options{Tree: "/tree", Runner: r.runner, Builders: []string{"ssh-ng://b x86_64-linux"}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{Parallel: 2, LogDir: t.TempDir()}); sum.Failed() {
				t.Fatalf("%+v", sum.Machines)
			}
			var shows, builds int
			for _, c := range r.nixCalls(t) {
				switch {
				case c == "show-config --json":
					shows++
				case strings.HasPrefix(c, "build "):
					builds++
					if !strings.Contains(c, " --builders "+tc.want+" ") {
						t.Errorf("nix %s: want --builders %s", c, tc.want)
					}
				}
			}
			if shows != 1 || builds != 2 {
				t.Errorf("%d show-config, %d builds; want 1 and 2", shows, builds)
			}
		})
	}
}

// cacheRig is a rig whose machines build systems named by shared: two
// machines with the same name there build the same path.
func cacheRig(t *testing.T, shared map[string]string, failPush bool) (*rig, string) {
	t.Helper()
	var machines []*model.Machine
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range shared {
			if !yield(k) {
				return
			}
		}
	}) {
		machines = append(machines, nixos(name))
	}
	r := newRig(t, machines...)
	var cases strings.Builder
	for _, m := range machines {
		fmt.Fprintf(&cases, "*.%s.*) %s ;;\n", m.Name, builtJSON(r.srv.StorePath(shared[m.Name])))
	}
	push := "sleep 0.3"
	if failPush {
		push = "echo 'error: AWS error: Access Denied' >&2; exit 1"
	}
	r.srv.RecordScript("nix", nixPrelude+`if [ "$1" = build ]; then for a; do case "$a" in
`+cases.String()+`esac; done; fi
if [ "$1" = copy ] && [ "$2" = --to ]; then `+push+`; fi
`)
	key := filepath.Join(t.TempDir(), "cache.key")
	if err := os.WriteFile(key, []byte("cache-1:secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.fleet.Cache = &model.Cache{URL: "file:///srv/cache", PublicKey: testPublicKey, SecretKeyFile: key}
	return r, key
}

// TestCachePushOnce: machines that build the same system push it once,
// however many deploy at once; each machine's copy substitutes.
func TestCachePushOnce(t *testing.T) {
	r, key := cacheRig(t, map[string]string{"a1": "a", "a2": "a", "a3": "a", "b1": "b"}, false)
	sum := r.deploy(t, context.Background(), deploy.Options{})
	if sum.Failed() {
		t.Fatalf("%+v", sum.Machines)
	}
	pushes := map[string]int{}
	var copies int
	for _, c := range r.nixCalls(t) {
		if rest, ok := strings.CutPrefix(c, "copy --to file:///srv/cache?secret-key="+key+" "); ok {
			pushes[rest]++
		} else if strings.HasPrefix(c, "copy ") {
			copies++
			if !strings.HasPrefix(c, "copy --no-check-sigs --substitute-on-destination --builders-use-substitutes --to ssh-ng://") {
				t.Errorf("nix %s: want a copy that substitutes on the machine", c)
			}
		}
	}
	want := map[string]int{r.srv.StorePath("a"): 1, r.srv.StorePath("b"): 1}
	if fmt.Sprint(pushes) != fmt.Sprint(want) || copies != 4 {
		t.Errorf("pushes %v, copies %d; want %v and 4", pushes, copies, want)
	}
}

// TestCachePushFails: a push that fails fails its machine's deploy and
// those waiting on the same push, saying what to do; nothing is copied.
func TestCachePushFails(t *testing.T) {
	r, _ := cacheRig(t, map[string]string{"a1": "a", "a2": "a"}, true)
	sum := r.deploy(t, context.Background(), deploy.Options{})
	for _, m := range sum.Machines {
		if m.Outcome != deploy.OutcomeFailed || m.FailedStep != m.Machine+"/push" {
			t.Errorf("%s: %s at %s, want failed at push", m.Machine, m.Outcome, m.FailedStep)
			continue
		}
		for _, want := range []string{"nix copy --to file:///srv/cache", "Access Denied", "check the cache's URL and credentials"} {
			if !strings.Contains(m.Err.Error(), want) {
				t.Errorf("%s: %v, want it to say %q", m.Machine, m.Err, want)
			}
		}
	}
	for _, c := range r.nixCalls(t) {
		if strings.Contains(c, "ssh-ng://") {
			t.Errorf("nix %s after a failed push", c)
		}
	}
	if n := len(r.nixCalls(t)); n != 3 { // two builds, one push
		t.Errorf("%d nix calls, want 2 builds and 1 push: %q", n, r.nixCalls(t))
	}
}

// TestCacheKeyMissing: a secret key file that is not there is an error
// saying how to make one, before nix runs.
func TestCacheKeyMissing(t *testing.T) {
	r, key := cacheRig(t, map[string]string{"a": "a"}, false)
	os.Remove(key)
	sum := r.deploy(t, context.Background(), deploy.Options{})
	if !sum.Failed() || !strings.Contains(sum.Machines[0].Err.Error(), "nix-store --generate-binary-cache-key") {
		t.Fatalf("%+v, want the push to fail saying how to make the key", sum.Machines)
	}
	for _, c := range r.nixCalls(t) {
		if strings.HasPrefix(c, "copy") {
			t.Errorf("nix %s without a key", c)
		}
	}
}
