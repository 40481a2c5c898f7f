package nixgen

import "strings"

// Strings. A Starlark string lowers to a Nix string with exactly the same
// bytes, whatever it contains. Nix has two string forms and few escapes:
//
//	"..."   escapes \" \\ \n \r \t and \${ (any other byte may stand as is)
//	''...'' escapes ''' for '' and ''${ for ${, and strips the common
//	        indentation of its lines
//
// Plain strings always use "...". Multi-line text (scripts, config files)
// uses ''...'' when that round-trips: the text ends with a newline and some
// non-blank line starts without a space, so that the indentation Nix
// strips is exactly the indentation the printer adds. The property is
// checked against real Nix by the tests, for arbitrary strings.

func (p *printer) str(s string) {
	if !indentedFits(s) {
		p.b.WriteString(quoteString(s))
		return
	}
	p.b.WriteString("''")
	p.indent++
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for _, line := range lines {
		if line == "" {
			p.b.WriteByte('\n') // no indentation on empty lines
			continue
		}
		p.nl()
		p.b.WriteString(escapeIndented(line))
	}
	p.indent--
	p.nl()
	p.b.WriteString("''")
}

// quoteString renders s as a "..." Nix string.
func quoteString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '$':
			if i+1 < len(s) && s[i+1] == '{' {
				b.WriteString(`\$`)
			} else {
				b.WriteByte('$')
			}
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// indentedFits reports whether s can be written as an indented string
// (between two pairs of single quotes) and read back
// unchanged.
func indentedFits(s string) bool {
	if strings.Count(s, "\n") < 2 || !strings.HasSuffix(s, "\n") {
		return false
	}
	// '${ would print as '''${, which Nix reads as an escaped pair of
	// quotes followed by an interpolation.
	if strings.Contains(s, "'${") {
		return false
	}
	flush := false // some non-blank line starts at column 0
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if strings.TrimLeft(line, " \t") == "" {
			if line != "" {
				return false // whitespace-only lines are where stripping gets subtle
			}
			continue
		}
		if line[0] != ' ' {
			flush = true
		}
		for i := 0; i < len(line); i++ {
			if c := line[i]; c < 0x20 && c != '\t' || c == 0x7f {
				return false // control characters read better escaped
			}
		}
	}
	return flush
}

// escapeIndented escapes one line of an indented string.
func escapeIndented(line string) string {
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\'' && i+1 < len(line) && line[i+1] == '\'':
			b.WriteString("'''")
			i++
		case line[i] == '$' && i+1 < len(line) && line[i+1] == '{':
			b.WriteString("''${")
			i++
		default:
			b.WriteByte(line[i])
		}
	}
	return b.String()
}
