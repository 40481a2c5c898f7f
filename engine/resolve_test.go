package engine

import (
	"path"
	"strings"
	"testing"
)

func TestResolveLabel(t *testing.T) {
	for _, tc := range []struct {
		from, p, want, err string
	}{
		{"fleet.star", "lib.star", "lib.star", ""},
		{"fleet.star", "./lib/x.star", "lib/x.star", ""},
		{"features/ssh.star", "../lib/x.star", "lib/x.star", ""},
		{"features/ssh.star", "//lib/x.star", "lib/x.star", ""},
		{"features/ssh.star", "@stdlib//nixos.star", "@stdlib//nixos.star", ""},
		{"@stdlib//nixos.star", "darwin.star", "@stdlib//darwin.star", ""},
		{"@team//a/b.star", "../c.star", "@team//c.star", ""},
		{"@team//a/b.star", "//lib/c.star", "@team//lib/c.star", ""},
		{"@team//a/b.star", "../../c.star", "", "inside @team"},
		{"@team//a/b.star", "//../c.star", "", "inside @team"},
		{"fleet.star", "../x.star", "", "leaves the fleet root"},
		{"a/b.star", "../../x.star", "", "leaves the fleet root"},
		{"fleet.star", "//../x.star", "", "leaves the fleet root"},
		{"@stdlib//nixos.star", "../x.star", "", "inside @stdlib"},
		{"fleet.star", "/etc/x.star", "", "absolute path"},
		{"fleet.star", "", "", "empty path"},
		{"fleet.star", "@//x.star", "", "@name//path"},
		{"fleet.star", "@team", "", "@name//path"},
		{"fleet.star", "a\\b.star", "", "use '/'"},
		{"fleet.star", ".", "", "leaves the fleet root"},
	} {
		got, err := resolveLabel(tc.from, tc.p)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("resolveLabel(%q, %q) = %q, %v; want error containing %q", tc.from, tc.p, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolveLabel(%q, %q) = %q, %v; want %q", tc.from, tc.p, got, err, tc.want)
		}
	}
}

// FuzzResolveLabel checks that no input escapes the root: whatever is
// written, a local file's load resolves inside the root or fails, and a
// load from inside a repository stays in that repository unless it names
// another one explicitly.
func FuzzResolveLabel(f *testing.F) {
	for _, s := range []string{"lib.star", "../x", "//a/../../b", "@stdlib//x.star", "a/./b/../../..", "/abs", "@r//../x", "....//x", "a//b"} {
		f.Add("features/ssh.star", s)
		f.Add("@stdlib//nixos.star", s)
	}
	f.Fuzz(func(t *testing.T, from, p string) {
		if from == "" || strings.HasPrefix(from, "/") || strings.Contains(from, "..") || path.Clean(from) != from && !strings.HasPrefix(from, "@") {
			return // not a label the loader produces
		}
		got, err := resolveLabel(from, p)
		if err != nil {
			return
		}
		inner := got
		if repo, rest, ok := splitRepo(got); ok {
			inner = rest
			fromRepo, _, fromIsRepo := splitRepo(from)
			if !strings.HasPrefix(p, "@") && (!fromIsRepo || fromRepo != repo) {
				t.Fatalf("resolveLabel(%q, %q) = %q: a relative path changed repository", from, p, got)
			}
		} else if strings.HasPrefix(p, "@") {
			t.Fatalf("resolveLabel(%q, %q) = %q: a repository path became local", from, p, got)
		}
		if inner == ".." || strings.HasPrefix(inner, "../") || strings.HasPrefix(inner, "/") || path.Clean(inner) != inner || inner == "." {
			t.Fatalf("resolveLabel(%q, %q) = %q escapes its root", from, p, got)
		}
	})
}
