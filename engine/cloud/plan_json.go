package cloud

import (
	"encoding/json"
	"math"

	"github.com/fleet-nix/fleet/engine/model"
)

// PlanJSONVersion is the version of the plan's JSON form
// (docs/plan-json.md): within a version, fields may be added, none is
// removed or changes meaning or type.
const PlanJSONVersion = 1

// Cents is an amount of EUR in whole cents, rounded half away from zero.
// Prices are floats (an API's decimal string, a converted USD price):
// the JSON plan and the tables show them in cents, so that what they
// print adds up exactly.
func Cents(eur float64) int64 { return int64(math.Round(eur * 100)) }

// Costs are a monthly cost before and after a change, in cents.
type Costs struct {
	Before int64 `json:"before"`
	After  int64 `json:"after"`
}

// Cents is the change's monthly cost before and after, in cents.
func (c *Change) Cents() Costs {
	return Costs{Cents(c.MonthlyCostBefore), Cents(c.MonthlyCostAfter)}
}

// Cents is the fleet's monthly cost before and after, in cents: the sum
// of its changes' costs in cents, so that the total is the sum of the
// lines shown.
func (p *Plan) Cents() Costs {
	var t Costs
	for _, c := range p.Changes {
		cc := c.Cents()
		t.Before += cc.Before
		t.After += cc.After
	}
	return t
}

// planJSON, changeJSON, secretJSON and machineJSON are the wire form of docs/plan-json.md.
type planJSON struct {
	Version      int             `json:"version"`
	Fleet        string          `json:"fleet"`
	Currency     string          `json:"currency"`
	Changes      []changeJSON    `json:"changes"`
	MonthlyCost  Costs           `json:"monthly_cost_cents"`
	Unreachable  []ProviderError `json:"unreachable,omitempty"`
	PriceSources []string        `json:"price_sources,omitempty"`
	Secrets      []secretJSON    `json:"secrets"`
	Machines     []machineJSON   `json:"machines"`
}

type secretJSON struct {
	Action  string `json:"action"`
	Secret  string `json:"secret"`
	Machine string `json:"machine"`
	File    string `json:"file"`
	Reason  string `json:"reason"`
}

type machineJSON struct {
	Machine string `json:"machine"`
	Action  string `json:"action"`
	Reason  string `json:"reason"`
}

type changeJSON struct {
	Action      Action   `json:"action"`
	Provider    string   `json:"provider"`
	Resource    string   `json:"resource"`
	Name        string   `json:"name"`
	Scope       string   `json:"scope,omitempty"`
	Machine     string   `json:"machine,omitempty"`
	Reason      string   `json:"reason"`
	MonthlyCost Costs    `json:"monthly_cost_cents"`
	Fields      []string `json:"fields,omitempty"`
	Refused     string   `json:"refused,omitempty"`
}

// MarshalJSON writes the plan as docs/plan-json.md describes it. Toggled
// is not part of it: only fleet up and down toggle, and they print no JSON.
func (p *Plan) MarshalJSON() ([]byte, error) {
	w := planJSON{
		Version: PlanJSONVersion, Fleet: p.Fleet, Currency: p.Currency, Changes: []changeJSON{},
		MonthlyCost: p.Cents(), Unreachable: p.Unreachable, PriceSources: p.PriceSources,
		Secrets: []secretJSON{}, Machines: []machineJSON{},
	}
	for _, s := range p.Secrets {
		w.Secrets = append(w.Secrets, secretJSON(s))
	}
	for _, m := range p.Machines {
		w.Machines = append(w.Machines, machineJSON(m))
	}
	for _, c := range p.Changes {
		w.Changes = append(w.Changes, changeJSON{
			Action: c.Action, Provider: c.Provider, Resource: c.Resource, Name: c.Name, Scope: c.Scope,
			Machine: c.Machine, Reason: c.Reason, MonthlyCost: c.Cents(), Fields: c.Fields, Refused: c.Refused,
		})
	}
	return model.MarshalReadable(w)
}

// UnmarshalJSON reads what MarshalJSON writes (costs to the cent; Want
// and Have are not part of it).
func (p *Plan) UnmarshalJSON(b []byte) error {
	var w planJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Plan{Fleet: w.Fleet, Currency: w.Currency, Changes: []*Change{}, Unreachable: w.Unreachable,
		PriceSources: w.PriceSources}
	p.MonthlyCost.Before, p.MonthlyCost.After = float64(w.MonthlyCost.Before)/100, float64(w.MonthlyCost.After)/100
	for _, c := range w.Changes {
		p.Changes = append(p.Changes, &Change{
			Action: c.Action, Provider: c.Provider, Resource: c.Resource, Name: c.Name, Scope: c.Scope,
			Machine: c.Machine, Reason: c.Reason, Fields: c.Fields, Refused: c.Refused,
			MonthlyCostBefore: float64(c.MonthlyCost.Before) / 100, MonthlyCostAfter: float64(c.MonthlyCost.After) / 100,
		})
	}
	for _, s := range w.Secrets {
		p.Secrets = append(p.Secrets, SecretAction(s))
	}
	for _, m := range w.Machines {
		p.Machines = append(p.Machines, MachineAction(m))
	}
	return nil
}
