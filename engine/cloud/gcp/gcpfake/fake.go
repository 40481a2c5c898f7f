// Package gcpfake is a stateful fake of the parts of the Compute Engine v1
// API that fleet uses, served by net/http/httptest and speaking the real
// JSON (it encodes google.golang.org/api/compute/v1's own structs), so
// tests drive the real compute client and the real OAuth flow against it.
//
// It serves, under Endpoint():
//
//	projects/P/aggregated/instances              GET aggregated list of all zones (filter, maxResults, pageToken)
//	projects/P/zones/Z/instances                 GET list (filter, maxResults, pageToken), POST insert
//	projects/P/zones/Z/instances/N               GET, DELETE
//	projects/P/zones/Z/instances/N/start|stop    POST
//	projects/P/zones/Z/instances/N/setLabels     POST (labelFingerprint)
//	projects/P/zones/Z/instances/N/setTags       POST (tags fingerprint)
//	projects/P/zones/Z/instances/N/setMetadata   POST (metadata fingerprint)
//	projects/P/zones/Z/operations/O[/wait]       GET, POST
//	projects/P/global/firewalls[/N]              GET list, POST insert; GET, PATCH, DELETE
//	projects/P/global/operations/O[/wait]        GET, POST
//
// and, at TokenURL(), an OAuth token endpoint for the service-account JWT
// bearer grant (the assertion's RS256 signature is checked against keys
// registered with RegisterKey or ServiceAccountJSON) and for the
// refresh_token grant of authorized_user files (AuthorizedUserJSON).
// Every API request must carry a bearer token the endpoint issued.
//
// The aggregated list answers, like GCE, with items keyed "zones/Z" for
// every zone of the project: a few fixed ones and those holding any of the
// project's instances. A zone with instances on the page has
// {"instances": [...]}, one without {"warning": {"code":
// "NO_RESULTS_ON_PAGE", ...}}. maxResults counts instances across zones;
// pages go through them by zone and name.
//
// Effects are immediate: an insert makes the instance exist, RUNNING and
// with an external natIP, before its operation (RUNNING when returned)
// reports DONE on a later poll. So a client that stops waiting (Ctrl-C)
// leaves the fake as GCE would be once the operation finished.
//
// Errors use GCE's JSON ({"error":{"code","message","errors":[{"reason"}]}})
// and statuses: 404 notFound, 409 alreadyExists, 412 conditionNotMet (a
// setLabels, setTags or setMetadata whose fingerprint is not the
// instance's current one), 429 rateLimitExceeded, 400 invalid. FailNext and FailOperation inject
// failures.
//
// An insert is held to what GCE offers, from the catalogue the gcp
// provider prices with (engine/cloud/gcp/internal/gcecatalog), with GCE's
// answers: a machine type the zone does not offer is 400 invalid ("Machine
// type with name 'T' does not exist in zone 'Z'."); an instance with GPUs,
// built in by its type (A2, A3, A4, G2) or attached, whose
// scheduling.onHostMaintenance is not TERMINATE is 400 badRequest
// ("Instances with guest accelerators do not support live migration.");
// guestAccelerators on a type that takes none or has its own are 400
// badRequest ("[GPU, TYPE] features are not compatible for creating
// instance."), an attached GPU the zone lacks or a count it is not sold in
// is 400 invalid; a source image or family that does not exist is 404
// notFound. The public image families of the catalogue exist, and those
// SeedImage adds. An instance of a type with built-in GPUs reports them in
// guestAccelerators, as GCE does. Seed, Edit and SeedFirewall check
// nothing: they stand for whatever already exists. The Server records every request and is safe for concurrent
// use.
package gcpfake

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	compute "google.golang.org/api/compute/v1"

	"github.com/fleet-nix/fleet/engine/cloud/gcp/internal/gcecatalog"
)

// APIRoot is the path under which the fake serves the Compute API.
const APIRoot = "/compute/v1/"

const tokenPath = "/token"

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string     // as received, e.g. /compute/v1/projects/p/zones/z/instances
	Query  url.Values // filter, maxResults, pageToken, requestId ...
	Status int        // what the fake answered
}

// Server is the fake. Create it with New and Close it when done.
type Server struct {
	srv *httptest.Server
	mux *http.ServeMux

	mu         sync.Mutex
	instances  map[string]*compute.Instance // project/zone/name
	images     map[string]string            // project/name -> family ("" for none)
	firewalls  map[string]*compute.Firewall // project/name
	ops        map[string]*operation        // project/zone-or-"global"/name
	requestIDs map[string]*operation        // requestId -> the operation it started
	keys       map[string]*publicKey        // key id -> key
	users      map[string]authorizedUser    // refresh token -> client
	tokens     map[string]time.Time         // access token -> expiry
	requests   []Request
	mutations  int
	tokenReqs  int
	failures   []*failure
	failOps    map[string]*compute.OperationErrorErrors // instance name -> error
	opPolls    int
	seq        uint64
}

type operation struct {
	op      *compute.Operation
	pending int // polls left before DONE
	err     *compute.OperationErrorErrors
}

type failure struct {
	method, prefix string
	status, left   int
}

