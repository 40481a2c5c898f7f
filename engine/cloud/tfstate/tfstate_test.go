package tfstate

import (
	"os"
	"strings"
	"testing"
)

// The fixtures of fleet adopt --terraform: the same kind of
// infrastructure as a state file and as terraform show -json, with
// modules, count and for_each instances and a data source.
const fixtures = "../../../cmd/fleet/testdata/terraform/"

func TestParseFixtures(t *testing.T) {
	for _, tc := range []struct {
		file   string
		format Format
		want   []string // address type name id
	}{
		{"terraform.tfstate", StateV4, []string{
			"hcloud_ssh_key.alice hcloud_ssh_key alice@laptop 21984470",
			"hcloud_server.web hcloud_server web 48213917",
			"hcloud_server.bastion hcloud_server bastion 48213921",
			"module.gpu.google_compute_instance.this google_compute_instance gpu projects/proj/zones/us-central1-f/instances/gpu",
		}},
		{"show.json", ShowJSON, []string{
			`hcloud_server.hosts["db"] hcloud_server db 48214402`,
			`hcloud_server.hosts["web"] hcloud_server web 48213917`,
			"module.ml.google_compute_instance.trainer[0] google_compute_instance gpu projects/proj/zones/us-central1-f/instances/gpu",
			"module.ml.module.jump.hcloud_server.this hcloud_server jump 48214410",
		}},
	} {
		data, err := os.ReadFile(fixtures + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		format, got, err := Parse(data)
		if err != nil || format != tc.format {
			t.Fatalf("%s: %q, %v", tc.file, format, err)
		}
		var lines []string
		for _, in := range got {
			lines = append(lines, strings.Join([]string{in.Address, in.Type, in.String("name"), in.String("id")}, " "))
		}
		if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n%s\nwant\n%s", tc.file, strings.Join(lines, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

func TestParseIndexKeys(t *testing.T) {
	_, got, err := Parse([]byte(`{"version":4,"resources":[{"module":"module.a[\"x\"]","mode":"managed","type":"hcloud_server","name":"s",
		"instances":[{"index_key":0,"attributes":{"name":"s0","id":"1"}},{"index_key":"k","attributes":{"name":"sk","id":2}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Address != `module.a["x"].hcloud_server.s[0]` || got[1].Address != `module.a["x"].hcloud_server.s["k"]` ||
		got[1].String("id") != "2" || got[1].Describe() != `module.a["x"].hcloud_server.s["k"] (name sk)` {
		t.Errorf("%+v", got)
	}
}

func TestParseEmptyAndErrors(t *testing.T) {
	for _, doc := range []string{`{"version":4,"terraform_version":"1.9.8","serial":1,"lineage":"x","outputs":{},"resources":[]}`,
		`{"format_version":"1.0"}`, `{"format_version":"1.0","values":{"root_module":{}}}`} {
		if _, got, err := Parse([]byte(doc)); err != nil || len(got) != 0 {
			t.Errorf("%s: %v %v", doc, got, err)
		}
	}
	for doc, want := range map[string]string{
		``:                             "not a Terraform state: EOF",
		`{"version":4,"resources":[`:   "not a Terraform state: unexpected EOF",
		`[1]`:                          "not a Terraform state: json: cannot unmarshal array",
		`{"serial":3}`:                 `it has neither "version" (terraform.tfstate) nor "format_version"`,
		`{"version":"4"}`:              `"version" is "4", not a number`,
		`{"version":3,"modules":[]}`:   "terraform.tfstate format version 3: fleet reads version 4",
		`{"version":4,"resources":{}}`: "terraform.tfstate: resources: json: cannot unmarshal object",
		`{"version":4,"resources":[{"mode":"managed"}]}`:                                                                                "resource 0 has no type or name",
		`{"version":4,"resources":[{"mode":"managed","type":"t","name":"n","instances":[{"attributes":[]}]}]}`:                          "t.n: attributes:",
		`{"format_version":"1.2","planned_values":{}}`:                                                                                  "this is a plan's JSON",
		`{"format_version":"1.0","values":{"root_module":{"child_modules":[{"address":"module.m","resources":[{"mode":"managed"}]}]}}}`: "resource 0 of module.m has no address or type",
		`{"version":4} {"version":4}`: "more than one JSON document",
	} {
		if _, _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
}
