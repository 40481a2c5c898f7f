package deploy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nixNoise is what nix writes to a stderr that is not a terminal before
// it fails: warnings, what it will build and fetch, progress.
const nixNoise = `warning: Git tree '/src' is dirty
these 2 derivations will be built:
  /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-etc.drv
  /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-nixos-system-web.drv
these 3 paths will be fetched (1.20 MiB download, 5.10 MiB unpacked):
  /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-hello-2.12
copying path '/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-hello-2.12' from 'https://cache.nixos.org'...

building '/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-etc.drv'...
` + "\x1b[K[1/0/2 built, 1 copied (1.2 MiB)] building etc\r\x1b[K\n"

func TestStderrTailMeaningful(t *testing.T) {
	for _, tc := range []struct {
		name, stderr, want string
	}{
		{"an old nix's refusal", nixNoise + "error: unrecognised flag '--print-out-paths'\nTry 'nix --help' for more information.\n",
			"error: unrecognised flag '--print-out-paths'\nTry 'nix --help' for more information."},
		{"a builder's failure, with its log lines", nixNoise + `error: builder for '/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-etc.drv' failed with exit code 1;
       last 3 log lines:
       > unpacking sources

       > cp: cannot stat 'x': No such file or directory
       For full logs, run 'nix log /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-etc.drv'.
error: 1 dependencies of derivation '/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-nixos-system-web.drv' failed to build
`, `error: builder for '/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-etc.drv' failed with exit code 1;
       last 3 log lines:
       > unpacking sources
       > cp: cannot stat 'x': No such file or directory
       For full logs, run 'nix log /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-etc.drv'.
error: 1 dependencies of derivation '/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-nixos-system-web.drv' failed to build`},
		// An evaluation error longer than the limit: its first line, and
		// the end, where the innermost error is.
		{"a long evaluation error", "evaluating derivation 'path:/x#nixosConfigurations.web.config.system.build.toplevel'...\n" + `error:
       … while calling the 'head' builtin

         at /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-source/lib/attrsets.nix:1575:11:

         1574|         || pred here (elemAt values 1) (head values) then
         1575|           head values
             |           ^
         1576|         else

       … while evaluating the attribute 'value'

         at /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-source/lib/modules.nix:809:9:

       (stack trace truncated; use '--show-trace' to show the full, detailed trace)

       error: The option ` + "`services.nginx.enabel'" + ` does not exist. Definition values:
       - In ` + "`/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-source/machines/nixos/web.nix'" + `: true
`, "error:\n… (3 lines left out)\n" + `         1575|           head values
             |           ^
         1576|         else
       … while evaluating the attribute 'value'
         at /nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-source/lib/modules.nix:809:9:
       (stack trace truncated; use '--show-trace' to show the full, detailed trace)
       error: The option ` + "`services.nginx.enabel'" + ` does not exist. Definition values:
       - In ` + "`/nix/store/0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a-source/machines/nixos/web.nix'" + `: true`},
		// No error: block (ssh, a remote command): the last lines, without
		// nix's progress.
		{"no error block", nixNoise + "root@web: Permission denied (publickey).\n",
			"warning: Git tree '/src' is dirty\nroot@web: Permission denied (publickey)."},
		{"ssh's line ends", "Connection timed out during banner exchange\r\nConnection to 127.0.0.1 port 22 timed out\r\n",
			"Connection timed out during banner exchange\nConnection to 127.0.0.1 port 22 timed out"},
		{"colours", "\x1b[31;1merror:\x1b[0m flake 'path:/x' does not provide attribute 'y'\n",
			"error: flake 'path:/x' does not provide attribute 'y'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tail stderrTail
			// In pieces, as a pipe delivers it.
			for s := tc.stderr; s != ""; {
				n := min(len(s), 7)
				tail.Write([]byte(s[:n]))
				s = s[n:]
			}
			if got := tail.lines(stderrLines); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// The runner keeps nix's error block, not its progress, in the error.
func TestLocalErrorKeepsErrorBlock(t *testing.T) {
	script := "printf '%s' " + ShellQuote(nixNoise) + " >&2; echo \"error: unrecognised flag '--print-out-paths'\" >&2; echo \"Try 'nix --help' for more information.\" >&2; exit 1"
	err := (&SSHRunner{}).Local(context.Background(), []string{"sh", "-c", script}, IO{})
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Stderr != "error: unrecognised flag '--print-out-paths'\nTry 'nix --help' for more information." {
		t.Fatalf("err = %v", err)
	}
}

// The summary shows each failed machine's whole error, nix's words
// included, indented under it, and where its log is.
func TestWriteTableDetails(t *testing.T) {
	logs := filepath.Join(t.TempDir(), "logs")
	nixErr := &CommandError{Argv: []string{"nix", "build", "path:/x#web"}, ExitCode: 1, Err: errors.New("exit status 1"),
		Stderr: "error: unrecognised flag '--print-out-paths'\nTry 'nix --help' for more information."}
	s := &Summary{Duration: time.Second, LogDir: logs, Machines: []MachineResult{
		{Machine: "db", Outcome: OutcomeOK, Duration: time.Second},
		{Machine: "web", Outcome: OutcomeFailed, FailedStep: "web/build", Duration: time.Second, Err: nixErr},
		{Machine: "zinc", Outcome: OutcomeSkipped, FailedStep: "web/build", Err: errors.New("zinc/activate needs web/build, which failed")},
	}}
	var b strings.Builder
	s.WriteTable(&b)
	want := `MACHINE  OUTCOME  DURATION  STEP       ERROR
db       ok       1.0s
web      failed   1.0s      build      nix build 'path:/x#web': exit status 1: error: unrecognised flag '--print-out-paths' …
zinc     skipped  -         web/build  zinc/activate needs web/build, which failed
3 machines: 1 ok, 1 failed, 1 skipped in 1.0s

web: build failed: nix build 'path:/x#web': exit status 1, stderr ends with:
    error: unrecognised flag '--print-out-paths'
    Try 'nix --help' for more information.
  log: ` + filepath.Join(logs, "web.log") + "\n"
	if b.String() != want {
		t.Errorf("WriteTable:\n%s\nwant:\n%s", b.String(), want)
	}
}

// A table cell and a progress line name the failing command shortly and
// show the first line of what it said, rather than a command line cut
// before its status.
func TestErrorLineShowsCause(t *testing.T) {
	tree := "path:/home/someone/projects/infrastructure/fleet/.fleet/nix#nixosConfigurations.web.config.system.build.toplevel"
	nixErr := &CommandError{Argv: nixArgv("build", "--no-link", "--json", tree), ExitCode: 1, Err: errors.New("exit status 1"),
		Stderr: "error: unrecognised flag '--print-out-paths'\nTry 'nix --help' for more information."}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("web: %w", nixErr),
			"web: nix build --no-link --json 'path:/home/s…: exit status 1: error: unrecognised flag '--print-out-paths' …"},
		{&CommandError{Target: "root@web", Argv: []string{"sh", "-c", "echo x >&2; false"}, ExitCode: 1, Err: errors.New("exit status 1"),
			Stderr: "copying x\nit failed here"}, "ssh root@web sh -c 'echo x >&2; false': exit status 1: it failed here …"},
		{&CommandError{Target: "root@web", Argv: []string{"true"}, ExitCode: 255, Err: errors.New("exit status 255"),
			Stderr: "ssh: connect to host web port 22: Connection timed out"},
			"ssh root@web: the connection timed out, the host did not answer (true: exit status 255)"},
		{&CommandError{Argv: []string{"nix", "copy"}, ExitCode: -1, Err: context.Canceled}, "nix copy: context canceled"},
	} {
		if got := errorLine(tc.err); got != tc.want {
			t.Errorf("errorLine\n got %s\nwant %s", got, tc.want)
		}
	}
}