// New starts a fake with no instances.
func New() *Server {
	s := &Server{
		instances:  map[string]*compute.Instance{},
		images:     map[string]string{},
		firewalls:  map[string]*compute.Firewall{},
		ops:        map[string]*operation{},
		requestIDs: map[string]*operation{},
		keys:       map[string]*publicKey{},
		users:      map[string]authorizedUser{},
		tokens:     map[string]time.Time{},
		failOps:    map[string]*compute.OperationErrorErrors{},
		opPolls:    1,
	}
	s.mux = http.NewServeMux()
	const z = APIRoot + "projects/{project}/zones/{zone}/"
	const g = APIRoot + "projects/{project}/global/"
	s.mux.HandleFunc("GET "+APIRoot+"projects/{project}/aggregated/instances", s.aggregatedInstances)
	s.mux.HandleFunc("GET "+z+"instances", s.listInstances)
	s.mux.HandleFunc("POST "+z+"instances", s.insertInstance)
	s.mux.HandleFunc("GET "+z+"instances/{name}", s.getInstance)
	s.mux.HandleFunc("DELETE "+z+"instances/{name}", s.deleteInstance)
	s.mux.HandleFunc("POST "+z+"instances/{name}/start", s.startInstance)
	s.mux.HandleFunc("POST "+z+"instances/{name}/stop", s.stopInstance)
	s.mux.HandleFunc("POST "+z+"instances/{name}/setLabels", s.setLabels)
	s.mux.HandleFunc("POST "+z+"instances/{name}/setTags", s.setTags)
	s.mux.HandleFunc("POST "+z+"instances/{name}/setMetadata", s.setMetadata)
	s.mux.HandleFunc("GET "+z+"operations/{op}", s.pollZoneOp)
	s.mux.HandleFunc("POST "+z+"operations/{op}/wait", s.pollZoneOp)
	s.mux.HandleFunc("GET "+g+"firewalls", s.listFirewalls)
	s.mux.HandleFunc("POST "+g+"firewalls", s.insertFirewall)
	s.mux.HandleFunc("GET "+g+"firewalls/{name}", s.getFirewall)
	s.mux.HandleFunc("PATCH "+g+"firewalls/{name}", s.patchFirewall)
	s.mux.HandleFunc("DELETE "+g+"firewalls/{name}", s.deleteFirewall)
	s.mux.HandleFunc("GET "+g+"operations/{op}", s.pollGlobalOp)
	s.mux.HandleFunc("POST "+g+"operations/{op}/wait", s.pollGlobalOp)
	s.mux.HandleFunc("POST "+tokenPath, s.token)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// URL is the server's base URL (http://127.0.0.1:port).
func (s *Server) URL() string { return s.srv.URL }

// Endpoint is the Compute API root, the value for
// CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE.
func (s *Server) Endpoint() string { return s.srv.URL + APIRoot }

// TokenURL is the OAuth token endpoint, the token_uri of credentials files.
func (s *Server) TokenURL() string { return s.srv.URL + tokenPath }

// SetOperationPolls sets how many polls (get or wait) an operation
// answers RUNNING before it is DONE (default 1).
func (s *Server) SetOperationPolls(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opPolls = n
}

// FailNext makes the next n requests whose method is method ("" for any)
// and whose path, relative to APIRoot, starts with pathPrefix (such as
// "projects/p/zones/z/instances") fail with status: 429 answers
// rateLimitExceeded, 5xx backendError.
func (s *Server) FailNext(method, pathPrefix string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &failure{method: method, prefix: pathPrefix, status: status, left: n})
}

// FailOperation makes the next insert of an instance called name accept
// the request and then end its operation with an error with this code
// (such as ZONE_RESOURCE_POOL_EXHAUSTED) and message. The instance is not
// created.
func (s *Server) FailOperation(name, code, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failOps[name] = &compute.OperationErrorErrors{Code: code, Message: message}
}

// Requests returns every request received so far, token requests included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Count is the number of requests received with this method ("" for any)
// whose path relative to APIRoot starts with pathPrefix.
func (s *Server) Count(method, pathPrefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		rel, ok := strings.CutPrefix(r.Path, APIRoot)
		if ok && (method == "" || r.Method == method) && strings.HasPrefix(rel, pathPrefix) {
			n++
		}
	}
	return n
}

// Mutations is the number of API requests received that would change
// something (POST other than operations wait, PATCH, PUT, DELETE),
// whatever the answer.
func (s *Server) Mutations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mutations
}

// TokenRequests is the number of requests to the token endpoint.
func (s *Server) TokenRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenReqs
}

// ResetRequests forgets the recorded requests and zeroes the counters.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.mutations, s.tokenReqs = nil, 0, 0
}

// Seed adds an instance as if someone had created it, without a request.
// Only Name is required; what is missing is filled in as an insert would
// (RUNNING, an external natIP, a 10 GB boot disk, e2-medium). Its labels
// are whatever inst says: none, fleet's, another fleet's.
func (s *Server) Seed(project, zone string, inst *compute.Instance) *compute.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := clone(inst)
	if in.MachineType == "" {
		in.MachineType = "e2-medium"
	}
	if len(in.Disks) == 0 {
		in.Disks = []*compute.AttachedDisk{{Boot: true, AutoDelete: true, DiskSizeGb: 10}}
	}
	if len(in.NetworkInterfaces) == 0 {
		in.NetworkInterfaces = []*compute.NetworkInterface{{AccessConfigs: []*compute.AccessConfig{{Type: "ONE_TO_ONE_NAT"}}}}
	}
	status := in.Status
	s.fillInstance(project, zone, in)
	if status != "" {
		in.Status = status
		if status != "RUNNING" {
			clearNatIPs(in)
		}
	}
	s.instances[project+"/"+zone+"/"+in.Name] = in
	return clone(in)
}

// Edit changes an instance as someone else would (in the console, with
// gcloud), without a request: edit gets the fake's own instance, and its
// label, tags and metadata fingerprints are computed afresh after. It
// returns a copy of the result, or nil if there is no such instance.
func (s *Server) Edit(project, zone, name string, edit func(*compute.Instance)) *compute.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instances[project+"/"+zone+"/"+name]
	if in == nil {
		return nil
	}
	edit(in)
	in.LabelFingerprint = fingerprint(in.Labels)
	if in.Tags == nil {
		in.Tags = &compute.Tags{}
	}
	in.Tags.Fingerprint = fingerprint(in.Tags.Items)
	if in.Metadata == nil {
		in.Metadata = &compute.Metadata{}
	}
	in.Metadata.Kind = "compute#metadata"
	in.Metadata.Fingerprint = fingerprint(in.Metadata.Items)
	return clone(in)
}

