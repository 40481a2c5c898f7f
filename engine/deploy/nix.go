package deploy

// How fleet talks to nix. Every command is one the real nix accepts,
// down to the oldest version fleet supports (MinNixVersion, Debian's
// nix-bin), whatever the user's nix.conf says:
//
//   - The nix command and flakes are experimental features that nix.conf
//     may not enable: every nix command asks for them itself
//     (--extra-experimental-features 'nix-command flakes'), which adds
//     to what the configuration enables instead of replacing it.
//   - The tree is handed over as a path: flake reference. A plain path
//     inside a git work tree makes nix read it as git+file, which sees
//     only files git tracks: an ignored or uncommitted tree (.fleet/ is
//     usually ignored) is invisible ("getting status of
//     '/nix/store/...-source/.fleet': No such file or directory"). path:
//     reads the folder as it is on disk, and keeps its lock file,
//     flake.lock, in that folder.
//   - nix build --print-out-paths came after 2.8; --json, which 2.8
//     has, prints the outputs as JSON ([{"drvPath": ..., "outputs":
//     {"out": ...}}]).
//   - nix copy sends what a machine's nix-daemon must accept: paths built
//     here are not signed, and a daemon that requires signatures (the
//     default) refuses them, even for root, unless the copy says
//     --no-check-sigs; the daemon honours that only for trusted users
//     (root, or nix.settings.trusted-users), which the preflight checks.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// MinNixVersion is the oldest nix fleet's commands are tested with
// (Debian's nix-bin): flakes, path: references, nix build --json, nix
// store diff-closures and ssh-ng:// stores all work there.
const MinNixVersion = "2.8"

// nixFeatures makes a nix command work whatever nix.conf enables.
var nixFeatures = []string{"--extra-experimental-features", "nix-command flakes"}

// nixArgv is the argv of a nix subcommand, with the features it needs.
func nixArgv(args ...string) []string {
	return append(append([]string{"nix"}, nixFeatures...), args...)
}

// flakeRefSafe are the characters a path: flake reference carries as
// they are: nix 2.8 neither accepts nor decodes anything else (a space,
// #, ?, %, non-ASCII).
var flakeRefSafe = regexp.MustCompile(`^[A-Za-z0-9\-._~!$&'()*+,;=:@/]+$`)

// FlakeRef is the generated tree as nix must read it: path:<tree>, the
// folder as it is on disk (tree is absolute). A folder whose path nix
// cannot take in a flake reference is an error saying what to do.
func FlakeRef(tree string) (string, error) {
	if !strings.HasPrefix(tree, "/") {
		return "", fmt.Errorf("the Nix tree %s is not an absolute path", tree)
	}
	if !flakeRefSafe.MatchString(tree) {
		return "", fmt.Errorf("the Nix tree's folder %s holds characters nix cannot read in a flake reference (a space, #, ?, %%, or non-ASCII): move the fleet to a folder without them, or write the tree to one with --out DIR", tree)
	}
	return "path:" + tree, nil
}

// nixBuildOutput reads the store path of the one output of nix build
// --json.
func nixBuildOutput(stdout []byte) (string, error) {
	var built []struct {
		Outputs map[string]string `json:"outputs"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout), &built); err != nil {
		return "", fmt.Errorf("nix build --json printed no JSON (%v): %q", err, firstLine(stdout))
	}
	if len(built) != 1 {
		return "", fmt.Errorf("nix build --json printed %d derivations, want 1", len(built))
	}
	out := built[0].Outputs["out"]
	if !strings.HasPrefix(out, "/") {
		return "", fmt.Errorf("nix build --json printed no out output: %q", firstLine(stdout))
	}
	return out, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// NixVersion is what nix --version says: "nix (Nix) 2.8.0", and others
// built on it ("nix (Lix, like Nix) 2.91.1", "nix (Determinate Nix
// 3.6.2) 2.29.0") end with the version too.
type NixVersion struct {
	Major, Minor int
	// Text is the whole line nix printed.
	Text string
}

var nixVersionRE = regexp.MustCompile(`(\d+)\.(\d+)[^\s]*\s*$`)

// ParseNixVersion reads nix --version's output.
func ParseNixVersion(out string) (NixVersion, error) {
	line := strings.TrimSpace(out)
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	m := nixVersionRE.FindStringSubmatch(line)
	if m == nil || !strings.HasPrefix(line, "nix ") {
		return NixVersion{}, fmt.Errorf("nix --version printed %q, not a version", line)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return NixVersion{Major: major, Minor: minor, Text: line}, nil
}

// AtLeast reports whether v is version "major.minor" or newer.
func (v NixVersion) AtLeast(version string) bool {
	maj, min, _ := strings.Cut(version, ".")
	major, _ := strconv.Atoi(maj)
	minor, _ := strconv.Atoi(min)
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// CheckNix asks the local nix for its version (once per run, before
// anything is built) and fails, saying what to do, when there is none
// or it is older than MinNixVersion.
func CheckNix(ctx context.Context, r Runner) (NixVersion, error) {
	var out, errb bytes.Buffer
	err := r.Local(ctx, []string{"nix", "--version"}, IO{Stdout: &out, Stderr: &errb})
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return NixVersion{}, fmt.Errorf("nix is not installed (or not on PATH): fleet builds with Nix %s or newer; install it (https://nixos.org/download, or Debian's nix-bin)", MinNixVersion)
		}
		return NixVersion{}, fmt.Errorf("nix --version: %w", err)
	}
	v, err := ParseNixVersion(out.String())
	if err != nil {
		return NixVersion{}, err
	}
	if !v.AtLeast(MinNixVersion) {
		return v, fmt.Errorf("%s is too old: fleet needs Nix %s or newer (flakes, path: flake references, nix build --json); upgrade nix", v.Text, MinNixVersion)
	}
	return v, nil
}
