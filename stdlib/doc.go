package stdlib

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"go.starlark.net/syntax"
)

// File is the documentation of one library of the tree, read from its
// source: what `fleet doc @stdlib` prints and docs/stdlib.md lists, so
// that neither can drift from the code.
type File struct {
	// Name is the file name ("nixos.star"); Load is how a fleet loads it
	// ("@stdlib//nixos.star").
	Name, Load string
	// Doc is the module docstring, dedented.
	Doc string
	// Symbols are the public functions, then the public values, each in
	// the order of the file.
	Symbols []Symbol
}

// Symbol is one public top-level name of a library: a function or a value.
type Symbol struct {
	Name string
	// Func tells a function (def) from a value.
	Func bool
	// Signature is "name(param = default, ...)" for a function, the
	// assignment as written ("NAME = {...}") for a value.
	Signature string
	// Doc is a function's docstring or the comment above a value,
	// dedented.
	Doc string
}

// Docs reads the documentation of every library of FS, sorted by name.
// Test files (*_test.star) are not libraries and are left out; so are
// names starting with _, which load() cannot import.
func Docs() ([]File, error) {
	names, err := fs.Glob(FS, "*.star")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.star") {
			continue
		}
		src, err := fs.ReadFile(FS, name)
		if err != nil {
			return nil, err
		}
		f, err := docOf(name, string(src))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func docOf(name, src string) (File, error) {
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}
	ast, err := opts.Parse(name, src, syntax.RetainComments)
	if err != nil {
		return File{}, fmt.Errorf("@stdlib//%s: %v", name, err)
	}
	lines := strings.Split(src, "\n")
	f := File{Name: name, Load: "@stdlib//" + name}
	stmts := ast.Stmts
	if len(stmts) > 0 {
		// The module docstring starts at column 0, so its indentation
		// (an example) is meant as written.
		if s, ok := docstring(stmts[0], false); ok {
			f.Doc = s
			stmts = stmts[1:]
		}
	}
	var values []Symbol
	for _, st := range stmts {
		switch st := st.(type) {
		case *syntax.DefStmt:
			if public(st.Name.Name) {
				sym := Symbol{Name: st.Name.Name, Func: true, Signature: signature(lines, st)}
				if len(st.Body) > 0 {
					sym.Doc, _ = docstring(st.Body[0], true)
				}
				f.Symbols = append(f.Symbols, sym)
			}
		case *syntax.AssignStmt:
			id, ok := st.LHS.(*syntax.Ident)
			if !ok || !public(id.Name) || st.Op != syntax.EQ {
				continue
			}
			start, end := st.Span()
			values = append(values, Symbol{Name: id.Name, Signature: text(lines, start, end), Doc: comment(st)})
		}
	}
	f.Symbols = append(f.Symbols, values...)
	return f, nil
}

func public(name string) bool { return !strings.HasPrefix(name, "_") }

// docstring returns the string literal that st is, if it is one,
// dedented if asked.
func docstring(st syntax.Stmt, dedent bool) (string, bool) {
	e, ok := st.(*syntax.ExprStmt)
	if !ok {
		return "", false
	}
	lit, ok := e.X.(*syntax.Literal)
	if !ok || lit.Token != syntax.STRING {
		return "", false
	}
	s, _ := lit.Value.(string)
	if !dedent {
		return strings.Trim(s, "\n"), true
	}
	return cleandoc(s), true
}

// cleandoc dedents a docstring as Python's inspect.cleandoc does: the
// first line as is, the others less their common indentation, blank
// lines at either end dropped.
func cleandoc(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\t", "    "), "\n")
	indent := -1
	for _, l := range lines[1:] {
		if t := strings.TrimLeft(l, " "); t != "" {
			if n := len(l) - len(t); indent < 0 || n < indent {
				indent = n
			}
		}
	}
	lines[0] = strings.TrimSpace(lines[0])
	for i := 1; i < len(lines); i++ {
		if len(lines[i]) >= indent && indent > 0 {
			lines[i] = lines[i][indent:]
		}
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// comment is the block of # comments right above a statement.
func comment(st syntax.Stmt) string {
	c := st.Comments()
	if c == nil {
		return ""
	}
	var out []string
	for _, l := range c.Before {
		t := strings.TrimPrefix(l.Text, "#")
		out = append(out, strings.TrimPrefix(t, " "))
	}
	return strings.Join(out, "\n")
}

// signature renders a def's header: name(p, q = default, *args, **kw),
// each default as written in the source.
func signature(lines []string, d *syntax.DefStmt) string {
	var params []string
	for _, p := range d.Params {
		switch p := p.(type) {
		case *syntax.Ident:
			params = append(params, p.Name)
		case *syntax.BinaryExpr:
			start, end := p.Y.Span()
			params = append(params, p.X.(*syntax.Ident).Name+" = "+text(lines, start, end))
		case *syntax.UnaryExpr:
			s := p.Op.String()
			if p.X != nil {
				s += p.X.(*syntax.Ident).Name
			}
			params = append(params, s)
		}
	}
	return d.Name.Name + "(" + strings.Join(params, ", ") + ")"
}

// text is the source between two positions (columns count runes).
func text(lines []string, start, end syntax.Position) string {
	col := func(line string, c int32) int {
		r := []rune(line)
		n := min(max(int(c)-1, 0), len(r))
		return len(string(r[:n]))
	}
	if start.Line == end.Line {
		l := lines[start.Line-1]
		return l[col(l, start.Col):col(l, end.Col)]
	}
	var b strings.Builder
	first := lines[start.Line-1]
	b.WriteString(first[col(first, start.Col):])
	for i := start.Line; i < end.Line-1; i++ {
		b.WriteString("\n" + lines[i])
	}
	last := lines[end.Line-1]
	b.WriteString("\n" + last[:col(last, end.Col)])
	return b.String()
}

// Lookup finds a library by "@stdlib//name.star", "@stdlib//name" or
// "name.star".
func Lookup(files []File, name string) (File, bool) {
	name = strings.TrimPrefix(name, "@stdlib//")
	if path.Ext(name) == "" {
		name += ".star"
	}
	for _, f := range files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}
