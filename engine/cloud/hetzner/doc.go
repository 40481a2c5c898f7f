// Package hetzner is fleet's Hetzner Cloud provider: it turns the fleet's
// Hetzner hosts into servers, the fleet's admin ssh keys into ssh key
// objects of the project and the firewalls it declares (hetzner.firewall)
// into firewalls, through hcloud-go against HCLOUD_ENDPOINT with
// HCLOUD_TOKEN.
//
// # Finding what exists: label selectors
//
// Everything this provider creates carries managed-by=fleet, fleet=<fleet>
// and, for a server, machine=<machine>. List asks for exactly that with
// one label-selected list per resource type ("managed-by=fleet,fleet=x"),
// 50 per page, which is the most the API gives. Planning a fleet of N
// servers therefore costs ceil(N/50) server pages, one page of ssh keys
// and one of firewalls, not a GET per machine, and what other people or
// other fleets run in the same project is never even read. The pages are walked here
// rather than with hcloud-go's AllWithOpts so that a rate limit on page 3
// retries page 3, not the whole list.
//
// # How names converge
//
// A server is named after its machine; an ssh key is named
// "<fleet>-<first 12 hex digits of the sha256 of its base64 part>", so
// the same key always gets the same name and a new key a new one. The
// API keeps names unique per project, so creating is idempotent by
// construction: if an interrupted apply already made the server, the
// create answers uniqueness_error, and the provider looks the name up
// (the only single-resource GET it makes). With fleet's labels it is the
// server asked for and is returned as created; without them it belongs to
// someone else, is left alone, and the create fails with a
// cloud.NamesakeError. Hetzner also keeps each public key once per
// project: an admin key that someone already uploaded under another name
// cannot be uploaded again, and the error says which key to delete or
// label. Servers still get that key (it is looked up by fingerprint).
//
// A create whose create_server action fails leaves a half-made server;
// the provider deletes it again (it carries fleet's labels, so if that
// fails too the next plan finds and deletes it). A server that was made
// but did not start is kept: the next plan sees it switched off and
// switches it on.
//
// # Firewalls
//
// A server's firewalls (model.HetznerServer.Firewalls) are names. A name
// the fleet declares with hetzner.firewall is the fleet's own: it is
// created, kept as declared and deleted by fleet. Any other name must be
// an existing firewall of the project, which is looked up by name (one
// list of the project's firewalls) and attached when the server is
// created, and otherwise left alone: never changed, never compared, not
// attached to or removed from a server that already exists.
//
// A firewall of the fleet is wanted while an enabled server uses it, like
// the ssh keys; one no server uses is deleted. Its Spec is "rules": each
// rule written one way ("in tcp/22 from 0.0.0.0/0,::/0": networks
// canonical and sorted, ports without leading zeros, "22-22" as "22"),
// sorted and joined with "; ", for what is declared and what the API
// lists alike, so that equal rules compare equal however they were
// written. Rules the fleet does not declare, outbound ones included, show
// up in that string too, and the plan sets the declared ones over them.
// Rules change in place (the set_rules action); labels too.
//
// Servers are created with their firewalls, so that no server ever runs
// without them: cloud.Apply creates fleet-wide resources, firewalls among
// them, before any server, and a server whose firewall is still missing
// (its create failed) creates it on the way, as it does its ssh keys. A
// server never gets a namesake of one of the fleet's firewalls (someone
// else's firewall of that name): its create fails with the
// cloud.NamesakeError, as the firewall's create does.
//
// A server's Spec also has "firewalls": the fleet's own firewalls it has,
// by name, sorted and comma-joined. It is mutable: when an existing
// server lacks one of the fleet's firewalls it should have, or has one it
// should not, the plan updates the server, which applies the missing
// ones (apply_to_resources), then removes the others
// (remove_from_resources), and waits for both, so that the server is
// never without the new firewall while the old one goes (it removes
// first only when adding first would pass Hetzner's five firewalls a
// server).
//
// # Deleting a firewall
//
// Hetzner refuses to delete a firewall that applies to anything
// (resource_in_use). cloud.Apply deletes fleet-wide resources last, after
// the hosts: by then a server that is deleted no longer has the
// firewall, and a server that is kept had it removed by its own
// "firewalls" update. So in the normal case the delete simply succeeds.
// When a server of the fleet still has it all the same (its update
// failed, was left out with --on, or the server's replace was refused),
// the delete takes the firewall off that server first: the fleet wants
// no server with a firewall it no longer declares. It does not take it
// off anything else: a firewall of the fleet that applies to a server
// without the fleet's labels, or to a label selector, someone put there,
// and removing it would open that server up behind their back; the
// delete fails, naming what still uses it, and the firewall is left as
// it is. The API lags a little behind a server's delete, so
// resource_in_use is retried, each time looking at the firewall afresh.
//
// Removing a hetzner.firewall declaration while a server still names it
// makes the name an existing firewall of the project: the fleet's
// firewall of that name is deleted (it is no longer declared), and the
// server no longer has it.
//
// # Adopting
//
// A server made before the fleet (by hand, Terraform, clan) has the
// machine's name but not fleet's labels, so creating fails with the
// cloud.NamesakeError. PlanAdoption finds it by name (one list with
// name=, the project being the token's), whatever its labels, and
// Adopt sets the fleet's labels on it by ID (PUT /servers/{id}, retried
// like any request), replacing the labels it had. Its firewalls compare
// as in a plan (the fleet's, by name, from one label-selected list), so
// the adoption lists the differences the next plan will act on.
//
// # Retries
//
// hcloud-go retries some errors itself (rate_limit_exceeded, conflict,
// bad_gateway, timeout: up to 5 times, from 1 s doubling). The provider
// switches that off and retries in one place instead, with
// cloud.Retry and the backoff of cloud.Config: rate limits (429,
// rate_limit_exceeded), 5xx, conflict, locked and timeouts become a
// *cloud.TransientError. Stacking both layers would multiply the
// attempts (6 × 8 requests for one create) and hide the backoff from
// fleet's settings and tests. Creating again after a lost answer is safe
// because of the names, above. Waiting for actions polls at the poll
// interval (WithPollInterval, 500 ms by default, like hcloud-go).
//
// # Prices
//
// MonthlyPrice asks the pricing API (one request per Provider, cached)
// when a token is set, and otherwise, or when that fails, uses a price
// table taken on 2026-11-25, gross EUR per month for the EU locations.
// Both add the primary IPv4 a server with IPv4 pays for. The table is
// part of a catalogue (hcloudcatalog: server types, where they
// are sold, system images) that hetznerfake sells and refuses from too.
//
// # Out of scope
//
// Networks, volumes, floating and primary IPs beyond the server's own,
// placement groups, firewalls applied through label selectors, changing
// an existing server's firewalls that the fleet does not declare, and
// changing the ssh keys of an existing server (Hetzner only uses ssh keys
// at creation) are not managed. Type, image and location cannot change in
// place: the plan replaces the server.
package hetzner
