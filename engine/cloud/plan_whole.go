package cloud

// The rest of what fleet apply would do, beside the cloud changes: the
// secret files to write and what happens to each machine. fleet plan
// fills them in (from `fleet secrets check` and the machines' hosts);
// other users of MakePlan leave them empty.

// What is done to a secret file (SecretAction.Action).
const (
	// SecretGenerate: missing, written by its generator.
	SecretGenerate = "generate"
	// SecretPrompt: missing, typed by a person (gen.prompt).
	SecretPrompt = "prompt"
	// SecretRekey: encrypted to other recipients than the fleet
	// declares, or changed outside fleet: re-encrypted (fleet secrets rekey).
	SecretRekey = "rekey"
	// SecretRepair: damaged (not an age file, or unreadable): nothing
	// overwrites it, a person must remove or restore it.
	SecretRepair = "repair"
)

// SecretAction is one secret file that is not in order.
type SecretAction struct {
	Action string
	Secret string
	// Machine is the machine the file is stored for; empty for a shared
	// secret.
	Machine string
	// File is its path from the fleet's root.
	File   string
	Reason string
}

// What happens to a machine (MachineAction.Action).
const (
	MachineInstall   = "install"
	MachineDeploy    = "deploy"
	MachineUnchanged = "unchanged"
	MachineUnknown   = "unknown"
	MachineSkip      = "skip"
)

// MachineAction is what apply would do to one machine, and why.
type MachineAction struct {
	Machine string
	Action  string
	Reason  string
}

// SecretChanges counts the secret files by action.
func (p *Plan) SecretChanges() map[string]int {
	n := map[string]int{}
	for _, s := range p.Secrets {
		n[s.Action]++
	}
	return n
}

// MachineChanges counts the machines by action. A machine to install or
// deploy is a change (plan --detailed-exitcode); unchanged, unknown and
// skip are not.
func (p *Plan) MachineChanges() map[string]int {
	n := map[string]int{}
	for _, m := range p.Machines {
		n[m.Action]++
	}
	return n
}
