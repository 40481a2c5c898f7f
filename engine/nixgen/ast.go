package nixgen

// The Nix AST. Only what fleet prints is here: every generated file is
// built from these nodes and printed by print.go, never pasted together
// from strings, so quoting and escaping happen in exactly one place.

// Expr is a Nix expression.
type Expr interface{ isExpr() }

type (
	// Str is a string with exactly these bytes.
	Str struct{ S string }
	// Int is an integer literal (negative ones are parenthesized).
	Int struct{ V int64 }
	// Float is a float literal.
	Float struct{ V float64 }
	// Bool is true or false.
	Bool struct{ V bool }
	// Null is null.
	Null struct{}
	// Path is a relative path literal such as ./modules/ssh.nix. P is
	// slash-separated and relative to the file the path appears in.
	Path struct{ P string }
	// Var is a variable: pkgs, lib, inputs, final.
	Var struct{ Name string }
	// Select is X.a."b".c: attribute selection by names taken literally.
	Select struct {
		X    Expr
		Path []string
	}
	// Apply is a function application f a b.
	Apply struct {
		Fn   Expr
		Args []Expr
	}
	// List is [ a b c ].
	List struct{ Elems []Expr }
	// Attrs is an attribute set; bindings print in the order given
	// (constructors sort them where order carries no meaning).
	Attrs struct{ Binds []Bind }
	// Lambda is a function. Formals, when non-nil, make it a pattern
	// { a, b, ... }: (Ellipsis adds the ...), optionally bound with
	// Name@; otherwise Name: body.
	Lambda struct {
		Name     string
		Formals  []string
		Ellipsis bool
		Body     Expr
	}
	// Let is let binds in body.
	Let struct {
		Binds []Bind
		Body  Expr
	}
	// BinOp is l op r for ++, //, + and ==.
	BinOp struct {
		Op   string
		L, R Expr
	}
	// If is if Cond then Then else Else.
	If struct{ Cond, Then, Else Expr }
	// Raw is a Nix expression written by the user (nix.expr): printed
	// parenthesized, so it combines with its context as one value.
	Raw struct{ Code string }
)

// Bind is one binding: path = value; or inherit (From) names;.
type Bind struct {
	// Path is the attribute path, each segment a literal name.
	Path  []string
	Value Expr
	// Inherit, when non-empty, makes this `inherit (From) names;`
	// (From may be nil) instead of a path binding.
	Inherit []string
	From    Expr
	// Comment is printed as # lines above the binding.
	Comment string
}

func (Str) isExpr()    {}
func (Int) isExpr()    {}
func (Float) isExpr()  {}
func (Bool) isExpr()   {}
func (Null) isExpr()   {}
func (Path) isExpr()   {}
func (Var) isExpr()    {}
func (Select) isExpr() {}
func (Apply) isExpr()  {}
func (List) isExpr()   {}
func (*Attrs) isExpr() {}
func (Lambda) isExpr() {}
func (Let) isExpr()    {}
func (BinOp) isExpr()  {}
func (Raw) isExpr()    {}
func (If) isExpr()     {}

// Helpers that keep construction code short.

// Sel builds x.a.b from a variable name and attribute names.
func Sel(x string, path ...string) Select { return Select{X: Var{x}, Path: path} }

// Call builds f a b.
func Call(fn Expr, args ...Expr) Apply { return Apply{Fn: fn, Args: args} }

// Set binds path (one segment per name) to value in a, keeping the
// bindings sorted and nesting paths that share a prefix (see setMerged).
func (a *Attrs) Set(value Expr, path ...string) *Attrs {
	setMerged(a, Var{"lib"}, value, path...)
	return a
}

// SetNote is Set with a comment above the binding of path[0].
func (a *Attrs) SetNote(comment string, value Expr, path ...string) *Attrs {
	a.Set(value, path...)
	for i := range a.Binds {
		if bindName(a.Binds[i]) == path[0] {
			if a.Binds[i].Comment != "" {
				comment = a.Binds[i].Comment + "\n" + comment
			}
			a.Binds[i].Comment = comment
		}
	}
	return a
}

// Strs makes a list of strings.
func Strs(xs []string) List {
	l := List{Elems: make([]Expr, len(xs))}
	for i, x := range xs {
		l.Elems[i] = Str{x}
	}
	return l
}
