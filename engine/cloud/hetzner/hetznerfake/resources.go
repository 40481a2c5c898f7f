package hetznerfake

import (
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"

	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hcloudcatalog"
)

type server struct {
	id                         int64
	name, typ, location, image string
	status                     string
	labels                     map[string]string
	created                    time.Time
	ipv4, ipv6                 string
	sshKeys                    []int64
	// firewalls are the firewalls applied to the server directly (at
	// create or with apply_to_resources), in the order they were;
	// firewalls applied through a label selector are not in it.
	firewalls []int64
	// pending are the firewalls whose apply_firewall action has not
	// finished: the server reports them as "pending", not "applied".
	pending map[int64]bool
}

func (v *server) ident() int64                            { return v.id }
func (v *server) nameLabels() (string, map[string]string) { return v.name, v.labels }

type sshKey struct {
	id                           int64
	name, publicKey, fingerprint string
	labels                       map[string]string
	created                      time.Time
}

func (k *sshKey) ident() int64                            { return k.id }
func (k *sshKey) nameLabels() (string, map[string]string) { return k.name, k.labels }

// action is an API action. It is running when handed out and finishes
// the first time a client polls it: then its effect (done) is applied, or
// it ends in error if failMsg is set.
type action struct {
	a       schema.Action
	failMsg string
	done    func()
}

func (a *action) ident() int64 { return a.a.ID }

// locations the fake knows, as the API describes them.
var locations = []schema.Location{
	{ID: 1, Name: "fsn1", Description: "Falkenstein DC Park 1", Country: "DE", City: "Falkenstein", Latitude: 50.47612, Longitude: 12.370071, NetworkZone: "eu-central"},
	{ID: 2, Name: "nbg1", Description: "Nuremberg DC Park 1", Country: "DE", City: "Nuremberg", Latitude: 49.452102, Longitude: 11.076665, NetworkZone: "eu-central"},
	{ID: 3, Name: "hel1", Description: "Helsinki DC Park 1", Country: "FI", City: "Helsinki", Latitude: 60.169855, Longitude: 24.938379, NetworkZone: "eu-central"},
	{ID: 4, Name: "ash", Description: "Ashburn, VA", Country: "US", City: "Ashburn, VA", Latitude: 39.045821, Longitude: -77.487073, NetworkZone: "us-east"},
	{ID: 5, Name: "hil", Description: "Hillsboro, OR", Country: "US", City: "Hillsboro, OR", Latitude: 45.54222, Longitude: -122.951924, NetworkZone: "us-west"},
	{ID: 6, Name: "sin", Description: "Singapore", Country: "SG", City: "Singapore", Latitude: 1.283333, Longitude: 103.833333, NetworkZone: "ap-southeast"},
}

func locationByName(name string) (schema.Location, bool) {
	for _, l := range locations {
		if l.Name == name {
			return l, true
		}
	}
	return schema.Location{}, false
}

// newServer adds a server. s.mu is held.
func (s *Server) newServer(name, typ, loc, image string, labels map[string]string, ipv4, ipv6 bool) *server {
	v := &server{id: s.id(), name: name, typ: typ, location: loc, image: image, status: "initializing",
		labels: copyLabels(labels), created: time.Now().UTC().Truncate(time.Second), pending: map[int64]bool{}}
	// Addresses from the benchmarking (198.18.0.0/15) and documentation
	// (2001:db8::/32) ranges, derived from the ID so they are unique.
	if ipv4 {
		v.ipv4 = fmt.Sprintf("198.%d.%d.%d", 18+(v.id>>16)&1, (v.id>>8)&255, v.id&255)
	}
	if ipv6 {
		v.ipv6 = fmt.Sprintf("2001:db8:%x::/64", v.id&0xffff)
	}
	s.servers[v.id] = v
	return v
}

// newAction registers a running action on a server. s.mu is held.
func (s *Server) newAction(command string, serverID int64, done func()) *action {
	return s.newActionOn(command, []schema.ActionResourceReference{{ID: serverID, Type: "server"}}, done)
}

