package graph

import (
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// sortTopo computes the topological order with Kahn's algorithm, taking
// the ready node with the smallest ID first so the order is a function of
// the graph alone. Nodes left over are on a cycle or depend on one; only
// then is the (rarer, costlier) cycle search run, and its errors returned.
func (g *Graph) sortTopo() []*model.Error {
	n := len(g.nodes)
	pending := make([]int32, n) // dependencies not yet ordered
	var ready minHeap
	for i := 0; i < n; i++ {
		pending[i] = g.outStart[i+1] - g.outStart[i]
		if pending[i] == 0 {
			ready.push(int32(i))
		}
	}
	order := make([]int32, 0, n)
	for len(ready) > 0 {
		v := ready.pop()
		order = append(order, v)
		for _, ei := range g.inEdges[g.inStart[v]:g.inStart[v+1]] {
			u := g.edges[ei].from
			if pending[u]--; pending[u] == 0 {
				ready.push(u)
			}
		}
	}
	if len(order) < n {
		return g.cycles(pending)
	}
	g.order = order
	g.rank = make([]int32, n)
	for r, v := range order {
		g.rank[v] = int32(r)
	}
	return nil
}

// minHeap is a binary heap of node indices. It is written out rather than
// using container/heap, whose interface boxes every element.
type minHeap []int32

func (h *minHeap) push(v int32) {
	*h = append(*h, v)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if s[p] <= s[i] {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
}

func (h *minHeap) pop() int32 {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		c := 2*i + 1
		if c >= len(s) {
			break
		}
		if c+1 < len(s) && s[c+1] < s[c] {
			c++
		}
		if s[i] <= s[c] {
			break
		}
		s[i], s[c] = s[c], s[i]
		i = c
	}
	*h = s
	return top
}

// cycles reports one cycle per strongly connected component among the
// nodes Kahn's algorithm could not order (pending > 0). Those include
// nodes that merely depend on a cycle; they form components of one node
// without a self-loop and are skipped.
func (g *Graph) cycles(pending []int32) []*model.Error {
	comp := g.components(func(v int32) bool { return pending[v] > 0 })
	var errs []*model.Error
	done := make(map[int32]bool)
	// Visiting nodes in index order makes each component's first node its
	// smallest ID, where its cycle starts.
	for v := int32(0); v < int32(len(g.nodes)); v++ {
		c := comp[v]
		if c < 0 || done[c] {
			continue
		}
		done[c] = true
		if path, kinds := g.shortestCycle(v, comp); path != nil {
			errs = append(errs, g.cycleError(path, kinds))
		}
	}
	return errs
}

// components labels the strongly connected components of the subgraph of
// nodes for which in returns true (Tarjan's algorithm, iterative so that a
// long requires chain cannot overflow the stack). comp[v] is -1 for nodes
// outside the subgraph.
func (g *Graph) components(in func(int32) bool) []int32 {
	n := int32(len(g.nodes))
	comp := make([]int32, n)
	index := make([]int32, n)
	low := make([]int32, n)
	onStack := make([]bool, n)
	for i := range comp {
		comp[i], index[i] = -1, -1
	}
	type frame struct{ v, next int32 } // next: the next out-edge to visit
	var calls []frame
	var stack []int32
	counter, ncomp := int32(0), int32(0)
	visit := func(v int32) {
		index[v], low[v] = counter, counter
		counter++
		stack = append(stack, v)
		onStack[v] = true
		calls = append(calls, frame{v, g.outStart[v]})
	}
	for root := int32(0); root < n; root++ {
		if !in(root) || index[root] >= 0 {
			continue
		}
		visit(root)
		for len(calls) > 0 {
			f := &calls[len(calls)-1]
			v := f.v
			if f.next < g.outStart[v+1] {
				w := g.edges[f.next].to
				f.next++
				switch {
				case !in(w):
				case index[w] < 0:
					visit(w)
				case onStack[w]:
					low[v] = min(low[v], index[w])
				}
				continue
			}
			calls = calls[:len(calls)-1]
			if low[v] == index[v] {
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = ncomp
					if w == v {
						break
					}
				}
				ncomp++
			}
			if len(calls) > 0 {
				p := calls[len(calls)-1].v
				low[p] = min(low[p], low[v])
			}
		}
	}
	return comp
}

// shortestCycle returns the shortest cycle from s back to s within s's
// component, as its nodes (starting with s) and the kinds of its edges, or
// nil if there is none (a component of one node without a self-loop).
// Breadth-first search over sorted out-edges makes the choice among
// equally short cycles deterministic.
func (g *Graph) shortestCycle(s int32, comp []int32) ([]int32, []EdgeKind) {
	via := map[int32]int32{s: -1} // node -> edge index it was reached by
	queue := []int32{s}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for ei := g.outStart[v]; ei < g.outStart[v+1]; ei++ {
			w := g.edges[ei].to
			if w == s {
				return g.tracePath(ei, via)
			}
			if _, seen := via[w]; !seen && comp[w] == comp[s] {
				via[w] = ei
				queue = append(queue, w)
			}
		}
	}
	return nil, nil
}

// tracePath follows via back from the closing edge to the start.
func (g *Graph) tracePath(closing int32, via map[int32]int32) ([]int32, []EdgeKind) {
	var path []int32
	var kinds []EdgeKind
	for ei := closing; ei >= 0; ei = via[g.edges[ei].from] {
		path = append(path, g.edges[ei].from)
		kinds = append(kinds, g.edges[ei].code.kind())
	}
	reverseSlice(path)
	reverseSlice(kinds)
	return path, kinds
}

func reverseSlice[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

// cycleError describes a cycle: the message walks it from its first node
// back to that node, and there is one note per step at the declaration
// that made it.
func (g *Graph) cycleError(path []int32, kinds []EdgeKind) *model.Error {
	what := "dependency"
	if same(kinds) {
		what = string(kinds[0])
	}
	var msg strings.Builder
	msg.WriteString(what + " cycle: ")
	notes := make([]model.Note, len(path))
	for i, v := range path {
		next := path[(i+1)%len(path)]
		msg.WriteString(label(&g.nodes[v]) + " -> ")
		notes[i] = model.Note{
			Pos: g.nodes[v].Pos,
			Msg: label(&g.nodes[v]) + " " + verb(kinds[i]) + " " + label(&g.nodes[next]),
		}
	}
	msg.WriteString(label(&g.nodes[path[0]]))
	return &model.Error{Pos: g.nodes[path[0]].Pos, Msg: msg.String(), Notes: notes}
}

func same(kinds []EdgeKind) bool {
	for _, k := range kinds {
		if k != kinds[0] {
			return false
		}
	}
	return true
}

// verb phrases an edge for a note: feature "a" requires feature "b".
func verb(k EdgeKind) string {
	switch k {
	case EdgeFeature:
		return "uses"
	case EdgeRequires:
		return "requires"
	case EdgeUser:
		return "has user"
	case EdgeHome:
		return "has home feature"
	case EdgeHost:
		return "runs on"
	case EdgeSecret:
		return "needs"
	case EdgeChannel:
		return "takes packages from"
	case EdgeInput:
		return "comes from"
	case EdgeFollows:
		return "follows"
	}
	return "depends on"
}
