package model

import "testing"

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain prose, é 日本 \\ \"":  "plain prose, é 日本 \\ \"",
		"a\rb\nc\td":               `a\rb\nc\td`,
		"\x1b[31mred\x1b[0m\a\x7f": `\x1b[31mred\x1b[0m\x07\x7f`,
		"\u0085\u009b\u2028\u2029": `\u0085\u009b\u2028\u2029`,
		"\u202eevil\u2066\u200f":   `\u202eevil\u2066\u200f`,
		"\xff\xc3":                 `\xff\xc3`,
		"\x00":                     `\x00`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %s, want %s", in, got, want)
		}
		if NeedsEscape(in) != (in != want) {
			t.Errorf("NeedsEscape(%q) = %v", in, NeedsEscape(in))
		}
	}
}
