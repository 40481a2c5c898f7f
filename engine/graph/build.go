package graph

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// Build returns the dependency graph of f. It reports every dangling
// reference, duplicate node and cycle it finds as model.Errors (sorted by
// position); the graph is returned only when there are none. A nil fleet
// has an empty graph.
func Build(f *model.Fleet) (*Graph, error) {
	if f == nil {
		f = &model.Fleet{}
	}
	b := &builder{f: f, byName: make(map[NodeKind]map[string]int32)}
	b.addNodes()
	b.addEdges()
	g := b.graph()
	b.errs = append(b.errs, g.sortTopo()...)
	if err := b.errs.Err(); err != nil {
		return nil, err
	}
	return g, nil
}

// builder holds the state of one Build: the nodes and edges collected so
// far and the problems found.
type builder struct {
	f     *model.Fleet
	nodes []Node
	// byName finds a node index by kind and key (the ID without its
	// "<kind>:" prefix), so that resolving a reference does not have to
	// build an ID string.
	byName map[NodeKind]map[string]int32
	// overlayKeys[i] is the key of f.Overlays[i].
	overlayKeys []string
	edges       []edge
	errs        model.Errors
}

// addNodes creates one node per declaration, sorts them by ID and indexes
// them by name. Kinds are added in alphabetical order, so that for a
// fleet whose collections are sorted by name, as the model promises, the
// nodes arrive sorted and sorting is a single check.
func (b *builder) addNodes() {
	f := b.f
	b.nodes = make([]Node, 0, len(f.Channels)+len(f.Features)+2*len(f.Machines)+
		len(f.Inputs)+len(f.Overlays)+len(f.Secrets)+len(f.Users))
	for _, c := range f.Channels {
		b.add(KindChannel, c.Name, c.Name, c.Pos)
	}
	// The channel "patched" is made by the patches: it has no declaration
	// of its own, so it is placed at the first one.
	for _, o := range f.Overlays {
		if o.Kind == model.OverlayPatch {
			b.add(KindChannel, model.PatchedChannel, model.PatchedChannel, o.Pos)
			break
		}
	}
	for _, x := range f.Features {
		b.add(KindFeature, x.Name, x.Name, x.Pos)
	}
	for _, m := range f.Machines {
		if m.Host != nil {
			b.add(KindHost, m.Name, m.Name, hostPos(m))
			b.nodes[len(b.nodes)-1].Disabled = !m.Host.Enabled
		}
	}
	for _, in := range f.Inputs {
		b.add(KindInput, in.Name, in.Name, in.Pos)
	}
	for _, m := range f.Machines {
		b.add(KindMachine, m.Name, m.Name, m.Pos)
	}
	// The model orders overlays by layer; add them by key instead.
	b.overlayKeys = overlayKeys(f.Overlays)
	byKey := make([]int, len(f.Overlays))
	for i := range byKey {
		byKey[i] = i
	}
	slices.SortFunc(byKey, func(i, j int) int { return strings.Compare(b.overlayKeys[i], b.overlayKeys[j]) })
	for _, i := range byKey {
		b.add(KindOverlay, b.overlayKeys[i], f.Overlays[i].Name, f.Overlays[i].Pos)
	}
	for _, s := range f.Secrets {
		b.add(KindSecret, s.Name, s.Name, s.Pos)
	}
	for _, u := range f.Users {
		b.add(KindUser, u.Name, u.Name, u.Pos)
	}
	b.sortNodes()
	b.index()
}

func (b *builder) add(kind NodeKind, key, name string, pos model.Pos) {
	b.nodes = append(b.nodes, Node{ID: ID(kind, key), Kind: kind, Name: name, Pos: pos})
}

// hostPos is where a machine's host was declared, or the machine itself
// if the host carries no position.
func hostPos(m *model.Machine) model.Pos {
	if m.Host.Pos != (model.Pos{}) {
		return m.Host.Pos
	}
	return m.Pos
}

