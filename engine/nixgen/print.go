package nixgen

import (
	"math"
	"strconv"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
)

// The printer writes the formatting a person would: two-space indent, one
// binding per line, short lists of plain values on one line, and chains
// of single-binding attribute sets written as dotted paths
// (services.openssh.enable = true;). Parentheses appear exactly where Nix
// needs them: around applications and negative numbers in lists and
// arguments, around raw expressions, around operands of operators.

// lineWidth is where a list of scalars stops being written on one line.
const lineWidth = 100

// Print renders e as Nix source without a trailing newline.
func Print(e Expr) string {
	p := &printer{}
	p.expr(e, precLambda)
	return p.b.String()
}

// Render renders a whole file: header comment lines, the expression, and a
// final newline. A header line is one comment line: a '\n' in it is shown
// escaped, as every other character that would end the comment or act on
// a terminal (see commentText).
func Render(header []string, e Expr) []byte {
	var b strings.Builder
	for _, h := range header {
		b.WriteString(strings.TrimRight("# "+commentText(h), " "))
		b.WriteByte('\n')
	}
	b.WriteString(Print(e))
	b.WriteByte('\n')
	return []byte(b.String())
}

type printer struct {
	b      strings.Builder
	indent int
}

func (p *printer) nl() {
	p.b.WriteByte('\n')
	for i := 0; i < p.indent; i++ {
		p.b.WriteString("  ")
	}
}

// Precedence classes, from tightest to loosest.
const (
	precAtom   = iota // literals, variables, selections, lists, sets, (raw)
	precApply         // f a b
	precOp            // a ++ b
	precLambda        // x: ..., let ... in ...
)

func prec(e Expr) int {
	switch e := e.(type) {
	case Int:
		if e.V < 0 {
			return precOp // unary minus
		}
	case Float:
		if e.V < 0 || math.Signbit(e.V) {
			return precOp
		}
	case Apply:
		return precApply
	case BinOp:
		return precOp
	case Lambda, Let, If:
		return precLambda
	case Select:
		if prec(e.X) != precAtom {
			return precApply // printed with parens around X, still an atom
		}
	}
	return precAtom
}

// expr prints e; maxPrec is the loosest class allowed without parens.
func (p *printer) expr(e Expr, maxPrec int) {
	if prec(e) > maxPrec {
		p.b.WriteByte('(')
		p.expr(e, precLambda)
		p.b.WriteByte(')')
		return
	}
	switch e := e.(type) {
	case Str:
		p.str(e.S)
	case Int:
		if e.V == math.MinInt64 {
			p.b.WriteString("-9223372036854775807 - 1")
			return
		}
		p.b.WriteString(strconv.FormatInt(e.V, 10))
	case Float:
		p.b.WriteString(formatFloat(e.V))
	case Bool:
		p.b.WriteString(strconv.FormatBool(e.V))
	case Null:
		p.b.WriteString("null")
	case Path:
		p.path(e.P)
	case Var:
		p.b.WriteString(e.Name)
	case Select:
		p.expr(e.X, precAtom)
		for _, s := range e.Path {
			p.b.WriteByte('.')
			p.b.WriteString(attrName(s))
		}
	case Apply:
		p.expr(e.Fn, precApply)
		for _, a := range e.Args {
			p.b.WriteByte(' ')
			p.expr(a, precAtom)
		}
	case List:
		p.list(e)
	case *Attrs:
		p.attrs(e)
	case Lambda:
		p.lambda(e)
	case Let:
		p.b.WriteString("let")
		p.indent++
		for _, b := range e.Binds {
			p.nl()
			p.bind(b)
		}
		p.indent--
		p.nl()
		p.b.WriteString("in")
		p.nl()
		p.expr(e.Body, precLambda)
	case BinOp:
		// ++, // and + are associative, so a chain of one of them needs
		// no parentheses: a ++ b ++ c.
		if l, ok := e.L.(BinOp); ok && l.Op == e.Op && e.Op != "==" {
			p.expr(l, precOp)
		} else {
			p.expr(e.L, precApply)
		}
		p.b.WriteString(" " + e.Op + " ")
		p.expr(e.R, precApply)
	case Raw:
		p.raw(e.Code)
	case If:
		p.b.WriteString("if ")
		p.expr(e.Cond, precOp)
		p.b.WriteString(" then ")
		p.expr(e.Then, precOp)
		p.b.WriteString(" else ")
		p.expr(e.Else, precLambda)
	default:
		panic("nixgen: unknown expression")
	}
}

