package builtins

import "sort"

// nearest returns the candidate closest to name by edit distance, if it is
// close enough to be a plausible typo; otherwise "".
func nearest(name string, candidates []string) string {
	best, bestD := "", len(name)/2+2
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := levenshtein(name, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// didYouMean formats nearest's answer as a message suffix.
func didYouMean(name string, candidates []string) string {
	if n := nearest(name, candidates); n != "" {
		return " (did you mean " + quote(n) + "?)"
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
