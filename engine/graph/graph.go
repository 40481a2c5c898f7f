package graph

import (
	"sort"

	"github.com/fleet-nix/fleet/engine/model"
)

// NodeKind is the kind of declaration a node stands for. It is the prefix
// of the node's ID.
type NodeKind string

const (
	KindChannel NodeKind = "channel"
	KindInput   NodeKind = "input"
	KindOverlay NodeKind = "overlay"
	KindFeature NodeKind = "feature"
	KindUser    NodeKind = "user"
	KindMachine NodeKind = "machine"
	KindSecret  NodeKind = "secret"
	KindHost    NodeKind = "host"
)

// EdgeKind says which field of the model an edge comes from.
type EdgeKind string

const (
	EdgeFeature  EdgeKind = "feature"  // machine -> feature: Machine.Features
	EdgeRequires EdgeKind = "requires" // feature -> feature: Feature.Requires
	EdgeUser     EdgeKind = "user"     // machine -> user: Machine.Users
	EdgeHome     EdgeKind = "home"     // user -> feature: User.Home
	EdgeHost     EdgeKind = "host"     // machine -> host: Machine.Host
	EdgeSecret   EdgeKind = "secret"   // machine -> secret: Secret.Machines
	EdgeDepends  EdgeKind = "depends"  // secret -> secret: Secret.Depends
	EdgeChannel  EdgeKind = "channel"  // overlay -> channel: Overlay.Channel
	EdgeInput    EdgeKind = "input"    // overlay -> input: Overlay.Input
	EdgeFollows  EdgeKind = "follows"  // input -> input or channel: Input.Follows
	EdgePatch    EdgeKind = "patch"    // channel "patched" -> each overlay.patch
	EdgePackage  EdgeKind = "package"  // feature -> overlay: Feature.Packages made by a fallback, package or override
)

// Node is one declaration of the fleet.
type Node struct {
	// ID is "<kind>:<name>", see ID; it is unique in the graph.
	ID   string   `json:"id"`
	Kind NodeKind `json:"kind"`
	// Name is the declaration's name as written (for a host, the name of
	// its machine).
	Name string `json:"name"`
	// Pos is where the node was declared (for a host, the host value).
	Pos model.Pos `json:"pos,omitzero"`
	// Disabled marks a host switched off (enabled = False): the cloud
	// deletes it, while its machine stays in the fleet.
	Disabled bool `json:"disabled,omitempty"`
}

// Edge is a dependency: From depends on To, so To comes first in
// topological order.
type Edge struct {
	From string   `json:"from"`
	To   string   `json:"to"`
	Kind EdgeKind `json:"kind"`
}

// ID returns the ID of the node of the given kind and name. For an
// overlay, name is "<overlay kind>:<name>" (plus "#n" for a repeated one).
func ID(kind NodeKind, name string) string {
	return string(kind) + ":" + name
}

// Graph is the immutable dependency graph of one fleet. Its methods may be
// called concurrently.
//
// Nodes are referred to internally by their index in nodes, which is sorted
// by ID; ordering indices therefore orders IDs without string compares.
type Graph struct {
	nodes []Node
	// edges are sorted by (from, to, kind) and free of duplicates, so the
	// edges leaving node i are edges[outStart[i]:outStart[i+1]].
	edges    []edge
	outStart []int32
	// inEdges holds indices into edges, sorted by (to, from, kind); the
	// edges entering node i are inEdges[inStart[i]:inStart[i+1]].
	inEdges []int32
	inStart []int32
	// order is the topological order; rank is its inverse.
	order []int32
	rank  []int32
}

// edge is an Edge between node indices. It holds no pointers, so the
// garbage collector never scans the edge arrays, by far the largest part
// of a big graph.
type edge struct {
	from, to int32
	code     kindCode
}

// kindCode is an EdgeKind as a small integer. The codes follow the
// alphabetical order of the names, so ordering codes orders kinds.
type kindCode uint8

const (
	codeChannel kindCode = iota
	codeDepends
	codeFeature
	codeFollows
	codeHome
	codeHost
	codeInput
	codePackage
	codePatch
	codeRequires
	codeSecret
	codeUser
	numCodes
)

