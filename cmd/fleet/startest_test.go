package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestStarTestCLI(t *testing.T) {
	testdata := filepath.Join(repoRoot, "engine/startest/testdata")
	minimal := filepath.Join(repoRoot, "examples/minimal")
	empty := t.TempDir()
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings, in order
		stderr string   // substring
	}{
		{"passing folder", []string{"test", minimal}, exitOK, []string{"6 passed, 0 failed\n"}, ""},
		{"verbose lists passes", []string{"test", "-v", minimal},
			exitOK, []string{"# " + filepath.Join(minimal, "fleet_test.star"), "PASS test_one_nixos_machine (fleet_test.star:9) ", "PASS test_typo_in_feature_is_caught", "6 passed, 0 failed"}, ""},
		{"run selects", []string{"test", minimal, "--run", "graph|nix_tree", "-v"},
			exitOK, []string{"PASS test_graph", "PASS test_nix_tree", "2 passed, 0 failed"}, ""},
		{"failures", []string{"test", filepath.Join(testdata, "fail_test.star")},
			exitError, []string{"FAIL test_eq (fail_test.star:7) ", "    fail_test.star:8:14: assert.eq: 1 != 2\n", "FAIL test_helper", "1 passed, 8 failed\n"}, "FAIL: 8 of 9 tests failed"},
		{"a file that does not run", []string{"test", filepath.Join(testdata, "broken_syntax_test.star")},
			exitError, []string{"FAIL broken_syntax_test.star: the file did not run", "0 passed, 1 failed"}, "FAIL: 1 of 1 test failed"},
		{"run matches nothing", []string{"test", minimal, "--run", "nomatch"}, exitError, []string{"0 passed, 0 failed"}, `no tests match --run "nomatch"`},
		{"no test files", []string{"test", empty}, exitOK, []string{"no test files\n"}, ""},
		{"not a test file", []string{"test", filepath.Join(minimal, "fleet.star")}, exitUsage, nil, "not a test file"},
		{"missing path", []string{"test", filepath.Join(empty, "nope")}, exitUsage, nil, "no such file or directory"},
		{"bad regexp", []string{"test", "--run", "(", minimal}, exitUsage, nil, `--run "("`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := fleetCmd(t, tc.args...)
			rest, ok := stdout, true
			for _, s := range tc.stdout {
				i := strings.Index(rest, s)
				if i < 0 {
					ok = false
					break
				}
				rest = rest[i+len(s):]
			}
			if code != tc.code || !ok || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("fleet %s: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant stdout containing %q in order, stderr containing %q",
					strings.Join(tc.args, " "), code, tc.code, stdout, stderr, tc.stdout, tc.stderr)
			}
		})
	}
}

// TestStarTestRepository is the issue's "fleet test passes on the
// repository itself", run from the repository root as a user would.
func TestStarTestRepository(t *testing.T) {
	t.Chdir(repoRoot)
	code, stdout, stderr := fleetCmd(t, "test")
	if code != exitOK || !regexp.MustCompile(`(?m)^[1-9]\d* passed, 0 failed$`).MatchString(stdout) {
		t.Fatalf("fleet test: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
