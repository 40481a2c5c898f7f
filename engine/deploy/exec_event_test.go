package deploy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestJSONEvents(t *testing.T) {
	var buf bytes.Buffer
	specs := with(append(chain("a", "build", "copy", "activate"), chain("b", "build")...),
		"a/copy", fail(`nix copy: cannot open "<tree>" & more`))
	steps := makeSteps(newTrace(), specs)
	s := Execute(context.Background(), steps, ExecOptions{Events: JSONEvents(&buf)})
	if !s.Failed() {
		t.Fatal("Failed() = false")
	}

	stream := buf.String()
	if !strings.Contains(stream, `<tree>\" & more`) {
		t.Errorf("error text escaped: %s", stream)
	}
	var events []Event
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		line := sc.Bytes()
		if !json.Valid(line) {
			t.Fatalf("not JSON: %s", line)
		}
		var raw map[string]any
		if err := json.Unmarshal(line, &raw); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"time", "machine", "kind"} {
			if _, ok := raw[key]; !ok {
				t.Errorf("no %q in %s", key, line)
			}
		}
		if _, err := time.Parse(time.RFC3339Nano, raw["time"].(string)); err != nil {
			t.Errorf("time: %v", err)
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		events = append(events, e)
	}
	// The order of a's events is fixed; b's interleave.
	var got []string
	for _, e := range events {
		if e.Machine != "a" {
			continue
		}
		w := string(e.Kind) + " " + e.Step
		switch {
		case e.Kind == EventSkipped:
			w += " cause=" + e.Cause
		case e.Kind == EventDone:
			w += " " + string(e.Outcome)
		}
		if e.Err != nil {
			w += " err=" + e.Err.Error()
		}
		got = append(got, w)
	}
	want := []string{
		"started a/build",
		"succeeded a/build",
		"started a/copy",
		`failed a/copy err=nix copy: cannot open "<tree>" & more`,
		"skipped a/activate cause=a/copy",
		`done a/copy failed err=nix copy: cannot open "<tree>" & more`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("a's events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEventJSONRoundTrip(t *testing.T) {
	for _, e := range []Event{
		{Time: time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC), Machine: "cinnabar", Step: "cinnabar/build", Action: "build", Kind: EventStarted},
		{Time: time.Date(2026, 3, 1, 10, 0, 12, 0, time.UTC), Machine: "cinnabar", Step: "cinnabar/build", Action: "build", Kind: EventSucceeded, Duration: 12345 * time.Millisecond},
		{Machine: "galena", Step: "galena/activate", Action: "activate", Kind: EventSkipped, Cause: "cinnabar/copy"},
		{Machine: "cinnabar", Step: "cinnabar/copy", Kind: EventDone, Outcome: OutcomeFailed, Err: errors.New("exit status 1"), Duration: 3 * time.Second},
		{Machine: "galena", Kind: EventSkipped, Outcome: OutcomeSwitchedOff, Reason: "its host is switched off (enabled = False)"},
	} {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !back.Time.Equal(e.Time) || back.Machine != e.Machine || back.Step != e.Step || back.Action != e.Action ||
			back.Kind != e.Kind || back.Cause != e.Cause || back.Reason != e.Reason || back.Outcome != e.Outcome || back.Duration != e.Duration ||
			errorLine(back.Err) != errorLine(e.Err) {
			t.Errorf("%s came back as %+v", b, back)
		}
	}
}

func TestJSONEventsStopsAfterWriteError(t *testing.T) {
	w := &failingWriter{}
	ev := JSONEvents(w)
	ev(Event{Machine: "a", Kind: EventStarted})
	ev(Event{Machine: "a", Kind: EventSucceeded})
	if w.calls != 1 {
		t.Errorf("%d writes, want 1", w.calls)
	}
}

type failingWriter struct{ calls int }

func (w *failingWriter) Write([]byte) (int, error) {
	w.calls++
	return 0, io.ErrClosedPipe
}
