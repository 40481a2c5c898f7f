package lint

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bazelbuild/buildtools/build"
	"github.com/fleet-nix/fleet/engine/model"
)

// bindingKind says how a name was bound, which decides the rule that
// reports it when it is never read.
type bindingKind int

const (
	bindLoad     bindingKind = iota // load(): unused-load
	bindGlobal                      // top-level assignment or def: unused-symbol if private
	bindLocal                       // assignment in a function: unused-local
	bindLocalDef                    // def in a function: unused-local
	bindParam                       // never reported
	bindLoopVar                     // for variable of a statement or a comprehension: never reported
)

type binding struct {
	name string
	kind bindingKind
	pos  build.Position
	fn   string // enclosing function, for locals
	from string // module, for loads
	used bool
}

type scope struct {
	parent *scope
	names  map[string]*binding
}

func (s *scope) lookup(name string) *binding {
	for ; s != nil; s = s.parent {
		if b := s.names[name]; b != nil {
			return b
		}
	}
	return nil
}

// resolver binds the names of one file and marks the bindings read.
type resolver struct {
	info     *fileInfo
	bindings []*binding // in order of binding, for stable output
}

func (r *resolver) bind(s *scope, name string, kind bindingKind, pos build.Position, fn string) *binding {
	if b := s.names[name]; b != nil {
		return b // bound again: the first binding stands for all
	}
	b := &binding{name: name, kind: kind, pos: pos, fn: fn}
	s.names[name] = b
	r.bindings = append(r.bindings, b)
	return b
}

// findings resolves the file and reports the bindings never read.
func (info *fileInfo) findings() []Finding {
	r := &resolver{info: info}
	module := &scope{names: map[string]*binding{}}
	for _, stmt := range info.file.Stmt {
		r.bindTargets(module, stmt, bindGlobal, "")
	}
	for _, stmt := range info.file.Stmt {
		r.stmt(module, stmt, "")
	}
	var out []Finding
	for _, b := range r.bindings {
		if b.used {
			continue
		}
		var rule, msg string
		switch b.kind {
		case bindLoad:
			rule, msg = RuleUnusedLoad, fmt.Sprintf("unused load %q from %q", b.name, b.from)
		case bindGlobal:
			if !strings.HasPrefix(b.name, "_") || b.name == "_" {
				continue
			}
			rule, msg = RuleUnusedSymbol, fmt.Sprintf("unused symbol %q: it is private to this file, and this file never uses it", b.name)
		case bindLocal, bindLocalDef:
			if strings.HasPrefix(b.name, "_") {
				continue
			}
			what := "variable"
			if b.kind == bindLocalDef {
				what = "function"
			}
			rule, msg = RuleUnusedLocal, fmt.Sprintf("unused local %s %q in %s", what, b.name, b.fn)
		default:
			continue
		}
		out = append(out, Finding{Pos: model.Pos{File: info.label, Line: b.pos.Line, Col: b.pos.LineRune}, Rule: rule, Msg: msg})
	}
	return out
}

// bindTargets binds the names a statement binds in scope s: assignment
// targets, loop variables, def names and loads, looking into if and for
// bodies (a function's locals are all the names bound anywhere in it) but
// not into nested functions or comprehensions, which have scopes of their
// own.
func (r *resolver) bindTargets(s *scope, stmt build.Expr, kind bindingKind, fn string) {
	switch x := stmt.(type) {
	case *build.LoadStmt:
		for _, to := range x.To {
			pos := to.NamePos
			// buildtools places the name of load("m", "x") after the
			// quote; point at the string, as go.starlark.net does.
			if b := pos.Byte - 1; b >= 0 && b < len(r.info.src) && (r.info.src[b] == '"' || r.info.src[b] == '\'') {
				pos.LineRune--
				pos.Byte--
			}
			r.bind(s, to.Name, bindLoad, pos, fn).from = x.Module.Value
		}
	case *build.AssignExpr:
		r.bindLHS(s, x.LHS, kind, fn)
	case *build.DefStmt:
		k := kind
		if kind == bindLocal {
			k = bindLocalDef
		}
		r.bind(s, x.Name, k, r.defNamePos(x), fn)
	case *build.ForStmt:
		loop := kind
		if kind == bindLocal {
			loop = bindLoopVar
		}
		r.bindLHS(s, x.Vars, loop, fn)
		for _, st := range x.Body {
			r.bindTargets(s, st, kind, fn)
		}
	case *build.IfStmt:
		for _, st := range x.True {
			r.bindTargets(s, st, kind, fn)
		}
		for _, st := range x.False {
			r.bindTargets(s, st, kind, fn)
		}
	}
}

// bindLHS binds the identifiers of an assignment target. Elements of
// a[i] and a.f targets bind nothing; they are reads of a (see assignLHS).
func (r *resolver) bindLHS(s *scope, lhs build.Expr, kind bindingKind, fn string) {
	switch x := lhs.(type) {
	case *build.Ident:
		r.bind(s, x.Name, kind, x.NamePos, fn)
	case *build.TypedIdent:
		r.bindLHS(s, x.Ident, kind, fn)
	case *build.TupleExpr:
		for _, e := range x.List {
			r.bindLHS(s, e, kind, fn)
		}
	case *build.ListExpr:
		for _, e := range x.List {
			r.bindLHS(s, e, kind, fn)
		}
	case *build.ParenExpr:
		r.bindLHS(s, x.X, kind, fn)
	}
}

