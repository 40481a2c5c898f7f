// Package gcp is fleet's Google Compute Engine provider: the fleet's GCE
// hosts become instances, plus one firewall rule per project that lets ssh
// and ZeroTier reach them.
//
// # Credentials
//
// Credentials follow Application Default Credentials as far as a file can
// carry them: GOOGLE_APPLICATION_CREDENTIALS names a service-account key or
// an authorized_user file; without it, gcloud's well-known file
// ($CLOUDSDK_CONFIG or $HOME/.config/gcloud, then
// application_default_credentials.json, written by `gcloud auth
// application-default login`) is used. Everything is read through
// cloud.Config.Getenv, so tests are hermetic.
//
// Unlike the client libraries' own ADC, fleet never falls back to the GCE
// metadata server. fleet runs on laptops and CI, where probing
// 169.254.169.254 only costs a timeout and, on a cloud VM that happens to
// have a service account, would silently act as that account. No file
// means a MissingCredentialsError naming GOOGLE_APPLICATION_CREDENTIALS,
// and the plan goes on for the other providers. Only the service_account
// and authorized_user types are accepted: external_account and
// impersonation configs may name commands to run or URLs to call, which a
// deploy tool should not do on the say-so of a file.
//
// The OAuth flow is golang.org/x/oauth2's, with the token_uri of the file
// honoured (that is how tests point it at a fake). The compute client is
// handed the resulting authenticated http.Client (option.WithHTTPClient)
// rather than the credentials: given credentials, it would build its own
// transport from the process environment (new or old auth library,
// telemetry, mTLS and the experimental S2A switch, which asks the metadata
// server for an address), none of which cfg.Getenv controls. With its own
// client it only still reads GOOGLE_API_USE_CLIENT_CERTIFICATE and
// GOOGLE_API_USE_MTLS_ENDPOINT to pick the endpoint.
// CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE, gcloud's own override, moves
// the Compute API elsewhere (a fake, a proxy).
//
// # Listing by label
//
// The cloud is the only state. Instances are listed once per project, in
// all its zones at once (instances.aggregatedList), with a server-side
// label filter, (labels.managed-by = "fleet") AND (labels.fleet =
// "<fleet>"), paginated with maxResults, so a plan costs ceil(N/page)
// requests however many instances the project holds and never one GET per
// machine. Listing every zone, not only those the fleet's hosts name, is
// what finds orphans: an instance left in a zone no machine uses any more
// (the machine was removed or moved zone) is still listed and deleted.
// The projects listed are those of the fleet's hosts plus the project of
// the credentials (project_id of a service-account key, quota_project_id
// of an ADC file), so a fleet whose last GCE host is gone still finds
// what it left there. That project is only a guess at where the fleet
// may have been: if it refuses the lists (403, 404: no such project, no
// access, Compute API not enabled) and no host names it, it is skipped
// rather than failing the plan.
//
// GCE has no label on firewall rules, so fleet marks its rule with the
// description "managed-by=fleet fleet=<fleet>", lists, once per project,
// the rules whose name matches "<fleet>-.*" (the only server-side filter
// that fits) and keeps those whose description says they are ours; that
// also tells fleet "prod" apart from fleet "prod-eu".
//
// An instance does not say which image its boot disk was made from, so
// fleet records the image it asked for in the instance metadata key
// fleet-image, where a list returns it.
//
// # Changes
//
// Every mutation is by name and carries a requestId, so a retried insert
// is answered with the first one's operation instead of a duplicate; an
// insert that still meets an existing instance fetches it (the only
// per-instance GET, besides reading the address of a host fleet just
// created or started, and fleet adopt's look-up) and either takes it as
// created, if it carries this fleet's labels, or fails with a
// NamesakeError and leaves it alone. Each change waits for its zone or
// global operation. Rate limits (429, or 403 with reason
// rateLimitExceeded), 5xx answers and timeouts are retried with
// cloud.Retry; the compute client itself retries nothing.
//
// # GPUs and prices
//
// What GCE offers is in one catalogue, internal/gcecatalog, which gcpfake
// refuses from too: machine types and their zones, the families whose
// types come with GPUs (A2, A3, A4, G2), the GPUs N1 types take attached,
// public image families, and the price table plans use (GCE has no
// pricing API without a billing account). An instance with GPUs, attached
// or built in, is created with onHostMaintenance TERMINATE and automatic
// restart: GCE cannot live-migrate GPUs and refuses such an instance with
// the default MIGRATE. Built-in GPUs are not named in the insert; GCE
// reports them in guestAccelerators, so the Spec says them too.
//
// # Adopting
//
// An instance made before the fleet becomes the fleet's with fleet adopt
// (PlanAdoption, Adopt): it is looked up by name in the host's project
// and zone, then gets the fleet's labels (setLabels, guarded by the label
// fingerprint like every label change). As GCE does not report the image
// of a boot disk, an instance without the fleet-image metadata item gets
// the declared image recorded there first, so that the next plan does not
// want it replaced over an image nobody can see. An instance of that
// name in another zone is named in the error but not adopted: the fleet
// wants its host in the declared zone.
package gcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/option"

	"github.com/fleet-nix/fleet/engine/cloud"
)

