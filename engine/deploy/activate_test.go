package deploy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
	"github.com/fleet-nix/fleet/engine/testtool"
)

// machineLog is the log of a machine in a run's log folder.
func machineLog(t *testing.T, dir, machine string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, machine+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The ssh session of an activation drops (the network restarts) while
// switch-to-configuration still runs, as systemd-run is there for. The
// next deploy finds fleet-activate.service still there: systemd-run
// would refuse to start it again, so the deploy waits for the earlier
// activation to end, saying what runs, and then activates; when it does
// not end in time, the deploy fails, saying what to look at.
func TestActivationWaitsForEarlierOne(t *testing.T) {
	web := nixos("web")
	r := newRig(t, web)
	r.srv.Hang("switch-to-configuration")
	dropped, cancel := context.WithCancel(context.Background())
	go func() {
		for len(r.srv.Calls("switch-to-configuration")) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	if sum := r.deploy(t, dropped, deploy.Options{}); sum.Machines[0].Outcome != deploy.OutcomeCancelled {
		t.Fatalf("the first deploy: %+v", sum.Machines[0])
	}

	t.Run("it ends in time", func(t *testing.T) {
		logs := t.TempDir()
		// The earlier activation ends once this deploy waits for it (the
		// wait's output is in its log, below the command line that holds
		// the same words), however long getting there takes.
		go func() {
			defer r.srv.Release("switch-to-configuration")
			for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if data, _ := os.ReadFile(filepath.Join(logs, "web.log")); strings.Contains(string(data), "activate| fleet: an earlier activation still runs") {
					return
				}
			}
		}()
		sum := r.deployLogs(t, context.Background(), deploy.Options{}, logs)
		if m := sum.Machines[0]; m.Outcome != deploy.OutcomeOK {
			t.Fatalf("the next deploy: %s at %s: %v\n%s", m.Outcome, m.FailedStep, m.Err, machineLog(t, logs, "web"))
		}
		log := machineLog(t, logs, "web")
		if !strings.Contains(log, "an earlier activation still runs (fleet-activate.service: switch-to-configuration switch of "+r.srv.StorePath("web")+"): waiting for it to end") {
			t.Errorf("the log does not say what it waited for:\n%s", log)
		}
		if n := len(r.srv.Calls("switch-to-configuration")); n != 2 {
			t.Errorf("switch-to-configuration ran %d times, want 2", n)
		}
	})

	t.Run("it does not", func(t *testing.T) {
		r.srv.Hang("switch-to-configuration")
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for len(r.srv.Calls("switch-to-configuration")) < 3 {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
		}()
		r.deploy(t, ctx, deploy.Options{})
		sum := r.deploy(t, context.Background(), deploy.Options{ActivationWait: time.Second})
		r.srv.Release("switch-to-configuration")
		m := sum.Machines[0]
		if m.Outcome != deploy.OutcomeFailed || m.FailedStep != "web/activate" ||
			!strings.Contains(m.Err.Error(), "fleet-activate.service (switch-to-configuration switch of "+r.srv.StorePath("web")+") still runs after 1s: see journalctl -u fleet-activate.service there") {
			t.Fatalf("%s at %s: %v", m.Outcome, m.FailedStep, m.Err)
		}
		if n := len(r.srv.Calls("switch-to-configuration")); n != 3 {
			t.Errorf("switch-to-configuration ran %d times, want 3", n)
		}
	})
}

// switch-to-configuration exits 4 when it switched but some units
// failed: the new system is active. The deploy says so and names the
// failed units (systemctl --failed); the checks still run and decide,
// with rollback, whether to switch back.
func TestActivationUnitsFailed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		check     string
		rollback  bool
		outcome   deploy.Outcome
		rollsBack bool
	}{
		{"no checks", "", false, deploy.OutcomeDegraded, false},
		{"checks pass", "true", true, deploy.OutcomeDegraded, false},
		{"checks fail", "exit 3", true, deploy.OutcomeRolledBack, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			web := nixos("web")
			web.Rollback = tc.rollback
			if tc.check != "" {
				web.Checks = []model.Check{{Kind: "command", Command: tc.check}}
			}
			r := newRig(t, web)
			profile, _ := r.previousProfile(t)
			r.srv.Fail("switch-to-configuration", 4)
			r.srv.FailedUnits("nginx.service", "acme-example.org.service")
			logs := t.TempDir()
			sum := r.deployLogs(t, context.Background(), deploy.Options{Profile: profile}, logs)
			m := sum.Machines[0]
			if m.Outcome != tc.outcome {
				t.Fatalf("outcome %s at %s: %v; want %s\n%s", m.Outcome, m.FailedStep, m.Err, tc.outcome, machineLog(t, logs, "web"))
			}
			var uf *deploy.UnitsFailedError
			if !errors.As(m.Err, &uf) || strings.Join(uf.Units, " ") != "nginx.service acme-example.org.service" {
				t.Fatalf("err %v does not name the failed units", m.Err)
			}
			want := "the new system is active, but units failed: nginx.service, acme-example.org.service (see systemctl status nginx.service on the machine)"
			if tc.rollsBack {
				want = "sh -c 'exit 3': exit status 3): rolled back to the previous generation; the activation rolled back had left units failed: nginx.service, acme-example.org.service"
			}
			if msg := m.Err.Error(); !strings.Contains(msg, want) {
				t.Errorf("err: %s\nwant it to say: %s", msg, want)
			}
			if !sum.Failed() {
				t.Error("a deploy with failed units must not exit 0")
			}
			rolledBack := len(r.srv.Calls("switch-to-configuration")) == 2
			if rolledBack != tc.rollsBack {
				t.Errorf("rolled back: %v, want %v", rolledBack, tc.rollsBack)
			}
			for _, s := range m.Steps {
				if s.Action == "check" && s.Kind != deploy.EventSucceeded && tc.outcome == deploy.OutcomeDegraded {
					t.Errorf("check: %s", s.Kind)
				}
			}
		})
	}
}

