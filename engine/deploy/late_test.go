package deploy

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/fleet-nix/fleet/engine/model"
)

// remoteLog records where Remote commands go and succeeds.
type remoteLog struct {
	mu      sync.Mutex
	targets []string
}

func (r *remoteLog) Local(context.Context, []string, IO) error { return nil }
func (r *remoteLog) Remote(_ context.Context, target string, _ []string, _ IO) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.targets = append(r.targets, target)
	return nil
}

// A late target: the commands show the placeholder, the machine's first
// step to run asks for the address (once), and every step after it uses
// it; an address that cannot be had, or is no target, fails the step.
func TestLateTarget(t *testing.T) {
	m := &model.Machine{Name: "web", Class: model.NixOS, Host: &model.Host{Provider: "hetzner"}}
	f := &model.Fleet{Name: "t", Machines: []*model.Machine{m}}
	for _, tc := range []struct {
		name    string
		address string
		wantErr string
	}{
		{"resolved", "root@192.0.2.7", ""},
		{"not known", "", "its address: no address"},
		{"not a target", "root@-oProxyCommand=x", "machine web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &remoteLog{}
			asked := 0
			resolve := func() (string, error) {
				asked++
				if tc.address == "" {
					return "", errNoAddress
				}
				return tc.address, nil
			}
			steps, err := Steps(f, []*model.Machine{m}, Options{Tree: "/tree", Runner: r,
				LateTargets: map[string]func() (string, error){"web": resolve}})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.Join(steps[0].Commands, " "), AddressPlaceholder("web")) {
				t.Errorf("first step's commands: %q, want the placeholder", steps[0].Commands)
			}
			var errs []string
			for _, s := range steps {
				if s.Action != "preflight" && s.Action != "profile" {
					continue
				}
				var out bytes.Buffer
				if err := s.Run(context.Background(), &out); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if tc.wantErr == "" {
				if len(errs) > 0 || asked != 1 || strings.Join(r.targets, " ") != tc.address+" "+tc.address {
					t.Errorf("errors %q, asked %d times, remote targets %q", errs, asked, r.targets)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs[0], tc.wantErr) || len(r.targets) != 0 {
				t.Errorf("errors %q (want %q), remote targets %q", errs, tc.wantErr, r.targets)
			}
		})
	}
}

var errNoAddress = errorString("no address")

type errorString string

func (e errorString) Error() string { return string(e) }
