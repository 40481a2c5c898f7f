package hetznerfake

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// maxFirewallsPerServer is the API's limit of firewalls on one server,
// label selectors included.
const maxFirewallsPerServer = 5

// statusInUse is what deleting a firewall that is still applied answers,
// with the code resource_in_use. (Clients must go by the code.)
const statusInUse = http.StatusConflict

type firewall struct {
	id      int64
	name    string
	labels  map[string]string
	created time.Time
	rules   []schema.FirewallRule
	// selectors are the label selectors the firewall is applied to; the
	// servers they match get it, as long as they match.
	selectors []string
}

func (f *firewall) ident() int64                            { return f.id }
func (f *firewall) nameLabels() (string, map[string]string) { return f.name, f.labels }

// FirewallSeed describes a firewall that exists before the test.
type FirewallSeed struct {
	Name   string
	Labels map[string]string
	Rules  []schema.FirewallRule
	// Servers are the IDs of servers it is applied to, LabelSelectors the
	// label selectors.
	Servers        []int64
	LabelSelectors []string
}

// SeedFirewall adds a firewall without rules and returns its ID.
func (s *Server) SeedFirewall(name string, labels map[string]string) int64 {
	return s.SeedFirewallWith(FirewallSeed{Name: name, Labels: labels})
}

// SeedFirewallWith adds a firewall with rules, applied to servers and
// label selectors, and returns its ID. It panics on a server that does
// not exist.
func (s *Server) SeedFirewallWith(seed FirewallSeed) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	fw := &firewall{id: s.id(), name: seed.Name, labels: copyLabels(seed.Labels), created: time.Now().UTC().Truncate(time.Second),
		rules: copyRules(seed.Rules), selectors: append([]string(nil), seed.LabelSelectors...)}
	s.firewalls[fw.id] = fw
	for _, id := range seed.Servers {
		v := s.servers[id]
		if v == nil {
			panic(fmt.Sprintf("hetznerfake: SeedFirewallWith: no server %d", id))
		}
		v.firewalls = append(v.firewalls, fw.id)
	}
	return fw.id
}

// FirewallInfo is a snapshot of one firewall.
type FirewallInfo struct {
	ID     int64
	Name   string
	Labels map[string]string
	Rules  []schema.FirewallRule
	// Servers are the servers it is applied to directly, by ID;
	// LabelSelectors the label selectors it is applied to.
	Servers        []int64
	LabelSelectors []string
}

// Firewalls returns a snapshot of the firewalls, by ID.
func (s *Server) Firewalls() []FirewallInfo {
	return snapshot(s, firewallKind, func(f *firewall) FirewallInfo {
		return FirewallInfo{ID: f.id, Name: f.name, Labels: copyLabels(f.labels), Rules: copyRules(f.rules),
			Servers: s.directServers(f), LabelSelectors: append([]string(nil), f.selectors...)}
	})
}

func copyRules(rules []schema.FirewallRule) []schema.FirewallRule {
	out := make([]schema.FirewallRule, 0, len(rules))
	for _, r := range rules {
		r.SourceIPs = append([]string{}, r.SourceIPs...)
		r.DestinationIPs = append([]string{}, r.DestinationIPs...)
		out = append(out, r)
	}
	return out
}

// directServers are the IDs of the servers f is applied to directly. s.mu
// is held.
func (s *Server) directServers(f *firewall) []int64 {
	var out []int64
	for _, v := range sortedByID(s.servers) {
		if slices.Contains(v.firewalls, f.id) {
			out = append(out, v.id)
		}
	}
	return out
}

// selected are the servers a label selector applies f to. s.mu is held.
func (s *Server) selected(sel string) []int64 {
	parsed, err := parseSelector(sel)
	if err != nil {
		return nil
	}
	var out []int64
	for _, v := range sortedByID(s.servers) {
		if parsed.matches(v.labels) {
			out = append(out, v.id)
		}
	}
	return out
}

// serverFirewalls are the IDs of the firewalls that apply to v: directly,
// then through label selectors. s.mu is held.
func (s *Server) serverFirewalls(v *server) []int64 {
	out := append([]int64(nil), v.firewalls...)
	for _, f := range sortedByID(s.firewalls) {
		if slices.Contains(out, f.id) {
			continue
		}
		for _, sel := range f.selectors {
			if slices.Contains(s.selected(sel), v.id) {
				out = append(out, f.id)
				break
			}
		}
	}
	return out
}

// inUse reports whether f applies to anything. s.mu is held.
func (s *Server) inUse(f *firewall) bool {
	return len(f.selectors) > 0 || len(s.directServers(f)) > 0
}

