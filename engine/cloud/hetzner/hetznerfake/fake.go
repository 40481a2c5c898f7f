// Package hetznerfake is a stateful, in-process fake of the Hetzner Cloud
// API for tests, built on net/http/httptest.
//
// It speaks the API's JSON (the wire types are hcloud-go's schema
// package, so the real client library parses every answer) for the part
// of the API fleet uses: servers (list with label_selector, name and
// pagination; get, create, update, delete; poweron and poweroff actions),
// ssh keys, actions (which are running when returned and finish on the
// next poll), firewalls and pricing. Errors come as the API sends them,
// {"error":{"code","message"}} with the matching status.
//
// What exists where is the catalogue the provider prices with
// (engine/cloud/hetzner/hcloudcatalog): its server types are
// sold, and priced by the pricing endpoint, in its locations only, and its
// system images exist, with the snapshots SeedSnapshot adds. A create
// naming a server type or location that does not exist, a type where it
// is not sold ("unsupported location for server type", the API's answer
// since types became per location) or an image that does not exist is
// refused with invalid_input. SeedServer checks nothing: it stands for
// whatever already exists.
//
// Firewalls have rules, labels and the resources they are applied to
// (servers, and label selectors whose matching servers get them): list
// (label_selector, name, pagination), get, create (with rules, labels
// and apply_to), update (name, labels), delete, and the actions
// set_rules, apply_to_resources and remove_from_resources. A server
// reports its firewalls in public_net.firewalls, "pending" until the
// action that applied it finished. Applying takes effect at once;
// removing when the remove_firewall action finishes, so that a client
// that does not wait for it finds the firewall still in use. Deleting a
// firewall that applies to anything answers resource_in_use. The API's
// own errors for these calls are kept: firewall_already_applied,
// firewall_already_removed, firewall_managed_by_label_selector,
// firewall_resource_not_found, server_already_added, uniqueness_error.
//
// A test seeds what already exists (SeedServer, SeedSSHKey,
// SeedFirewall, SeedFirewallWith), injects failures (FailNext for rate
// limits and 5xx, FailCreate for a create_server action that ends in
// error), drives the code under test through hcloud-go against URL(),
// then inspects the outcome (Servers, SSHKeys, Firewalls) and the
// traffic (Requests, Mutations).
//
// All methods are safe for concurrent use. Every resource gets its ID from
// one counter, which keeps IDs unique across types; the real API does not
// promise that and nothing may rely on it.
package hetznerfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"

	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hcloudcatalog"
)

// DefaultToken is the token a new fake accepts.
const DefaultToken = "fake-hcloud-token"

// Server is the fake API. Create it with New and Close it when done.
type Server struct {
	// Token is the bearer token the fake accepts; any other gets 401.
	// Set it before the first request if DefaultToken does not suit.
	Token string

	ts *httptest.Server

	mu         sync.Mutex
	nextID     int64
	servers    map[int64]*server
	keys       map[int64]*sshKey
	firewalls  map[int64]*firewall
	actions    map[int64]*action
	failures   []*failure
	failCreate map[string]string // server name -> action error message
	requests   []Request
	prices     map[string]map[string]float64 // server type -> location -> gross EUR/month
	snapshots  map[int64]string              // ID -> description
	ipv4Price  float64
}

// Request is one request the fake received. Path is relative to URL()
// ("/servers/42"), without the query.
type Request struct {
	Method string
	Path   string
	Query  url.Values
}

// Mutating reports whether the request is a POST, PUT or DELETE.
func (r Request) Mutating() bool {
	return r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodDelete
}

func (r Request) String() string {
	if len(r.Query) == 0 {
		return r.Method + " " + r.Path
	}
	return r.Method + " " + r.Path + "?" + r.Query.Encode()
}

