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
		time.AfterFunc(1500*time.Millisecond, func() { r.srv.Release("switch-to-configuration") })
		logs := t.TempDir()
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
