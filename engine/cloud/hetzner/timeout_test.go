package hetzner

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/cloud"
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := cloud.MakePlan(ctx, testFleet(), []cloud.Provider{p}, cloud.PlanOptions{})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	if ctx.Err() != nil {
		t.Fatalf("ran until the test's own deadline: %v", err)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "hetzner: ") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
}
