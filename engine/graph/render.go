package graph

import (
	"bufio"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// The renderers write the graph for people (text), for Graphviz (DOT) and
// for programs (JSON). All three only read the sorted nodes, sorted edges
// and topological order, so the same graph always gives the same bytes.

// nodeStyle is the look of a node kind in DOT: the shape hints at what the
// node is (a cylinder of packages, a rounded box of a machine, a 3-D box
// of the host it runs on), style is Graphviz's node style.
type nodeStyle struct{ shape, color, style string }

func styleOf(k NodeKind) nodeStyle {
	switch k {
	case KindChannel:
		return nodeStyle{"cylinder", "#1f77b4", ""}
	case KindInput:
		return nodeStyle{"folder", "#17becf", ""}
	case KindOverlay:
		return nodeStyle{"parallelogram", "#9467bd", ""}
	case KindFeature:
		return nodeStyle{"ellipse", "#2ca02c", ""}
	case KindUser:
		return nodeStyle{"house", "#ff7f0e", ""}
	case KindMachine:
		return nodeStyle{"box", "#000000", "rounded,bold"}
	case KindSecret:
		return nodeStyle{"octagon", "#d62728", ""}
	case KindHost:
		return nodeStyle{"box3d", "#7f7f7f", ""}
	}
	return nodeStyle{"ellipse", "#000000", ""}
}

// offStyle is a host switched off (enabled = False): dashed and grey, as
// it exists in the fleet but not in the cloud.
var offStyle = nodeStyle{"box3d", "#bbbbbb", "dashed"}

// nodeKinds and edgeKinds are the kinds in the order the legend lists
// them: roughly from the machine to what it is built from.
var (
	nodeKinds = []NodeKind{KindMachine, KindHost, KindFeature, KindUser, KindSecret, KindOverlay, KindInput, KindChannel}
	edgeKinds = []EdgeKind{EdgeFeature, EdgeRequires, EdgeUser, EdgeHome, EdgeHost, EdgeSecret, EdgeDepends, EdgePackage, EdgeChannel, EdgeInput, EdgeFollows, EdgePatch}
)

// edgeStyle sets an edge apart by what it means: solid for configuration
// that is built in (features), dashed for accounts, dotted for secrets,
// bold for the host a machine needs first, dashed for the overlay
// workarounds a feature's packages come from.
func edgeStyle(k EdgeKind) string {
	switch k {
	case EdgeUser, EdgeHome, EdgePackage:
		return "dashed"
	case EdgeSecret, EdgeDepends:
		return "dotted"
	case EdgeHost:
		return "bold"
	}
	return "solid"
}

// WriteDOT writes the graph in Graphviz's DOT language, laid out left to
// right so that dependencies sit to the right of what needs them. Every ID
// and label is quoted and escaped, so any name is valid DOT. A host is
// labelled as one (it shares its machine's name), a switched-off host is
// dashed and grey, and a legend (the cluster "cluster_legend", whose node
// IDs start with "legend:", which no node kind does) shows the kinds of
// node and edge the graph has.
func (g *Graph) WriteDOT(w io.Writer) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("digraph fleet {\n")
	bw.WriteString("  rankdir=LR;\n")
	bw.WriteString("  node [fontname=\"Helvetica\"];\n")
	bw.WriteString("  edge [fontname=\"Helvetica\", fontsize=10];\n")
	for i := range g.nodes {
		n := &g.nodes[i]
		st := styleOf(n.Kind)
		name := n.Name
		if n.Kind == KindOverlay {
			name = key(n) // the overlay kind tells apart overlays of one package
		}
		if n.Kind == KindHost {
			name += "\n(host)"
			if n.Disabled {
				st = offStyle
				name = n.Name + "\n(host, switched off)"
			}
		}
		bw.WriteString("  " + dotQuote(n.ID) + " [label=" + dotLabel(name) + dotAttrs(st) +
			", tooltip=" + dotLabel(string(n.Kind)+" declared at "+n.Pos.String()) + "];\n")
	}
	for _, e := range g.edges {
		bw.WriteString("  " + dotQuote(g.nodes[e.from].ID) + " -> " + dotQuote(g.nodes[e.to].ID) +
			" [label=" + dotQuote(string(e.code.kind())) + ", style=" + edgeStyle(e.code.kind()) + "];\n")
	}
	g.writeLegend(bw)
	bw.WriteString("}\n")
	return bw.Flush()
}

// dotAttrs are the shape, colour and style of a node, after its label.
func dotAttrs(st nodeStyle) string {
	s := ", shape=" + st.shape + ", color=" + dotQuote(st.color)
	if st.style != "" {
		s += ", style=" + dotQuote(st.style)
	}
	if st == offStyle {
		s += ", fontcolor=" + dotQuote("#999999")
	}
	return s
}