// firewallJSON renders a firewall as the API does. s.mu is held.
func (s *Server) firewallJSON(f *firewall) schema.Firewall {
	out := schema.Firewall{ID: f.id, Name: f.name, Labels: copyLabels(f.labels), Created: f.created,
		Rules: copyRules(f.rules), AppliedTo: []schema.FirewallResource{}}
	for _, id := range s.directServers(f) {
		out.AppliedTo = append(out.AppliedTo, schema.FirewallResource{Type: "server", Server: &schema.FirewallResourceServer{ID: id}})
	}
	for _, sel := range f.selectors {
		r := schema.FirewallResource{Type: "label_selector", LabelSelector: &schema.FirewallResourceLabelSelector{Selector: sel},
			AppliedToResources: []schema.FirewallResource{}}
		for _, id := range s.selected(sel) {
			r.AppliedToResources = append(r.AppliedToResources, schema.FirewallResource{Type: "server", Server: &schema.FirewallResourceServer{ID: id}})
		}
		out.AppliedTo = append(out.AppliedTo, r)
	}
	return out
}

// checkRules validates rules as the API does and returns them as it
// stores them.
func checkRules(req []schema.FirewallRuleRequest) ([]schema.FirewallRule, error) {
	out := make([]schema.FirewallRule, 0, len(req))
	for i, r := range req {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("rules[%d]: %s", i, fmt.Sprintf(format, args...))
		}
		switch r.Direction {
		case "in":
			if len(r.SourceIPs) == 0 || len(r.DestinationIPs) != 0 {
				return nil, bad("an inbound rule needs source_ips and no destination_ips")
			}
		case "out":
			if len(r.DestinationIPs) == 0 || len(r.SourceIPs) != 0 {
				return nil, bad("an outbound rule needs destination_ips and no source_ips")
			}
		default:
			return nil, bad("direction %q is not in or out", r.Direction)
		}
		switch r.Protocol {
		case "tcp", "udp":
			if r.Port == nil || !validPort(*r.Port) {
				return nil, bad("protocol %s needs a port (\"22\", \"1024-5000\" or \"any\")", r.Protocol)
			}
		case "icmp", "esp", "gre":
			if r.Port != nil {
				return nil, bad("protocol %s has no port", r.Protocol)
			}
		default:
			return nil, bad("unknown protocol %q", r.Protocol)
		}
		for _, ip := range append(append([]string(nil), r.SourceIPs...), r.DestinationIPs...) {
			if _, _, err := net.ParseCIDR(ip); err != nil {
				return nil, bad("%q is not a network in CIDR notation", ip)
			}
		}
		if r.Description != nil && len(*r.Description) > 255 {
			return nil, bad("description longer than 255 characters")
		}
		out = append(out, schema.FirewallRule{Direction: r.Direction, Protocol: r.Protocol, Port: r.Port, Description: r.Description,
			SourceIPs: append([]string{}, r.SourceIPs...), DestinationIPs: append([]string{}, r.DestinationIPs...)})
	}
	return out, nil
}

func validPort(p string) bool {
	if p == "any" {
		return true
	}
	lo, hi, isRange := strings.Cut(p, "-")
	a, err := strconv.Atoi(lo)
	if err != nil || a < 1 || a > 65535 {
		return false
	}
	if !isRange {
		return true
	}
	b, err := strconv.Atoi(hi)
	return err == nil && b >= a && b <= 65535
}