// defNamePos is the position of a def's name: buildtools keeps only the
// position of the def keyword.
func (r *resolver) defNamePos(d *build.DefStmt) build.Position {
	p := d.StartPos
	src := r.info.src
	i := p.Byte + len("def")
	if p.Byte < 0 || i > len(src) || string(src[p.Byte:i]) != "def" {
		return p
	}
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\\' || src[i] == '\n') {
		i++
	}
	return build.Position{Line: p.Line, LineRune: p.LineRune + utf8.RuneCount(src[p.Byte:i]), Byte: i}
}

// stmt marks what a statement reads.
func (r *resolver) stmt(s *scope, stmt build.Expr, fn string) {
	switch x := stmt.(type) {
	case *build.LoadStmt, *build.CommentBlock, *build.BranchStmt:
	case *build.AssignExpr:
		r.assignLHS(s, x.LHS, x.Op != "=")
		r.expr(s, x.RHS)
	case *build.DefStmt:
		r.function(s, &x.Function, x.Name)
	case *build.ForStmt:
		r.expr(s, x.X)
		r.assignLHS(s, x.Vars, false)
		for _, st := range x.Body {
			r.stmt(s, st, fn)
		}
	case *build.IfStmt:
		r.expr(s, x.Cond)
		for _, st := range x.True {
			r.stmt(s, st, fn)
		}
		for _, st := range x.False {
			r.stmt(s, st, fn)
		}
	case *build.ReturnStmt:
		if x.Result != nil {
			r.expr(s, x.Result)
		}
	default:
		r.expr(s, stmt)
	}
}

// assignLHS marks the reads in an assignment target: the a of a[i] = v
// and a.f = v, and the target itself of an augmented assignment (x += 1
// reads x).
func (r *resolver) assignLHS(s *scope, lhs build.Expr, augmented bool) {
	switch x := lhs.(type) {
	case *build.Ident:
		if augmented {
			r.use(s, x.Name)
		}
	case *build.TypedIdent:
		r.assignLHS(s, x.Ident, augmented)
	case *build.TupleExpr:
		for _, e := range x.List {
			r.assignLHS(s, e, augmented)
		}
	case *build.ListExpr:
		for _, e := range x.List {
			r.assignLHS(s, e, augmented)
		}
	case *build.ParenExpr:
		r.assignLHS(s, x.X, augmented)
	default:
		r.expr(s, lhs)
	}
}

func (r *resolver) use(s *scope, name string) {
	if b := s.lookup(name); b != nil {
		b.used = true
	}
}

// function resolves a def or a lambda: defaults in the enclosing scope,
// then the body in a scope of its own holding the parameters and every
// name bound in the body.
func (r *resolver) function(outer *scope, f *build.Function, name string) {
	s := &scope{parent: outer, names: map[string]*binding{}}
	for _, p := range f.Params {
		r.param(outer, s, p, name)
	}
	for _, st := range f.Body {
		r.bindTargets(s, st, bindLocal, name)
	}
	for _, st := range f.Body {
		r.stmt(s, st, name)
	}
}

func (r *resolver) param(outer, s *scope, p build.Expr, fn string) {
	switch x := p.(type) {
	case *build.Ident:
		r.bind(s, x.Name, bindParam, x.NamePos, fn)
	case *build.TypedIdent:
		r.param(outer, s, x.Ident, fn)
	case *build.AssignExpr: // name = default
		r.expr(outer, x.RHS)
		r.param(outer, s, x.LHS, fn)
	case *build.UnaryExpr: // *args, **kwargs, or a bare *
		if x.X != nil {
			r.param(outer, s, x.X, fn)
		}
	}
}

// expr marks the names an expression reads.
func (r *resolver) expr(s *scope, e build.Expr) {
	switch x := e.(type) {
	case nil:
	case *build.Ident:
		r.use(s, x.Name)
	case *build.LiteralExpr, *build.StringExpr, *build.CommentBlock, *build.End:
	case *build.DotExpr:
		r.expr(s, x.X)
	case *build.CallExpr:
		r.expr(s, x.X)
		for _, a := range x.List {
			if kw, ok := a.(*build.AssignExpr); ok { // name = value
				r.expr(s, kw.RHS)
				continue
			}
			r.expr(s, a)
		}
	case *build.LambdaExpr:
		r.function(s, &x.Function, "lambda")
	case *build.Comprehension:
		r.comprehension(s, x)
	case *build.TypedIdent:
		r.expr(s, x.Ident)
	default:
		build.WalkOnce(e, func(c *build.Expr) { r.expr(s, *c) })
	}
}

// comprehension resolves [body for x in xs if c ...]: the first iterable
// in the enclosing scope, everything else in the comprehension's own
// scope, where its loop variables live.
func (r *resolver) comprehension(outer *scope, c *build.Comprehension) {
	s := &scope{parent: outer, names: map[string]*binding{}}
	for i, cl := range c.Clauses {
		if fc, ok := cl.(*build.ForClause); ok {
			if i == 0 {
				r.expr(outer, fc.X)
			}
			r.bindLHS(s, fc.Vars, bindLoopVar, "")
		}
	}
	for i, cl := range c.Clauses {
		switch x := cl.(type) {
		case *build.ForClause:
			if i > 0 {
				r.expr(s, x.X)
			}
			r.assignLHS(s, x.Vars, false)
		case *build.IfClause:
			r.expr(s, x.Cond)
		}
	}
	r.expr(s, c.Body)
}