// SeedImage adds an image to a project, as if someone had made it, in
// family ("" for none): inserts may then name it by name or family, as
// they may the public families of the catalogue (gcecatalog.ImageFamilies).
func (s *Server) SeedImage(project, name, family string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.images[project+"/"+name] = family
}

// SeedFirewall adds a firewall rule without a request.
func (s *Server) SeedFirewall(project string, fw *compute.Firewall) *compute.Firewall {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := clone(fw)
	s.fillFirewall(project, f)
	s.firewalls[project+"/"+f.Name] = f
	return clone(f)
}

// Instance returns a copy of an instance, or nil.
func (s *Server) Instance(project, zone, name string) *compute.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in := s.instances[project+"/"+zone+"/"+name]; in != nil {
		return clone(in)
	}
	return nil
}

// InstanceNames returns "project/zone/name" of every instance, sorted.
func (s *Server) InstanceNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.instances))
	for k := range s.instances {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Firewall returns a copy of a firewall rule, or nil.
func (s *Server) Firewall(project, name string) *compute.Firewall {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fw := s.firewalls[project+"/"+name]; fw != nil {
		return clone(fw)
	}
	return nil
}

// serve records the request, injects failures, checks the bearer token and
// dispatches. One lock is held throughout: requests are quick, and a
// serialized fake has no races of its own to debug.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Status: sw.status})
	}()
	if r.URL.Path == tokenPath {
		s.tokenReqs++
		s.mux.ServeHTTP(sw, r)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, APIRoot)
	if !ok {
		writeError(sw, http.StatusNotFound, "notFound", "no such path "+r.URL.Path)
		return
	}
	if r.Method != http.MethodGet && !strings.HasSuffix(rel, "/wait") {
		s.mutations++
	}
	for _, f := range s.failures {
		if f.left > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(rel, f.prefix) {
			f.left--
			reason, msg := "backendError", "Internal error. Please try again."
			switch {
			case f.status == http.StatusTooManyRequests:
				reason, msg = "rateLimitExceeded", "Rate Limit Exceeded"
			case f.status < 500:
				reason, msg = "invalid", "Injected failure"
			}
			writeError(sw, f.status, reason, msg)
			return
		}
	}
	if !s.authorized(r) {
		writeError(sw, http.StatusUnauthorized, "required",
			"Request is missing required authentication credential. Expected OAuth 2 access token.")
		return
	}
	s.mux.ServeHTTP(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Resources.

// kind is what the handlers of one type of resource share: where the fake
// keeps them and where a request's path puts them.
type kind[T any] struct {
	table func(*Server) map[string]*T
	// scope is the collection a request is about: the prefix of the keys
	// of its resources in table ("p/z/") and its path under APIRoot
	// ("projects/p/zones/z/instances").
	scope func(r *http.Request) (prefix, path string)
	name  func(*T) string
	field func(*T, string) (string, bool, error) // for list filters
}

var (
	instanceKind = kind[compute.Instance]{
		table: func(s *Server) map[string]*compute.Instance { return s.instances },
		scope: func(r *http.Request) (string, string) {
			project, zone := r.PathValue("project"), r.PathValue("zone")
			return project + "/" + zone + "/", "projects/" + project + "/zones/" + zone + "/instances"
		},
		name:  func(in *compute.Instance) string { return in.Name },
		field: instanceField,
	}
	firewallKind = kind[compute.Firewall]{
		table: func(s *Server) map[string]*compute.Firewall { return s.firewalls },
		scope: func(r *http.Request) (string, string) {
			project := r.PathValue("project")
			return project + "/", "projects/" + project + "/global/firewalls"
		},
		name:  func(fw *compute.Firewall) string { return fw.Name },
		field: firewallField,
	}
)

// list is the page of the collection that the request asks for, as
// copies, the token of the next page and the collection's path. A bad
// query it answers with invalid and ok false.
func (k kind[T]) list(s *Server, w http.ResponseWriter, r *http.Request) (page []*T, next, path string, ok bool) {
	prefix, path := k.scope(r)
	var all []*T
	for key, v := range k.table(s) {
		if strings.HasPrefix(key, prefix) {
			all = append(all, v)
		}
	}
	page, next, ok = paginate(w, r, all, k.name, k.field)
	return clones(page), next, path, ok
}

// at is the key in table and the path under APIRoot of the resource
// called name in the collection the request is about.
func (k kind[T]) at(r *http.Request, name string) (key, path string) {
	prefix, path := k.scope(r)
	return prefix + name, path + "/" + name
}

// find is the resource that the path's {name} names. A missing one it
// answers with notFound.
func (k kind[T]) find(s *Server, w http.ResponseWriter, r *http.Request) (*T, bool) {
	key, path := k.at(r, r.PathValue("name"))
	v := k.table(s)[key]
	if v == nil {
		writeError(w, http.StatusNotFound, "notFound", "The resource '"+path+"' was not found")
		return nil, false
	}
	return v, true
}

// get answers with a copy of the resource the path names.
func (k kind[T]) get(s *Server, w http.ResponseWriter, r *http.Request) {
	if v, ok := k.find(s, w, r); ok {
		writeJSON(w, clone(v))
	}
}

// insert serves the insert of the resource in the body into the
// collection the path names, as GCE does: a request whose requestId was
// seen before gets that operation again; the resource must decode, pass
// check (which says what is wrong with it, "" if nothing) and have a name
// not taken. Then fill completes it as GCE would and it is stored, unless
// fill returns an error for its operation to end with. The answer is that
// operation, RUNNING.
func (k kind[T]) insert(s *Server, w http.ResponseWriter, r *http.Request, check func(*T) *apiError, fill func(*T) *compute.OperationErrorErrors) {
	if s.repeated(w, r) {
		return
	}
	v := new(T)
	if !decode(w, r, v) {
		return
	}
	if e := check(v); e != nil {
		writeError(w, e.code, e.reason, e.message)
		return
	}
	key, path := k.at(r, k.name(v))
	if k.table(s)[key] != nil {
		writeError(w, http.StatusConflict, "alreadyExists", "The resource '"+path+"' already exists")
		return
	}
	opErr := fill(v)
	if opErr == nil {
		k.table(s)[key] = v
	}
	s.startOp(w, r, r.PathValue("project"), r.PathValue("zone"), "insert", s.Endpoint()+path, opErr)
}

// change serves a change to the resource the path names, as GCE does: a
// request whose requestId was seen before gets that operation again, one
// about a missing resource notFound. Otherwise apply changes the resource
// (or answers why not and returns false), and the answer is a new
// operation of type typ on it, RUNNING.
func (k kind[T]) change(s *Server, w http.ResponseWriter, r *http.Request, typ string, apply func(*T) bool) {
	if s.repeated(w, r) {
		return
	}
	v, ok := k.find(s, w, r)
	if !ok || !apply(v) {
		return
	}
	_, path := k.at(r, r.PathValue("name"))
	s.startOp(w, r, r.PathValue("project"), r.PathValue("zone"), typ, s.Endpoint()+path, nil)
}

// remove serves the delete of the resource the path names.
func (k kind[T]) remove(s *Server, w http.ResponseWriter, r *http.Request) {
	k.change(s, w, r, "delete", func(*T) bool {
		key, _ := k.at(r, r.PathValue("name"))
		delete(k.table(s), key)
		return true
	})
}

// Instances.

var nameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)

