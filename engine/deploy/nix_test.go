package deploy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
	"github.com/fleet-nix/fleet/engine/testtool"
)

func TestParseNixVersion(t *testing.T) {
	for _, tc := range []struct {
		out          string
		major, minor int
		err          bool
	}{
		{"nix (Nix) 2.8.0\n", 2, 8, false},
		{"nix (Nix) 2.24.10\n", 2, 24, false},
		{"nix (Nix) 2.25.0pre20241011_dirty\n", 2, 25, false},
		{"nix (Lix, like Nix) 2.91.1\n", 2, 91, false},
		{"nix (Determinate Nix 3.6.2) 2.29.0\n", 2, 29, false},
		{"nix (Nix) 2.3.16\n", 2, 3, false},
		{"", 0, 0, true},
		{"bash: nix: command not found", 0, 0, true},
	} {
		v, err := deploy.ParseNixVersion(tc.out)
		if (err != nil) != tc.err || v.Major != tc.major || v.Minor != tc.minor {
			t.Errorf("ParseNixVersion(%q) = %d.%d, %v", tc.out, v.Major, v.Minor, err)
		}
	}
}

// CheckNix runs the nix on PATH: the real one passes; a stand-in that
// says it is older than MinNixVersion, or no nix at all, fails with what
// to do.
func TestCheckNix(t *testing.T) {
	ctx := context.Background()
	t.Run("real", func(t *testing.T) {
		testtool.Require(t, "nix", "nix-bin")
		v, err := deploy.CheckNix(ctx, &deploy.SSHRunner{})
		if err != nil || !v.AtLeast(deploy.MinNixVersion) {
			t.Fatalf("the installed nix: %+v, %v", v, err)
		}
	})
	for _, tc := range []struct {
		name, script, want string
	}{
		{"too old", `echo "nix (Nix) 2.3.16"`, "nix (Nix) 2.3.16 is too old: fleet needs Nix " + deploy.MinNixVersion + " or newer"},
		{"not a version", `echo "hello"`, `nix --version printed "hello"`},
		{"missing", "", "nix is not installed (or not on PATH): fleet builds with Nix " + deploy.MinNixVersion + " or newer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stubs := sshtest.NewStubs(t)
			env := []string{"PATH=" + stubs.StubDir}
			if tc.script != "" {
				stubs.Stub("nix", tc.script)
			}
			_, err := deploy.CheckNix(ctx, &deploy.SSHRunner{Env: env})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// A tree is handed to nix as path:<folder>; a folder nix cannot read in
// a flake reference is refused up front, saying what to do (nix 2.8
// refuses these with "is not a valid URL", and decodes no %XX).
func TestFlakeRef(t *testing.T) {
	for _, tc := range []struct {
		tree, want, err string
	}{
		{"/home/cameron/fleet/.fleet/nix", "path:/home/cameron/fleet/.fleet/nix", ""},
		{"/srv/a+b@c~d,e=f:g(h)/nix", "path:/srv/a+b@c~d,e=f:g(h)/nix", ""},
		{"/home/cameron/my fleet/.fleet/nix", "", "--out DIR"},
		{"/home/cameron/fleet#1/.fleet/nix", "", "--out DIR"},
		{"/home/cameron/100%/.fleet/nix", "", "--out DIR"},
		{"/home/cameron/flotte-été/.fleet/nix", "", "--out DIR"},
		{".fleet/nix", "", "not an absolute path"},
	} {
		got, err := deploy.FlakeRef(tc.tree)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("FlakeRef(%q) = %q, %v; want an error with %q", tc.tree, got, err, tc.err)
			}
			continue
		}
		if got != tc.want || err != nil {
			t.Errorf("FlakeRef(%q) = %q, %v; want %q", tc.tree, got, err, tc.want)
		}
	}
}

// What FlakeRef accepts, the real nix reads (a folder with every
// character FlakeRef lets through, but /).
func TestFlakeRefRealNix(t *testing.T) {
	n := newRealNix(t)
	dir := filepath.Join(t.TempDir(), "a-b._~!$&'()*+,;=:@z")
	if err := os.Rename(n.tree, dir); err != nil {
		t.Fatal(err)
	}
	ref, err := deploy.FlakeRef(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := n.cmd("nix", "--extra-experimental-features", "nix-command flakes", "eval", "--raw", ref+"#nixosConfigurations.web.config.system.build.toplevel.name")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || string(out) != "web-system-1" {
		t.Fatalf("nix eval %s: %v, printed %q\n%s", ref, err, out, stderr.String())
	}
}
