// Package cloudtest holds what the providers' tests share: checks that
// hold for every provider, run against each one's own fake.
package cloudtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/model"
)

// PlanFailsInBoundedTime plans f with p, whose API accepts connections
// and never answers (and whose HTTP timeout the caller made short): the
// plan must fail by itself, well before the test's own deadline, with an
// error that starts with the provider's name.
func PlanFailsInBoundedTime(t *testing.T, p cloud.Provider, f *model.Fleet, provider string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := cloud.MakePlan(ctx, f, []cloud.Provider{p}, cloud.PlanOptions{})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	if ctx.Err() != nil {
		t.Fatalf("ran until the test's own deadline: %v", err)
	}
	if err == nil || !strings.HasPrefix(err.Error(), provider+": ") {
		t.Fatalf("err = %v, want an error that starts with %q", err, provider+": ")
	}
	t.Log(err)
}
