package gcp

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/cloud/cloudtest"
)

// TestPlanAgainstHangingAPIFails: a GCE endpoint that accepts the
// connection and never answers fails the plan in bounded time, naming the
// provider, rather than waiting for the caller's deadline.
func TestPlanAgainstHangingAPIFails(t *testing.T) {
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	defer hang.Close()
	defer close(stop)
	e := newEnv(t) // the fake still hands out tokens
	vars := maps.Clone(e.vars)
	vars[EnvEndpoint] = hang.URL
	p := newProvider(t, vars)
	p.HTTPTimeout = 200 * time.Millisecond
	cloudtest.PlanFailsInBoundedTime(t, p, referenceFleet(), "gcp")
}