// A nix-darwin laptop reached as its admin user, cameron: before
// anything is built, the deploy asks it whether sudo works without a
// password and whether its nix (the real nix show-config, on the
// machine's nix.conf) trusts cameron with unsigned paths; when not, the
// deploy stops there, saying what to change.
func TestPreflightNonRoot(t *testing.T) {
	real := testtool.Require(t, "nix", "nix-bin")
	for _, tc := range []struct {
		name         string
		sudoPassword bool
		trustedUsers string
		want         string // "": the deploy goes through
	}{
		{"sudo needs a password", true, "root cameron", `cameron cannot sudo without a password on mac (sudo -n true: sudo: a password is required), and a deploy has no terminal to type one: allow it in the machine's configuration (security.sudo.extraConfig = "cameron ALL=(ALL) NOPASSWD: ALL";)`},
		{"not a trusted user", false, "root @wheel", `cameron is not a trusted user of nix on mac (trusted-users = root @wheel), so its nix-daemon refuses the unsigned paths nix copy sends (require-sigs = true): add it in the machine's configuration, nix.settings.trusted-users = [ "cameron" ]`},
		{"trusted through a group", false, "root @root", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mac := &model.Machine{Name: "mac", System: "aarch64-darwin", Class: model.Darwin}
			r := newRig(t, mac)
			// ssh takes -l over the destination's user: fleet sees
			// cameron@, the test's sshd lets its own user in.
			mac.Target = "cameron@" + r.srv.Addr()
			r.runner.Options = append(r.runner.Options, "-l", r.srv.User)
			conf := t.TempDir()
			write(t, filepath.Join(conf, "nix.conf"), "trusted-users = "+tc.trustedUsers+"\nrequire-sigs = true\n")
			r.srv.RecordScript("nix", nixPrelude+`if [ "$1" = show-config ]; then NIX_CONF_DIR=`+conf+` NIX_USER_CONF_FILES=/dev/null exec `+real+` --extra-experimental-features 'nix-command flakes' "$@"; fi
if [ "$1" = build ]; then `+builtJSON(r.srv.StorePath("mac"))+`; fi
`)
			if tc.sudoPassword {
				r.srv.SudoNeedsPassword()
			}
			logs := t.TempDir()
			sum := r.deployLogs(t, context.Background(), deploy.Options{}, logs)
			m := sum.Machines[0]
			if tc.want == "" {
				if m.Outcome != deploy.OutcomeOK {
					t.Fatalf("%s at %s: %v\n%s", m.Outcome, m.FailedStep, m.Err, machineLog(t, logs, "mac"))
				}
				if act := r.srv.Calls("activate"); len(act) != 1 {
					t.Errorf("activate: %q", act)
				}
				return
			}
			var pe *deploy.PreflightError
			if m.Outcome != deploy.OutcomeFailed || m.FailedStep != "mac/preflight" || !errors.As(m.Err, &pe) || !strings.Contains(m.Err.Error(), tc.want) {
				t.Fatalf("%s at %s: %v\nwant the preflight to say: %s\n%s", m.Outcome, m.FailedStep, m.Err, tc.want, machineLog(t, logs, "mac"))
			}
			for _, c := range r.nixCalls(t) {
				if strings.HasPrefix(c, "build ") {
					t.Errorf("built after a failed preflight: nix %s", c)
				}
			}
		})
	}
}
