package gcp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/gcp/internal/gcecatalog"
	"github.com/fleet-nix/fleet/engine/model"
)

// Resource kinds.
const (
	KindInstance = "instance"
	KindFirewall = "firewall"
)

// Defaults for what a host leaves unsaid.
const (
	DefaultImage  = "projects/debian-cloud/global/images/family/debian-12"
	DefaultDiskGB = 10 // what GCE gives a debian-12 boot disk anyway
	// diskType is the boot disk type fleet asks for (and prices): the API
	// would otherwise default to pd-standard, which G2 machines refuse.
	diskType = "pd-balanced"
)

// Keys of Extra. Desired fills the first two; Create and Update read them.
const (
	extraTags    = "network_tags" // []string
	extraSSHKeys = "ssh_keys"     // []string, "root:<key>" lines
	// Set on listed instances: the fingerprints GCE guards SetLabels,
	// SetTags and SetMetadata with, and the metadata items as they are,
	// so that changing ssh-keys keeps the items fleet does not own.
	extraLabelFingerprint    = "label_fingerprint"    // string
	extraTagsFingerprint     = "tags_fingerprint"     // string
	extraMetadataFingerprint = "metadata_fingerprint" // string
	extraMetadataItems       = "metadata_items"       // []*compute.MetadataItems
)

// metaSSHKeys is the instance metadata key holding the "user:key" lines
// of the keys GCE's guest agent authorizes.
const metaSSHKeys = "ssh-keys"

// instanceMutable are the Spec keys of an instance changed in place.
var instanceMutable = []string{"power", "tags", "ssh_keys"}

// metaImage is the instance metadata key recording the boot image asked
// for: GCE does not report it on the instance.
const metaImage = "fleet-image"

// The firewall rule every project with fleet hosts gets: ssh for deploys,
// ZeroTier for the fleet's overlay network.
const (
	firewallAllow  = "tcp:22,udp:9993"
	firewallSource = "0.0.0.0/0"
)

var (
	// GCE resource names (instances, firewalls) and network tags: RFC 1035
	// labels of at most 63 characters.
	nameRE = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// GCE label keys and values.
	labelKeyRE   = regexp.MustCompile(`^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$`)
	labelValueRE = regexp.MustCompile(`^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$`)
)

// FirewallName is the name of the fleet's firewall rule in each project.
func FirewallName(fleet string) string { return fleet + "-fleet" }

// NetworkTag is the network tag the fleet's firewall rule targets; every
// instance of the fleet carries it.
func NetworkTag(fleet string) string { return "fleet-" + fleet }

// firewallDescription marks a firewall rule as the fleet's: GCE firewall
// rules have no labels.
func firewallDescription(fleet string) string {
	return cloud.LabelManagedBy + "=" + cloud.ManagedBy + " " + cloud.LabelFleet + "=" + fleet
}

// Desired returns an instance for every enabled GCE host and one firewall
// rule per project that has one. It checks names and labels against GCE's
// rules, so that a bad name fails the plan instead of half an apply.
func (p *Provider) Desired(f *model.Fleet) ([]*cloud.Resource, error) {
	var out []*cloud.Resource
	projects := map[string]bool{}
	sshKeys := adminKeys(f)
	for _, m := range f.Machines {
		h := m.Host
		if h == nil || h.Provider != model.GCP || !h.Enabled {
			continue
		}
		r, err := instanceResource(f, m, sshKeys)
		if err != nil {
			return nil, fmt.Errorf("%s: machine %s: %w", h.Pos, m.Name, err)
		}
		projects[h.GCP.Project] = true
		out = append(out, r)
	}
	if len(projects) > 0 {
		if !nameRE.MatchString(FirewallName(f.Name)) {
			return nil, fmt.Errorf("%s: fleet name %q cannot name a GCE firewall rule or network tag "+
				"(lowercase letters, digits and dashes, starting with a letter, at most 57 characters)", f.Pos, f.Name)
		}
		if err := checkLabels(cloud.FleetLabels(f.Name, "", nil)); err != nil {
			return nil, fmt.Errorf("%s: fleet %s: %w", f.Pos, f.Name, err)
		}
	}
	for _, project := range slices.Sorted(maps.Keys(projects)) {
		out = append(out, firewallResource(f.Name, project))
	}
	return out, nil
}