// newActionOn registers a running action on resources. s.mu is held.
func (s *Server) newActionOn(command string, resources []schema.ActionResourceReference, done func()) *action {
	a := &action{a: schema.Action{
		ID: s.id(), Status: "running", Command: command, Started: time.Now().UTC().Truncate(time.Second),
		Resources: resources,
	}, done: done}
	s.actions[a.a.ID] = a
	return a
}

// poll is a client looking at an action: a running one finishes. s.mu is held.
func (s *Server) poll(a *action) schema.Action {
	if a.a.Status == "running" {
		now := time.Now().UTC().Truncate(time.Second)
		a.a.Finished = &now
		a.a.Progress = 100
		if a.failMsg != "" {
			a.a.Status = "error"
			a.a.Error = &schema.ActionError{Code: "action_failed", Message: a.failMsg}
		} else {
			a.a.Status = "success"
			if a.done != nil {
				a.done()
			}
		}
	}
	return a.a
}

func serverTypeSchema(name string) schema.ServerType {
	h := fnv.New32a()
	h.Write([]byte(name))
	arch := "x86"
	if strings.HasPrefix(name, "cax") {
		arch = "arm"
	}
	cpu := "shared"
	if strings.HasPrefix(name, "ccx") {
		cpu = "dedicated"
	}
	return schema.ServerType{ID: int64(h.Sum32() % 100000), Name: name, Description: strings.ToUpper(name),
		Cores: 2, Memory: 4, Disk: 40, StorageType: "local", CPUType: cpu, Architecture: arch}
}

// serverJSON is a server as the API sends it. It overrides public_net of
// the embedded schema.Server (the shallower field wins in encoding/json)
// because the API sends null for a disabled IPv4 or IPv6, which the
// schema's value types cannot express.
type serverJSON struct {
	schema.Server
	PublicNet publicNetJSON `json:"public_net"`
}

type publicNetJSON struct {
	IPv4        *schema.ServerPublicNetIPv4 `json:"ipv4"`
	IPv6        *schema.ServerPublicNetIPv6 `json:"ipv6"`
	FloatingIPs []int64                     `json:"floating_ips"`
	Firewalls   []schema.ServerFirewall     `json:"firewalls"`
}

// json renders a server. s.mu is held.
func (s *Server) serverJSON(v *server) serverJSON {
	loc, _ := locationByName(v.location)
	out := serverJSON{Server: schema.Server{
		ID: v.id, Name: v.name, Status: v.status, Created: v.created,
		PrivateNet: []schema.ServerPrivateNet{}, ServerType: serverTypeSchema(v.typ),
		IncludedTraffic: 21990232555520, Location: loc, Labels: copyLabels(v.labels),
		Volumes: []int64{}, LoadBalancers: []int64{}, PrimaryDiskSize: 40,
	}}
	if id, err := strconv.ParseInt(v.image, 10, 64); err == nil {
		// A snapshot: no name, as the API sends one.
		out.Image = &schema.Image{ID: id, Status: "available", Type: "snapshot", Description: s.snapshots[id],
			OSFlavor: "unknown", Architecture: out.ServerType.Architecture, Labels: map[string]string{}}
	} else if v.image != "" {
		name := v.image
		flavor, _, _ := strings.Cut(v.image, "-")
		out.Image = &schema.Image{ID: imageID(v.image), Status: "available", Type: "system", Name: &name,
			Description: v.image, OSFlavor: flavor, Architecture: out.ServerType.Architecture, Labels: map[string]string{}}
	}
	out.PublicNet = publicNetJSON{FloatingIPs: []int64{}, Firewalls: []schema.ServerFirewall{}}
	if v.ipv4 != "" {
		out.PublicNet.IPv4 = &schema.ServerPublicNetIPv4{ID: v.id + 1<<32, IP: v.ipv4, DNSPtr: "static." + v.ipv4 + ".clients.your-server.de"}
	}
	if v.ipv6 != "" {
		out.PublicNet.IPv6 = &schema.ServerPublicNetIPv6{ID: v.id + 2<<32, IP: v.ipv6, DNSPtr: []schema.ServerPublicNetIPv6DNSPtr{}}
	}
	// As the API does: every firewall that applies to the server, directly
	// or through a label selector, "pending" until its action finished.
	for _, fw := range s.serverFirewalls(v) {
		status := "applied"
		if v.pending[fw] {
			status = "pending"
		}
		out.PublicNet.Firewalls = append(out.PublicNet.Firewalls, schema.ServerFirewall{ID: fw, Status: status})
	}
	return out
}

