// Package starfmt formats fleet's Starlark files the way buildifier lays
// out Starlark, without changing what they mean.
//
// # Which buildtools mode
//
// github.com/bazelbuild/buildtools parses a file as one of several types
// (BUILD, WORKSPACE, MODULE.bazel, .bzl, or "default": generic Starlark)
// and then either rewrites and prints it (build.Format) or only prints it
// (build.FormatWithoutRewriting). The type decides two things: the
// printer's layout rules and which rewrites Format applies.
//
// BUILD mode is wrong for fleet files on both counts. Its printer puts
// every argument of a top-level call on its own line, and its rewrites
// sort call arguments by a table of Bazel rule attribute names, sort
// string lists such as srcs/deps, drop parentheses and rewrite labels:
// meaningful for Bazel targets, a change of meaning for machine(...) or
// feature(...) calls, where the order of list elements (a list option's
// merge order, the order of overlay fallbacks) is part of the program.
//
// Even the rewrites of the default and .bzl types change programs: they
// move load statements to the top, merge and sort them, sort load
// arguments, reorder call arguments (positional before keyword, which
// changes evaluation order) and re-indent docstrings (which changes the
// strings' values). So starfmt parses with build.ParseDefault, the
// generic-Starlark type, and prints with build.FormatWithoutRewriting:
// only whitespace, line breaks, indentation, blank lines, quote style and
// comment placement change. buildifier's own output for a .star file can
// therefore differ from fleet fmt's where buildifier would have rewritten
// something; fleet fmt's output is a fixed point of buildifier's printer.
//
// # Checked, not trusted
//
// buildtools has its own parser, not go.starlark.net's, which fleet runs.
// Format therefore parses the input with go.starlark.net first (a syntax
// error is reported as fleet run would report it, and the file is left
// alone), and the output too, and compares the two syntax trees, ignoring
// positions, comments, redundant parentheses and how literals were
// spelled. If they differ, Format returns an error rather than a changed
// program. The few constructs go.starlark.net accepts and buildtools does
// not (bytes literals b"...", while loops) are errors that say so.
//
// # Files
//
// Files expands command-line paths: directories are walked for *.star
// files and fleet.deps (which is Starlark too), skipping directories whose
// name starts with a dot (.git, .fleet) and testdata directories, which
// hold deliberately odd files. WriteFile replaces a file atomically
// (temporary file in the same directory, then rename) and keeps its mode.
package starfmt

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/bazelbuild/buildtools/build"
	"go.starlark.net/syntax"
)

// Error is a file that cannot be parsed, at the position the parser gave
// up.
type Error struct {
	File      string
	Line, Col int
	Msg       string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// Format returns src laid out by buildtools' printer for generic Starlark.
// filename is used only in errors. A file go.starlark.net (the parser
// fleet runs) or buildtools cannot parse is an *Error at the position the
// parser gave up.
func Format(filename string, src []byte) ([]byte, error) {
	before, err := parseOptions.Parse(filename, src, 0)
	if err != nil {
		var se syntax.Error
		if errors.As(err, &se) {
			return nil, &Error{File: filename, Line: int(se.Pos.Line), Col: int(se.Pos.Col), Msg: se.Msg}
		}
		return nil, err
	}
	f, err := build.ParseDefault(filename, src)
	if err != nil {
		// Valid Starlark that buildtools does not read (bytes literals,
		// for one): say that the formatter is the one at fault.
		var pe build.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: filename, Line: pe.Pos.Line, Col: pe.Pos.LineRune,
				Msg: strings.TrimSpace(pe.Message) + " (the formatter, buildtools, cannot parse this construct)"}
		}
		return nil, fmt.Errorf("%s: %w", filename, err)
	}
	out := build.FormatWithoutRewriting(f)
	after, err := parseOptions.Parse(filename, out, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: formatting would make the file unparsable (%v); file left alone, please report this", filename, err)
	}
	if !sameTree(reflect.ValueOf(before.Stmts), reflect.ValueOf(after.Stmts)) {
		return nil, fmt.Errorf("%s: formatting would change the program; file left alone, please report this", filename)
	}
	return out, nil
}

// IsFormatted reports whether src is already formatted.
func IsFormatted(filename string, src []byte) (bool, error) {
	out, err := Format(filename, src)
	if err != nil {
		return false, err
	}
	return bytes.Equal(out, src), nil
}

// parseOptions accept every construct go.starlark.net can parse: formatting
// is about syntax, and fleet's own restrictions (no while, no top-level
// control flow) are the evaluator's business.
var parseOptions = &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}

var (
	positionType = reflect.TypeOf(syntax.Position{})
	literalType  = reflect.TypeOf(syntax.Literal{})
	bigIntType   = reflect.TypeOf(big.Int{})
	parenType    = reflect.TypeOf(&syntax.ParenExpr{})
)

// sameTree compares two go.starlark.net syntax trees, ignoring positions,
// comments (unexported), parentheses and the raw spelling of literals.
func sameTree(a, b reflect.Value) bool {
	if a.Kind() == reflect.Interface {
		a, b = unparen(a.Elem()), unparen(b.Elem())
		if !a.IsValid() || !b.IsValid() {
			return a.IsValid() == b.IsValid()
		}
	}
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Type().Elem() == bigIntType {
			return a.Interface().(*big.Int).Cmp(b.Interface().(*big.Int)) == 0
		}
		return sameTree(a.Elem(), b.Elem())
	case reflect.Struct:
		if a.Type() == positionType {
			return true
		}
		for i := 0; i < a.NumField(); i++ {
			field := a.Type().Field(i)
			if !field.IsExported() || (a.Type() == literalType && field.Name == "Raw") {
				continue
			}
			if !sameTree(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !sameTree(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	}
	return a.Interface() == b.Interface()
}

// unparen strips parentheses: (x) and x are the same program.
func unparen(v reflect.Value) reflect.Value {
	for v.IsValid() && v.Type() == parenType && !v.IsNil() {
		v = reflect.ValueOf(v.Interface().(*syntax.ParenExpr).X)
	}
	return v
}

// IsStarlarkFile reports whether a file found in a directory is one fleet
// fmt formats: *.star, and fleet.deps.
func IsStarlarkFile(name string) bool {
	return strings.HasSuffix(name, ".star") || name == "fleet.deps"
}

// SkipDir reports whether a directory found while walking is left out:
// hidden ones (.git, .fleet) and testdata.
func SkipDir(name string) bool {
	return (strings.HasPrefix(name, ".") && name != "." && name != "..") || name == "testdata"
}

// Files expands paths into the Starlark files to format, sorted and
// without duplicates. A directory is walked recursively (see SkipDir and
// IsStarlarkFile); a file named explicitly is taken whatever its name or
// folder.
func Files(paths []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, root := range paths {
		info, err := os.Stat(root)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			add(root)
			continue
		}
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != root && SkipDir(d.Name()) {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && IsStarlarkFile(d.Name()) {
				add(p)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}

// WriteFile replaces the contents of path with data atomically: a reader
// sees the old file or the new one, never a part. The file keeps its
// permissions; a symbolic link stays a link and its target is replaced.
func WriteFile(path string, data []byte) (err error) {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".fmt-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Chmod(info.Mode().Perm()); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
