package deploy

import (
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
)

// What a machine says to the preflight command, and what the deploy
// makes of it.
func TestPreflightProblems(t *testing.T) {
	nixos := &model.Machine{Name: "web", Class: model.NixOS}
	mac := &model.Machine{Name: "stibnite", Class: model.Darwin}
	config := func(trusted, requireSigs string) string {
		return `nix-config {"require-sigs":{"value":` + requireSigs + `},"trusted-users":{"value":[` + trusted + `]}}` + "\n"
	}
	root := preflightNeeds{daemon: true}
	cameron := preflightNeeds{daemon: true, user: "cameron", trust: true}
	for _, tc := range []struct {
		name    string
		m       *model.Machine
		needs   preflightNeeds
		out     string
		signing bool
		want    []string // substrings, one per problem
	}{
		{"root, all there", nixos, root, "", false, nil},
		{"no nix-daemon", nixos, root, "nix-daemon missing\n", false, []string{"nix-daemon is not on the PATH of ssh commands on root@web"}},
		{"sudo asks for a password (nix-darwin)", mac, cameron, "sudo sudo: a password is required\ngroups staff admin\n" + config(`"root","cameron"`, "true"), false,
			[]string{`cameron cannot sudo without a password on stibnite (sudo -n true: sudo: a password is required), and a deploy has no terminal to type one: allow it in the machine's configuration (security.sudo.extraConfig = "cameron ALL=(ALL) NOPASSWD: ALL";)`}},
		{"sudo asks for a password (NixOS)", nixos, cameron, "sudo sudo: a password is required\n", false,
			[]string{`(security.sudo.extraRules = [ { users = [ "cameron" ]; commands = [ { command = "ALL"; options = [ "NOPASSWD" ]; } ]; } ])`}},
		{"not trusted", mac, cameron, "groups staff admin\n" + config(`"root"`, "true"), false,
			[]string{`cameron is not a trusted user of nix on stibnite (trusted-users = root), so its nix-daemon refuses the unsigned paths nix copy sends (require-sigs = true): add it in the machine's configuration, nix.settings.trusted-users = [ "cameron" ]`}},
		{"trusted by name", mac, cameron, "groups staff\n" + config(`"root","cameron"`, "true"), false, nil},
		{"trusted by group", mac, cameron, "groups staff admin\n" + config(`"root","@admin"`, "true"), false, nil},
		{"everyone trusted", mac, cameron, "groups staff\n" + config(`"*"`, "true"), false, nil},
		{"another group", mac, cameron, "groups staff\n" + config(`"root","@admin"`, "true"), false, []string{"is not a trusted user"}},
		{"no signatures required", mac, cameron, "groups staff\n" + config(`"root"`, "false"), false, nil},
		{"paths signed here", mac, cameron, "groups staff\n" + config(`"root"`, "true"), true, nil},
		{"nix too old to say", mac, cameron, "groups staff\nnix-config \n", false, nil},
		{"building on the target needs no trust", mac, preflightNeeds{daemon: true, user: "cameron"}, "groups staff\n" + config(`"root"`, "true"), false, nil},
		{"everything at once", mac, cameron, "nix-daemon missing\nsudo sudo: a password is required\ngroups staff\n" + config(`"root"`, "true"), false,
			[]string{"nix-daemon is not on the PATH", "cameron cannot sudo", "cameron is not a trusted user"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := "root@" + tc.m.Name
			if tc.needs.user != "" {
				target = tc.needs.user + "@" + tc.m.Name
			}
			got := tc.needs.problems(tc.m, target, parsePreflight(tc.out), tc.signing)
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n%s\nwant %d", strings.Join(got, "\n"), len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d:\n%s\nwant it to say:\n%s", i, got[i], w)
				}
			}
		})
	}
}

// Who needs what: root needs only nix-daemon; any other user sudo, and
// trust unless the machine builds its own system.
func TestPreflightNeeds(t *testing.T) {
	for _, tc := range []struct {
		target, buildOn string
		want            preflightNeeds
	}{
		{"root@web", "local", preflightNeeds{daemon: true}},
		{"web.example", "local", preflightNeeds{daemon: true}},
		{"cameron@stibnite", "local", preflightNeeds{daemon: true, user: "cameron", trust: true}},
		{"cameron@stibnite", "target", preflightNeeds{daemon: true, user: "cameron"}},
	} {
		d := &machineDeploy{target: tc.target, o: Options{BuildOn: tc.buildOn}}
		if got := d.preflightNeeds(); got != tc.want {
			t.Errorf("%s, build on %s: %+v, want %+v", tc.target, tc.buildOn, got, tc.want)
		}
	}
}
