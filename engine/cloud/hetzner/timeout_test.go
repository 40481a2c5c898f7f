package hetzner

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/cloudtest"
)

// hangingAPI accepts requests and never answers them.
func hangingAPI(t *testing.T) string {
	t.Helper()
	stop := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); ts.Close() })
	return ts.URL
}

// TestPlanAgainstHangingAPIFails: an API that accepts the connection and
// never answers fails the plan in bounded time, naming the provider,
// rather than waiting for the caller's deadline.
func TestPlanAgainstHangingAPIFails(t *testing.T) {
	p := New(cloud.Config{Getenv: env(map[string]string{"HCLOUD_TOKEN": "t", "HCLOUD_ENDPOINT": hangingAPI(t)}), Backoff: fast},
		WithPollInterval(time.Millisecond), WithHTTPTimeout(200*time.Millisecond))
	cloudtest.PlanFailsInBoundedTime(t, p, testFleet(), "hetzner")
}
