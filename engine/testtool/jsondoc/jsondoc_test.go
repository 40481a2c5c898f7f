package jsondoc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fleet-nix/fleet/engine/testtool/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const doc = `# x

## other --json

| field | type | meaning |
| --- | --- | --- |
| ` + "`elsewhere`" + ` | string | not this form's |

## fleet thing --json

| field | type | meaning |
| --- | --- | --- |
| ` + "`version`" + ` | integer | 1 |
| ` + "`items`" + ` | array of objects | the items |
| ` + "`items[].name`" + ` | string | a name |
| ` + "`items[].tags`" + ` | array of strings, optional | tags |
| ` + "`cost`" + ` | object | money |
| ` + "`cost.cents`" + ` | integer | cents |
| ` + "`ratio`" + ` | number, optional | a ratio |
`

func TestCheck(t *testing.T) {
	file := filepath.Join(t.TempDir(), "x.md")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Load(file, "fleet thing --json")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Fields["elsewhere"]; ok || len(d.Fields) != 7 {
		t.Fatalf("fields: %v", d.Fields)
	}
	for _, tc := range []struct {
		json string
		want []string
	}{
		{`{"version": 1, "items": [{"name": "a", "tags": ["x"]}], "cost": {"cents": 511}, "ratio": 0.5}`, nil},
		{`{"version": 1, "items": [], "cost": {"cents": 5}, "ratio": 1}`, nil},
		{`{"version": 1, "items": [{"name": "a"}], "cost": {"cents": 5.109999999999999}}`, []string{"cost.cents is number, the document says integer"}},
		{`{"version": 1, "items": [{}], "cost": {"cents": 1}, "extra": true}`, []string{"extra is not in the document", "items[].name is missing"}},
		{`{"version": "1", "items": [{"name": "a", "tags": [1]}], "cost": {}}`, []string{"cost.cents is missing", "items[].tags: an element is integer, not string", "version is string, the document says integer"}},
		{`[1]`, []string{"the document is array, not an object"}},
	} {
		got := d.Check([]byte(tc.json))
		slices.Sort(got)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s:\n got %q\nwant %q", tc.json, got, tc.want)
		}
	}
	if unseen := d.Unseen(); len(unseen) != 0 {
		t.Errorf("unseen: %v", unseen)
	}
	d2, _ := Load(file, "fleet thing --json")
	d2.Check([]byte(`{"version": 1, "items": [], "cost": {"cents": 1}}`))
	if unseen := d2.Unseen(); strings.Join(unseen, " ") != "items[].name items[].tags ratio" {
		t.Errorf("unseen: %v", unseen)
	}
}
