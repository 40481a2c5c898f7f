package main

import (
	"strings"
	"testing"
)

// cacheFleet is cliFleet with a binary cache and a remote builder.
var cacheFleet = strings.Replace(cliFleet, `fleet(name = "t")`, `fleet(name = "t",
    cache = {"url": "file:///srv/cache", "public_key": "cache-1:3dlN7fbLaFqmeNG/EZIAEdWdWqw26xGWzpyGGohFKQY=",
             "secret_key_file": "/etc/fleet/cache.key"},
    builders = ["ssh-ng://builder@10.0.0.2 x86_64-linux - 8"])`, 1)

// TestCacheDryRun: --dry-run of deploy and build shows the push to the
// fleet's cache, the copy substituting from it, and the builders.
func TestCacheDryRun(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"deploy", "--dry-run"}, []string{
			"copy --to 'file:///srv/cache?secret-key=/etc/fleet/cache.key' /nix/store/HASH-nixos-system-web",
			"copy --no-check-sigs --substitute-on-destination --builders-use-substitutes --to ssh-ng://root@web.example.org /nix/store/HASH-nixos-system-web",
			// batched (the default): the realisation builds
			"nix-store --option builders '<nix.conf builders>;ssh-ng://builder@10.0.0.2 x86_64-linux - 8' --realise DRV",
		}, nil},
		{[]string{"deploy", "--dry-run", "--batch", "1"}, []string{
			"build --no-link --json --builders '<nix.conf builders>;ssh-ng://builder@10.0.0.2 x86_64-linux - 8'",
		}, nil},
		{[]string{"deploy", "--dry-run", "--build-on", "target"}, []string{"--store ssh-ng://root@web.example.org"},
			[]string{"file:///srv/cache?", "--builders"}},
		{[]string{"build", "--dry-run"}, []string{"--option builders '<nix.conf builders>;ssh-ng://builder@10.0.0.2 x86_64-linux - 8' --realise DRV"},
			[]string{"file:///srv/cache?"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr, _ := fleetAt(t, fleetDir(t, cacheFleet), nil, append(tc.args, "--out", t.TempDir())...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stdout, want) {
					t.Errorf("%s printed\n%s\nwant %q in it", tc.args, stdout, want)
				}
			}
			for _, not := range tc.not {
				if strings.Contains(stdout, not) {
					t.Errorf("%s printed\n%s\nwith %q", tc.args, stdout, not)
				}
			}
		})
	}
}
