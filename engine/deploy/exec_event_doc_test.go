package deploy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fleet-nix/fleet/engine/testtool/jsondoc"
)

// The events of deploy --json are what docs/deploy-json.md says, field by
// field, read as generic JSON: every field documented with its type,
// none undocumented, and every documented field written by some event.
func TestJSONEventsMatchDoc(t *testing.T) {
	doc, err := jsondoc.Load("../../docs/deploy-json.md", "fleet deploy --json")
	if err != nil {
		t.Fatal(err)
	}
	upToDate := func(context.Context, io.Writer) error { return ErrUpToDate }
	specs := append(append(chain("a", "build", "copy", "activate"), chain("b", "compare", "copy")...), chain("c", "build")...)
	specs = with(specs, "a/build", sleepFor(time.Millisecond))
	specs = with(specs, "a/copy", fail(`nix copy: cannot open "<tree>" & more`))
	specs = with(specs, "b/compare", upToDate)
	var buf bytes.Buffer
	Execute(context.Background(), makeSteps(newTrace(), specs), ExecOptions{Events: JSONEvents(&buf)})
	if strings.Contains(buf.String(), `\u00`) {
		t.Errorf("escaped characters in the events:\n%s", buf.String())
	}
	sc := bufio.NewScanner(&buf)
	n := 0
	for sc.Scan() {
		n++
		for _, p := range doc.Check(sc.Bytes()) {
			t.Errorf("%s\n  in %s", p, sc.Bytes())
		}
	}
	if n == 0 {
		t.Fatal("no events")
	}
	if unseen := doc.Unseen(); len(unseen) > 0 {
		t.Errorf("documented but never written: %v", unseen)
	}
}
