package main

// When nix fails, what it said (its "error:" block, without its progress)
// is in the summary of deploy, build, exec and diff, indented under the
// machine, with the path of the machine's log.

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// failingNixBuild is a nix stand-in whose build writes progress and then
// an error block to stderr, as a nix older than a flag would, and fails.
const failingNixBuild = `if [ "$1" = build ]; then
	echo "warning: Git tree '/src' is dirty" >&2
	echo "these 2 derivations will be built:" >&2
	echo "  /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-etc.drv" >&2
	echo "building '/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-etc.drv'..." >&2
	echo >&2
	echo "error: unrecognised flag '--print-out-paths'" >&2
	echo "Try 'nix --help' for more information." >&2
	exit 1
fi
`

// nixErrorBlock is what the summary shows of it.
const nixErrorBlock = `
    error: unrecognised flag '--print-out-paths'
    Try 'nix --help' for more information.
  log: `

// wantNixError checks that the summary in out shows machine's failing
// step with nix's error block under it and the path of its log, which
// exists and holds nix's words.
func wantNixError(t *testing.T, what, out, machine, step, logPrefix string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + machine + `: ` + step + ` failed: .*stderr ends with:` + regexp.QuoteMeta(nixErrorBlock) + `(\S+)\n`)
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Errorf("%s: no error block for %s in\n%s", what, machine, out)
		return
	}
	if strings.Contains(out, "these 2 derivations") || strings.Contains(out, "building '") {
		t.Errorf("%s: nix's progress in the summary:\n%s", what, out)
	}
	log := m[1]
	if filepath.Base(log) != machine+".log" || !strings.HasPrefix(filepath.Base(filepath.Dir(log)), logPrefix) {
		t.Errorf("%s: log path %s", what, log)
	}
	if data, err := os.ReadFile(log); err != nil || !strings.Contains(string(data), "these 2 derivations will be built:") {
		t.Errorf("%s: the log %s lacks nix's whole output (%v):\n%s", what, log, err, data)
	}
}

func TestNixErrorInSummary(t *testing.T) {
	f := newSSHDFleet(t, "", "")
	f.local.RecordScript("nix", nixStandIn+failingNixBuild+`echo '[{"outputs":{"out":"/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-x"}}]'`+"\n")

	code, out, stderr := fleetCmd(t, "deploy", f.file, "--out", t.TempDir())
	if code != exitError {
		t.Fatalf("deploy: exit %d\n%s%s", code, out, stderr)
	}
	wantNixError(t, "deploy", out, "web", "build", "2")

	code, out, stderr = fleetCmd(t, "build", f.file, "--out", t.TempDir())
	if code != exitError {
		t.Fatalf("build: exit %d\n%s%s", code, out, stderr)
	}
	wantNixError(t, "build", stderr, "web", "build", "build-")

	code, out, stderr = fleetCmd(t, "diff", f.file, "--out", t.TempDir())
	if code != exitError {
		t.Fatalf("diff: exit %d\n%s%s", code, out, stderr)
	}
	wantNixError(t, "diff", stderr, "web", "build", "diff-")

	// exec: the remote command's error block.
	code, out, stderr = fleetCmd(t, "exec", f.file, "--", "sh", "-c", "echo 'copying path x...' >&2; echo 'error: it broke' >&2; echo '  because' >&2; exit 3")
	if code != exitError || !regexp.MustCompile(`(?m)^web: exec failed: .*exit status 3, stderr ends with:\n    error: it broke\n      because\n  log: \S+/exec-[^/]+/web\.log\n`).MatchString(stderr) {
		t.Fatalf("exec: exit %d\n%s%s", code, out, stderr)
	}
}