// checkTargets validates the resources of apply_to or remove_from for f
// (nil when creating), and returns the first error. s.mu is held.
func (s *Server) checkTargets(f *firewall, targets []schema.FirewallResource, remove bool) *apiError {
	seen := map[string]bool{}
	for _, t := range targets {
		switch t.Type {
		case "server":
			if t.Server == nil {
				return &apiError{http.StatusBadRequest, "invalid_input", "server resource without server"}
			}
			key := "server/" + strconv.FormatInt(t.Server.ID, 10)
			if seen[key] {
				return &apiError{http.StatusUnprocessableEntity, "server_already_added", fmt.Sprintf("server %d given more than once", t.Server.ID)}
			}
			seen[key] = true
			v := s.servers[t.Server.ID]
			if v == nil {
				return &apiError{http.StatusNotFound, "firewall_resource_not_found", fmt.Sprintf("server with ID '%d' not found", t.Server.ID)}
			}
			direct := f != nil && slices.Contains(v.firewalls, f.id)
			applied := f != nil && slices.Contains(s.serverFirewalls(v), f.id)
			switch {
			case remove && !direct && applied:
				return &apiError{http.StatusUnprocessableEntity, "firewall_managed_by_label_selector",
					fmt.Sprintf("firewall %d is applied to server %d through a label selector and cannot be removed from it", f.id, v.id)}
			case remove && !direct:
				return &apiError{http.StatusUnprocessableEntity, "firewall_already_removed", fmt.Sprintf("firewall %d is not applied to server %d", f.id, v.id)}
			case !remove && direct:
				return &apiError{http.StatusUnprocessableEntity, "firewall_already_applied", fmt.Sprintf("firewall %d is already applied to server %d", f.id, v.id)}
			case !remove && v.ipv4 == "" && v.ipv6 == "":
				return &apiError{http.StatusUnprocessableEntity, "private_net_only_server", fmt.Sprintf("server %d has no public interface", v.id)}
			case !remove && len(s.serverFirewalls(v)) >= maxFirewallsPerServer:
				return &apiError{http.StatusUnprocessableEntity, "invalid_input",
					fmt.Sprintf("server %d already has %d firewalls, the most a server can have", v.id, maxFirewallsPerServer)}
			}
		case "label_selector":
			if t.LabelSelector == nil {
				return &apiError{http.StatusBadRequest, "invalid_input", "label_selector resource without label_selector"}
			}
			sel := t.LabelSelector.Selector
			if _, err := parseSelector(sel); err != nil || sel == "" {
				return &apiError{http.StatusBadRequest, "invalid_input", fmt.Sprintf("invalid label selector %q", sel)}
			}
			has := f != nil && slices.Contains(f.selectors, sel)
			switch {
			case remove && !has:
				return &apiError{http.StatusUnprocessableEntity, "firewall_already_removed", fmt.Sprintf("firewall is not applied to label selector %q", sel)}
			case !remove && has:
				return &apiError{http.StatusUnprocessableEntity, "firewall_already_applied", fmt.Sprintf("firewall is already applied to label selector %q", sel)}
			}
		default:
			return &apiError{http.StatusBadRequest, "invalid_input", fmt.Sprintf("unknown resource type %q", t.Type)}
		}
	}
	return nil
}

// apiError is an error answer.
type apiError struct {
	status    int
	code, msg string
}

func (e *apiError) write(w http.ResponseWriter) { writeError(w, e.status, e.code, e.msg) }

// applyTo applies f to targets (checked) and returns the apply_firewall
// actions, one per resource. A server has the firewall at once, pending
// until the action finished. s.mu is held.
func (s *Server) applyTo(f *firewall, targets []schema.FirewallResource) []schema.Action {
	return s.targetActions(f, targets, "apply_firewall", func(v *server) func() {
		v.firewalls = append(v.firewalls, f.id)
		v.pending[f.id] = true
		return func() { delete(v.pending, f.id) }
	}, func(sel string) func() {
		f.selectors = append(f.selectors, sel)
		return nil
	})
}

// removeFrom removes f from targets (checked) and returns the
// remove_firewall actions. The firewall stays applied, and the firewall
// in use, until the action finished. s.mu is held.
func (s *Server) removeFrom(f *firewall, targets []schema.FirewallResource) []schema.Action {
	return s.targetActions(f, targets, "remove_firewall", func(v *server) func() {
		return func() {
			v.firewalls = slices.DeleteFunc(v.firewalls, func(id int64) bool { return id == f.id })
			delete(v.pending, f.id)
		}
	}, func(sel string) func() {
		return func() { f.selectors = slices.DeleteFunc(f.selectors, func(x string) bool { return x == sel }) }
	})
}

// targetActions starts a running action command on f and each of
// targets, and returns them. Before each it calls server or selector with
// the target: they do what is to happen at once and return what is to
// happen when the action finishes (nil for nothing). s.mu is held.
func (s *Server) targetActions(f *firewall, targets []schema.FirewallResource, command string,
	server func(*server) func(), selector func(string) func()) []schema.Action {
	actions := []schema.Action{}
	for _, t := range targets {
		refs := []schema.ActionResourceReference{{ID: f.id, Type: "firewall"}}
		var done func()
		switch t.Type {
		case "server":
			v := s.servers[t.Server.ID]
			refs = append(refs, schema.ActionResourceReference{ID: v.id, Type: "server"})
			done = server(v)
		case "label_selector":
			done = selector(t.LabelSelector.Selector)
		default:
			continue
		}
		actions = append(actions, s.newActionOn(command, refs, done).a)
	}
	return actions
}

// Firewalls.

func (s *Server) listFirewalls(w http.ResponseWriter, r *http.Request) {
	list(s, w, r, firewallKind, nil, s.firewallJSON)
}

func (s *Server) getFirewall(w http.ResponseWriter, r *http.Request) {
	firewallKind.serve(s, w, r, nil, func(f *firewall) {
		writeJSON(w, http.StatusOK, schema.FirewallGetResponse{Firewall: s.firewallJSON(f)})
	})
}