func (p *printer) lambda(e Lambda) {
	if e.Formals == nil {
		p.b.WriteString(e.Name)
		p.b.WriteString(":")
	} else {
		if e.Name != "" {
			p.b.WriteString(e.Name)
			p.b.WriteByte('@')
		}
		p.b.WriteString("{ ")
		parts := append([]string(nil), e.Formals...)
		if e.Ellipsis {
			parts = append(parts, "...")
		}
		p.b.WriteString(strings.Join(parts, ", "))
		p.b.WriteString(" }:")
	}
	// A module's pattern stands on its own line above the body, as in
	// nixpkgs; short curried lambdas (final: prev: { ... }) stay on one.
	if _, isLet := e.Body.(Let); e.Formals == nil && !isLet {
		p.b.WriteByte(' ')
	} else {
		p.nl()
	}
	p.expr(e.Body, precLambda)
}

func (p *printer) raw(code string) {
	code = strings.TrimSpace(code)
	p.b.WriteByte('(')
	// A comment on the last line would swallow the closing parenthesis.
	if strings.Contains(code, "\n") || strings.Contains(code, "#") {
		p.indent++
		for _, line := range strings.Split(code, "\n") {
			p.nl()
			p.b.WriteString(line)
		}
		p.indent--
		p.nl()
	} else {
		p.b.WriteString(code)
	}
	p.b.WriteByte(')')
}

// isScalar reports whether e prints on one short line.
func isScalar(e Expr) bool {
	switch e := e.(type) {
	case Str:
		return !strings.Contains(e.S, "\n") && len(e.S) < 60
	case Int, Float, Bool, Null, Path, Var, Select:
		return true
	case Apply:
		for _, a := range e.Args {
			if !isScalar(a) {
				return false
			}
		}
		return isScalar(e.Fn)
	}
	return false
}

func (p *printer) list(l List) {
	if len(l.Elems) == 0 {
		p.b.WriteString("[ ]")
		return
	}
	inline := true
	for _, x := range l.Elems {
		if !isScalar(x) {
			inline = false
			break
		}
	}
	if inline {
		var sub printer
		sub.b.WriteString("[")
		for _, x := range l.Elems {
			sub.b.WriteByte(' ')
			sub.expr(x, precAtom)
		}
		sub.b.WriteString(" ]")
		if s := sub.b.String(); 2*p.indent+len(s) <= lineWidth {
			p.b.WriteString(s)
			return
		}
	}
	p.b.WriteByte('[')
	p.indent++
	for _, x := range l.Elems {
		p.nl()
		p.expr(x, precAtom)
	}
	p.indent--
	p.nl()
	p.b.WriteByte(']')
}

func (p *printer) attrs(a *Attrs) {
	if len(a.Binds) == 0 {
		p.b.WriteString("{ }")
		return
	}
	p.b.WriteByte('{')
	p.indent++
	for _, b := range a.Binds {
		p.nl()
		p.bind(b)
	}
	p.indent--
	p.nl()
	p.b.WriteByte('}')
}