// image is what a server created from ref keeps as its image: the name
// of a system image of the catalogue (by name or ID), or the ID of a
// snapshot seeded. ok is false for an image that does not exist. s.mu is
// held.
func (s *Server) image(ref schema.IDOrName) (image string, ok bool) {
	if ref.Name != "" {
		return ref.Name, slices.Contains(hcloudcatalog.Images, ref.Name)
	}
	if _, ok := s.snapshots[ref.ID]; ok {
		return strconv.FormatInt(ref.ID, 10), true
	}
	for _, name := range hcloudcatalog.Images {
		if imageID(name) == ref.ID {
			return name, true
		}
	}
	return "", false
}

func imageID(name string) int64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return int64(h.Sum32()%1000000) + 1
}

func (k *sshKey) json() schema.SSHKey {
	return schema.SSHKey{ID: k.id, Name: k.name, Fingerprint: k.fingerprint, PublicKey: k.publicKey, Labels: copyLabels(k.labels), Created: k.created}
}

// fingerprint is the MD5 fingerprint the API shows for a public key
// ("" if the key does not parse).
func fingerprint(publicKey string) string {
	fields := strings.Fields(publicKey)
	if len(fields) < 2 {
		return ""
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil {
		return ""
	}
	sum := md5.Sum(blob)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02x", b)
	}
	return strings.Join(parts, ":")
}

// hostname is what the API accepts as a server name.
var hostname = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)

func validLabels(l map[string]string) error {
	m := make(map[string]any, len(l))
	for k, v := range l {
		m[k] = v
	}
	_, err := hcloud.ValidateResourceLabels(m)
	return err
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "json_error", "invalid JSON: "+err.Error())
		return false
	}
	return true
}

// record is a resource with a name and labels: a server, an ssh key or a
// firewall.
type record interface {
	identified
	nameLabels() (string, map[string]string)
}

// kind is what the handlers of one type of resource share: where the fake
// keeps them and how the API speaks of them.
type kind[T any] struct {
	table  func(*Server) map[int64]T
	noun   string // as errors name one: "SSH key with ID '42' not found"
	plural string // the key of a list of them in JSON: "ssh_keys"
	// invalid is the status of an invalid_input answer about one: 422, or
	// 400 for firewalls and actions.
	invalid int
	// nameUsed is the message of the uniqueness_error for a name in use.
	nameUsed string
}

var (
	serverKind = kind[*server]{
		table: func(s *Server) map[int64]*server { return s.servers },
		noun:  "server", plural: "servers", invalid: http.StatusUnprocessableEntity,
		nameUsed: "server name is already used",
	}
	sshKeyKind = kind[*sshKey]{
		table: func(s *Server) map[int64]*sshKey { return s.keys },
		noun:  "SSH key", plural: "ssh_keys", invalid: http.StatusUnprocessableEntity,
		nameUsed: "SSH key with the same name already exists",
	}
	firewallKind = kind[*firewall]{
		table: func(s *Server) map[int64]*firewall { return s.firewalls },
		noun:  "firewall", plural: "firewalls", invalid: http.StatusBadRequest,
		nameUsed: "firewall name is already used",
	}
	actionKind = kind[*action]{
		table: func(s *Server) map[int64]*action { return s.actions },
		noun:  "action", plural: "actions", invalid: http.StatusBadRequest,
	}
)

// serve answers a request about the resource of kind k that the path's
// {id} names: it parses the ID, decodes the body into req unless req is
// nil, then, with s.mu held, looks the resource up and hands it to
// answer. What goes wrong first is answered as the API does: a bad ID with
// invalid_input, a bad body with json_error, a missing resource with
// not_found.
func (k kind[T]) serve(s *Server, w http.ResponseWriter, r *http.Request, req any, answer func(T)) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_input", "invalid ID "+r.PathValue("id"))
		return
	}
	if req != nil && !decode(w, r, req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := k.table(s)[id]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s with ID '%d' not found", k.noun, id))
		return
	}
	answer(v)
}