func (s *Server) createFirewall(w http.ResponseWriter, r *http.Request) {
	var req schema.FirewallCreateRequest
	if !decode(w, r, &req) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Name == "" {
		firewallKind.reject(w, "name is required")
		return
	}
	labels, ok := firewallKind.labels(w, req.Labels)
	if !ok {
		return
	}
	rules, err := checkRules(req.Rules)
	if err != nil {
		firewallKind.reject(w, err.Error())
		return
	}
	if e := s.checkTargets(nil, req.ApplyTo, false); e != nil {
		e.write(w)
		return
	}
	if !nameFree(s, w, firewallKind, req.Name) {
		return
	}
	f := &firewall{id: s.id(), name: req.Name, labels: labels, created: time.Now().UTC().Truncate(time.Second), rules: rules}
	s.firewalls[f.id] = f
	actions := []schema.Action{}
	if len(rules) > 0 {
		actions = append(actions, s.newActionOn("set_firewall_rules", []schema.ActionResourceReference{{ID: f.id, Type: "firewall"}}, nil).a)
	}
	actions = append(actions, s.applyTo(f, req.ApplyTo)...)
	writeJSON(w, http.StatusCreated, schema.FirewallCreateResponse{Firewall: s.firewallJSON(f), Actions: actions})
}

func (s *Server) updateFirewall(w http.ResponseWriter, r *http.Request) {
	var req schema.FirewallUpdateRequest
	firewallKind.serve(s, w, r, &req, func(f *firewall) {
		if req.Name != nil && *req.Name != f.name {
			if *req.Name == "" {
				firewallKind.reject(w, "name must not be empty")
				return
			}
			if !nameFree(s, w, firewallKind, *req.Name) {
				return
			}
		}
		if !firewallKind.setLabels(w, &f.labels, req.Labels) {
			return
		}
		if req.Name != nil && *req.Name != "" {
			f.name = *req.Name
		}
		writeJSON(w, http.StatusOK, schema.FirewallUpdateResponse{Firewall: s.firewallJSON(f)})
	})
}

func (s *Server) deleteFirewall(w http.ResponseWriter, r *http.Request) {
	firewallKind.serve(s, w, r, nil, func(f *firewall) {
		if s.inUse(f) {
			writeError(w, statusInUse, "resource_in_use", fmt.Sprintf("firewall with ID %d is still in use", f.id))
			return
		}
		delete(s.firewalls, f.id)
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) firewallAction(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Rules      *[]schema.FirewallRuleRequest `json:"rules"`
		ApplyTo    []schema.FirewallResource     `json:"apply_to"`
		RemoveFrom []schema.FirewallResource     `json:"remove_from"`
	}
	firewallKind.serve(s, w, r, &body, func(f *firewall) {
		var actions []schema.Action
		switch r.PathValue("action") {
		case "set_rules":
			if body.Rules == nil {
				firewallKind.reject(w, "rules is required")
				return
			}
			rules, err := checkRules(*body.Rules)
			if err != nil {
				firewallKind.reject(w, err.Error())
				return
			}
			// The rules are the firewall's at once; the actions say when every
			// server it applies to has them.
			f.rules = rules
			fwRef := schema.ActionResourceReference{ID: f.id, Type: "firewall"}
			actions = append(actions, s.newActionOn("set_firewall_rules", []schema.ActionResourceReference{fwRef}, nil).a)
			servers := s.directServers(f)
			for _, sel := range f.selectors {
				servers = append(servers, s.selected(sel)...)
			}
			sort.Slice(servers, func(i, j int) bool { return servers[i] < servers[j] })
			for _, sid := range slices.Compact(servers) {
				actions = append(actions, s.newActionOn("apply_firewall", []schema.ActionResourceReference{fwRef, {ID: sid, Type: "server"}}, nil).a)
			}
		case "apply_to_resources", "remove_from_resources":
			remove := r.PathValue("action") == "remove_from_resources"
			targets, field, change := body.ApplyTo, "apply_to", s.applyTo
			if remove {
				targets, field, change = body.RemoveFrom, "remove_from", s.removeFrom
			}
			if len(targets) == 0 {
				firewallKind.reject(w, field+" is required")
				return
			}
			if e := s.checkTargets(f, targets, remove); e != nil {
				e.write(w)
				return
			}
			actions = change(f, targets)
		default:
			writeError(w, http.StatusNotFound, "not_found", "firewall action not in the fake: "+r.PathValue("action"))
			return
		}
		writeJSON(w, http.StatusCreated, struct {
			Actions []schema.Action `json:"actions"`
		}{actions})
	})
}