// Environment variables the provider reads (through cloud.Config.Getenv).
const (
	EnvCredentials = "GOOGLE_APPLICATION_CREDENTIALS"
	EnvEndpoint    = "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE"
	EnvConfigDir   = "CLOUDSDK_CONFIG"
)

// adcFile is the name gcloud gives application default credentials in its
// configuration directory.
const adcFile = "application_default_credentials.json"

// Provider is the GCE provider. Its exported fields may be adjusted after
// New and before first use.
type Provider struct {
	// MaxResults is the page size of list requests; GCE allows 1 to 500.
	MaxResults int64
	// PollInterval is the pause before asking again about an operation
	// that operations.wait returned unfinished (GCE's wait itself blocks
	// for up to two minutes, so this is rarely reached).
	PollInterval time.Duration
	// HTTPTimeout bounds each request, to the API and for tokens alike
	// (default DefaultHTTPTimeout): an API that accepts the connection
	// and never answers fails the request, which is retried like any
	// transient error, instead of hanging. Tests shorten it.
	HTTPTimeout time.Duration

	cfg cloud.Config
	// transport carries every request, API and token alike. nil means a
	// clone of http.DefaultTransport; tests set a guard that refuses
	// anything but loopback.
	transport http.RoundTripper

	mu  sync.Mutex
	svc *compute.Service
	// credProject is the project the credentials name ("" if none),
	// read with svc.
	credProject string
}

// New returns the GCE provider. A nil cfg.Getenv reads nothing: the
// provider then has no credentials and no endpoint override.
func New(cfg cloud.Config) *Provider {
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	return &Provider{cfg: cfg, MaxResults: 500, PollInterval: time.Second, HTTPTimeout: DefaultHTTPTimeout}
}

// DefaultHTTPTimeout bounds each request to GCE or Google's token service.
const DefaultHTTPTimeout = time.Minute

// Name is "gcp".
func (p *Provider) Name() string { return providerName }

const providerName = "gcp"

// Credentials reports whether a usable credentials file is there. It reads
// and checks the file but does not contact Google: a revoked key shows up
// on first use.
func (p *Provider) Credentials() error {
	_, err := p.credentials()
	return err
}

// credFile is a located and checked credentials file.
type credFile struct {
	path string
	typ  google.CredentialsType
	data []byte
	// project is the file's project_id (service-account keys) or, failing
	// that, its quota_project_id (what gcloud writes into ADC files); ""
	// if it names none.
	project string
}

// credentials finds the ADC file: GOOGLE_APPLICATION_CREDENTIALS if set
// (and then nothing else, like gcloud: a broken explicit setting is an
// error, not a reason to try something else), else gcloud's well-known
// file.
func (p *Provider) credentials() (*credFile, error) {
	if path := p.cfg.Getenv(EnvCredentials); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("gcp: %s: %w", EnvCredentials, err)
		}
		return checkCredentials(path, data)
	}
	if path := p.wellKnownFile(); path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			return checkCredentials(path, data)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("gcp: application default credentials: %w", err)
		}
	}
	return nil, &cloud.MissingCredentialsError{
		Provider:  providerName,
		Variables: []string{EnvCredentials},
		Hint:      "or run gcloud auth application-default login",
	}
}