// reject answers invalid_input about a resource of kind k.
func (k kind[T]) reject(w http.ResponseWriter, msg string) {
	writeError(w, k.invalid, "invalid_input", msg)
}

// labels checks the labels a request gives (nil for none) and returns a
// copy to keep. Invalid ones it answers with invalid_input.
func (k kind[T]) labels(w http.ResponseWriter, given *map[string]string) (map[string]string, bool) {
	var l map[string]string
	if given != nil {
		l = *given
	}
	if err := validLabels(l); err != nil {
		k.reject(w, err.Error())
		return nil, false
	}
	return copyLabels(l), true
}

// setLabels replaces *dst with a copy of the labels an update gives, if
// it gives any. Invalid ones it answers with invalid_input.
func (k kind[T]) setLabels(w http.ResponseWriter, dst *map[string]string, given *map[string]string) bool {
	if given == nil {
		return true
	}
	l, ok := k.labels(w, given)
	if ok {
		*dst = l
	}
	return ok
}

// nameFree reports whether no resource of kind k is called name, and
// answers uniqueness_error if one is. s.mu is held.
func nameFree[T record](s *Server, w http.ResponseWriter, k kind[T], name string) bool {
	for _, v := range k.table(s) {
		if n, _ := v.nameLabels(); n == name {
			writeError(w, http.StatusConflict, "uniqueness_error", k.nameUsed)
			return false
		}
	}
	return true
}

// list answers a list request for kind k: of the resources, by ID, those
// whose labels match the query's label_selector, whose name is its name
// if it gives one, and that keep keeps (nil keeps all), one page as
// render renders them. A bad query gets invalid_input.
func list[T record, J any](s *Server, w http.ResponseWriter, r *http.Request, k kind[T], keep func(T, url.Values) bool, render func(T) J) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	sel, err := parseSelector(q.Get("label_selector"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_input", err.Error())
		return
	}
	var items []T
	for _, v := range sortedByID(k.table(s)) {
		name, labels := v.nameLabels()
		if sel.matches(labels) && (q.Get("name") == "" || name == q.Get("name")) && (keep == nil || keep(v, q)) {
			items = append(items, v)
		}
	}
	page, meta, err := paginate(q, items)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_input", err.Error())
		return
	}
	out := make([]J, 0, len(page))
	for _, v := range page {
		out = append(out, render(v))
	}
	writeJSON(w, http.StatusOK, listPage[J]{k.plural, out, meta})
}

// listPage is a page of a list as the API sends it: {"<key>": [...],
// "meta": {...}}, in that order.
type listPage[J any] struct {
	key   string
	items []J
	meta  pageMeta
}

func (p listPage[J]) MarshalJSON() ([]byte, error) {
	var parts [3][]byte
	for i, v := range []any{p.key, p.items, p.meta} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		parts[i] = b
	}
	return fmt.Appendf(nil, `{%s:%s,"meta":%s}`, parts[0], parts[1], parts[2]), nil
}

// snapshot is info on every resource of kind k, by ID.
func snapshot[T identified, I any](s *Server, k kind[T], info func(T) I) []I {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := sortedByID(k.table(s))
	out := make([]I, 0, len(all))
	for _, v := range all {
		out = append(out, info(v))
	}
	return out
}

// serverResponse and actionResponse are the API's answers with one
// server or action.
type serverResponse struct {
	Server serverJSON `json:"server"`
}

type actionResponse struct {
	Action schema.Action `json:"action"`
}

// Servers.

func (s *Server) listServers(w http.ResponseWriter, r *http.Request) {
	list(s, w, r, serverKind, func(v *server, q url.Values) bool {
		return len(q["status"]) == 0 || slices.Contains(q["status"], v.status)
	}, s.serverJSON)
}

func (s *Server) getServer(w http.ResponseWriter, r *http.Request) {
	serverKind.serve(s, w, r, nil, func(v *server) {
		writeJSON(w, http.StatusOK, serverResponse{s.serverJSON(v)})
	})
}

