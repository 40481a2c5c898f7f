package deps

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/syntax"
)

// DepsFile and LockFile are the file names, next to the fleet file.
const (
	DepsFile = "fleet.deps"
	LockFile = "fleet.lock"
)

// Dep is one dep(...) of a fleet.deps file.
type Dep struct {
	Name string
	Git  string // the repository, as the git command takes it
	Ref  string // tag, branch, HEAD, refs/... or a full commit hash
	Pos  model.Pos
}

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)
	commitRE = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	shortRE  = regexp.MustCompile(`^[0-9a-f]{7,39}$`)
)

// isCommit reports whether ref is a full commit hash (SHA-1 or SHA-256).
func isCommit(ref string) bool { return commitRE.MatchString(ref) }

// ReadFile parses the fleet.deps at path; label is how errors name it
// ("fleet.deps", "@team//fleet.deps"). A missing file is no dependencies
// and ok == false.
func ReadFile(path, label string) (deps []Dep, ok bool, err error) {
	src, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	deps, err = Parse(label, src)
	return deps, true, err
}

// Parse parses the source of a fleet.deps file: statements that are each
// one call dep(name, git = "...", ref = "..."), with string literals.
// Every problem is reported, each at its position.
func Parse(label string, src []byte) ([]Dep, error) {
	opts := syntax.FileOptions{}
	f, err := opts.Parse(label, src, 0)
	if err != nil {
		var serr syntax.Error
		if errors.As(err, &serr) {
			return nil, &model.Error{Pos: pos(serr.Pos), Msg: serr.Msg}
		}
		return nil, err
	}
	var out []Dep
	var errs model.Errors
	seen := map[string]model.Pos{}
	for _, stmt := range f.Stmts {
		d, err := parseDep(stmt)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := seen[d.Name]; dup {
			errs = append(errs, &model.Error{Pos: d.Pos, Msg: fmt.Sprintf("dependency %q is declared twice (first at %s): keep one", d.Name, first)})
			continue
		}
		seen[d.Name] = d.Pos
		out = append(out, d)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

const depUsage = `write dep("name", git = "URL", ref = "TAG, BRANCH or COMMIT")`

func parseDep(stmt syntax.Stmt) (Dep, *model.Error) {
	start, _ := stmt.Span()
	bad := func(p syntax.Position, format string, args ...any) *model.Error {
		return &model.Error{Pos: pos(p), Msg: fmt.Sprintf(format, args...)}
	}
	es, ok := stmt.(*syntax.ExprStmt)
	var call *syntax.CallExpr
	if ok {
		call, _ = es.X.(*syntax.CallExpr)
	}
	if call == nil {
		return Dep{}, bad(start, "fleet.deps holds only dep(...) calls: %s", depUsage)
	}
	if id, ok := call.Fn.(*syntax.Ident); !ok || id.Name != "dep" {
		return Dep{}, bad(start, "fleet.deps holds only dep(...) calls: %s", depUsage)
	}
	d := Dep{Pos: pos(start)}
	set := map[string]bool{}
	assign := func(key string, p syntax.Position, v syntax.Expr) *model.Error {
		if set[key] {
			return bad(p, "dep: %s is given twice", key)
		}
		set[key] = true
		lit, ok := v.(*syntax.Literal)
		if !ok || lit.Token != syntax.STRING {
			vp, _ := v.Span()
			return bad(vp, "dep: %s must be a string literal (fleet.deps is read without evaluating anything)", key)
		}
		s := lit.Value.(string)
		switch key {
		case "name":
			d.Name = s
		case "git":
			d.Git = s
		case "ref":
			d.Ref = s
		}
		return nil
	}
	positional := 0
	for _, a := range call.Args {
		ap, _ := a.Span()
		switch a := a.(type) {
		case *syntax.BinaryExpr:
			if a.Op != syntax.EQ {
				return Dep{}, bad(ap, "dep: unexpected argument: %s", depUsage)
			}
			key := a.X.(*syntax.Ident).Name
			switch key {
			case "name", "git", "ref":
			case "url", "repo", "repository":
				return Dep{}, bad(ap, "dep: unexpected keyword argument %s (did you mean git?); %s", key, depUsage)
			case "tag", "branch", "commit", "rev", "version":
				return Dep{}, bad(ap, "dep: unexpected keyword argument %s (did you mean ref?); %s", key, depUsage)
			default:
				return Dep{}, bad(ap, "dep: unexpected keyword argument %s; it takes name, git and ref", key)
			}
			if err := assign(key, ap, a.Y); err != nil {
				return Dep{}, err
			}
		case *syntax.UnaryExpr:
			return Dep{}, bad(ap, "dep: *args and **kwargs are not allowed: %s", depUsage)
		default:
			if positional > 0 || len(set) > 0 {
				return Dep{}, bad(ap, "dep: only the name is positional; give git = and ref = by keyword")
			}
			positional++
			if err := assign("name", ap, a); err != nil {
				return Dep{}, err
			}
		}
	}
	lp := call.Lparen
	switch {
	case !set["name"]:
		return Dep{}, bad(lp, "dep: missing the name: %s", depUsage)
	case !nameRE.MatchString(d.Name):
		return Dep{}, bad(start, "dep: invalid name %q: use lower-case letters, digits, - and _, starting with a letter (it is the @name of load(\"@name//...\"))", d.Name)
	case d.Name == "stdlib":
		return Dep{}, bad(start, "dep: the name stdlib is taken by fleet's standard library (@stdlib//): choose another")
	case !set["git"] || d.Git == "":
		return Dep{}, bad(lp, "dep %s: missing git = (the repository URL, as git clone takes it)", d.Name)
	case strings.HasPrefix(d.Git, "-"):
		return Dep{}, bad(start, "dep %s: git = %q: a repository URL cannot start with '-'", d.Name, d.Git)
	case strings.HasPrefix(d.Git, "./") || strings.HasPrefix(d.Git, "../") || d.Git == "." || d.Git == "..":
		return Dep{}, bad(start, "dep %s: git = %q is a relative path: write an absolute path or a URL (for a local checkout you are working on, use --override %s=%s)", d.Name, d.Git, d.Name, d.Git)
	case !set["ref"] || d.Ref == "":
		return Dep{}, bad(lp, "dep %s: missing ref = (a tag such as \"v1.2.0\", a branch, or a full commit hash): fleet pins every dependency", d.Name)
	case strings.HasPrefix(d.Ref, "-") || strings.ContainsAny(d.Ref, " \t\n~^:?*[\\"):
		return Dep{}, bad(start, "dep %s: ref = %q is not a tag, branch or commit name", d.Name, d.Ref)
	}
	return d, nil
}

func pos(p syntax.Position) model.Pos {
	return model.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
}