// writeLegend writes the legend cluster: one sample node per node kind
// present, a switched-off host if there is one, and one sample edge per
// edge kind present, between two points. An empty graph has no legend.
func (g *Graph) writeLegend(bw *bufio.Writer) {
	if len(g.nodes) == 0 {
		return
	}
	kinds := make(map[NodeKind]bool)
	off := false
	for i := range g.nodes {
		kinds[g.nodes[i].Kind] = true
		off = off || g.nodes[i].Disabled
	}
	var edges [numCodes]bool
	for _, e := range g.edges {
		edges[e.code] = true
	}
	bw.WriteString("  subgraph cluster_legend {\n")
	bw.WriteString("    label=\"legend\"; fontname=\"Helvetica\"; style=\"dashed\"; color=\"#bbbbbb\";\n")
	for _, k := range nodeKinds {
		if kinds[k] {
			bw.WriteString("    " + dotQuote("legend:"+string(k)) + " [label=" + dotQuote(string(k)) + dotAttrs(styleOf(k)) + "];\n")
		}
	}
	if off {
		bw.WriteString("    " + dotQuote("legend:host-off") + " [label=" + dotQuote("host switched off") + dotAttrs(offStyle) + "];\n")
	}
	// Each edge kind is a sample edge from its name to a point. The names
	// share a rank, chained top to bottom by invisible edges, so the
	// samples stack in the order of edgeKinds without crossing.
	var names []string
	for _, k := range edgeKinds {
		var present bool
		for c := kindCode(0); c < numCodes; c++ {
			present = present || (edges[c] && c.kind() == k)
		}
		if !present {
			continue
		}
		from, to := dotQuote("legend:"+string(k)+":from"), dotQuote("legend:"+string(k)+":to")
		bw.WriteString("    " + from + " [label=" + dotQuote(string(k)) + ", shape=plaintext];\n")
		bw.WriteString("    " + to + " [label=\"\", shape=point, width=0.05];\n")
		bw.WriteString("    " + from + " -> " + to + " [style=" + edgeStyle(k) + "];\n")
		names = append(names, from)
	}
	if len(names) > 0 {
		bw.WriteString("    { rank=same; " + strings.Join(names, "; ") + "; }\n")
	}
	for i := 1; i < len(names); i++ {
		// In a left-to-right layout, an edge within a rank puts its head
		// above its tail.
		bw.WriteString("    " + names[i] + " -> " + names[i-1] + " [style=invis];\n")
	}
	bw.WriteString("  }\n")
}

// dotQuote makes s a DOT double-quoted string. Only `"` must be escaped
// for the parser, but backslashes are doubled too because labels give
// them meaning (\n, \l, \N ...). Line breaks become \n and \r, so that
// each statement stays on one line; other control characters, which DOT
// cannot escape, become their Unicode control pictures (tab is U+2409),
// and invalid UTF-8, which Graphviz rejects, becomes U+FFFD. Distinct
// ordinary names therefore stay distinct IDs.
func dotQuote(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20:
			b.WriteRune(0x2400 + r)
		case r == 0x7f:
			b.WriteRune(0x2421)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// dotLabel quotes text that Graphviz displays. It decodes HTML entities
// in labels ("&amp;" shows as "&"), so escaping every & keeps the text as
// written.
func dotLabel(s string) string {
	return dotQuote(strings.ReplaceAll(s, "&", "&amp;"))
}

// jsonGraph is the JSON document: nodes and edges sorted, order the
// topological order.
type jsonGraph struct {
	Nodes []Node   `json:"nodes"`
	Edges []Edge   `json:"edges"`
	Order []string `json:"order"`
}

// WriteJSON writes the graph as an indented JSON document of the form
// {"nodes": [{"id", "kind", "name", "pos", "disabled" (a host switched
// off; absent otherwise)}], "edges": [{"from", "to", "kind"}], "order":
// [ids in topological order]}.
func (g *Graph) WriteJSON(w io.Writer) error {
	doc := jsonGraph{Nodes: g.nodes, Edges: g.Edges(), Order: g.Topo()}
	if doc.Nodes == nil {
		doc.Nodes = []Node{} // [] rather than null for an empty fleet
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(doc)
}

// WriteText writes the graph for a person: nodes by level, where level 0
// depends on nothing and level k on nodes of lower levels only, each node
// (a host switched off says so) followed by what it depends on. Nodes of one level could be acted on in
// parallel, which is how the deploy executor sees the fleet.
func (g *Graph) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	levels := g.levels()
	for l, nodes := range levels {
		if l > 0 {
			bw.WriteByte('\n')
		}
		bw.WriteString("level " + strconv.Itoa(l) + "\n")
		for _, v := range nodes {
			n := &g.nodes[v]
			off := ""
			if n.Disabled {
				off = ", switched off"
			}
			bw.WriteString(textID(n.ID) + "  (" + n.Pos.String() + off + ")\n")
			for _, e := range g.edges[g.outStart[v]:g.outStart[v+1]] {
				bw.WriteString("  -> " + textID(g.nodes[e.to].ID) + " (" + string(e.code.kind()) + ")\n")
			}
		}
	}
	return bw.Flush()
}

// levels groups the nodes by longest distance to a node without
// dependencies, each group sorted by ID.
func (g *Graph) levels() [][]int32 {
	level := make([]int, len(g.nodes))
	var out [][]int32
	for _, v := range g.order {
		l := 0
		for _, e := range g.edges[g.outStart[v]:g.outStart[v+1]] {
			l = max(l, level[e.to]+1)
		}
		level[v] = l
		if l == len(out) {
			out = append(out, nil)
		}
		out[l] = append(out[l], v)
	}
	for _, nodes := range out {
		slices.Sort(nodes)
	}
	return out
}

// textID quotes an ID that would otherwise break the layout of the text
// (spaces, line breaks, control characters); ordinary IDs stay bare.
func textID(id string) string {
	for _, r := range id {
		if !unicode.IsPrint(r) || r == ' ' || r == '"' {
			return strconv.Quote(id)
		}
	}
	return id
}