func instanceResource(f *model.Fleet, m *model.Machine, sshKeys []string) (*cloud.Resource, error) {
	g := m.Host.GCP
	switch {
	case g == nil:
		return nil, fmt.Errorf("gcp host without instance settings")
	case g.Project == "" || strings.Contains(g.Project, "/"):
		return nil, fmt.Errorf("gcp host needs a project (got %q)", g.Project)
	case g.Zone == "" || strings.Contains(g.Zone, "/"):
		return nil, fmt.Errorf("gcp host needs a zone such as us-central1-b (got %q)", g.Zone)
	case g.Type == "":
		return nil, fmt.Errorf("gcp host needs a machine type such as e2-standard-4")
	case !nameRE.MatchString(m.Name):
		return nil, fmt.Errorf("%q cannot name a GCE instance: lowercase letters, digits and dashes, "+
			"starting with a letter, at most 63 characters", m.Name)
	case g.GPUs < 0 || g.DiskGB < 0:
		return nil, fmt.Errorf("gpus and disk_gb cannot be negative")
	case g.GPUs > 0 && g.GPU == "":
		return nil, fmt.Errorf("gpus = %d without a gpu type such as nvidia-tesla-t4", g.GPUs)
	}
	labels := cloud.FleetLabels(f.Name, m.Name, g.Labels)
	if err := checkLabels(labels); err != nil {
		return nil, err
	}
	tags := []string{NetworkTag(f.Name)}
	for _, t := range g.Tags {
		if !nameRE.MatchString(t) {
			return nil, fmt.Errorf("network tag %q: lowercase letters, digits and dashes, starting with a letter", t)
		}
		tags = append(tags, t)
	}
	image := g.Image
	if image == "" {
		image = DefaultImage
	}
	disk := g.DiskGB
	if disk == 0 {
		disk = DefaultDiskGB
	}
	tags = uniqueSorted(tags)
	gpu, gpus := g.GPU, g.GPUs
	if gpu != "" && gpus == 0 {
		gpus = 1
	}
	if bgpu, bcount, ok := gcecatalog.BuiltinGPU(g.Type); ok {
		// The machine type brings its GPUs; a listed instance reports
		// them, so the wanted one must say the same.
		if gpu != "" && (gpu != bgpu || gpus != bcount) {
			return nil, fmt.Errorf("%s comes with %d %s (got gpu = %q, gpus = %d): leave gpu unset", g.Type, bcount, bgpu, gpu, gpus)
		}
		gpu, gpus = bgpu, bcount
	} else if gpus > 0 {
		// GCE would refuse the insert; better the plan. A GPU the
		// catalogue does not know is left for GCE to judge.
		if !gcecatalog.TakesAttachedGPUs(g.Type) {
			return nil, fmt.Errorf("%s takes no attached GPUs (got gpu = %q): only N1 types do, and A2, A3, A4 and G2 types come with their own", g.Type, gpu)
		}
		if a, ok := gcecatalog.AttachableGPUs[gpu]; ok && !slices.Contains(a.Counts, gpus) {
			return nil, fmt.Errorf("gpus = %d: GCE attaches %s in counts of %v", gpus, gpu, a.Counts)
		}
	}
	return &cloud.Resource{
		Provider: providerName,
		Kind:     KindInstance,
		Name:     m.Name,
		Scope:    g.Project + "/" + g.Zone,
		Machine:  m.Name,
		Labels:   labels,
		Spec: map[string]string{
			"type":     g.Type,
			"image":    image,
			"disk_gb":  strconv.Itoa(disk),
			"gpu":      gpu,
			"gpus":     strconv.Itoa(gpus),
			"power":    "on",
			"tags":     tagsSpec(tags),
			"ssh_keys": sshKeysSpec(sshKeys),
		},
		Mutable: slices.Clone(instanceMutable),
		Extra: map[string]any{
			extraTags:    tags,
			extraSSHKeys: sshKeys,
		},
	}, nil
}

