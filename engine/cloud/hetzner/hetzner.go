package hetzner

import (
	"context"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/fleet-nix/fleet/engine/cloud"
)

// Kinds of resources this provider manages.
const (
	KindServer   = "server"
	KindSSHKey   = "ssh_key"
	KindFirewall = "firewall"
)

const (
	providerName = "hetzner"
	// perPage is the largest page the API gives.
	perPage = 50
	// defaultPoll is how often actions are polled, hcloud-go's default.
	defaultPoll = 500 * time.Millisecond
)

// Provider is the Hetzner Cloud provider. It is safe for concurrent use.
type Provider struct {
	token    string
	endpoint string
	backoff  cloud.Backoff
	poll     time.Duration
	// client is nil without a token: Desired and MonthlyPrice still work.
	client *hcloud.Client

	// httpTimeout bounds each API request (WithHTTPTimeout).
	httpTimeout time.Duration

	// The pricing API answer, fetched once.
	pricingMu   sync.Mutex
	pricingDone bool
	pricing     *hcloud.Pricing
	pricingErr  error
}

var _ cloud.Provider = (*Provider)(nil)

// Option adjusts a Provider.
type Option func(*Provider)

// WithPollInterval sets how often running actions are polled (default
// 500 ms). Tests against a fake use a few milliseconds.
func WithPollInterval(d time.Duration) Option {
	return func(p *Provider) {
		if d > 0 {
			p.poll = d
		}
	}
}

// DefaultHTTPTimeout bounds each request to the Hetzner API.
const DefaultHTTPTimeout = time.Minute

// WithHTTPTimeout bounds each API request (default DefaultHTTPTimeout):
// an API that accepts the connection and never answers fails the request
// after d, which is retried like any transient error. Tests shorten it.
func WithHTTPTimeout(d time.Duration) Option {
	return func(p *Provider) {
		if d > 0 {
			p.httpTimeout = d
		}
	}
}

// New returns the provider. It reads HCLOUD_TOKEN and HCLOUD_ENDPOINT
// (default https://api.hetzner.cloud/v1) through cfg.Getenv once, now.
// Without a token it is still useful for Desired and MonthlyPrice;
// everything else reports the missing variable.
func New(cfg cloud.Config, opts ...Option) *Provider {
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	p := &Provider{
		token:    getenv("HCLOUD_TOKEN"),
		endpoint: getenv("HCLOUD_ENDPOINT"),
		backoff:  cfg.Backoff,
		poll:     defaultPoll,

		httpTimeout: DefaultHTTPTimeout,
	}
	if p.endpoint == "" {
		p.endpoint = hcloud.Endpoint
	}
	for _, o := range opts {
		o(p)
	}
	if p.token != "" {
		p.client = hcloud.NewClient(
			hcloud.WithToken(p.token),
			hcloud.WithEndpoint(p.endpoint),
			hcloud.WithApplication("fleet", version()),
			// A hung request becomes a timeout, which is retried, instead
			// of an apply that never ends.
			hcloud.WithHTTPClient(&http.Client{Timeout: p.httpTimeout}),
			hcloud.WithPollOpts(hcloud.PollOpts{BackoffFunc: hcloud.ConstantBackoff(p.poll)}),
			// Retries happen in one place, cloud.Retry with cfg.Backoff
			// (see the package doc): hcloud-go's own retry handler is off.
			hcloud.WithRetryOpts(hcloud.RetryOpts{MaxRetries: 0}),
		)
	}
	return p
}

// version is fleet's module version for the User-Agent, "" in a
// development build.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return ""
}

// Name is "hetzner".
func (p *Provider) Name() string { return providerName }

// Credentials reports a missing HCLOUD_TOKEN.
func (p *Provider) Credentials() error {
	if p.token == "" {
		return &cloud.MissingCredentialsError{
			Provider:  providerName,
			Variables: []string{"HCLOUD_TOKEN"},
			Hint:      "a read & write API token of the Hetzner Cloud project",
		}
	}
	return nil
}

// do calls fn, an API request, until it succeeds or fails with an error
// that is not transient (see classify).
func (p *Provider) do(ctx context.Context, fn func() (*hcloud.Response, error)) error {
	return cloud.Retry(ctx, p.backoff, func() error {
		return classify(fn())
	})
}

// wait waits for actions to end. A failed action is a hcloud.ActionError;
// errors while polling are retried like any request (polling again is
// harmless).
func (p *Provider) wait(ctx context.Context, actions ...*hcloud.Action) error {
	return cloud.Retry(ctx, p.backoff, func() error {
		return classify(nil, p.client.Action.WaitFor(ctx, actions...))
	})
}

// classify wraps in a *cloud.TransientError what is worth retrying: rate
// limits, 5xx, conflicts and locks that clear by themselves, timeouts.
func classify(resp *hcloud.Response, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	var apiErr hcloud.Error
	if resp == nil && errors.As(err, &apiErr) {
		resp = apiErr.Response()
	}
	status := 0
	if resp != nil && resp.Response != nil {
		status = resp.StatusCode
	}
	switch {
	case status == http.StatusTooManyRequests, status >= 500:
	case hcloud.IsError(err,
		hcloud.ErrorCodeRateLimitExceeded, // also the status, but be sure
		hcloud.ErrorCodeConflict,          // "the resource has changed during the request, please retry"
		hcloud.ErrorCodeLocked,            // another action runs on the resource
		hcloud.ErrorCodeBadGateway,
		hcloud.ErrorCodeTimeout,
		hcloud.ErrorCodeServerError,
		hcloud.ErrorCodeRobotUnavailable):
	case isNetTimeout(err):
	default:
		return err
	}
	return &cloud.TransientError{Err: err}
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isNotFound reports a 404 from the API.
func isNotFound(err error) bool { return hcloud.IsError(err, hcloud.ErrorCodeNotFound) }