func (s *Server) listInstances(w http.ResponseWriter, r *http.Request) {
	if page, next, path, ok := instanceKind.list(s, w, r); ok {
		writeJSON(w, &compute.InstanceList{
			Kind:          "compute#instanceList",
			Id:            path,
			Items:         page,
			NextPageToken: next,
			SelfLink:      s.Endpoint() + path,
		})
	}
}

// defaultZones are the zones every project of the fake has besides those
// its instances are in: an aggregated list reports them even where
// nothing matches.
var defaultZones = []string{"europe-west1-b", "europe-west4-a", "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"}

func (s *Server) aggregatedInstances(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	zones := map[string]bool{}
	for _, z := range defaultZones {
		zones[z] = true
	}
	var all []*compute.Instance
	for k, in := range s.instances {
		if p, rest, _ := strings.Cut(k, "/"); p == project {
			zone, _, _ := strings.Cut(rest, "/")
			zones[zone] = true
			all = append(all, in)
		}
	}
	// Zone, then name: the order pages go through the zones in.
	key := func(in *compute.Instance) string { return lastElem(in.Zone) + "/" + in.Name }
	page, next, ok := paginate(w, r, all, key, instanceField)
	if !ok {
		return
	}
	items := map[string]compute.InstancesScopedList{}
	for _, in := range page {
		z := "zones/" + lastElem(in.Zone)
		sl := items[z]
		sl.Instances = append(sl.Instances, clone(in))
		items[z] = sl
	}
	for z := range zones {
		scope := "zones/" + z
		if _, ok := items[scope]; !ok {
			items[scope] = compute.InstancesScopedList{Warning: &compute.InstancesScopedListWarning{
				Code:    "NO_RESULTS_ON_PAGE",
				Message: "There are no results for scope '" + scope + "' on this page.",
				Data:    []*compute.InstancesScopedListWarningData{{Key: "scope", Value: scope}},
			}}
		}
	}
	writeJSON(w, &compute.InstanceAggregatedList{
		Kind:          "compute#instanceAggregatedList",
		Id:            "projects/" + project + "/aggregated/instances",
		Items:         items,
		NextPageToken: next,
		SelfLink:      s.Endpoint() + "projects/" + project + "/aggregated/instances",
	})
}

func instanceField(in *compute.Instance, field string) (string, bool, error) {
	if k, ok := strings.CutPrefix(field, "labels."); ok {
		v, ok := in.Labels[k]
		return v, ok, nil
	}
	switch field {
	case "name":
		return in.Name, true, nil
	case "status":
		return in.Status, true, nil
	case "machineType":
		return in.MachineType, true, nil
	}
	return "", false, fmt.Errorf("the fake cannot filter instances on %q", field)
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) {
	instanceKind.get(s, w, r)
}

func (s *Server) insertInstance(w http.ResponseWriter, r *http.Request) {
	project, zone := r.PathValue("project"), r.PathValue("zone")
	instanceKind.insert(s, w, r, func(in *compute.Instance) *apiError { return s.checkInstance(project, zone, in) },
		func(in *compute.Instance) *compute.OperationErrorErrors {
			if e := s.failOps[in.Name]; e != nil {
				delete(s.failOps, in.Name)
				return e
			}
			s.fillInstance(project, zone, in)
			return nil
		})
}

// apiError is a refusal: status, reason and message of GCE's error.
type apiError struct {
	code            int
	reason, message string
}

func invalid(msg string) *apiError { return &apiError{http.StatusBadRequest, "invalid", msg} }

