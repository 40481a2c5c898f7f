package model

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseAttrPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"a", []string{"a"}, ""},
		{"services.openssh.enable", []string{"services", "openssh", "enable"}, ""},
		{`environment.etc."resolv.conf".text`, []string{"environment", "etc", "resolv.conf", "text"}, ""},
		{`"a\"b".c`, []string{`a"b`, "c"}, ""},
		{`"".x`, []string{"", "x"}, ""},
		{`a\b`, []string{`a\b`}, ""},
		{"a..b", nil, "empty segment"},
		{".a", nil, "empty segment"},
		{"a.", nil, "empty segment"},
		{"", nil, "empty segment"},
		{`a."b`, nil, "unterminated quote"},
		{`a"b"`, nil, "a quote may only start a segment"},
		{`"a"b`, nil, "after a closing quote"},
	} {
		got, err := ParseAttrPath(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseAttrPath(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseAttrPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestAttrsSetMergesAndConflicts(t *testing.T) {
	a := &Attrs{}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.Set([]string{"services", "openssh", "enable"}, Bool(true)))
	must(a.Set([]string{"services", "nginx"}, &Attrs{Bindings: []Binding{{"enable", Bool(true)}}}))
	must(a.Set([]string{"services", "nginx", "port"}, Int(80)))
	must(a.Set([]string{"b"}, String("x")))
	got, err := a.MarshalJSON()
	must(err)
	want := `{"b":"x","services":{"nginx":{"enable":true,"port":80},"openssh":{"enable":true}}}`
	if string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	for _, tc := range []struct {
		path []string
		v    Value
		want string
	}{
		{[]string{"services", "openssh", "enable", "x"}, Int(1), "attribute services.openssh.enable is set twice (as a bool and as the parent of services.openssh.enable.x)"},
		{[]string{"services", "openssh"}, Int(1), "attribute services.openssh is set twice (as an attribute set and as an int)"},
		{[]string{"b"}, String("y"), "attribute b is set twice (as a string and as a string)"},
		{[]string{"services", "nginx"}, &Attrs{Bindings: []Binding{{"port", Int(1)}}}, "attribute services.nginx.port is set twice"},
	} {
		err := a.Set(tc.path, tc.v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Set(%q) = %v, want %q", tc.path, err, tc.want)
		}
	}
}

func TestJoinAttrPathQuotes(t *testing.T) {
	got := JoinAttrPath([]string{"environment", "etc", "resolv.conf", "let", "a-b", "1x", "${x}"})
	want := `environment.etc."resolv.conf"."let".a-b."1x"."\${x}"`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestMarshalValueTagsNixConstructs(t *testing.T) {
	v := List{Expr{"pkgs.hello"}, Pkg{"ripgrep"}, Path{"nix/x.nix"}, Priority{"force", Int(1)}, Null{}, Float(1.5)}
	got, err := MarshalValue(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"__nix":"expr","code":"pkgs.hello"},{"__nix":"pkg","name":"ripgrep"},{"__nix":"path","path":"nix/x.nix"},{"__nix":"force","value":1},null,1.5]`
	if string(got) != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestSelectors(t *testing.T) {
	f := &Fleet{Machines: []*Machine{
		{Name: "cinnabar", Tags: []string{"cloud", "hetzner"}},
		{Name: "electrum", Tags: []string{"cloud", "hetzner"}},
		{Name: "galena", Tags: []string{"cloud", "gcp"}},
		{Name: "stibnite", Tags: []string{"laptop"}},
	}}
	for _, tc := range []struct {
		sels []Selector
		want string
	}{
		{[]Selector{"all"}, "cinnabar electrum galena stibnite"},
		{[]Selector{"@cloud"}, "cinnabar electrum galena"},
		{[]Selector{"elec*"}, "electrum"},
		{[]Selector{"stibnite", "@gcp"}, "galena stibnite"},
		{[]Selector{"@nope"}, ""},
		{[]Selector{"[cg]*"}, "cinnabar galena"},
	} {
		var names []string
		for _, m := range f.Select(tc.sels...) {
			names = append(names, m.Name)
		}
		if got := strings.Join(names, " "); got != tc.want {
			t.Errorf("Select(%q) = %q, want %q", tc.sels, got, tc.want)
		}
	}
	for _, bad := range []Selector{"", "@", "[a"} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%q) accepted a bad selector", bad)
		}
	}
}

func TestLookups(t *testing.T) {
	f := &Fleet{Machines: []*Machine{{Name: "b"}, {Name: "a"}}, Features: []*Feature{{Name: "x"}}}
	f.Sort()
	if f.Machine("a") == nil || f.Machine("b") == nil || f.Machine("c") != nil || f.Feature("x") == nil {
		t.Error("lookups after Sort failed")
	}
}
