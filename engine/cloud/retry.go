package cloud

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff is how transient errors (rate limits, 5xx) are retried.
type Backoff struct {
	Initial  time.Duration // first wait (default 500ms)
	Max      time.Duration // longest wait (default 30s)
	Attempts int           // tries in all (default 8)
}

// DefaultBackoff suits real clouds: Hetzner's rate limit refills at one
// request per second, GCE's per-minute quotas a little slower.
var DefaultBackoff = Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Attempts: 8}

// Retry calls fn until it succeeds, fails with an error that is not
// transient, the attempts are used up or ctx ends. Waits double from
// Initial up to Max, with jitter so that parallel changes spread out.
func Retry(ctx context.Context, b Backoff, fn func() error) error {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoff.Initial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	if b.Attempts <= 0 {
		b.Attempts = DefaultBackoff.Attempts
	}
	wait := b.Initial
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !IsTransient(err) || attempt >= b.Attempts {
			return err
		}
		d := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			// Keep the cloud's last word: "context canceled" alone hides
			// why the change was still being retried.
			return fmt.Errorf("%w (while retrying: %v)", ctx.Err(), err)
		case <-time.After(d):
		}
		wait = min(2*wait, b.Max)
	}
}

// Config is what every provider is built from. Getenv is how it reads its
// credentials and endpoint (os.Getenv in the CLI, a map in tests).
type Config struct {
	Getenv  func(string) string
	Backoff Backoff
}