// overlayKeys returns the key of each overlay: "<kind>:<name>", with "#2",
// "#3" ... appended to the second and later declarations (by position) of
// the same kind and name, so that a repeated overlay is still one node
// each and the suffixes do not depend on the order of the slice.
func overlayKeys(overlays []*model.Overlay) []string {
	keys := make([]string, len(overlays))
	groups := make(map[string][]int)
	for i, o := range overlays {
		k := string(o.Kind) + ":" + o.Name
		keys[i] = k
		groups[k] = append(groups[k], i)
	}
	// Each group is numbered on its own, so visiting the map in random
	// order cannot change the result.
	for k, idx := range groups {
		if len(idx) < 2 {
			continue
		}
		sort.SliceStable(idx, func(a, b int) bool { return overlays[idx[a]].Pos.Less(overlays[idx[b]].Pos) })
		for n, i := range idx[1:] {
			keys[i] = k + "#" + strconv.Itoa(n+2)
		}
	}
	return keys
}

// sortNodes sorts the nodes by ID and drops duplicates, keeping the one
// declared first. The model promises unique names, so a duplicate is an
// engine bug; it is reported rather than silently merged.
func (b *builder) sortNodes() {
	if strictlySorted(b.nodes) {
		return
	}
	slices.SortStableFunc(b.nodes, func(x, y Node) int {
		if c := strings.Compare(x.ID, y.ID); c != 0 {
			return c
		}
		return comparePos(x.Pos, y.Pos)
	})
	out := b.nodes[:0]
	for _, n := range b.nodes {
		if k := len(out); k > 0 && out[k-1].ID == n.ID {
			b.errs = append(b.errs, &model.Error{
				Pos:   n.Pos,
				Msg:   "duplicate " + label(&n),
				Notes: []model.Note{{Pos: out[k-1].Pos, Msg: "first declared here"}},
			})
			continue
		}
		out = append(out, n)
	}
	b.nodes = out
}

// strictlySorted reports whether the IDs increase: sorted, no duplicates.
func strictlySorted(nodes []Node) bool {
	for i := 1; i < len(nodes); i++ {
		if nodes[i-1].ID >= nodes[i].ID {
			return false
		}
	}
	return true
}

func comparePos(p, q model.Pos) int {
	switch {
	case p.Less(q):
		return -1
	case q.Less(p):
		return 1
	}
	return 0
}

func (b *builder) index() {
	for i := range b.nodes {
		n := &b.nodes[i]
		m := b.byName[n.Kind]
		if m == nil {
			m = make(map[string]int32)
			b.byName[n.Kind] = m
		}
		m[key(n)] = int32(i)
	}
}

// key is the node's ID without its "<kind>:" prefix.
func key(n *Node) string { return n.ID[len(n.Kind)+1:] }

// label names a node in messages: feature "ssh", overlay "fallback:atuin".
func label(n *Node) string { return string(n.Kind) + " " + strconv.Quote(key(n)) }

// addEdges turns every reference of the model into an edge.
func (b *builder) addEdges() {
	f := b.f
	b.edges = make([]edge, 0, countRefs(f))
	for _, m := range f.Machines {
		self := b.self(KindMachine, m.Name)
		b.refs(self, codeFeature, KindFeature, "features", m.Features)
		b.refs(self, codeUser, KindUser, "users", m.Users)
		if m.Host != nil {
			b.ref(self, codeHost, KindHost, "host", m.Name)
		}
	}
	made := b.packageOverlays()
	for _, x := range f.Features {
		self := b.self(KindFeature, x.Name)
		b.refs(self, codeRequires, KindFeature, "requires", x.Requires)
		for _, p := range x.Packages {
			for _, o := range made[p] {
				b.edges = append(b.edges, edge{from: self, to: o, code: codePackage})
			}
		}
	}
	for _, u := range f.Users {
		self := b.self(KindUser, u.Name)
		b.refs(self, codeHome, KindFeature, "home", u.Home)
	}
	for _, s := range f.Secrets {
		b.secretEdges(s)
	}
	for i, o := range f.Overlays {
		self := b.self(KindOverlay, b.overlayKeys[i])
		if o.Channel != "" {
			b.ref(self, codeChannel, KindChannel, "channel", o.Channel)
		}
		if o.Input != "" {
			b.ref(self, codeInput, KindInput, "input", o.Input)
		}
		if o.Kind == model.OverlayPatch {
			b.edges = append(b.edges, edge{from: b.self(KindChannel, model.PatchedChannel), to: self, code: codePatch})
		}
	}
	for _, in := range f.Inputs {
		b.followsEdges(in)
	}
}