// New starts a fake with no resources, selling the server types of the
// catalogue (hcloudcatalog) where it says, at its prices.
func New() *Server {
	s := &Server{
		Token:      DefaultToken,
		nextID:     1000,
		servers:    map[int64]*server{},
		keys:       map[int64]*sshKey{},
		firewalls:  map[int64]*firewall{},
		actions:    map[int64]*action{},
		failCreate: map[string]string{},
		prices:     map[string]map[string]float64{},
		snapshots:  map[int64]string{},
		ipv4Price:  0.60,
	}
	// What is sold where, at what price: the catalogue the provider's
	// price table comes from.
	for typ, st := range hcloudcatalog.ServerTypes {
		for _, loc := range st.Locations {
			s.setPrice(typ, loc, st.EURMonthly)
		}
	}
	s.ts = httptest.NewServer(s.routes())
	return s
}

// URL is the API endpoint to give the client (HCLOUD_ENDPOINT): the
// server's address with the /v1 prefix.
func (s *Server) URL() string { return s.ts.URL + "/v1" }

// Close shuts the server down.
func (s *Server) Close() { s.ts.Close() }

// Requests returns every request received so far, in order, including
// those that were refused or failed.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Mutations counts the POST, PUT and DELETE requests received so far.
func (s *Server) Mutations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Mutating() {
			n++
		}
	}
	return n
}

// ResetRequests forgets the requests received so far, so that a test can
// count those of one step.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

// failure is an injected failure.
type failure struct {
	match        func(Request) bool
	left, status int
	code         string // "" for the code that goes with status
}

// FailNext makes the next n requests whose method is method ("" for any)
// and whose path starts with prefix ("/servers") fail with status: 429
// answers rate_limit_exceeded with RateLimit headers, 5xx a server error
// (bad_gateway, unavailable, timeout or server_error), 409 conflict, 423
// locked. Injections are consumed in the order they were made.
func (s *Server) FailNext(method, prefix string, n, status int) {
	s.FailMatching(func(r Request) bool {
		return (method == "" || r.Method == method) && strings.HasPrefix(r.Path, prefix)
	}, n, status)
}

// FailMatching is FailNext for the requests match selects, for failures
// that depend on the query (one page of a list).
func (s *Server) FailMatching(match func(Request) bool, n, status int) {
	s.FailMatchingCode(match, n, status, "")
}

// FailMatchingCode is FailMatching with the error code given ("" for the
// code that goes with status), for errors that are not about the status
// alone: resource_in_use, locked ...
func (s *Server) FailMatchingCode(match func(Request) bool, n, status int, code string) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &failure{match: match, left: n, status: status, code: code})
}

// FailCreate makes the create_server action of the next server created
// with this name end in error with message (and its start_server action
// with it). The half-made server stays, switched off, as the real API can
// leave it.
func (s *Server) FailCreate(name, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCreate[name] = message
}

// SetServerTypePrice sets the gross monthly price in EUR the pricing API
// gives for a server type in a location. A type with a price in a
// location is sold there: creates of it there are accepted.
func (s *Server) SetServerTypePrice(serverType, location string, grossEUR float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setPrice(serverType, location, grossEUR)
}

// SetIPv4Price sets the gross monthly price in EUR of a primary IPv4, in
// every location.
func (s *Server) SetIPv4Price(grossEUR float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ipv4Price = grossEUR
}

func (s *Server) setPrice(typ, loc string, eur float64) {
	if s.prices[typ] == nil {
		s.prices[typ] = map[string]float64{}
	}
	s.prices[typ][loc] = eur
}

// ServerSeed describes a server that exists before the test.
type ServerSeed struct {
	Name     string
	Type     string // default cx22
	Location string // default fsn1
	Image    string // "" for a server without image
	Status   string // default running
	Labels   map[string]string
	NoIPv4   bool
}

// SeedServer adds a server as if someone had created it, and returns its ID.
func (s *Server) SeedServer(seed ServerSeed) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seed.Type == "" {
		seed.Type = "cx22"
	}
	if seed.Location == "" {
		seed.Location = "fsn1"
	}
	if seed.Status == "" {
		seed.Status = "running"
	}
	srv := s.newServer(seed.Name, seed.Type, seed.Location, seed.Image, seed.Labels, !seed.NoIPv4, true)
	srv.status = seed.Status
	return srv.id
}

