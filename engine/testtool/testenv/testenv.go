// Package testenv isolates a test process from the machine it runs on:
// see Isolate. It imports nothing of fleet, so that every package's tests
// can use it (testtool, which also helps them, imports model and nixgen).
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Main isolates the test process from the machine it runs on (Isolate),
// runs the package's tests and exits. Every package whose tests run fleet,
// its commands or other programs has
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// so that a new test in it is isolated without doing anything.
func Main(m *testing.M) {
	done, err := Isolate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testenv:", err)
		os.Exit(2)
	}
	code := m.Run()
	done()
	os.Exit(code)
}

// CloudVars are the variables through which fleet (and the clouds' own
// tools) find credentials or an API: Isolate removes them, and every other
// variable that starts with one of CloudPrefixes.
var CloudVars = []string{
	"HCLOUD_TOKEN", "HCLOUD_ENDPOINT", "HCLOUD_CONTEXT", "HCLOUD_CONFIG",
	"GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT",
	"CLOUDSDK_CONFIG", "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE", "CLOUDSDK_CORE_PROJECT",
}

// CloudPrefixes: see CloudVars.
var CloudPrefixes = []string{"HCLOUD_", "GOOGLE_", "GCLOUD_", "CLOUDSDK_"}

// userVars are the variables by which fleet's commands pick up the
// developer's own setup (age identity, ssh options and agent, libraries
// cache, REPL history, Nix's ssh options): Isolate removes them.
var userVars = []string{
	"FLEET_AGE_IDENTITY", "FLEET_SSH_OPTS", "FLEET_CACHE_DIR", "FLEET_REPL_HISTORY",
	"NIX_SSHOPTS", "SSH_AUTH_SOCK", "SSH_AGENT_PID",
}

// IsolatedVar is set (to the temporary folder) in an isolated process.
const IsolatedVar = "FLEET_TESTENV_ISOLATED"

// SSHWrapperMarker is in the ssh program Isolate puts first on PATH.
const SSHWrapperMarker = "fleet testenv ssh wrapper"

// Isolate makes the process environment a clean machine's, for the tests
// and for everything they start, in process (fleet's commands read
// os.Getenv) or as subprocesses:
//
//   - HOME and XDG_CONFIG_HOME, XDG_CACHE_HOME, XDG_DATA_HOME,
//     XDG_STATE_HOME and XDG_RUNTIME_DIR are folders of a new temporary
//     folder, so no ~/.config/gcloud application default credentials, age
//     identity, libraries cache or REPL history of the developer is found;
//   - the clouds' variables (CloudVars, CloudPrefixes) and the developer's
//     fleet, ssh-agent and NIX_SSHOPTS settings are removed;
//   - git reads no configuration of the machine (GitEnv);
//   - ssh reads no configuration file: OpenSSH finds ~/.ssh/config through
//     the password database, not HOME, so a folder first on PATH holds an
//     ssh that runs the real one with -F /dev/null first (a later -F, as in
//     sshtest's ClientOptions, wins, and it is /dev/null too);
//   - Go's own caches stay where they were (they default to HOME), so a
//     test that builds fleet reuses them.
//
// done removes the temporary folder; it does not restore the variables.
//
// A process started by an isolated test (a test binary re-run as a child)
// inherits the isolation, marked by IsolatedVar, and keeps the variables
// its parent gave it: Isolate does nothing there.
func Isolate() (done func(), err error) {
	if os.Getenv(IsolatedVar) != "" {
		return func() {}, nil
	}
	root, err := os.MkdirTemp("", "fleet-test-home-")
	if err != nil {
		return nil, err
	}
	done = func() { os.RemoveAll(root) }
	// Go's defaults for its caches and settings come from HOME: pin them
	// first, while HOME is the developer's.
	if os.Getenv("GOCACHE") == "" {
		if d, err := os.UserCacheDir(); err == nil {
			os.Setenv("GOCACHE", filepath.Join(d, "go-build"))
		}
	}
	if os.Getenv("GOPATH") == "" {
		if h, err := os.UserHomeDir(); err == nil {
			os.Setenv("GOPATH", filepath.Join(h, "go"))
		}
	}
	if os.Getenv("GOENV") == "" {
		if d, err := os.UserConfigDir(); err == nil {
			os.Setenv("GOENV", filepath.Join(d, "go", "env"))
		}
	}
	realSSH, _ := exec.LookPath("ssh")
	os.Setenv(IsolatedVar, root)

	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		for _, p := range CloudPrefixes {
			if strings.HasPrefix(k, p) {
				os.Unsetenv(k)
			}
		}
	}
	for _, k := range append(append([]string{}, CloudVars...), userVars...) {
		os.Unsetenv(k)
	}
	home := filepath.Join(root, "home")
	dirs := map[string]string{
		"HOME":            home,
		"XDG_CONFIG_HOME": filepath.Join(home, ".config"),
		"XDG_CACHE_HOME":  filepath.Join(home, ".cache"),
		"XDG_DATA_HOME":   filepath.Join(home, ".local", "share"),
		"XDG_STATE_HOME":  filepath.Join(home, ".local", "state"),
		"XDG_RUNTIME_DIR": filepath.Join(root, "run"),
	}
	for k, d := range dirs {
		if err := os.MkdirAll(d, 0o700); err != nil {
			done()
			return nil, err
		}
		os.Setenv(k, d)
	}
	os.Unsetenv("XDG_CONFIG_DIRS")
	for k, v := range GitEnv() {
		os.Setenv(k, v)
	}
	if realSSH != "" {
		bin := filepath.Join(root, "bin")
		script := "#!/bin/sh\n# " + SSHWrapperMarker + ": no ssh configuration file in tests\nexec " + shQuote(realSSH) + " -F /dev/null \"$@\"\n"
		if err := os.MkdirAll(bin, 0o755); err != nil {
			done()
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(script), 0o755); err != nil {
			done()
			return nil, err
		}
		os.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	return done, nil
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// GitEnv is the environment that isolates a test's git from the
// machine's configuration and names the author of its commits, as on a
// clean CI machine. Isolate sets it.
func GitEnv() map[string]string {
	return map[string]string{
		"GIT_CONFIG_GLOBAL":   os.DevNull,
		"GIT_CONFIG_NOSYSTEM": "1",
		"GIT_AUTHOR_NAME":     "fleet test",
		"GIT_AUTHOR_EMAIL":    "test@fleet.invalid",
		"GIT_COMMITTER_NAME":  "fleet test",
		"GIT_COMMITTER_EMAIL": "test@fleet.invalid",
	}
}