// packageOverlays maps a package name to the overlays that make or change
// that package (fallback, package, override): a feature installing the
// package depends on them. A name no overlay makes comes from the channel
// and has no edge. Patches and flake overlays name no package.
func (b *builder) packageOverlays() map[string][]int32 {
	made := make(map[string][]int32)
	for i, o := range b.f.Overlays {
		switch o.Kind {
		case model.OverlayFallback, model.OverlayPackage, model.OverlayOverride:
			made[o.Name] = append(made[o.Name], b.self(KindOverlay, b.overlayKeys[i]))
		}
	}
	return made
}

// countRefs is the number of references in f, at most one edge each:
// sizing the edge slice up front saves growing it a dozen times.
func countRefs(f *model.Fleet) int {
	n := 3 * len(f.Overlays)
	for _, m := range f.Machines {
		n += len(m.Features) + len(m.Users) + 1
	}
	for _, x := range f.Features {
		n += len(x.Requires) + len(x.Packages)
	}
	for _, u := range f.Users {
		n += len(u.Home)
	}
	for _, s := range f.Secrets {
		n += len(s.Machines) + len(s.Depends)
	}
	for _, in := range f.Inputs {
		n += len(in.Follows)
	}
	return n
}

// self returns the index of a declaration's own node, which addNodes made.
func (b *builder) self(kind NodeKind, key string) int32 {
	return b.byName[kind][key]
}

// refs adds an edge from -> each named node of kind toKind. It is ref in
// a loop, with the kind's index looked up once: this is the hot path of
// Build.
func (b *builder) refs(from int32, code kindCode, toKind NodeKind, field string, names []string) {
	index := b.byName[toKind]
	for _, name := range names {
		if to, ok := index[name]; ok {
			b.edges = append(b.edges, edge{from: from, to: to, code: code})
		} else {
			b.unknown(from, string(toKind), field, name)
		}
	}
}

// ref adds an edge from -> the node of kind toKind called name. The
// reference is written in from's declaration (field names where), so a
// dangling one is reported there.
func (b *builder) ref(from int32, code kindCode, toKind NodeKind, field, name string) {
	if to, ok := b.resolve(from, toKind, field, name); ok {
		b.edges = append(b.edges, edge{from: from, to: to, code: code})
	}
}

// resolve finds the node of kind called name, reporting a dangling
// reference at decl's position.
func (b *builder) resolve(decl int32, kind NodeKind, field, name string) (int32, bool) {
	if i, ok := b.byName[kind][name]; ok {
		return i, true
	}
	b.unknown(decl, string(kind), field, name)
	return 0, false
}

func (b *builder) unknown(decl int32, what, field, name string) {
	n := &b.nodes[decl]
	b.errs = append(b.errs, &model.Error{
		Pos: n.Pos,
		Msg: fmt.Sprintf("%s refers to unknown %s %q in %s", label(n), what, name, field),
	})
}

