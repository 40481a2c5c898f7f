package deploy_test

// check.http and check.tcp after activation, against listeners on
// 127.0.0.1: they run from here (not on the machine), retry until the
// confirm timeout, and a failure says which check and why.

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/deploy"
	"github.com/fleet-nix/fleet/engine/model"
)

// closedPort is an address on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// acceptingPort is a TCP listener on 127.0.0.1 that accepts and closes
// every connection; accepted counts them.
func acceptingPort(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	accepted = &atomic.Int32{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return l.Addr().String(), accepted
}

func TestHTTPAndTCPChecks(t *testing.T) {
	// ok answers 200; flaky 503 twice, then 200; down always 503; hang
	// answers nothing until the test ends; moved redirects to ok.
	var flakyCalls, okCalls atomic.Int32
	hang := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { okCalls.Add(1) })
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if flakyCalls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusMovedPermanently) })
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) })
	open, accepted := acceptingPort(t)
	open2, _ := acceptingPort(t)
	closed := closedPort(t)

	for _, tc := range []struct {
		name    string
		checks  []model.Check
		timeout time.Duration
		wantErr []string // substrings of the machine's error; none: it passes
		// atMost bounds how long the check step may take (the http
		// client's own timeout is 10s).
		atMost time.Duration
		// hits, when set, must have counted wantHits calls.
		hits     *atomic.Int32
		wantHits int32
	}{
		{name: "http passes", checks: []model.Check{{Kind: "http", URL: srv.URL + "/ok", Status: 200}}, timeout: 5 * time.Second, atMost: 2 * time.Second,
			hits: &okCalls, wantHits: 1},
		{name: "http other status wanted", checks: []model.Check{{Kind: "http", URL: srv.URL + "/teapot", Status: 418}}, timeout: 5 * time.Second, atMost: 2 * time.Second},
		// A redirect is followed to the answer at its end, unless the
		// check wants a redirect (status 3xx): then it is the answer.
		{name: "http redirect followed", checks: []model.Check{{Kind: "http", URL: srv.URL + "/moved", Status: 200}}, timeout: 5 * time.Second, atMost: 2 * time.Second},
		{name: "http redirect wanted", checks: []model.Check{{Kind: "http", URL: srv.URL + "/moved", Status: 301}}, timeout: 1500 * time.Millisecond, atMost: 2 * time.Second},
		{name: "http passes after retries", checks: []model.Check{{Kind: "http", URL: srv.URL + "/flaky", Status: 200}}, timeout: 10 * time.Second, atMost: 6 * time.Second,
			hits: &flakyCalls, wantHits: 3},
		{name: "http wrong status", checks: []model.Check{{Kind: "http", URL: srv.URL + "/down", Status: 200}}, timeout: 1500 * time.Millisecond,
			wantErr: []string{"checks did not pass within 1.5s", "GET " + srv.URL + "/down (want 200)", "status 503"}, atMost: 4 * time.Second},
		{name: "http timeout", checks: []model.Check{{Kind: "http", URL: srv.URL + "/hang", Status: 200}}, timeout: time.Second,
			wantErr: []string{"checks did not pass within 1s", "GET " + srv.URL + "/hang (want 200)", "deadline exceeded"}, atMost: 4 * time.Second},
		{name: "http nothing listening", checks: []model.Check{{Kind: "http", URL: "http://" + closed + "/", Status: 200}}, timeout: time.Second,
			wantErr: []string{"GET http://" + closed + "/ (want 200)", "connection refused"}, atMost: 4 * time.Second},
		{name: "tcp passes", checks: []model.Check{{Kind: "tcp", Address: open}}, timeout: 5 * time.Second, atMost: 2 * time.Second,
			hits: accepted, wantHits: 1},
		{name: "tcp closed port", checks: []model.Check{{Kind: "tcp", Address: closed}}, timeout: time.Second,
			wantErr: []string{"checks did not pass within 1s", "connect " + closed, "connection refused"}, atMost: 4 * time.Second},
		// All must pass: one failing fails the machine, and is named.
		{name: "one of two fails", checks: []model.Check{{Kind: "tcp", Address: open2}, {Kind: "http", URL: srv.URL + "/down", Status: 200}}, timeout: time.Second,
			wantErr: []string{"GET " + srv.URL + "/down (want 200)", "status 503"}, atMost: 4 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			web := nixos("web")
			web.Checks = tc.checks
			r := newRig(t, web)
			steps, err := deploy.Steps(r.fleet, r.fleet.Machines, deploy.Options{Runner: r.runner, Tree: "/tree", ConfirmTimeout: tc.timeout})
			if err != nil {
				t.Fatal(err)
			}
			var took time.Duration // the check step's
			sum := deploy.Execute(context.Background(), steps, deploy.ExecOptions{LogDir: t.TempDir(), Events: func(e deploy.Event) {
				if e.Step == "web/check" && (e.Kind == deploy.EventSucceeded || e.Kind == deploy.EventFailed) {
					took = e.Duration
				}
			}})
			m := sum.Machines[0]
			if len(tc.wantErr) == 0 {
				if m.Outcome != deploy.OutcomeOK {
					t.Fatalf("outcome %s at %s: %v", m.Outcome, m.FailedStep, m.Err)
				}
			} else {
				if m.Outcome != deploy.OutcomeFailed || m.FailedStep != "web/check" || m.Err == nil {
					t.Fatalf("outcome %s at %s: %v; want a failed check", m.Outcome, m.FailedStep, m.Err)
				}
				for _, want := range tc.wantErr {
					if !strings.Contains(m.Err.Error(), want) {
						t.Errorf("error %q lacks %q", m.Err, want)
					}
				}
			}
			if took > tc.atMost {
				t.Errorf("the checks took %s, want at most %s", took, tc.atMost)
			}
			// The listener counts after accepting: give it a moment.
			for end := time.Now().Add(time.Second); tc.hits != nil && tc.hits.Load() < tc.wantHits && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}
			if tc.hits != nil && tc.hits.Load() != tc.wantHits {
				t.Errorf("the listener was reached %d times, want %d", tc.hits.Load(), tc.wantHits)
			}
			// The checks run from here: none reached the machine.
			if stc := r.srv.Calls("switch-to-configuration"); len(stc) != 1 {
				t.Errorf("activations: %q", stc)
			}
		})
	}
}

// TestFailingHTTPCheckRollsBack: a machine with rollback whose http check
// fails is switched back, and the error keeps the check's reason.
func TestFailingHTTPCheckRollsBack(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	t.Cleanup(srv.Close)
	web := nixos("web")
	web.Checks = []model.Check{{Kind: "http", URL: srv.URL, Status: 200}}
	web.Rollback = true
	r := newRig(t, web)
	profile, _ := r.previousProfile(t)
	sum := r.deploy(t, context.Background(), deploy.Options{ConfirmTimeout: 500 * time.Millisecond, Profile: profile})
	m := sum.Machines[0]
	var rb *deploy.RolledBackError
	if m.Outcome != deploy.OutcomeRolledBack || !errors.As(m.Err, &rb) || !strings.Contains(m.Err.Error(), "status 502") {
		t.Fatalf("outcome %s: %v", m.Outcome, m.Err)
	}
	if env := r.calls("nix-env"); len(env) != 2 || env[1] != "-p "+profile+" --rollback" {
		t.Fatalf("nix-env calls: %q", env)
	}
}
