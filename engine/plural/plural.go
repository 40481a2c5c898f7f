// Package plural writes counted nouns: "1 file", "2 files", "0
// dependencies". Every count phrase of fleet's messages goes through it,
// so none of them says "1 files" or "2 file".
package plural

import (
	"strconv"
	"strings"
)

// Count returns n and the noun, plural unless n is 1: Count(1, "secret
// file") is "1 secret file", Count(3, "patch") "3 patches". The last word
// of noun is the one made plural.
func Count(n int, noun string) string {
	return strconv.Itoa(n) + " " + Noun(n, noun)
}

// Noun returns noun in the singular when n is 1, otherwise in the plural
// by the regular rules of English: -s, -es after s, x, z, ch and sh, and
// -ies after a consonant and y.
func Noun(n int, noun string) string {
	if n == 1 || noun == "" {
		return noun
	}
	switch {
	case strings.HasSuffix(noun, "s"), strings.HasSuffix(noun, "x"), strings.HasSuffix(noun, "z"),
		strings.HasSuffix(noun, "ch"), strings.HasSuffix(noun, "sh"):
		return noun + "es"
	case strings.HasSuffix(noun, "y") && len(noun) > 1 && !strings.ContainsRune("aeiou", rune(noun[len(noun)-2])):
		return noun[:len(noun)-1] + "ies"
	}
	return noun + "s"
}

// Choose returns one when n is 1 and many otherwise: for the words that
// agree with a count but are no regular noun ("is"/"are", "this"/"these",
// "it"/"they").
func Choose(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// Article is noun with "a" or "an" before it, by its first letter: "a
// server", "an instance".
func Article(noun string) string {
	if noun != "" && strings.IndexByte("aeiou", noun[0]) >= 0 {
		return "an " + noun
	}
	return "a " + noun
}
