package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fleet-nix/fleet/engine/model"
	"github.com/urfave/cli/v2"
)

func overlaysCommand() *cli.Command {
	return &cli.Command{
		Name:      "overlays",
		Usage:     "list the overlay's workarounds, oldest first",
		ArgsUsage: "[FILE]",
		Description: `Lists every patch, fallback and override with its platforms, the date it was added
(added = "YYYY-MM-DD"), its age and its reason, oldest first (undated last), so that
workarounds are removed once upstream is fixed. --json prints them as JSON (see
docs/overlays-json.md).`,
		Flags: append(evalFlags(),
			&cli.BoolFlag{Name: "json", Usage: "print the workarounds as JSON"},
			&cli.StringFlag{Name: "today", Usage: "date to count ages from, YYYY-MM-DD (default: today)", Hidden: true}),
		Action: func(c *cli.Context) error {
			today := time.Now()
			if s := c.String("today"); s != "" {
				t, err := time.Parse(time.DateOnly, s)
				if err != nil {
					return usagef("overlays: --today %q: write YYYY-MM-DD", s)
				}
				today = t
			}
			l, err := load(c)
			if err != nil {
				return err
			}
			var ws []*model.Overlay
			for _, o := range l.fleet.Overlays {
				if o.Kind == model.OverlayPatch || o.Kind == model.OverlayFallback || o.Kind == model.OverlayOverride {
					ws = append(ws, o)
				}
			}
			// Oldest first; undated ones last, as their age is unknown.
			sort.SliceStable(ws, func(i, j int) bool {
				a, b := ws[i].Added, ws[j].Added
				if (a == "") != (b == "") {
					return b == ""
				}
				return a < b
			})
			if c.Bool("json") {
				out := overlaysJSON{Version: 1, Fleet: l.fleet.Name, Overlays: []overlayJSON{}}
				for _, o := range ws {
					j := overlayJSON{Kind: string(o.Kind), Name: o.Name, Channel: o.Channel, Platforms: o.Platforms,
						Added: o.Added, Declared: o.Pos.String(), Reason: o.Reason}
					if j.Platforms == nil {
						j.Platforms = []string{}
					}
					if days, ok := ageDays(today, o.Added); ok {
						j.AgeDays = &days
					}
					out.Overlays = append(out.Overlays, j)
				}
				return writeJSON(c.App.Writer, out)
			}
			if len(ws) == 0 {
				fmt.Fprintln(c.App.Writer, "no patches, fallbacks or overrides")
				return nil
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "KIND\tNAME\tPLATFORMS\tADDED\tAGE\tDECLARED\tREASON")
			for _, o := range ws {
				platforms := "all"
				if len(o.Platforms) > 0 {
					platforms = strings.Join(o.Platforms, ",")
				}
				added, age := "-", "-"
				if o.Added != "" {
					added = o.Added
					if days, ok := ageDays(today, o.Added); ok {
						age = fmt.Sprintf("%dd", days)
					}
				}
				// Reasons (and anything else from the .star files) are
				// shown with control characters escaped: a reason cannot
				// rewrite the terminal or break the table's columns.
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.Kind, model.Printable(o.Name), model.Printable(platforms),
					model.Printable(added), age, model.Printable(o.Pos.String()), model.Printable(o.Reason))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, o := range ws {
				if o.Kind == model.OverlayPatch {
					// The cost of a patch is paid by every evaluation of a
					// machine that uses pkgs.patched: say so where the
					// workarounds are reviewed (fleet doc overlay.patch), on
					// stderr: stdout stays the table.
					fmt.Fprintln(c.App.ErrWriter, "patches: pkgs.patched is imported from a derivation: evaluating a machine that uses it builds the patched nixpkgs first "+
						"(a builder of that machine's system; refused where allow-import-from-derivation = false). See `fleet doc overlay.patch` for the fork-branch alternative.")
					break
				}
			}
			return nil
		},
	}
}

// overlaysJSON is fleet overlays --json, as docs/overlays-json.md
// describes it.
type overlaysJSON struct {
	Version  int           `json:"version"`
	Fleet    string        `json:"fleet"`
	Overlays []overlayJSON `json:"overlays"`
}

type overlayJSON struct {
	Kind      string   `json:"kind"`
	Name      string   `json:"name"`
	Channel   string   `json:"channel,omitempty"`
	Platforms []string `json:"platforms"`
	Added     string   `json:"added,omitempty"`
	AgeDays   *int     `json:"age_days,omitempty"`
	Declared  string   `json:"declared"`
	Reason    string   `json:"reason"`
}

// ageDays is how many days before today an overlay's added date
// (YYYY-MM-DD) is; false when it has none or it does not read.
func ageDays(today time.Time, added string) (int, bool) {
	t, err := time.Parse(time.DateOnly, added)
	if err != nil {
		return 0, false
	}
	return int(today.Sub(t).Hours() / 24), true
}