// createServerRequest is schema.ServerCreateRequest as the API accepts
// it: ssh keys by ID or by name, and public_net optional.
type createServerRequest struct {
	Name             string                         `json:"name"`
	ServerType       schema.IDOrName                `json:"server_type"`
	Image            schema.IDOrName                `json:"image"`
	SSHKeys          []schema.IDOrName              `json:"ssh_keys"`
	Location         string                         `json:"location"`
	UserData         string                         `json:"user_data"`
	StartAfterCreate *bool                          `json:"start_after_create"`
	Labels           map[string]string              `json:"labels"`
	Firewalls        []schema.ServerCreateFirewalls `json:"firewalls"`
	PublicNet        *struct {
		EnableIPv4 bool `json:"enable_ipv4"`
		EnableIPv6 bool `json:"enable_ipv6"`
	} `json:"public_net"`
}

func (s *Server) createServer(w http.ResponseWriter, r *http.Request) {
	var req createServerRequest
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	invalid := func(msg string) { serverKind.reject(w, msg) }
	switch {
	case !hostname.MatchString(req.Name):
		invalid(fmt.Sprintf("invalid server name %q", req.Name))
		return
	case s.prices[req.ServerType.Name] == nil:
		invalid(fmt.Sprintf("server type %q not found", req.ServerType.Name))
		return
	case req.Image.Name == "" && req.Image.ID == 0:
		invalid("image is required")
		return
	}
	loc := req.Location
	if loc == "" {
		loc = "fsn1"
	}
	if _, ok := locationByName(loc); !ok {
		invalid(fmt.Sprintf("location %q not found", loc))
		return
	}
	// Server types are sold per location (the catalogue, or
	// SetServerTypePrice, says where).
	if _, ok := s.prices[req.ServerType.Name][loc]; !ok {
		invalid("unsupported location for server type")
		return
	}
	image, ok := s.image(req.Image)
	if !ok {
		if req.Image.Name != "" {
			invalid(fmt.Sprintf("image %q not found", req.Image.Name))
		} else {
			invalid(fmt.Sprintf("image %d not found", req.Image.ID))
		}
		return
	}
	labels, ok := serverKind.labels(w, &req.Labels)
	if !ok || !nameFree(s, w, serverKind, req.Name) {
		return
	}
	var keyIDs []int64
	for _, ref := range req.SSHKeys {
		var found *sshKey
		for _, k := range s.keys {
			if (ref.ID != 0 && k.id == ref.ID) || (ref.ID == 0 && k.name == ref.Name) {
				found = k
			}
		}
		if found == nil {
			invalid(fmt.Sprintf("ssh key %v not found", ref))
			return
		}
		keyIDs = append(keyIDs, found.id)
	}
	var fwIDs []int64
	for _, ref := range req.Firewalls {
		if s.firewalls[ref.Firewall] == nil {
			invalid(fmt.Sprintf("firewall %d not found", ref.Firewall))
			return
		}
		if slices.Contains(fwIDs, ref.Firewall) {
			writeError(w, http.StatusUnprocessableEntity, "server_already_added", fmt.Sprintf("firewall %d given twice", ref.Firewall))
			return
		}
		fwIDs = append(fwIDs, ref.Firewall)
	}
	if len(fwIDs) > maxFirewallsPerServer {
		invalid(fmt.Sprintf("a server can be applied to at most %d firewalls", maxFirewallsPerServer))
		return
	}
	ipv4, ipv6 := true, true
	if req.PublicNet != nil {
		ipv4, ipv6 = req.PublicNet.EnableIPv4, req.PublicNet.EnableIPv6
	}
	v := s.newServer(req.Name, req.ServerType.Name, loc, image, labels, ipv4, ipv6)
	v.sshKeys, v.firewalls = keyIDs, fwIDs
	for _, fw := range fwIDs {
		v.pending[fw] = true
	}

	failMsg := s.failCreate[req.Name]
	delete(s.failCreate, req.Name)
	create := s.newAction("create_server", v.id, func() {
		if v.status == "initializing" {
			v.status = "off"
		}
		clear(v.pending)
	})
	create.failMsg = failMsg
	if failMsg != "" {
		// The half-made server exists, switched off.
		v.status = "off"
	}
	next := []schema.Action{}
	if req.StartAfterCreate == nil || *req.StartAfterCreate {
		start := s.newAction("start_server", v.id, func() { v.status = "running" })
		if failMsg != "" {
			start.failMsg = "cannot start: " + failMsg
		}
		next = append(next, start.a)
	}
	writeJSON(w, http.StatusCreated, struct {
		Server       serverJSON      `json:"server"`
		Action       schema.Action   `json:"action"`
		NextActions  []schema.Action `json:"next_actions"`
		RootPassword *string         `json:"root_password"`
	}{s.serverJSON(v), create.a, next, nil})
}