func firewallResource(fleet, project string) *cloud.Resource {
	return &cloud.Resource{
		Provider: providerName,
		Kind:     KindFirewall,
		Name:     FirewallName(fleet),
		Scope:    project,
		Labels:   cloud.FleetLabels(fleet, "", nil),
		Spec: map[string]string{
			"allow":      firewallAllow,
			"source":     firewallSource,
			"target_tag": NetworkTag(fleet),
		},
		// A rule is patched in place: replacing it would cut ssh off
		// between the delete and the insert.
		Mutable: []string{"allow", "source", "target_tag"},
	}
}

// adminKeys are the ssh-keys metadata lines that let the fleet's admins in
// as root: admins named by user contribute that user's keys, raw ssh
// public keys themselves; age recipients are for secrets only.
func adminKeys(f *model.Fleet) []string {
	var keys []string
	seen := map[string]bool{}
	add := func(k string) {
		k = strings.TrimSpace(k)
		if k != "" && !seen[k] {
			seen[k] = true
			keys = append(keys, "root:"+k)
		}
	}
	for _, a := range f.Admins {
		if u := f.User(a); u != nil {
			for _, k := range u.SSHKeys {
				add(k)
			}
			continue
		}
		if isSSHKey(a) {
			add(a)
		}
	}
	return keys
}

func isSSHKey(s string) bool {
	for _, prefix := range []string{"ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"} {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// checkLabels applies GCE's label rules, which are stricter than
// Hetzner's: lowercase only, at most 63 characters, at most 64 labels.
func checkLabels(labels map[string]string) error {
	if len(labels) > 64 {
		return fmt.Errorf("%d labels: GCE allows 64", len(labels))
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if !labelKeyRE.MatchString(k) {
			return fmt.Errorf("label key %q: GCE wants lowercase letters, digits, _ and -, starting with a letter, at most 63 characters", k)
		}
		if v := labels[k]; !labelValueRE.MatchString(v) {
			return fmt.Errorf("label %s=%q: GCE wants lowercase letters, digits, _ and -, at most 63 characters", k, v)
		}
	}
	return nil
}

// tagsSpec is Spec["tags"]: the network tags, sorted and unique, joined
// by commas.
func tagsSpec(tags []string) string {
	return strings.Join(uniqueSorted(tags), ",")
}

// sshKeysSpec is Spec["ssh_keys"]: a short digest of ssh-keys metadata
// lines that shows in a plan and compares them regardless of order,
// surrounding blanks and repeats: "" for none, else "<n> key(s), sha256
// <first 8 hex digits>" of the sorted unique lines joined by newlines,
// such as "2 keys, sha256 1a2b3c4d".
func sshKeysSpec(lines []string) string {
	var keys []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			keys = append(keys, l)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	keys = uniqueSorted(keys)
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	noun := "keys"
	if len(keys) == 1 {
		noun = "key"
	}
	return fmt.Sprintf("%d %s, sha256 %s", len(keys), noun, hex.EncodeToString(sum[:4]))
}

// sshKeyLines splits an ssh-keys metadata value into its lines, trimmed,
// without empty ones.
func sshKeyLines(value string) []string {
	var out []string
	for _, l := range strings.Split(value, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func uniqueSorted(xs []string) []string {
	set := map[string]bool{}
	for _, x := range xs {
		set[x] = true
	}
	return slices.Sorted(maps.Keys(set))
}