// wellKnownFile is where gcloud keeps application default credentials.
func (p *Provider) wellKnownFile() string {
	if dir := p.cfg.Getenv(EnvConfigDir); dir != "" {
		return filepath.Join(dir, adcFile)
	}
	if dir := p.cfg.Getenv("APPDATA"); dir != "" && runtime.GOOS == "windows" {
		return filepath.Join(dir, "gcloud", adcFile)
	}
	if home := p.cfg.Getenv("HOME"); home != "" {
		return filepath.Join(home, ".config", "gcloud", adcFile)
	}
	return ""
}

// checkCredentials accepts service-account keys and authorized_user files
// with the fields their flows need.
func checkCredentials(path string, data []byte) (*credFile, error) {
	var f struct {
		Type         string `json:"type"`
		ClientEmail  string `json:"client_email"`
		PrivateKey   string `json:"private_key"`
		RefreshToken string `json:"refresh_token"`
		ClientID     string `json:"client_id"`
		ProjectID    string `json:"project_id"`
		QuotaProject string `json:"quota_project_id"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("gcp: credentials file %s: %w", path, err)
	}
	project := f.ProjectID
	if project == "" {
		project = f.QuotaProject
	}
	if strings.ContainsAny(project, "/ \t\n") {
		// Only a hint of where to look for orphans: something that
		// cannot be a project is no reason to refuse the credentials.
		project = ""
	}
	switch typ := google.CredentialsType(f.Type); typ {
	case google.ServiceAccount:
		if f.ClientEmail == "" || f.PrivateKey == "" {
			return nil, fmt.Errorf("gcp: credentials file %s: service account key without client_email or private_key", path)
		}
		return &credFile{path: path, typ: typ, data: data, project: project}, nil
	case google.AuthorizedUser:
		if f.RefreshToken == "" || f.ClientID == "" {
			return nil, fmt.Errorf("gcp: credentials file %s: authorized_user without client_id or refresh_token", path)
		}
		return &credFile{path: path, typ: typ, data: data, project: project}, nil
	default:
		return nil, fmt.Errorf("gcp: credentials file %s is of type %q: fleet accepts service_account keys and "+
			"authorized_user files (gcloud auth application-default login)", path, f.Type)
	}
}

// service returns the compute client, building it on first use. A failure
// is not remembered: fixing the file and retrying works in a long-lived
// process.
func (p *Provider) service() (*compute.Service, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.svc != nil {
		return p.svc, nil
	}
	cf, err := p.credentials()
	if err != nil {
		return nil, err
	}
	base := p.transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	// The token source keeps this context for every refresh, so it must
	// not be the first caller's (which may be cancelled long before the
	// token expires); it only carries the client token requests use.
	timeout := p.HTTPTimeout
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	tokenCtx := context.WithValue(context.Background(), oauth2.HTTPClient,
		&http.Client{Transport: base, Timeout: timeout})
	creds, err := google.CredentialsFromJSONWithType(tokenCtx, cf.data, cf.typ, compute.ComputeScope)
	if err != nil {
		return nil, fmt.Errorf("gcp: credentials file %s: %w", cf.path, err)
	}
	// roundTripperOnly hides oauth2.Transport's deprecated CancelRequest,
	// which the client's Timeout would call and which only logs a warning;
	// the timeout cancels the request's context, which is what counts.
	client := &http.Client{Transport: roundTripperOnly{&oauth2.Transport{Source: creds.TokenSource, Base: base}}, Timeout: timeout}
	opts := []option.ClientOption{option.WithHTTPClient(client)}
	if ep := p.cfg.Getenv(EnvEndpoint); ep != "" {
		// gcloud wants the override to end in a slash; the client
		// appends paths to it verbatim.
		if !strings.HasSuffix(ep, "/") {
			ep += "/"
		}
		opts = append(opts, option.WithEndpoint(ep))
	}
	svc, err := compute.NewService(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("gcp: %w", err)
	}
	// With WithHTTPClient the client ignores option.WithUserAgent; this
	// field is what it puts into User-Agent.
	svc.UserAgent = "fleet"
	p.svc = svc
	p.credProject = cf.project
	return svc, nil
}

// serviceAndProject is service and the project the credentials it was
// built from name ("" if none).
func (p *Provider) serviceAndProject() (*compute.Service, string, error) {
	svc, err := p.service()
	if err != nil {
		return nil, "", err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return svc, p.credProject, nil
}

// roundTripperOnly is a RoundTripper and nothing else (see service).
type roundTripperOnly struct{ http.RoundTripper }