func (s *Server) updateServer(w http.ResponseWriter, r *http.Request) {
	var req schema.ServerUpdateRequest
	serverKind.serve(s, w, r, &req, func(v *server) {
		if req.Name != "" && req.Name != v.name {
			if !nameFree(s, w, serverKind, req.Name) {
				return
			}
			v.name = req.Name
		}
		if !serverKind.setLabels(w, &v.labels, req.Labels) {
			return
		}
		writeJSON(w, http.StatusOK, serverResponse{s.serverJSON(v)})
	})
}

func (s *Server) deleteServer(w http.ResponseWriter, r *http.Request) {
	serverKind.serve(s, w, r, nil, func(v *server) {
		// The real API lists the server as "deleting" for a while; gone at
		// once is simpler and no client may rely on either.
		delete(s.servers, v.id)
		writeJSON(w, http.StatusOK, actionResponse{s.newAction("delete_server", v.id, nil).a})
	})
}

func (s *Server) serverAction(w http.ResponseWriter, r *http.Request) {
	serverKind.serve(s, w, r, nil, func(v *server) {
		var a *action
		switch r.PathValue("action") {
		case "poweron":
			v.status = "starting"
			a = s.newAction("start_server", v.id, func() { v.status = "running" })
		case "poweroff", "shutdown":
			v.status = "stopping"
			a = s.newAction(map[string]string{"poweroff": "stop_server", "shutdown": "shutdown_server"}[r.PathValue("action")], v.id,
				func() { v.status = "off" })
		default:
			writeError(w, http.StatusNotFound, "not_found", "server action not in the fake: "+r.PathValue("action"))
			return
		}
		writeJSON(w, http.StatusCreated, actionResponse{a.a})
	})
}

// SSH keys.

func (s *Server) listSSHKeys(w http.ResponseWriter, r *http.Request) {
	list(s, w, r, sshKeyKind, func(k *sshKey, q url.Values) bool {
		return q.Get("fingerprint") == "" || k.fingerprint == q.Get("fingerprint")
	}, (*sshKey).json)
}

func (s *Server) createSSHKey(w http.ResponseWriter, r *http.Request) {
	var req schema.SSHKeyCreateRequest
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fp := fingerprint(req.PublicKey)
	switch {
	case req.Name == "":
		sshKeyKind.reject(w, "name is required")
		return
	case fp == "":
		sshKeyKind.reject(w, "invalid public key")
		return
	}
	labels, ok := sshKeyKind.labels(w, req.Labels)
	if !ok || !nameFree(s, w, sshKeyKind, req.Name) {
		return
	}
	for _, k := range s.keys {
		if k.fingerprint == fp {
			writeError(w, http.StatusConflict, "uniqueness_error", "SSH key with the same fingerprint already exists")
			return
		}
	}
	k := &sshKey{id: s.id(), name: req.Name, publicKey: req.PublicKey, fingerprint: fp, labels: labels,
		created: time.Now().UTC().Truncate(time.Second)}
	s.keys[k.id] = k
	writeJSON(w, http.StatusCreated, schema.SSHKeyCreateResponse{SSHKey: k.json()})
}

func (s *Server) getSSHKey(w http.ResponseWriter, r *http.Request) {
	sshKeyKind.serve(s, w, r, nil, func(k *sshKey) {
		writeJSON(w, http.StatusOK, schema.SSHKeyGetResponse{SSHKey: k.json()})
	})
}

