package deploy

// The preflight step asks a machine, before anything is built, whether
// the deploy's commands can work there, and says what to change when
// not, rather than letting the deploy fail halfway (built, maybe
// copied, not activated). What it checks follows from the commands:
//
//   - nix copy --to ssh-ng:// and --build-on target start nix-daemon
//     --stdio on the machine, through the PATH that a non-interactive
//     ssh session gets there.
//   - A target that is not root (nix-darwin laptops are reached as their
//     admin user) runs the profile, activation and rollback commands
//     through sudo, over ssh with BatchMode and no terminal: sudo must
//     not ask for a password (sudo -n true).
//   - The same user's nix copy hands unsigned paths to the machine's
//     nix-daemon, which takes them only from a trusted user (root,
//     trusted-users, directly or through a @group or *), unless it
//     requires no signatures or the paths are signed (secret-key-files
//     here). nix show-config --json says trusted-users and require-sigs
//     on every nix since 2.4; the user's groups come from id -Gn.
//
// All of it is one shell command, one ssh round trip. What the machine
// cannot say (an older nix, no JSON) is not held against it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/fleet-nix/fleet/engine/model"
)

// preflightNeeds are what the deploy of a machine needs of it.
type preflightNeeds struct {
	daemon bool   // nix-daemon for ssh-ng:// (copy, or build on the target)
	user   string // the login user when it is not root: sudo
	trust  bool   // the user's nix copy must be accepted
}

func (d *machineDeploy) preflightNeeds() preflightNeeds {
	n := preflightNeeds{daemon: true}
	if user, _, ok := strings.Cut(d.target, "@"); ok && user != "root" {
		n.user = user
		n.trust = d.o.BuildOn != "target"
	}
	return n
}

// preflightArgv is the one command that gathers what the needs ask:
// lines of "<fact> <value>".
func (n preflightNeeds) argv() []string {
	var parts []string
	if n.daemon {
		parts = append(parts, `command -v nix-daemon >/dev/null 2>&1 || echo "nix-daemon missing"`)
	}
	if n.user != "" {
		parts = append(parts, `e=$(sudo -n true 2>&1) || printf 'sudo %s\n' "$(printf '%s\n' "$e" | head -n 1)"`)
	}
	if n.trust {
		// printf, not echo: dash's echo would turn the \n in the JSON's
		// strings into newlines.
		parts = append(parts, `printf 'groups %s\n' "$(id -Gn 2>/dev/null)"`,
			`printf 'nix-config %s\n' "$(nix --extra-experimental-features 'nix-command flakes' show-config --json 2>/dev/null)"`)
	}
	return []string{"sh", "-c", strings.Join(parts, "; ")}
}

// preflightFacts is what the machine said.
type preflightFacts struct {
	noDaemon bool
	sudo     string // sudo -n true's complaint; "" when it ran
	groups   []string
	// trustedUsers and requireSigs come from nix show-config; config
	// says whether it could be read.
	config       bool
	trustedUsers []string
	requireSigs  bool
}

func parsePreflight(out string) preflightFacts {
	var f preflightFacts
	for line := range strings.Lines(out) {
		key, value, _ := strings.Cut(strings.TrimRight(line, "\n"), " ")
		switch key {
		case "nix-daemon":
			f.noDaemon = value == "missing"
		case "sudo":
			f.sudo = value
			if f.sudo == "" {
				f.sudo = "it failed"
			}
		case "groups":
			f.groups = strings.Fields(value)
		case "nix-config":
			var c struct {
				TrustedUsers struct{ Value []string } `json:"trusted-users"`
				RequireSigs  struct{ Value *bool }    `json:"require-sigs"`
			}
			if json.Unmarshal([]byte(value), &c) == nil && c.RequireSigs.Value != nil {
				f.config, f.trustedUsers, f.requireSigs = true, c.TrustedUsers.Value, *c.RequireSigs.Value
			}
		}
	}
	return f
}

// trusted reports whether user is one of trusted-users: by name, by a
// @group it is in, or through *.
func trusted(user string, groups, trustedUsers []string) bool {
	for _, t := range trustedUsers {
		if t == "*" || t == user || strings.HasPrefix(t, "@") && slices.Contains(groups, t[1:]) {
			return true
		}
	}
	return false
}