// checkInstance applies the rules of GCE that fleet's requests could
// break, with GCE's statuses, reasons and messages: the catalogue
// (gcecatalog) says which machine types each zone offers, which come with
// GPUs, which GPUs can be attached to what and how many, and which public
// image families exist; SeedImage adds images of one's own.
func (s *Server) checkInstance(project, zone string, in *compute.Instance) *apiError {
	switch {
	case !nameRE.MatchString(in.Name):
		return invalid(fmt.Sprintf("Invalid value for field 'resource.name': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", in.Name))
	case in.MachineType == "":
		return invalid("Invalid value for field 'resource.machineType': ''. Machine type is required.")
	case strings.Contains(in.MachineType, "/zones/") || strings.HasPrefix(in.MachineType, "zones/"):
		if !strings.Contains(in.MachineType, "zones/"+zone+"/") {
			return invalid(fmt.Sprintf("Invalid value for field 'resource.machineType': '%s'. Machine type must be in zone %s.", in.MachineType, zone))
		}
	}
	typ := lastElem(in.MachineType)
	if !gcecatalog.Offered(typ, zone) {
		return invalid(fmt.Sprintf("Invalid value for field 'resource.machineType': '%s'. Machine type with name '%s' does not exist in zone '%s'.", in.MachineType, typ, zone))
	}
	boot := 0
	for i, d := range in.Disks {
		if d.Boot {
			boot++
			if d.InitializeParams == nil || d.InitializeParams.SourceImage == "" && d.Source == "" {
				return invalid(fmt.Sprintf("Invalid value for field 'resource.disks[%d]': a boot disk needs initializeParams.sourceImage or source.", i))
			}
		}
		if p := d.InitializeParams; p != nil && p.SourceImage != "" {
			if e := s.checkImage(project, p.SourceImage); e != nil {
				return e
			}
		}
	}
	if boot != 1 {
		return invalid("Invalid value for field 'resource.disks': exactly one boot disk is required.")
	}
	if len(in.NetworkInterfaces) == 0 {
		return invalid("Invalid value for field 'resource.networkInterfaces': at least one network interface is required.")
	}
	_, _, builtin := gcecatalog.BuiltinGPU(typ)
	for i, a := range in.GuestAccelerators {
		gpu := lastElem(a.AcceleratorType)
		if builtin || !gcecatalog.TakesAttachedGPUs(typ) {
			// What GCE answers a GPU on a type that takes none, or on
			// one that has its own.
			return &apiError{http.StatusBadRequest, "badRequest", fmt.Sprintf("[%s, %s] features are not compatible for creating instance.", gpu, typ)}
		}
		g, ok := gcecatalog.AttachableGPUs[gpu]
		if !ok || !slices.Contains(g.Zones, zone) || strings.Contains(a.AcceleratorType, "zones/") && !strings.Contains(a.AcceleratorType, "zones/"+zone+"/") {
			return invalid(fmt.Sprintf("Invalid value for field 'resource.guestAccelerators[%d].acceleratorType': '%s'. Accelerator type with name '%s' does not exist in zone '%s'.", i, a.AcceleratorType, gpu, zone))
		}
		if !slices.Contains(g.Counts, int(a.AcceleratorCount)) {
			return invalid(fmt.Sprintf("Invalid value for field 'resource.guestAccelerators[%d].acceleratorCount': '%d'. %s instances take %s of them.", i, a.AcceleratorCount, gpu, counts(g.Counts)))
		}
	}
	if (builtin || len(in.GuestAccelerators) > 0) && (in.Scheduling == nil || in.Scheduling.OnHostMaintenance != "TERMINATE") {
		return &apiError{http.StatusBadRequest, "badRequest", "Instances with guest accelerators do not support live migration."}
	}
	if msg := checkLabels(in.Labels); msg != "" {
		return invalid(msg)
	}
	return nil
}

// counts says "1, 2 or 4".
func counts(ns []int) string {
	var out string
	for i, n := range ns {
		switch {
		case i == 0:
		case i == len(ns)-1:
			out += " or "
		default:
			out += ", "
		}
		out += strconv.Itoa(n)
	}
	return out
}

var imageRE = regexp.MustCompile(`^(?:https?://[^/]+/compute/v1/)?(?:projects/([^/]+)/)?global/images/(family/)?([^/]+)$`)

// checkImage answers an image that does not exist with notFound, as GCE
// does: a family of the catalogue's public ones or of the images seeded,
// or an image seeded, by name.
func (s *Server) checkImage(project, source string) *apiError {
	m := imageRE.FindStringSubmatch(source)
	if m == nil {
		return invalid(fmt.Sprintf("Invalid value for field 'resource.disks[0].initializeParams.sourceImage': '%s'. The URL is malformed.", source))
	}
	p, family, name := m[1], m[2] != "", m[3]
	if p == "" {
		p = project
	}
	found := false
	if family {
		found = slices.Contains(gcecatalog.ImageFamilies[p], name)
		for key, f := range s.images {
			found = found || f == name && strings.HasPrefix(key, p+"/")
		}
	} else {
		_, found = s.images[p+"/"+name]
	}
	if !found {
		what := "projects/" + p + "/global/images/" + m[2] + name
		return &apiError{http.StatusNotFound, "notFound", "The resource '" + what + "' was not found"}
	}
	return nil
}

var (
	labelKeyRE   = regexp.MustCompile(`^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$`)
	labelValueRE = regexp.MustCompile(`^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$`)
)

func checkLabels(labels map[string]string) string {
	for k, v := range labels {
		if !labelKeyRE.MatchString(k) || !labelValueRE.MatchString(v) {
			return fmt.Sprintf("Invalid value for field 'labels': label %s=%s violates GCE's label rules.", k, v)
		}
	}
	return ""
}