// secretEdges adds machine -> secret for every machine that uses the
// secret (the reference is declared by the secret, so the secret is blamed
// for an unknown machine) and secret -> secret for its dependencies.
func (b *builder) secretEdges(s *model.Secret) {
	self := b.self(KindSecret, s.Name)
	for _, name := range s.Machines {
		if m, ok := b.resolve(self, KindMachine, "machines", name); ok {
			b.edges = append(b.edges, edge{from: m, to: self, code: codeSecret})
		}
	}
	b.refs(self, codeDepends, KindSecret, "depends", s.Depends)
}

// followsEdges adds input -> input (or channel) for the targets of an
// input's follows, in key order so that errors come out in a fixed order.
// A target may be a path ("a/b": input b of our input a), which depends on
// a; the empty target is Nix's way to drop an input and depends on nothing.
func (b *builder) followsEdges(in *model.Input) {
	self := b.self(KindInput, in.Name)
	keys := make([]string, 0, len(in.Follows))
	for k := range in.Follows {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		target, _, _ := strings.Cut(in.Follows[k], "/")
		if target == "" {
			continue
		}
		to, ok := b.byName[KindInput][target]
		if !ok {
			to, ok = b.byName[KindChannel][target]
		}
		if !ok {
			b.unknown(self, "input or channel", "follows."+k, target)
			continue
		}
		b.edges = append(b.edges, edge{from: self, to: to, code: codeFollows})
	}
}

// graph sorts and deduplicates the edges and builds the adjacency arrays.
// Edges are bucketed by source with a counting sort (node index order is
// ID order) and each small bucket sorted on its own, which is much cheaper
// than sorting every edge by string.
func (b *builder) graph() *Graph {
	n := len(b.nodes)
	g := &Graph{nodes: b.nodes}
	start := make([]int32, n+1)
	for _, e := range b.edges {
		start[e.from+1]++
	}
	for i := 0; i < n; i++ {
		start[i+1] += start[i]
	}
	sorted := make([]edge, len(b.edges))
	next := slices.Clone(start[:n])
	for _, e := range b.edges {
		sorted[next[e.from]] = e
		next[e.from]++
	}
	// Sort each bucket and drop repeated edges (a feature listed twice),
	// compacting in place: the write position w never passes the read
	// position, and a repeat equals the last edge kept.
	w := int32(0)
	for i := 0; i < n; i++ {
		bucket := sorted[start[i]:start[i+1]]
		sortBucket(bucket)
		start[i] = w
		for _, e := range bucket {
			if w > start[i] && sorted[w-1] == e {
				continue
			}
			sorted[w] = e
			w++
		}
	}
	start[n] = w
	g.edges, g.outStart = sorted[:w:w], start
	g.inStart, g.inEdges = reverse(g.edges, n)
	return g
}

// sortBucket sorts the edges leaving one node by (to, code). Buckets are
// mostly a few dozen edges, where insertion sort on a packed key beats a
// general sort by a wide margin; large ones get the general sort.
func sortBucket(es []edge) {
	sortKey := func(e edge) uint64 { return uint64(e.to)<<8 | uint64(e.code) }
	if len(es) > 48 {
		slices.SortFunc(es, func(x, y edge) int { return cmp.Compare(sortKey(x), sortKey(y)) })
		return
	}
	for i := 1; i < len(es); i++ {
		e, k := es[i], sortKey(es[i])
		j := i
		for ; j > 0 && sortKey(es[j-1]) > k; j-- {
			es[j] = es[j-1]
		}
		es[j] = e
	}
}

// reverse returns the incoming adjacency: edge indices bucketed by target.
// Edges are visited in order, so each bucket stays sorted by source.
func reverse(edges []edge, n int) (start, idx []int32) {
	start = make([]int32, n+1)
	for _, e := range edges {
		start[e.to+1]++
	}
	for i := 0; i < n; i++ {
		start[i+1] += start[i]
	}
	idx = make([]int32, len(edges))
	next := slices.Clone(start[:n])
	for k, e := range edges {
		idx[next[e.to]] = int32(k)
		next[e.to]++
	}
	return start, idx
}