// SeedSnapshot adds a snapshot image and returns its ID, which creates
// may then name as their image.
func (s *Server) SeedSnapshot(description string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.id()
	s.snapshots[id] = description
	return id
}

// SeedSSHKey adds an ssh key and returns its ID.
func (s *Server) SeedSSHKey(name, publicKey string, labels map[string]string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := &sshKey{id: s.id(), name: name, publicKey: publicKey, fingerprint: fingerprint(publicKey), labels: copyLabels(labels), created: time.Now()}
	s.keys[k.id] = k
	return k.id
}

// ServerInfo is a snapshot of one server.
type ServerInfo struct {
	ID                    int64
	Name                  string
	Type, Location, Image string
	Status                string
	Labels                map[string]string
	SSHKeys               []int64
	// Firewalls are the firewalls applied to the server directly, not
	// those a label selector applies.
	Firewalls  []int64
	IPv4, IPv6 string // IPv6 is the /64 network
}

// Servers returns a snapshot of the servers, by ID.
func (s *Server) Servers() []ServerInfo {
	return snapshot(s, serverKind, func(v *server) ServerInfo {
		return ServerInfo{
			ID: v.id, Name: v.name, Type: v.typ, Location: v.location, Image: v.image, Status: v.status,
			Labels: copyLabels(v.labels), SSHKeys: append([]int64(nil), v.sshKeys...),
			Firewalls: append([]int64(nil), v.firewalls...), IPv4: v.ipv4, IPv6: v.ipv6,
		}
	})
}

// SSHKeyInfo is a snapshot of one ssh key.
type SSHKeyInfo struct {
	ID                           int64
	Name, PublicKey, Fingerprint string
	Labels                       map[string]string
}

// SSHKeys returns a snapshot of the ssh keys, by ID.
func (s *Server) SSHKeys() []SSHKeyInfo {
	return snapshot(s, sshKeyKind, func(k *sshKey) SSHKeyInfo {
		return SSHKeyInfo{ID: k.id, Name: k.name, PublicKey: k.publicKey, Fingerprint: k.fingerprint, Labels: copyLabels(k.labels)}
	})
}

// routes is the API: the ServeMux does the routing, serve wraps it with
// what every request goes through.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/servers", s.listServers)
	mux.HandleFunc("POST /v1/servers", s.createServer)
	mux.HandleFunc("GET /v1/servers/{id}", s.getServer)
	mux.HandleFunc("PUT /v1/servers/{id}", s.updateServer)
	mux.HandleFunc("DELETE /v1/servers/{id}", s.deleteServer)
	mux.HandleFunc("POST /v1/servers/{id}/actions/{action}", s.serverAction)
	mux.HandleFunc("GET /v1/ssh_keys", s.listSSHKeys)
	mux.HandleFunc("POST /v1/ssh_keys", s.createSSHKey)
	mux.HandleFunc("GET /v1/ssh_keys/{id}", s.getSSHKey)
	mux.HandleFunc("PUT /v1/ssh_keys/{id}", s.updateSSHKey)
	mux.HandleFunc("DELETE /v1/ssh_keys/{id}", s.deleteSSHKey)
	mux.HandleFunc("GET /v1/actions", s.listActions)
	mux.HandleFunc("GET /v1/actions/{id}", s.getAction)
	mux.HandleFunc("GET /v1/firewalls", s.listFirewalls)
	mux.HandleFunc("POST /v1/firewalls", s.createFirewall)
	mux.HandleFunc("GET /v1/firewalls/{id}", s.getFirewall)
	mux.HandleFunc("PUT /v1/firewalls/{id}", s.updateFirewall)
	mux.HandleFunc("DELETE /v1/firewalls/{id}", s.deleteFirewall)
	mux.HandleFunc("POST /v1/firewalls/{id}/actions/{action}", s.firewallAction)
	mux.HandleFunc("GET /v1/pricing", s.pricing)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint in the fake: "+r.Method+" "+r.URL.Path)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/v1")
		s.mu.Lock()
		req := Request{Method: r.Method, Path: path, Query: r.URL.Query()}
		s.requests = append(s.requests, req)
		injected, code := s.takeFailure(req)
		s.mu.Unlock()

		// The real API sends its rate limit state with every answer.
		reset := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
		w.Header().Set("RateLimit-Limit", "3600")
		w.Header().Set("RateLimit-Reset", reset)
		if r.Header.Get("Authorization") != "Bearer "+s.Token {
			w.Header().Set("RateLimit-Remaining", "3599")
			writeError(w, http.StatusUnauthorized, "unauthorized", "unable to authenticate")
			return
		}
		switch {
		case injected != 0 && code != "":
			w.Header().Set("RateLimit-Remaining", "3599")
			writeError(w, injected, code, "injected failure")
			return
		case injected == http.StatusTooManyRequests:
			w.Header().Set("RateLimit-Remaining", "0")
			writeError(w, injected, "rate_limit_exceeded", "limit of 3600 requests per hour reached")
			return
		case injected != 0:
			w.Header().Set("RateLimit-Remaining", "3599")
			writeError(w, injected, errorCodeFor(injected), "injected failure")
			return
		}
		w.Header().Set("RateLimit-Remaining", "3599")
		mux.ServeHTTP(w, r)
	})
}