// fillInstance completes an instance the way GCE describes one it made:
// full URLs, ids, fingerprints, an address, no initializeParams.
func (s *Server) fillInstance(project, zone string, in *compute.Instance) {
	s.seq++
	base := s.Endpoint() + "projects/" + project + "/"
	zoneURL := base + "zones/" + zone
	in.Kind = "compute#instance"
	in.Id = 1000000000000000000 + s.seq
	in.CreationTimestamp = time.Now().Format(time.RFC3339)
	in.Zone = zoneURL
	in.SelfLink = zoneURL + "/instances/" + in.Name
	in.MachineType = zoneURL + "/machineTypes/" + lastElem(in.MachineType)
	in.Status = "RUNNING"
	in.CpuPlatform = "Intel Broadwell"
	in.LabelFingerprint = fingerprint(in.Labels)
	if in.Metadata == nil {
		in.Metadata = &compute.Metadata{}
	}
	in.Metadata.Kind = "compute#metadata"
	in.Metadata.Fingerprint = fingerprint(in.Metadata.Items)
	if in.Tags == nil {
		in.Tags = &compute.Tags{}
	}
	in.Tags.Fingerprint = fingerprint(in.Tags.Items)
	if in.Scheduling == nil {
		restart := true
		in.Scheduling = &compute.Scheduling{OnHostMaintenance: "MIGRATE", AutomaticRestart: &restart}
	}
	in.Scheduling.ProvisioningModel = "STANDARD"
	if gpu, n, ok := gcecatalog.BuiltinGPU(lastElem(in.MachineType)); ok && len(in.GuestAccelerators) == 0 {
		// GCE reports the GPUs a machine type comes with as if attached.
		in.GuestAccelerators = []*compute.AcceleratorConfig{{AcceleratorType: gpu, AcceleratorCount: int64(n)}}
	}
	for _, a := range in.GuestAccelerators {
		a.AcceleratorType = zoneURL + "/acceleratorTypes/" + lastElem(a.AcceleratorType)
	}
	for i, d := range in.Disks {
		d.Kind = "compute#attachedDisk"
		d.Index = int64(i)
		d.Type, d.Mode, d.Interface = "PERSISTENT", "READ_WRITE", "SCSI"
		d.DeviceName = fmt.Sprintf("persistent-disk-%d", i)
		if p := d.InitializeParams; p != nil {
			d.DiskSizeGb = p.DiskSizeGb
		}
		if d.DiskSizeGb == 0 {
			d.DiskSizeGb = 10
		}
		if d.Source == "" {
			diskName := in.Name
			if i > 0 {
				diskName += fmt.Sprintf("-%d", i)
			}
			d.Source = zoneURL + "/disks/" + diskName
		}
		d.InitializeParams = nil
	}
	for i, ni := range in.NetworkInterfaces {
		ni.Kind = "compute#networkInterface"
		ni.Name = fmt.Sprintf("nic%d", i)
		if ni.Network == "" {
			ni.Network = "global/networks/default"
		}
		ni.Network = base + "global/networks/" + lastElem(ni.Network)
		ni.NetworkIP = fmt.Sprintf("10.128.%d.%d", s.seq/250%250, s.seq%250+2)
		for _, ac := range ni.AccessConfigs {
			ac.Kind = "compute#accessConfig"
			ac.NetworkTier = "PREMIUM"
			if ac.Name == "" {
				ac.Name = "External NAT"
			}
		}
	}
	s.assignNatIPs(in)
}

// assignNatIPs gives every ONE_TO_ONE_NAT access config a fresh ephemeral
// address, as GCE does on insert and on every start.
func (s *Server) assignNatIPs(in *compute.Instance) {
	for _, ni := range in.NetworkInterfaces {
		for _, ac := range ni.AccessConfigs {
			if ac.Type == "ONE_TO_ONE_NAT" || ac.Type == "" {
				s.seq++
				ac.NatIP = fmt.Sprintf("34.%d.%d.%d", 100+s.seq/62500%100, s.seq/250%250, s.seq%250+1)
			}
		}
	}
}

// clearNatIPs releases ephemeral addresses, as stopping does.
func clearNatIPs(in *compute.Instance) {
	for _, ni := range in.NetworkInterfaces {
		for _, ac := range ni.AccessConfigs {
			ac.NatIP = ""
		}
	}
}

func (s *Server) deleteInstance(w http.ResponseWriter, r *http.Request) {
	instanceKind.remove(s, w, r)
}

func (s *Server) startInstance(w http.ResponseWriter, r *http.Request) {
	instanceKind.change(s, w, r, "start", func(in *compute.Instance) bool {
		if in.Status != "RUNNING" {
			in.Status = "RUNNING"
			in.LastStartTimestamp = time.Now().Format(time.RFC3339)
			s.assignNatIPs(in)
		}
		return true
	})
}

func (s *Server) stopInstance(w http.ResponseWriter, r *http.Request) {
	instanceKind.change(s, w, r, "stop", func(in *compute.Instance) bool {
		if in.Status != "TERMINATED" {
			in.Status = "TERMINATED"
			in.LastStopTimestamp = time.Now().Format(time.RFC3339)
			clearNatIPs(in)
		}
		return true
	})
}

func (s *Server) setLabels(w http.ResponseWriter, r *http.Request) {
	instanceKind.change(s, w, r, "setLabels", func(in *compute.Instance) bool {
		var req compute.InstancesSetLabelsRequest
		if !decode(w, r, &req) {
			return false
		}
		if req.LabelFingerprint != in.LabelFingerprint {
			writeError(w, http.StatusPreconditionFailed, "conditionNotMet",
				"Labels fingerprint either invalid or resource labels have changed")
			return false
		}
		if msg := checkLabels(req.Labels); msg != "" {
			writeError(w, http.StatusBadRequest, "invalid", msg)
			return false
		}
		in.Labels = req.Labels
		in.LabelFingerprint = fingerprint(in.Labels)
		return true
	})
}

// setTags replaces the network tags, as GCE does: the request's
// fingerprint must be the current one.
func (s *Server) setTags(w http.ResponseWriter, r *http.Request) {
	instanceKind.change(s, w, r, "setTags", func(in *compute.Instance) bool {
		var req compute.Tags
		if !decode(w, r, &req) {
			return false
		}
		current := ""
		if in.Tags != nil {
			current = in.Tags.Fingerprint
		}
		if req.Fingerprint != current {
			writeError(w, http.StatusPreconditionFailed, "conditionNotMet",
				"Supplied fingerprint does not match current tags fingerprint.")
			return false
		}
		for _, t := range req.Items {
			if !nameRE.MatchString(t) {
				writeError(w, http.StatusBadRequest, "invalid",
					fmt.Sprintf("Invalid value for field 'resource.items[]': '%s'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'", t))
				return false
			}
		}
		in.Tags = &compute.Tags{Items: req.Items, Fingerprint: fingerprint(req.Items)}
		return true
	})
}

