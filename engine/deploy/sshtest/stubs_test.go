package sshtest

import (
	"os/exec"
	"reflect"
	"testing"
)

func TestSplitRecords(t *testing.T) {
	for _, tc := range []struct {
		log  string
		want [][]string
	}{
		{"", nil},
		{"'a' 'b c'\n", [][]string{{"a", "b c"}}},
		{"'it'\\''s' ''\n'x'\n", [][]string{{"it's", ""}, {"x"}}},
		{"'two\nlines' 'y'\n", [][]string{{"two\nlines", "y"}}},
	} {
		got, err := splitRecords(tc.log)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitRecords(%q) = %q, %v; want %q", tc.log, got, err, tc.want)
		}
	}
	if _, err := splitRecords("'open\n"); err == nil {
		t.Error("unterminated quote: no error")
	}
}

// The recorder quotes in sh itself: check it against awkward arguments,
// run directly (no sshd).
func TestRecorderQuoting(t *testing.T) {
	t.Parallel()
	s := NewStubs(t)
	s.Record("tool")
	args := []string{"plain", "", "a b", "'", "''x''", `"$HOME"`, "`id`;", "tab\there", "nl\n", "\\n", "*", "-", "ü"}
	cmd := exec.Command(s.StubDir+"/tool", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := append([]string{s.StubDir + "/tool"}, args...)
	if got := s.Calls("tool"); !reflect.DeepEqual(got, [][]string{want}) {
		t.Errorf("Calls = %q\nwant %q", got, [][]string{want})
	}
}