// takeFailure consumes a matching injected failure and returns its
// status and code, or 0. s.mu is held.
func (s *Server) takeFailure(r Request) (int, string) {
	for i, f := range s.failures {
		if f.match(r) {
			f.left--
			if f.left <= 0 {
				s.failures = append(s.failures[:i], s.failures[i+1:]...)
			}
			return f.status, f.code
		}
	}
	return 0, ""
}

func errorCodeFor(status int) string {
	switch status {
	case http.StatusBadGateway:
		return "bad_gateway"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusGatewayTimeout:
		return "timeout"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusLocked:
		return "locked"
	}
	if status >= 500 {
		return "server_error"
	}
	return "invalid_input"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, schema.ErrorResponse{Error: schema.Error{Code: code, Message: message}})
}

// id hands out the next ID. s.mu is held.
func (s *Server) id() int64 {
	s.nextID++
	return s.nextID
}

func copyLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}

type identified interface{ ident() int64 }

func sortedByID[T identified](m map[int64]T) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ident() < out[j].ident() })
	return out
}

// pageMeta is the API's meta object. The schema package's MetaPagination
// has ints where the API sends null (no previous or next page); the
// client reads both the same, but the fake sends what the API sends.
type pageMeta struct {
	Pagination pagination `json:"pagination"`
}

type pagination struct {
	Page         int  `json:"page"`
	PerPage      int  `json:"per_page"`
	PreviousPage *int `json:"previous_page"`
	NextPage     *int `json:"next_page"`
	LastPage     int  `json:"last_page"`
	TotalEntries int  `json:"total_entries"`
}

// paginate cuts items into the page the query asks for. The API defaults
// to 25 per page and allows at most 50.
func paginate[T any](q url.Values, items []T) ([]T, pageMeta, error) {
	page, perPage := 1, 25
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, pageMeta{}, fmt.Errorf("invalid page %q", v)
		}
		page = n
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, pageMeta{}, fmt.Errorf("invalid per_page %q", v)
		}
		perPage = min(n, 50)
	}
	last := max(1, (len(items)+perPage-1)/perPage)
	p := pagination{Page: page, PerPage: perPage, LastPage: last, TotalEntries: len(items)}
	if page > 1 {
		prev := page - 1
		p.PreviousPage = &prev
	}
	if page < last {
		next := page + 1
		p.NextPage = &next
	}
	lo := min((page-1)*perPage, len(items))
	hi := min(lo+perPage, len(items))
	return items[lo:hi], pageMeta{Pagination: p}, nil
}
