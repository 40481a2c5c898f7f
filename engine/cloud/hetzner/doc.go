// Package hetzner is fleet's Hetzner Cloud provider: it turns the fleet's
// Hetzner hosts into servers, and the fleet's admin ssh keys into ssh key
// objects of the project, through hcloud-go against HCLOUD_ENDPOINT with
// HCLOUD_TOKEN.
//
// # Finding what exists: label selectors
//
// Everything this provider creates carries managed-by=fleet, fleet=<fleet>
// and, for a server, machine=<machine>. List asks for exactly that with
// one label-selected list per resource type ("managed-by=fleet,fleet=x"),
// 50 per page, which is the most the API gives. Planning a fleet of N
// servers therefore costs ceil(N/50) server pages and one page of ssh
// keys, not a GET per machine, and what other people or other fleets run
// in the same project is never even read. The pages are walked here
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
// table in this package taken on 2026-11-25, gross EUR per month for the
// EU locations. Both add the primary IPv4 a server with IPv4 pays for.
//
// # Out of scope
//
// Firewalls are not created or changed: a host names existing firewalls
// (model.HetznerServer.Firewalls), which are looked up by name (one list)
// and attached when the server is created. Networks, volumes,
// floating and primary IPs beyond the server's own, placement groups and
// changing firewalls or ssh keys of an existing server (Hetzner only
// uses ssh keys at creation) are not managed. Type, image and location
// cannot change in place: the plan replaces the server.
package hetzner