// setMetadata replaces all of the metadata, as GCE does: the request's
// fingerprint must be the current one, and items absent from the request
// are gone after.
func (s *Server) setMetadata(w http.ResponseWriter, r *http.Request) {
	instanceKind.change(s, w, r, "setMetadata", func(in *compute.Instance) bool {
		var req compute.Metadata
		if !decode(w, r, &req) {
			return false
		}
		current := ""
		if in.Metadata != nil {
			current = in.Metadata.Fingerprint
		}
		if req.Fingerprint != current {
			writeError(w, http.StatusPreconditionFailed, "conditionNotMet",
				"Supplied fingerprint does not match current metadata fingerprint.")
			return false
		}
		if msg := checkMetadata(req.Items); msg != "" {
			writeError(w, http.StatusBadRequest, "invalid", msg)
			return false
		}
		in.Metadata = &compute.Metadata{Kind: "compute#metadata", Items: req.Items, Fingerprint: fingerprint(req.Items)}
		return true
	})
}

var metadataKeyRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)

// checkMetadata applies GCE's rules for metadata items: valid keys, each
// once, values of at most 256 KB.
func checkMetadata(items []*compute.MetadataItems) string {
	seen := map[string]bool{}
	for _, it := range items {
		switch {
		case it == nil || !metadataKeyRE.MatchString(it.Key):
			key := ""
			if it != nil {
				key = it.Key
			}
			return fmt.Sprintf("Invalid value for field 'resource.items[].key': '%s'.", key)
		case seen[it.Key]:
			return fmt.Sprintf("Invalid value for field 'resource.items': duplicate key '%s'.", it.Key)
		case it.Value != nil && len(*it.Value) > 256*1024:
			return fmt.Sprintf("Invalid value for field 'resource.items[].value': the value of '%s' exceeds 256 KB.", it.Key)
		}
		seen[it.Key] = true
	}
	return ""
}

// Firewalls.

func (s *Server) listFirewalls(w http.ResponseWriter, r *http.Request) {
	if page, next, path, ok := firewallKind.list(s, w, r); ok {
		writeJSON(w, &compute.FirewallList{
			Kind:          "compute#firewallList",
			Id:            path,
			Items:         page,
			NextPageToken: next,
			SelfLink:      s.Endpoint() + path,
		})
	}
}

func firewallField(fw *compute.Firewall, field string) (string, bool, error) {
	switch field {
	case "name":
		return fw.Name, true, nil
	case "description":
		return fw.Description, true, nil
	case "network":
		return fw.Network, true, nil
	}
	return "", false, fmt.Errorf("the fake cannot filter firewalls on %q", field)
}

func (s *Server) getFirewall(w http.ResponseWriter, r *http.Request) {
	firewallKind.get(s, w, r)
}

func (s *Server) insertFirewall(w http.ResponseWriter, r *http.Request) {
	firewallKind.insert(s, w, r, checkFirewall, func(fw *compute.Firewall) *compute.OperationErrorErrors {
		s.fillFirewall(r.PathValue("project"), fw)
		return nil
	})
}

func checkFirewall(fw *compute.Firewall) *apiError {
	if msg := firewallProblem(fw); msg != "" {
		return invalid(msg)
	}
	return nil
}

func firewallProblem(fw *compute.Firewall) string {
	switch {
	case !nameRE.MatchString(fw.Name):
		return fmt.Sprintf("Invalid value for field 'resource.name': '%s'.", fw.Name)
	case len(fw.Allowed) == 0 && len(fw.Denied) == 0:
		return "Invalid value for field 'resource': a firewall rule needs allowed or denied."
	}
	for _, a := range fw.Allowed {
		switch a.IPProtocol {
		case "tcp", "udp", "icmp", "all", "esp", "ah", "sctp", "ipip":
		default:
			return fmt.Sprintf("Invalid value for field 'resource.allowed[].IPProtocol': '%s'.", a.IPProtocol)
		}
	}
	return ""
}

func (s *Server) fillFirewall(project string, fw *compute.Firewall) {
	s.seq++
	base := s.Endpoint() + "projects/" + project + "/"
	fw.Kind = "compute#firewall"
	fw.Id = 2000000000000000000 + s.seq
	fw.CreationTimestamp = time.Now().Format(time.RFC3339)
	fw.SelfLink = base + "global/firewalls/" + fw.Name
	if fw.Network == "" {
		fw.Network = "default"
	}
	fw.Network = base + "global/networks/" + lastElem(fw.Network)
	if fw.Direction == "" {
		fw.Direction = "INGRESS"
	}
	if fw.Priority == 0 {
		fw.Priority = 1000
	}
	if fw.Direction == "INGRESS" && len(fw.SourceRanges) == 0 && len(fw.SourceTags) == 0 {
		fw.SourceRanges = []string{"0.0.0.0/0"}
	}
}

func (s *Server) patchFirewall(w http.ResponseWriter, r *http.Request) {
	firewallKind.change(s, w, r, "patch", func(fw *compute.Firewall) bool {
		var p compute.Firewall
		if !decode(w, r, &p) {
			return false
		}
		if p.Name != "" && p.Name != fw.Name {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'resource.name': a rule cannot be renamed.")
			return false
		}
		// A JSON merge patch: what the body names replaces what is there.
		if p.Allowed != nil {
			fw.Allowed = p.Allowed
		}
		if p.SourceRanges != nil {
			fw.SourceRanges = p.SourceRanges
		}
		if p.TargetTags != nil {
			fw.TargetTags = p.TargetTags
		}
		if p.Description != "" {
			fw.Description = p.Description
		}
		if p.Priority != 0 {
			fw.Priority = p.Priority
		}
		return true
	})
}

func (s *Server) deleteFirewall(w http.ResponseWriter, r *http.Request) {
	firewallKind.remove(s, w, r)
}

// Operations.

