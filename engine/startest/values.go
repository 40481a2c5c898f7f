package startest

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fleet-nix/fleet/builtins"
)

// known suggests the candidate closest to name, or lists a few.
func known(name string, candidates []string) string {
	if len(candidates) == 0 {
		return " (there are none)"
	}
	if hint := builtins.DidYouMean(name, candidates); hint != "" {
		return hint
	}
	shown := append([]string(nil), candidates...)
	sort.Strings(shown)
	more := ""
	if len(shown) > 8 {
		more = fmt.Sprintf(", ... (%d in all)", len(shown))
		shown = shown[:8]
	}
	return " (there are " + strings.Join(shown, ", ") + more + ")"
}
