package engine

import (
	"iter"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/syntax"
)

// Python habits. Fleet files look like Python, and Python's constructs
// that Starlark lacks (class, import, try, f-strings, is, ...) come out
// of go.starlark.net as bare parse errors: "got class, want primary
// expression", or "got ',', want ':'" for a set literal. explainSyntax
// recognises them by the token the parser names and by the source at
// the position, moves the position to the start of the construct, and
// says that fleet files are Starlark and what to write instead.

// starlarkNo is the common opening of these messages.
const starlarkNo = "fleet files are Starlark, which has no "

// keywordHabits are Python keywords that Starlark reserves but does not
// use, by the token name the parser reports them with.
var keywordHabits = map[string]string{
	"class": starlarkNo + "classes: keep data in dicts (a function can build one: def server(name): return {\"name\": name}) " +
		"and behaviour in functions",
	"import": starlarkNo + "import: load(\"//lib/x.star\", \"name\") brings in names a library defines; " +
		"include(\"x.star\") adds a file's declarations to the fleet",
	"try": starlarkNo + "exceptions: check the condition with if before acting; " +
		"fail(\"message\") stops the evaluation with a message",
	"with":  starlarkNo + "with statement (there is nothing to open or close): write its body without it",
	"raise": starlarkNo + "raise: fail(\"message\") stops the evaluation with that message, at this line",
	"global": "fleet files are Starlark, where a function cannot rebind a name outside it: return the new value " +
		"and assign it where the function is called, or change a list or dict in place (l.append(x), d[k] = v)",
	"yield": starlarkNo + "generators: build a list and return it, or use a comprehension ([f(x) for x in xs])",
	"is":    starlarkNo + "is operator: compare with == and != (x == None, x != None)",
	"del":   starlarkNo + "del: d.pop(key) removes a dict entry, l.pop(i) or l.remove(x) a list element",
}

func init() {
	keywordHabits["from"] = keywordHabits["import"]
	keywordHabits["except"] = keywordHabits["try"]
	keywordHabits["finally"] = keywordHabits["try"]
	keywordHabits["nonlocal"] = keywordHabits["global"]
}

const (
	lambdaHabit = "a Starlark lambda's body is one expression (lambda x: x + 1): " +
		"for statements, def a function and pass its name"
	fstringHabit = starlarkNo + "f-strings: write \"...%s...\" % x, or \"...{}...\".format(x)"
	setHabit     = starlarkNo + "set literals: use a list ([1, 2]; in works on lists too), " +
		"or a dict with the elements as keys ({1: True, 2: True})"
	dictStarHabit = "fleet files are Starlark, where ** unpacks a dict only into a call's arguments: " +
		"merge dicts with d | {\"key\": value}, or dict(d, key = value)"
	powerHabit = starlarkNo + "** operator: multiply (x * x)"
)

var (
	// lambdaRE is a lambda anywhere before the error on its line;
	// lambdaBodyRE one whose body starts where the text ends.
	lambdaRE     = regexp.MustCompile(`\blambda\b[^:]*:`)
	lambdaBodyRE = regexp.MustCompile(`\blambda\b[^:]*:\s*\(?\s*$`)
	// fstringRE is a string prefix with an f: f"", F'', rf"", fr''.
	fstringRE = regexp.MustCompile(`(?:^|[^A-Za-z0-9_])((?i:f|rf|fr))["']`)
)

// explainSyntax turns a parse error into fleet's positioned error,
// explaining Python habits. src is the file's source (nil if unknown:
// then only what the message says is used).
func explainSyntax(serr syntax.Error, src []byte) *model.Error {
	pos := posOf(serr.Pos)
	out := &model.Error{Pos: pos, Msg: serr.Msg}
	tok, ok := gotToken(serr.Msg)
	if !ok {
		return out
	}
	lines := strings.Split(string(src), "\n")
	line := ""
	if l := int(serr.Pos.Line); l >= 1 && l <= len(lines) {
		line = lines[l-1]
	}
	// The column as a byte offset into line. The parser reports a token
	// at its start (want primary expression) or at its end (the others).
	end := byteOffset(line, int(serr.Pos.Col)-1)
	start := end
	// Punctuation is quoted in the message, not in the source.
	text := strings.Trim(tok, "'")
	if strings.HasSuffix(line[:end], text) {
		start = end - len(text)
	}
	before := withoutComment(line[:start])
	at := func(off int) {
		out.Pos.Col = utf8.RuneCountInString(line[:off]) + 1
	}

	switch {
	case strings.HasSuffix(serr.Msg, "want primary expression") && lambdaBodyRE.MatchString(before),
		tok == "'='" && lambdaRE.MatchString(before):
		// lambda x: return x, lambda: (yield), lambda x:<newline>,
		// lambda x: x = 1
		at(strings.LastIndex(before, "lambda"))
		out.Msg = lambdaHabit
	case keywordHabits[tok] != "":
		at(start)
		out.Msg = keywordHabits[tok]
	case tok == "string literal":
		// The position is the end of the literal; its f is before.
		if ms := fstringRE.FindAllStringSubmatchIndex(line[:end], -1); ms != nil {
			at(ms[len(ms)-1][2])
			out.Msg = fstringHabit
		}
	case tok == "'**'":
		at(start)
		out.Msg = powerHabit
		if prev := strings.TrimRight(before, " \t"); strings.HasSuffix(prev, "{") || strings.HasSuffix(prev, ",") {
			out.Msg = dictStarHabit
		}
	case strings.HasSuffix(serr.Msg, "want ':'") && (tok == "','" || tok == "'}'" || tok == "for"):
		// {1, 2}, {1}, {x for x in xs}: a dict literal without colons.
		if off, ok := openBrace(src, int(serr.Pos.Line), start); ok {
			out.Pos.Line, out.Pos.Col = lineCol(src, off)
			out.Msg = setHabit
		}
	}
	return out
}

