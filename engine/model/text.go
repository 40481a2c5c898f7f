package model

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text a user wrote (a reason, a file name) ends up in generated Nix
// comments and on terminals. A Nix line comment ends at '\r' as well as
// '\n', a terminal obeys escape sequences, and an editor lays out line
// separators and bidi controls: a reviewer would see something other than
// what Nix reads. Printable shows every such character escaped, so
// what is printed is what is there.

// Unprintable reports whether r is shown escaped by Printable: a C0 or
// C1 control character (tab, CR, LF, ESC ... included), DEL, a line or
// paragraph separator (U+2028, U+2029) or a bidi control (U+202E ...).
func Unprintable(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control)
}

// Printable returns s with every Unprintable character and every byte
// that is not UTF-8 escaped as Go writes it: \t \n \r, \x1b, \u0085,
// \u202e, \xff. Everything else, backslashes included, stays as is: it is
// prose, shown to a person, and never read back.
func Printable(s string) string {
	if !NeedsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && Unprintable(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case Unprintable(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// NeedsEscape reports whether Printable changes s.
func NeedsEscape(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.ContainsFunc(s, Unprintable)
}

// BadFileName is the message refusing a file name that NeedsEscape: file
// names are printed into generated comments, error messages and onto
// terminals, where such a character would end a Nix comment or act on
// the screen.
func BadFileName(name string) string {
	return fmt.Sprintf("%q: a file name with a control character (or a line separator, bidi control or non-UTF-8 byte) cannot be used: rename the file", name)
}