func (s *Server) updateSSHKey(w http.ResponseWriter, r *http.Request) {
	var req schema.SSHKeyUpdateRequest
	sshKeyKind.serve(s, w, r, &req, func(k *sshKey) {
		if req.Name != "" {
			k.name = req.Name
		}
		if !sshKeyKind.setLabels(w, &k.labels, req.Labels) {
			return
		}
		writeJSON(w, http.StatusOK, schema.SSHKeyUpdateResponse{SSHKey: k.json()})
	})
}

func (s *Server) deleteSSHKey(w http.ResponseWriter, r *http.Request) {
	sshKeyKind.serve(s, w, r, nil, func(k *sshKey) {
		delete(s.keys, k.id)
		w.WriteHeader(http.StatusNoContent)
	})
}

// Actions.

func (s *Server) listActions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if len(q["id"]) == 0 {
		// Since 2025-01-30 the API requires the IDs to look at.
		writeError(w, http.StatusBadRequest, "invalid_input", "id is required")
		return
	}
	want := map[int64]bool{}
	for _, v := range q["id"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_input", "invalid id "+v)
			return
		}
		want[id] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []schema.Action
	for _, a := range sortedByID(s.actions) {
		if want[a.a.ID] {
			out = append(out, s.poll(a))
		}
	}
	if st := q["status"]; len(st) > 0 {
		kept := out[:0]
		for _, a := range out {
			for _, x := range st {
				if a.Status == x {
					kept = append(kept, a)
				}
			}
		}
		out = kept
	}
	page, meta, err := paginate(q, out)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_input", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, listPage[schema.Action]{actionKind.plural, append([]schema.Action{}, page...), meta})
}

func (s *Server) getAction(w http.ResponseWriter, r *http.Request) {
	actionKind.serve(s, w, r, nil, func(a *action) {
		writeJSON(w, http.StatusOK, schema.ActionGetResponse{Action: s.poll(a)})
	})
}

// Pricing.

const vatRate = 0.19

func price(gross float64) schema.Price {
	return schema.Price{Net: fmt.Sprintf("%.10f", gross/(1+vatRate)), Gross: fmt.Sprintf("%.10f", gross)}
}

func (s *Server) pricing(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := schema.Pricing{Currency: "EUR", VATRate: fmt.Sprintf("%.2f", vatRate*100),
		Image:        schema.PricingImage{PricePerGBMonth: price(0.0119)},
		ServerBackup: schema.PricingServerBackup{Percentage: "20.00"},
		Volume:       schema.PricingVolume{PricePerGBPerMonth: price(0.0524)},
	}
	types := make([]string, 0, len(s.prices))
	for t := range s.prices {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		st := schema.PricingServerType{ID: serverTypeSchema(t).ID, Name: t}
		for _, loc := range locations {
			if eur, ok := s.prices[t][loc.Name]; ok {
				st.Prices = append(st.Prices, schema.PricingServerTypePrice{Location: loc.Name,
					PriceHourly: price(eur / 730), PriceMonthly: price(eur), IncludedTraffic: 21990232555520,
					PricePerTBTraffic: price(1.19)})
			}
		}
		p.ServerTypes = append(p.ServerTypes, st)
	}
	// hcloud-go v2.52.0 sizes its primary IP prices by the number of
	// floating IP types: the API sends both lists, so the fake does too.
	p.FloatingIP = schema.PricingFloatingIP{PriceMonthly: price(3.57)}
	for _, typ := range []string{"ipv4", "ipv6"} {
		eur, floating := s.ipv4Price, 3.57
		if typ == "ipv6" {
			eur, floating = 0, 1.19
		}
		pip := schema.PricingPrimaryIP{Type: typ}
		fip := schema.PricingFloatingIPType{Type: typ}
		for _, loc := range locations {
			pip.Prices = append(pip.Prices, schema.PricingPrimaryIPTypePrice{Location: loc.Name,
				PriceHourly: price(eur / 730), PriceMonthly: price(eur)})
			fip.Prices = append(fip.Prices, schema.PricingFloatingIPTypePrice{Location: loc.Name, PriceMonthly: price(floating)})
		}
		p.PrimaryIPs = append(p.PrimaryIPs, pip)
		p.FloatingIPs = append(p.FloatingIPs, fip)
	}
	writeJSON(w, http.StatusOK, schema.PricingGetResponse{Pricing: p})
}