func (c kindCode) kind() EdgeKind {
	switch c {
	case codeChannel:
		return EdgeChannel
	case codeDepends:
		return EdgeDepends
	case codeFeature:
		return EdgeFeature
	case codeFollows:
		return EdgeFollows
	case codeHome:
		return EdgeHome
	case codeHost:
		return EdgeHost
	case codeInput:
		return EdgeInput
	case codePackage:
		return EdgePackage
	case codePatch:
		return EdgePatch
	case codeRequires:
		return EdgeRequires
	case codeSecret:
		return EdgeSecret
	case codeUser:
		return EdgeUser
	}
	return ""
}

// Nodes returns every node, sorted by ID. The nodes belong to the graph
// and must not be modified.
func (g *Graph) Nodes() []*Node {
	out := make([]*Node, len(g.nodes))
	for i := range g.nodes {
		out[i] = &g.nodes[i]
	}
	return out
}

// Node returns the node with the given ID, or nil.
func (g *Graph) Node(id string) *Node {
	if i, ok := g.index(id); ok {
		return &g.nodes[i]
	}
	return nil
}

// index finds a node by binary search: the nodes are sorted by ID, which
// saves keeping a map of every ID.
func (g *Graph) index(id string) (int32, bool) {
	i := sort.Search(len(g.nodes), func(i int) bool { return g.nodes[i].ID >= id })
	if i < len(g.nodes) && g.nodes[i].ID == id {
		return int32(i), true
	}
	return 0, false
}

// Edges returns every edge, sorted by From, then To, then Kind.
func (g *Graph) Edges() []Edge {
	out := make([]Edge, len(g.edges))
	for i, e := range g.edges {
		out[i] = g.export(e)
	}
	return out
}

func (g *Graph) export(e edge) Edge {
	return Edge{From: g.nodes[e.from].ID, To: g.nodes[e.to].ID, Kind: e.code.kind()}
}

// DependsOn returns the IDs of the nodes id depends on directly, sorted.
// It is nil for an unknown ID.
func (g *Graph) DependsOn(id string) []string {
	i, ok := g.index(id)
	if !ok {
		return nil
	}
	var out []string
	for _, e := range g.edges[g.outStart[i]:g.outStart[i+1]] {
		out = appendUnique(out, g.nodes[e.to].ID)
	}
	return out
}

// Dependents returns the IDs of the nodes that depend directly on id,
// sorted. It is nil for an unknown ID.
func (g *Graph) Dependents(id string) []string {
	i, ok := g.index(id)
	if !ok {
		return nil
	}
	var out []string
	for _, ei := range g.inEdges[g.inStart[i]:g.inStart[i+1]] {
		out = appendUnique(out, g.nodes[g.edges[ei].from].ID)
	}
	return out
}

// appendUnique appends s unless it equals the last element: neighbours
// arrive sorted, and two edges of different kinds may join the same pair.
func appendUnique(xs []string, s string) []string {
	if len(xs) > 0 && xs[len(xs)-1] == s {
		return xs
	}
	return append(xs, s)
}

// Topo returns every node ID in topological order: each node after all the
// nodes it depends on, ties broken by the smaller ID.
func (g *Graph) Topo() []string {
	return g.ids(g.order)
}

// Closure returns ids together with everything they depend on,
// transitively, in topological order. This is the part of the fleet that
// must be ready before ids can be acted on (a machine's features, users,
// host and secrets). Unknown IDs are ignored; use Node to check them.
func (g *Graph) Closure(ids ...string) []string {
	seen := make(map[int32]bool)
	var stack, reached []int32
	for _, id := range ids {
		if i, ok := g.index(id); ok && !seen[i] {
			seen[i] = true
			stack = append(stack, i)
		}
	}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		reached = append(reached, n)
		for _, e := range g.edges[g.outStart[n]:g.outStart[n+1]] {
			if !seen[e.to] {
				seen[e.to] = true
				stack = append(stack, e.to)
			}
		}
	}
	sort.Slice(reached, func(a, b int) bool { return g.rank[reached[a]] < g.rank[reached[b]] })
	return g.ids(reached)
}

func (g *Graph) ids(idx []int32) []string {
	out := make([]string, len(idx))
	for k, i := range idx {
		out[k] = g.nodes[i].ID
	}
	return out
}