// problems turns what the machine said into what must change there,
// each with its fix. signing says this machine signs what it builds
// (secret-key-files), which makes trust unnecessary.
func (n preflightNeeds) problems(m *model.Machine, target string, f preflightFacts, signing bool) []string {
	var out []string
	if n.daemon && f.noDaemon {
		out = append(out, fmt.Sprintf("nix-daemon is not on the PATH of ssh commands on %s: nix copy --to ssh-ng:// (and --build-on target) starts it there; install Nix there, or make its bin part of the PATH non-interactive ssh sessions get", target))
	}
	if n.user != "" && f.sudo != "" {
		fix := fmt.Sprintf(`security.sudo.extraRules = [ { users = [ %q ]; commands = [ { command = "ALL"; options = [ "NOPASSWD" ]; } ]; } ]`, n.user)
		if m.Class == model.Darwin {
			fix = fmt.Sprintf(`security.sudo.extraConfig = "%s ALL=(ALL) NOPASSWD: ALL";`, n.user)
		}
		out = append(out, fmt.Sprintf("%s cannot sudo without a password on %s (sudo -n true: %s), and a deploy has no terminal to type one: allow it in the machine's configuration (%s) and switch it once by hand, or deploy as root (machine(target = \"root@...\"))", n.user, m.Name, f.sudo, fix))
	}
	if n.trust && f.config && f.requireSigs && !signing && !trusted(n.user, f.groups, f.trustedUsers) {
		out = append(out, fmt.Sprintf("%s is not a trusted user of nix on %s (trusted-users = %s), so its nix-daemon refuses the unsigned paths nix copy sends (require-sigs = true): add it in the machine's configuration, nix.settings.trusted-users = [ %q ], and switch it once by hand; or sign what you build here (secret-key-files) with a key the machine trusts (trusted-public-keys)",
			n.user, m.Name, strings.Join(f.trustedUsers, " "), n.user))
	}
	return out
}

// PreflightError is a machine that cannot take the deploy as it is
// configured: Problems say what to change, each with its fix.
type PreflightError struct {
	Machine  string
	Problems []string
}

func (e *PreflightError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return strings.Join(e.Problems, "; and ")
}

// localSigning tells, once per run, whether the local nix signs what it
// builds (secret-key-files).
type localSigning struct {
	once    sync.Once
	signing bool
}

func (l *localSigning) get(ctx context.Context, r Runner) bool {
	l.once.Do(func() {
		var out bytes.Buffer
		if r.Local(ctx, nixArgv("show-config", "--json"), IO{Stdout: &out}) != nil {
			return
		}
		var c struct {
			SecretKeyFiles struct{ Value []string } `json:"secret-key-files"`
		}
		if json.Unmarshal(out.Bytes(), &c) == nil {
			l.signing = len(c.SecretKeyFiles.Value) > 0
		}
	})
	return l.signing
}

func (d *machineDeploy) preflight(ctx context.Context, w io.Writer) error {
	needs := d.preflightNeeds()
	var out bytes.Buffer
	if err := d.o.Runner.Remote(ctx, d.target, needs.argv(), IO{Stdout: &out, Stderr: w}); err != nil {
		return err
	}
	f := parsePreflight(out.String())
	// The log gets what the machine said, nix's configuration summed up.
	for line := range strings.Lines(out.String()) {
		if !strings.HasPrefix(line, "nix-config ") {
			io.WriteString(w, line)
		}
	}
	if f.config {
		fmt.Fprintf(w, "nix: trusted-users = %s, require-sigs = %v\n", strings.Join(f.trustedUsers, " "), f.requireSigs)
	}
	signing := false
	if needs.trust && f.config && f.requireSigs && !trusted(needs.user, f.groups, f.trustedUsers) {
		if d.signing != nil {
			signing = d.signing.get(ctx, d.o.Runner)
		}
		if signing {
			fmt.Fprintf(w, "%s is not a trusted user there: the copy relies on the paths being signed here (secret-key-files) with a key the machine trusts\n", needs.user)
		}
	}
	if !f.config && needs.trust {
		fmt.Fprintf(w, "nix show-config --json gave nothing there: trusted-users not checked\n")
	}
	if p := needs.problems(d.m, d.target, f, signing); len(p) > 0 {
		return &PreflightError{Machine: d.m.Name, Problems: p}
	}
	return nil
}