// repeated answers a request whose requestId was seen before with the
// operation it started, as GCE does, so a retried mutation is not done
// twice.
func (s *Server) repeated(w http.ResponseWriter, r *http.Request) bool {
	id := r.URL.Query().Get("requestId")
	if id == "" {
		return false
	}
	if o := s.requestIDs[id]; o != nil {
		writeJSON(w, clone(o.op))
		return true
	}
	return false
}

// startOp answers a mutation with a new RUNNING operation.
func (s *Server) startOp(w http.ResponseWriter, r *http.Request, project, zone, typ, target string, opErr *compute.OperationErrorErrors) {
	s.seq++
	name := fmt.Sprintf("operation-%d-%s", s.seq, typ)
	scope := "global"
	op := &compute.Operation{
		Kind:          "compute#operation",
		Id:            3000000000000000000 + s.seq,
		Name:          name,
		OperationType: typ,
		TargetLink:    target,
		Status:        "RUNNING",
		Progress:      0,
		User:          "fake@gcpfake",
		InsertTime:    time.Now().Format(time.RFC3339),
		StartTime:     time.Now().Format(time.RFC3339),
	}
	base := s.Endpoint() + "projects/" + project + "/"
	if zone != "" {
		scope = zone
		op.Zone = base + "zones/" + zone
		op.SelfLink = op.Zone + "/operations/" + name
	} else {
		op.SelfLink = base + "global/operations/" + name
	}
	o := &operation{op: op, pending: s.opPolls, err: opErr}
	if o.pending <= 0 {
		s.finish(o)
	}
	s.ops[project+"/"+scope+"/"+name] = o
	if id := r.URL.Query().Get("requestId"); id != "" {
		s.requestIDs[id] = o
	}
	writeJSON(w, clone(op))
}

func (s *Server) finish(o *operation) {
	o.op.Status = "DONE"
	o.op.Progress = 100
	o.op.EndTime = time.Now().Format(time.RFC3339)
	if o.err != nil {
		o.op.Error = &compute.OperationError{Errors: []*compute.OperationErrorErrors{o.err}}
		o.op.HttpErrorStatusCode = 400
		o.op.HttpErrorMessage = "BAD REQUEST"
	}
}

func (s *Server) pollZoneOp(w http.ResponseWriter, r *http.Request) {
	s.poll(w, r.PathValue("project")+"/"+r.PathValue("zone")+"/"+r.PathValue("op"))
}

func (s *Server) pollGlobalOp(w http.ResponseWriter, r *http.Request) {
	s.poll(w, r.PathValue("project")+"/global/"+r.PathValue("op"))
}

// poll answers operations get and wait alike: GCE's wait may return
// before the operation is done, and the fake's always does at once.
func (s *Server) poll(w http.ResponseWriter, key string) {
	o := s.ops[key]
	if o == nil {
		writeError(w, http.StatusNotFound, "notFound", fmt.Sprintf("The resource '%s' was not found", key))
		return
	}
	if o.op.Status != "DONE" {
		o.pending--
		if o.pending <= 0 {
			s.finish(o)
		}
	}
	writeJSON(w, clone(o.op))
}

// Helpers.

// paginate filters and pages a list by name. The page token is the last
// name returned, so pages stay right while the list changes.
func paginate[T any](w http.ResponseWriter, r *http.Request, all []T, name func(T) string,
	field func(T, string) (string, bool, error)) (page []T, next string, ok bool) {
	q := r.URL.Query()
	max := 500
	if v := q.Get("maxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 500 {
			writeError(w, http.StatusBadRequest, "invalid",
				fmt.Sprintf("Invalid value for field 'maxResults': '%s'. Must be between 0 and 500.", v))
			return nil, "", false
		}
		if n > 0 {
			max = n
		}
	}
	var f filter
	if v := q.Get("filter"); v != "" {
		var err error
		if f, err = parseFilter(v); err != nil {
			writeError(w, http.StatusBadRequest, "invalid",
				fmt.Sprintf("Invalid value for field 'filter': '%s'. Invalid list filter expression: %v", v, err))
			return nil, "", false
		}
	}
	after := ""
	if v := q.Get("pageToken"); v != "" {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid value for field 'pageToken': '"+v+"'.")
			return nil, "", false
		}
		after = string(b)
	}
	sort.Slice(all, func(i, j int) bool { return name(all[i]) < name(all[j]) })
	var matched []T
	for _, x := range all {
		if name(x) <= after && after != "" {
			continue
		}
		okx, err := f.match(func(fl string) (string, bool, error) { return field(x, fl) })
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid list filter expression: "+err.Error())
			return nil, "", false
		}
		if okx {
			matched = append(matched, x)
		}
	}
	if len(matched) > max {
		matched = matched[:max]
		next = base64.RawURLEncoding.EncodeToString([]byte(name(matched[max-1])))
	}
	return matched, next, true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "parseError", "Parse Error: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers in GCE's error format, which googleapi.CheckResponse
// turns into a *googleapi.Error with Code, Message and Errors[].Reason.
func writeError(w http.ResponseWriter, code int, reason, message string) {
	type item struct {
		Message string `json:"message"`
		Domain  string `json:"domain"`
		Reason  string `json:"reason"`
	}
	var body struct {
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
			Errors  []item `json:"errors"`
		} `json:"error"`
	}
	body.Error.Code = code
	body.Error.Message = message
	body.Error.Errors = []item{{Message: message, Domain: "global", Reason: reason}}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(&body)
}

// fingerprint is an opaque digest, like GCE's label and metadata
// fingerprints.
func fingerprint(v any) string {
	b, _ := json.Marshal(v) // maps marshal with sorted keys
	sum := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(sum[:8])
}

func lastElem(s string) string { return s[strings.LastIndex(s, "/")+1:] }

// clone deep-copies through JSON, so that callers never share the fake's
// state and the state holds only what the JSON carries.
func clone[T any](v *T) *T {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

func clones[T any](xs []*T) []*T {
	out := make([]*T, len(xs))
	for i, x := range xs {
		out[i] = clone(x)
	}
	return out
}
