// Package apply is fleet apply (and fleet deploy) as one dependency
// graph run by one executor (issue 14, "one apply"). The CLI keeps the
// flags, the confirmation and the printing; everything between the
// fleet and the running machines is decided here:
//
//   - Plan is the whole plan: the cloud changes (engine/cloud), the
//     secret files that are not in order and one action per machine.
//     fleet plan, apply, up, down and the REPL's plan() show it.
//   - New lowers a plan (or, for fleet deploy, only a list of machines)
//     to one []deploy.Step, which deploy.Execute runs with bounded
//     parallelism, one progress view, one log folder and one summary.
//
// The graph, in the order its steps are given (the executor starts
// ready steps in that order):
//
//  1. One step per mutating cloud change, in cloud.Apply's three phases:
//     fleet-wide resources created or updated first (ssh keys,
//     firewalls), then the machines' hosts, then fleet-wide resources no
//     longer wanted deleted. The phases are ordered with Step.After, not
//     Needs: as in cloud.Apply, a failed change does not stop the others
//     (a host create after a failed firewall create is still tried).
//     Each change is cloud.ApplyChange, with its provider's retries. A
//     host's step belongs to its machine (its log, its row); fleet-wide
//     ones to the pseudo-machine CloudRow.
//  2. The secret files the installs need (SecretsRow/generate): every
//     missing file of the machines being installed, their ssh host key
//     first (secrets.GenerateMissing, which needs no identity). Files a
//     person types (gen.prompt) cannot be written unattended: the step
//     says so and leaves them; a machine that reads one then fails its
//     secrets step, naming what to run.
//  3. Per machine on a new host: secrets -> install (nixos-anywhere),
//     the first needing its host's create and the generation. The
//     install goes to the address the create returned, known only then
//     (deploy.Options.LateTargets).
//  4. Per machine on an existing host: the deploy chain (secrets,
//     preflight, build, compare, copy, profile, activate, check), with
//     --only-changed, needing its host's update when there is one.
//
// Each machine moves on as soon as its own needs are done; a failed
// cloud change skips only the steps that need it.
package apply
