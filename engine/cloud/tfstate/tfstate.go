// Package tfstate reads the managed resources out of a Terraform state:
// a terraform.tfstate file (state format version 4, which Terraform
// 0.12 and later and OpenTofu write) or the JSON `terraform show -json`
// prints for a state. fleet adopt --terraform uses it to choose which
// hosts to adopt; nothing here talks to a cloud or to Terraform.
package tfstate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Format names the kind of document Parse read.
type Format string

const (
	// StateV4 is a terraform.tfstate file, format version 4.
	StateV4 Format = "terraform.tfstate (format version 4)"
	// ShowJSON is the output of terraform show -json for a state.
	ShowJSON Format = "terraform show -json"
)

// Instance is one instance of a managed resource: one per resource, or
// one per count index or for_each key.
type Instance struct {
	// Address is Terraform's address of the instance:
	// module.hosts.hcloud_server.web[0].
	Address string
	// Type is the resource type: hcloud_server, google_compute_instance.
	Type string
	// Attributes are the instance's attributes as the provider wrote
	// them (numbers as json.Number).
	Attributes map[string]any
}

// String returns the attribute key as a string: a string as it is, a
// number as written, "" for anything else or a missing key.
func (i Instance) String(key string) string {
	switch v := i.Attributes[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// Parse reads a state document and returns its managed resource
// instances in the order the document lists them (modules depth first).
// Data sources are left out. It tells the two formats apart by their
// version keys: "version" for a state file, "format_version" for
// terraform show -json.
func Parse(data []byte) (Format, []Instance, error) {
	var top map[string]json.RawMessage
	if err := decode(data, &top); err != nil {
		return "", nil, fmt.Errorf("not a Terraform state: %v", err)
	}
	if _, ok := top["format_version"]; ok {
		out, err := parseShow(top)
		return ShowJSON, out, err
	}
	raw, ok := top["version"]
	if !ok {
		return "", nil, errors.New(`not a Terraform state: it has neither "version" (terraform.tfstate) nor "format_version" (terraform show -json)`)
	}
	var version int
	if err := json.Unmarshal(raw, &version); err != nil {
		return "", nil, fmt.Errorf(`not a Terraform state: "version" is %s, not a number`, raw)
	}
	if version != 4 {
		return "", nil, fmt.Errorf("terraform.tfstate format version %d: fleet reads version 4 (Terraform 0.12 and later); "+
			"give it the output of terraform show -json instead", version)
	}
	out, err := parseV4(top)
	return StateV4, out, err
}

func decode(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("more than one JSON document")
	}
	return nil
}

// v4 is the part of a terraform.tfstate fleet reads.
type v4 struct {
	Resources []struct {
		Module    string `json:"module"`
		Mode      string `json:"mode"`
		Type      string `json:"type"`
		Name      string `json:"name"`
		Instances []struct {
			IndexKey   any             `json:"index_key"`
			Attributes json.RawMessage `json:"attributes"`
		} `json:"instances"`
	} `json:"resources"`
}

func parseV4(top map[string]json.RawMessage) ([]Instance, error) {
	var st v4
	if raw, ok := top["resources"]; ok {
		if err := decode(raw, &st.Resources); err != nil {
			return nil, fmt.Errorf("terraform.tfstate: resources: %v", err)
		}
	}
	var out []Instance
	for i, r := range st.Resources {
		if r.Type == "" || r.Name == "" {
			return nil, fmt.Errorf("terraform.tfstate: resource %d has no type or name", i)
		}
		if r.Mode != "managed" {
			continue
		}
		base := r.Type + "." + r.Name
		if r.Module != "" {
			base = r.Module + "." + base
		}
		for _, in := range r.Instances {
			addr := base + indexSuffix(in.IndexKey)
			attrs, err := attributes(in.Attributes)
			if err != nil {
				return nil, fmt.Errorf("terraform.tfstate: %s: attributes: %v", addr, err)
			}
			out = append(out, Instance{Address: addr, Type: r.Type, Attributes: attrs})
		}
	}
	return out, nil
}

// indexSuffix is the [0] or ["key"] of a count or for_each instance.
func indexSuffix(key any) string {
	switch k := key.(type) {
	case nil:
		return ""
	case string:
		return "[" + strconv.Quote(k) + "]"
	case float64:
		return "[" + strconv.FormatFloat(k, 'f', -1, 64) + "]"
	case json.Number:
		return "[" + k.String() + "]"
	}
	return fmt.Sprintf("[%v]", key)
}

func attributes(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]any{}, nil
	}
	var attrs map[string]any
	if err := decode(raw, &attrs); err != nil {
		return nil, err
	}
	return attrs, nil
}

// showModule is a module of terraform show -json's values.
type showModule struct {
	Address   string `json:"address"`
	Resources []struct {
		Address string          `json:"address"`
		Mode    string          `json:"mode"`
		Type    string          `json:"type"`
		Name    string          `json:"name"`
		Values  json.RawMessage `json:"values"`
	} `json:"resources"`
	ChildModules []showModule `json:"child_modules"`
}

func parseShow(top map[string]json.RawMessage) ([]Instance, error) {
	raw, ok := top["values"]
	if !ok {
		if _, plan := top["planned_values"]; plan {
			return nil, errors.New("terraform show -json: this is a plan's JSON, not a state's: run terraform show -json without a plan file")
		}
		return nil, nil // an empty state has no values
	}
	var values struct {
		RootModule *showModule `json:"root_module"`
	}
	if err := decode(raw, &values); err != nil {
		return nil, fmt.Errorf("terraform show -json: values: %v", err)
	}
	if values.RootModule == nil {
		return nil, nil
	}
	var out []Instance
	var walk func(m *showModule) error
	walk = func(m *showModule) error {
		for i, r := range m.Resources {
			if r.Address == "" || r.Type == "" {
				where := "the root module"
				if m.Address != "" {
					where = m.Address
				}
				return fmt.Errorf("terraform show -json: resource %d of %s has no address or type", i, where)
			}
			if r.Mode != "managed" {
				continue
			}
			attrs, err := attributes(r.Values)
			if err != nil {
				return fmt.Errorf("terraform show -json: %s: values: %v", r.Address, err)
			}
			out = append(out, Instance{Address: r.Address, Type: r.Type, Attributes: attrs})
		}
		for i := range m.ChildModules {
			if err := walk(&m.ChildModules[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(values.RootModule); err != nil {
		return nil, err
	}
	return out, nil
}

// Describe is "hcloud_server.web (name web)": the address and the
// instance's name attribute, which is what fleet matches machines by.
func (i Instance) Describe() string {
	name := i.String("name")
	if name == "" {
		return i.Address + " (no name)"
	}
	return i.Address + " (name " + name + ")"
}