func (p *printer) bind(b Bind) {
	if b.Comment != "" {
		for _, line := range strings.Split(b.Comment, "\n") {
			for _, w := range wrap(commentText(line), lineWidth-2*p.indent-2) {
				p.b.WriteString(strings.TrimRight("# "+w, " "))
				p.nl()
			}
		}
	}
	if b.Inherit != nil {
		p.b.WriteString("inherit ")
		if b.From != nil {
			p.b.WriteByte('(')
			p.expr(b.From, precLambda)
			p.b.WriteString(") ")
		}
		p.b.WriteString(strings.Join(b.Inherit, " "))
		p.b.WriteByte(';')
		return
	}
	path, value := collapse(b.Path, b.Value)
	for i, s := range path {
		if i > 0 {
			p.b.WriteByte('.')
		}
		p.b.WriteString(attrName(s))
	}
	p.b.WriteString(" = ")
	p.expr(value, precLambda)
	p.b.WriteByte(';')
}

// commentText is one line of comment text as printed: Nix ends a line
// comment at '\r' as well as '\n', so text a user wrote (an overlay's
// reason, a file name in a header) could otherwise end the comment and
// put a binding or an assert into the file, hidden by a terminal that
// shows the '\r' as nothing. Every control character, line or paragraph
// separator, bidi control and non-UTF-8 byte is shown escaped instead
// (model.Printable): \r, \x1b, \u2028. Comments are prose for a person,
// so the text stays readable rather than being refused.
func commentText(s string) string { return model.Printable(s) }

// collapse turns a = { b = { c = 1; }; } into a.b.c = 1: a set with one
// binding (and no comment or inherit) adds its path to the parent's.
func collapse(path []string, v Expr) ([]string, Expr) {
	for {
		a, ok := v.(*Attrs)
		if !ok || len(a.Binds) != 1 || a.Binds[0].Inherit != nil || a.Binds[0].Comment != "" {
			return path, v
		}
		path = append(append([]string(nil), path...), a.Binds[0].Path...)
		v = a.Binds[0].Value
	}
}

// attrName renders an attribute name, quoted unless it is a plain identifier.
func attrName(s string) string {
	if model.IsIdent(s) {
		return s
	}
	return quoteString(s)
}

// formatFloat prints a float the Nix lexer reads back as the same float:
// Nix float literals need a '.' before any exponent.
func formatFloat(f float64) string {
	format := byte('g')
	if a := math.Abs(f); a >= 1e-4 && a < 1e15 {
		format = 'f' // 1000000.0, as a person writes it, not 1.0e+06
	}
	s := strconv.FormatFloat(f, format, -1, 64)
	mant, exp, hasExp := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	if hasExp {
		return mant + "e" + exp
	}
	return mant
}

// pathRE-equivalent check: Nix path literals allow [a-zA-Z0-9._+-] in
// segments separated by '/'.
func isPathLiteral(p string) bool {
	if p == "" || strings.HasSuffix(p, "/") || strings.Contains(p, "//") {
		return false
	}
	for _, r := range p {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case r == '.', r == '_', r == '+', r == '-', r == '/':
		default:
			return false
		}
	}
	return true
}

func (p *printer) path(rel string) {
	if !strings.HasPrefix(rel, "../") && !strings.HasPrefix(rel, "./") && rel != "." && rel != ".." {
		rel = "./" + rel
	}
	if isPathLiteral(rel) && rel != "." && rel != ".." {
		p.b.WriteString(rel)
		return
	}
	// Not expressible as a literal: the directory of this file plus a string.
	p.b.WriteString("(./. + ")
	p.str("/" + strings.TrimPrefix(rel, "./"))
	p.b.WriteByte(')')
}

// wrap breaks a comment line at spaces so that it fits width columns
// (a word longer than that stands alone).
func wrap(line string, width int) []string {
	width = max(width, 40)
	var out []string
	for len(line) > width {
		i := strings.LastIndexByte(line[:width+1], ' ')
		if i <= 0 {
			if i = strings.IndexByte(line, ' '); i < 0 {
				break
			}
		}
		out = append(out, line[:i])
		line = strings.TrimLeft(line[i:], " ")
	}
	return append(out, line)
}
