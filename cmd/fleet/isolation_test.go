package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/gcp"
	"github.com/fleet-nix/fleet/engine/cloud/gcp/gcpfake"
	"github.com/fleet-nix/fleet/engine/cloud/hetzner/hetznerfake"
	"github.com/fleet-nix/fleet/engine/deploy/sshtest"
	"github.com/fleet-nix/fleet/engine/testtool"
	"github.com/fleet-nix/fleet/engine/testtool/testenv"
)

// TestIsolationFromDeveloperMachine runs this test binary as a developer
// would, from an environment with cloud credentials (HCLOUD_TOKEN,
// GOOGLE_APPLICATION_CREDENTIALS, CLOUDSDK_CONFIG and a gcloud ADC file in
// ~/.config/gcloud) and an ssh whose configuration has a ProxyCommand that
// leaves a marker file, and shows that the fleet runs of its tests see none
// of it: TestIsolationProbe, in the child, runs `fleet plan` and `fleet
// exec` in-process as every test does.
//
// The "clouds" are local fakes, so that even a failing isolation sends
// nothing beyond loopback. OpenSSH finds ~/.ssh/config through the password
// database, not HOME, so a test cannot put one there; the developer's
// configuration is an ssh first on PATH that runs the real one with
// -F <hostile config> (what ssh does by default with ~/.ssh/config), which
// a later -F overrides. The same child without the isolation (control) does
// reach the fakes and runs the ProxyCommand: the setup is live.
func TestIsolationFromDeveloperMachine(t *testing.T) {
	testtool.Require(t, "ssh", "openssh-client")
	hz, gce := hetznerfake.New(), gcpfake.New()
	t.Cleanup(hz.Close)
	t.Cleanup(gce.Close)

	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	sa := gce.ServiceAccountJSON(t, "proj")
	for _, p := range []string{"sa.json", "gcloud/" + "application_default_credentials.json", "home/.config/gcloud/application_default_credentials.json"} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, sa, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	marker := filepath.Join(dir, "proxycommand-ran")
	hostile := filepath.Join(home, ".ssh", "config")
	if err := os.MkdirAll(filepath.Dir(hostile), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(hostile, []byte("Host *\n  ProxyCommand /bin/sh -c 'echo %h:%p >> "+marker+"; exit 1'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The developer's ssh: the real one, with their configuration.
	isolatedBin := filepath.Join(os.Getenv(testenv.IsolatedVar), "bin")
	var path []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d != isolatedBin {
			path = append(path, d)
		}
	}
	realSSH := ""
	for _, d := range path {
		if p := filepath.Join(d, "ssh"); isExecutable(p) {
			realSSH = p
			break
		}
	}
	if realSSH == "" {
		t.Fatal("no ssh on PATH outside the test's wrapper")
	}
	devBin := filepath.Join(dir, "bin")
	os.Mkdir(devBin, 0o755)
	if err := os.WriteFile(filepath.Join(devBin, "ssh"), []byte("#!/bin/sh\nexec '"+realSSH+"' -F '"+hostile+"' \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	outer := map[string]string{
		"HOME":                           home,
		"PATH":                           devBin + string(os.PathListSeparator) + strings.Join(path, string(os.PathListSeparator)),
		"HCLOUD_TOKEN":                   hz.Token,
		"HCLOUD_ENDPOINT":                hz.URL(),
		"GOOGLE_APPLICATION_CREDENTIALS": filepath.Join(dir, "sa.json"),
		"CLOUDSDK_CONFIG":                filepath.Join(dir, "gcloud"),
		"CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE": gce.Endpoint(),
	}
	probe := func(control bool) probeReport {
		t.Helper()
		report := filepath.Join(t.TempDir(), "report.json")
		var env []string
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			if _, set := outer[k]; set || k == testenv.IsolatedVar || strings.HasPrefix(k, "XDG_") {
				continue
			}
			env = append(env, kv)
		}
		for k, v := range outer {
			env = append(env, k+"="+v)
		}
		env = append(env, "FLEET_ISOLATION_REPORT="+report)
		if control {
			// Isolate does nothing in a process it believes isolated.
			env = append(env, testenv.IsolatedVar+"=control", "FLEET_ISOLATION_CONTROL=1")
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestIsolationProbe$", "-test.count=1", "-test.v")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("probe (control %v): %v\n%s", control, err, out)
		}
		var r probeReport
		data, err := os.ReadFile(report)
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil {
			t.Fatalf("probe (control %v) left no report: %v\n%s", control, err, out)
		}
		return r
	}

	// Control: without the isolation, the developer's setup is what fleet
	// sees.
	r := probe(true)
	if len(hz.Requests()) == 0 || gce.TokenRequests() == 0 {
		t.Errorf("control: the fake clouds got %d Hetzner and %d GCE token requests; the setup is not live\n%+v", len(hz.Requests()), gce.TokenRequests(), r)
	}
	if r.GCPCredentials != "" {
		t.Errorf("control: gcp credentials not found: %s", r.GCPCredentials)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("control: the hostile ProxyCommand did not run (%v): the setup is not live\n%+v", err, r)
	}
	os.Remove(marker)
	hz.ResetRequests()
	gce.ResetRequests()

	// The tests as they run.
	r = probe(false)
	if n, m := len(hz.Requests()), len(gce.Requests()); n+m > 0 {
		t.Errorf("a test's fleet run reached the developer's clouds: %d Hetzner, %d GCE requests", n, m)
	}
	if data, err := os.ReadFile(marker); err == nil {
		t.Errorf("a test's ssh ran the developer's ProxyCommand: %s", data)
	}
	if r.Home == home || !strings.HasPrefix(r.Home, os.TempDir()) {
		t.Errorf("HOME in the tests = %q, want a temporary folder", r.Home)
	}
	if len(r.CloudVars) > 0 {
		t.Errorf("cloud variables in the tests: %q", r.CloudVars)
	}
	if !strings.Contains(r.GCPCredentials, "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Errorf("gcp found credentials in the tests: %q", r.GCPCredentials)
	}
	if r.PlanCode != exitOK || !strings.Contains(r.Plan, "HCLOUD_TOKEN") || !strings.Contains(r.Plan, "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Errorf("fleet plan in the tests: exit %d, want it to miss both clouds' credentials:\n%s", r.PlanCode, r.Plan)
	}
	if r.ExecCode != exitOK || !strings.Contains(r.Exec, "a: isolated\n") {
		t.Errorf("fleet exec in the tests: exit %d:\n%s", r.ExecCode, r.Exec)
	}
}

// probeReport is what TestIsolationProbe saw.
type probeReport struct {
	Home           string
	CloudVars      []string
	GCPCredentials string // the error of gcp's credentials lookup, "" if found
	PlanCode       int
	Plan           string
	ExecCode       int
	Exec           string
}

// TestIsolationProbe is TestIsolationFromDeveloperMachine's child: it
// reports what a test sees, and fails nothing itself.
func TestIsolationProbe(t *testing.T) {
	report := os.Getenv("FLEET_ISOLATION_REPORT")
	if report == "" {
		return // not a child: nothing to test here
	}
	if os.Getenv("FLEET_ISOLATION_CONTROL") == "1" {
		sshConfigFile = "" // fleet's default: the user's ssh configuration
	}
	var r probeReport
	r.Home = os.Getenv("HOME")
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(testenv.CloudVars, k) {
			r.CloudVars = append(r.CloudVars, k)
		}
	}
	if err := gcp.New(cloud.Config{Getenv: os.Getenv}).Credentials(); err != nil {
		r.GCPCredentials = err.Error()
	}
	var out, errs string
	r.PlanCode, out, errs = fleetCmd(t, "plan", filepath.Join(repoRoot, "fleet.star"))
	r.Plan = out + errs

	// exec over a real sshd with the server's options but its -F: what
	// keeps the developer's configuration out is the tests' own setup.
	srv := sshtest.Start(t)
	var opts []string
	for i, o := range srv.ClientOptions() {
		if o == "-F" || i > 0 && srv.ClientOptions()[i-1] == "-F" {
			continue
		}
		opts = append(opts, o)
	}
	t.Setenv("FLEET_SSH_OPTS", strings.Join(opts, " "))
	file := filepath.Join(t.TempDir(), "fleet.star")
	src := fmt.Sprintf("fleet(name = \"x\")\nchannel(\"nixpkgs\", url = \"github:NixOS/nixpkgs/nixos-unstable\")\n"+
		"machine(\"a\", system = \"x86_64-linux\", state_version = \"26.05\", target = %q)\n", srv.Target())
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r.ExecCode, out, errs = fleetCmd(t, "exec", file, "--", "echo", "isolated")
	r.Exec = out + errs

	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(report, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