// withoutComment is line up to its comment, if any.
func withoutComment(line string) string {
	for i, c := range codeBytes(line) {
		if c == '#' {
			return line[:i]
		}
	}
	return line
}

// codeBytes yields the bytes of s that are code, with their offsets:
// not inside a string literal, and of a comment only its '#'.
func codeBytes(s string) iter.Seq2[int, byte] {
	return func(yield func(int, byte) bool) {
		var quote byte
		for i := 0; i < len(s); i++ {
			c := s[i]
			switch {
			case quote != 0:
				if c == '\\' {
					i++
				} else if c == quote {
					quote = 0
				}
			case c == '"' || c == '\'':
				quote = c
			case c == '#':
				if !yield(i, c) {
					return
				}
				for i < len(s) && s[i] != '\n' {
					i++
				}
			default:
				if !yield(i, c) {
					return
				}
			}
		}
	}
}

// gotToken is the token a parse error names: "got X, want Y" or "got X
// after expression". The parser formats tokens with Token.GoString:
// keywords as themselves, punctuation quoted ('**'), literals by kind
// ("string literal").
func gotToken(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "got ")
	if !ok {
		return "", false
	}
	if i := strings.Index(rest, ", want "); i >= 0 {
		return rest[:i], true
	}
	if i := strings.Index(rest, " after expression"); i >= 0 {
		return rest[:i], true
	}
	return "", false
}

// byteOffset is the byte offset of the col'th rune of line (0-based),
// clamped to the line.
func byteOffset(line string, col int) int {
	if col <= 0 {
		return 0
	}
	n := 0
	for i := range line {
		if n == col {
			return i
		}
		n++
	}
	return len(line)
}

// openBrace finds the '{' that the text up to (line, byte offset end)
// leaves open: the start of a set literal the parser read as a dict.
// Brackets inside string literals on the way are not told apart; a
// mismatch means no answer.
func openBrace(src []byte, line, end int) (int, bool) {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(string(src[off:]), '\n')
		if i < 0 {
			return 0, false
		}
		off += i + 1
	}
	off += end
	if off > len(src) {
		return 0, false
	}
	depth := 0
	for i := off - 1; i >= 0; i-- {
		switch src[i] {
		case ')', ']', '}':
			depth++
		case '(', '[':
			if depth == 0 {
				return 0, false
			}
			depth--
		case '{':
			if depth == 0 {
				return i, !topColon(src[i+1 : off])
			}
			depth--
		}
	}
	return 0, false
}

// topColon says whether s, the inside of a brace up to an error, has a
// colon outside brackets and string literals: then it is a dict with a
// mistake in it ({"a": 1, "b"}), not a set.
func topColon(s []byte) bool {
	depth := 0
	for _, c := range codeBytes(string(s)) {
		switch c {
		case '(', '[', '{':
			depth++
		case ')', ']', '}':
			depth--
		case ':':
			if depth == 0 {
				return true
			}
		}
	}
	return false
}

// lineCol is the 1-based line and column (in runes) of a byte offset.
func lineCol(src []byte, off int) (int, int) {
	s := string(src[:off])
	nl := strings.LastIndexByte(s, '\n')
	return strings.Count(s, "\n") + 1, utf8.RuneCountInString(s[nl+1:]) + 1
}

// explainResolve adds the reason behind the strict dialect's refusals,
// and what to write for Python habits the resolver reports.
func explainResolve(msg string) string {
	switch {
	case strings.Contains(msg, "does not support while loops"):
		return msg + ": fleet files use for loops over finite lists"
	case strings.Contains(msg, "does not support sets"):
		return msg + ": use a list ([1, 2]; in works on lists too), or a dict with the elements as keys ({1: True, 2: True})"
	case strings.Contains(msg, "not within a function"):
		return msg + ": move it into a function, or use a comprehension"
	case strings.Contains(msg, "cannot reassign global"):
		return msg + ": globals are assigned once; use a new name"
	case msg == "multiple **kwargs not allowed":
		return msg + " in Starlark: merge the dicts first, f(**(a | b))"
	case msg == "multiple *args not allowed":
		return msg + " in Starlark: join the lists first, f(*(a + b))"
	case strings.HasSuffix(msg, "may not follow *args"), strings.HasSuffix(msg, "may not follow **kwargs"),
		msg == "positional argument may not follow named":
		return msg + ": Starlark takes a call's arguments in this order: positional, name = value, *args, **kwargs"
	}
	if name, ok := strings.CutPrefix(msg, "undefined: "); ok {
		if s := pythonSpelling[name]; s != "" {
			return msg + " (Starlark writes " + s + ")"
		}
	}
	return msg
}

// pythonSpelling are constants as other languages spell them.
var pythonSpelling = map[string]string{
	"true": "True", "false": "False", "null": "None", "none": "None", "nil": "None",
}
