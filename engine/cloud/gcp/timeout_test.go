package gcp

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/cloud"
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := cloud.MakePlan(ctx, referenceFleet(), []cloud.Provider{p}, cloud.PlanOptions{})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	if ctx.Err() != nil {
		t.Fatalf("ran until the test's own deadline: %v", err)
	}
	if err == nil || !strings.HasPrefix(err.Error(), "gcp: ") {
		t.Fatalf("err = %v", err)
	}
	t.Log(err)
}
