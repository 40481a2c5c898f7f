package gcp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/oauth2/google"
	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"

	"github.com/fleet-nix/fleet/engine/cloud"
	"github.com/fleet-nix/fleet/engine/cloud/gcp/internal/gcecatalog"
)

// Create inserts want and waits for the operation. An instance or rule of
// that name that carries the fleet's labels (a retried or concurrent
// apply made it) is taken as created; one without is a NamesakeError and
// stays as it is.
func (p *Provider) Create(ctx context.Context, want *cloud.Resource) (*cloud.Resource, error) {
	svc, err := p.service()
	if err != nil {
		return nil, err
	}
	switch want.Kind {
	case KindInstance:
		return p.createInstance(ctx, svc, want)
	case KindFirewall:
		return p.createFirewall(ctx, svc, want)
	}
	return nil, fmt.Errorf("gcp: cannot create a %s", want.Kind)
}

// Update changes the labels, network tags, ssh keys or power state of an
// instance, or patches a firewall rule, and waits.
func (p *Provider) Update(ctx context.Context, want, have *cloud.Resource, fields []string) (*cloud.Resource, error) {
	svc, err := p.service()
	if err != nil {
		return nil, err
	}
	switch want.Kind {
	case KindInstance:
		return p.updateInstance(ctx, svc, want, have, fields)
	case KindFirewall:
		return p.updateFirewall(ctx, svc, want)
	}
	return nil, fmt.Errorf("gcp: cannot update a %s", want.Kind)
}

// Delete deletes have and waits. What is already gone counts as deleted.
func (p *Provider) Delete(ctx context.Context, have *cloud.Resource) error {
	svc, err := p.service()
	if err != nil {
		return err
	}
	project, zone := splitScope(have.Scope)
	what := fmt.Sprintf("deleting %s %s in %s", have.Kind, have.Name, have.Scope)
	reqID := newRequestID()
	var op *compute.Operation
	switch have.Kind {
	case KindInstance:
		err = p.retry(ctx, func() (err error) {
			op, err = svc.Instances.Delete(project, zone, have.Name).RequestId(reqID).Context(ctx).Do()
			return err
		})
	case KindFirewall:
		err = p.retry(ctx, func() (err error) {
			op, err = svc.Firewalls.Delete(project, have.Name).RequestId(reqID).Context(ctx).Do()
			return err
		})
	default:
		return fmt.Errorf("gcp: cannot delete a %s", have.Kind)
	}
	if isStatus(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("gcp: %s: %w", what, err)
	}
	err = p.wait(ctx, svc, project, zone, op, what)
	var oe *operationError
	if errors.As(err, &oe) && oe.has("RESOURCE_NOT_FOUND") {
		return nil
	}
	return err
}

func (p *Provider) createInstance(ctx context.Context, svc *compute.Service, want *cloud.Resource) (*cloud.Resource, error) {
	project, zone := splitScope(want.Scope)
	what := fmt.Sprintf("instance %s in %s", want.Name, want.Scope)
	inst, err := instanceFor(want)
	if err != nil {
		return nil, fmt.Errorf("gcp: creating %s: %w", what, err)
	}
	// One request id for all attempts: GCE answers a repeated insert
	// (say, after a timeout that hid a success) with the first one's
	// operation instead of a second instance or a conflict.
	reqID := newRequestID()
	var op *compute.Operation
	err = p.retry(ctx, func() (err error) {
		op, err = svc.Instances.Insert(project, zone, inst).RequestId(reqID).Context(ctx).Do()
		return err
	})
	if isStatus(err, http.StatusConflict) {
		have, gerr := p.getInstance(ctx, svc, project, zone, want.Name)
		if gerr != nil {
			return nil, fmt.Errorf("gcp: creating %s: it exists, and reading it failed: %w", what, gerr)
		}
		if !have.Ours(want.Labels[cloud.LabelFleet]) {
			return nil, &cloud.NamesakeError{Provider: providerName, Kind: KindInstance, Name: want.Name, Scope: want.Scope, Machine: want.Machine}
		}
		return have, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gcp: creating %s: %w", what, err)
	}
	if err := p.wait(ctx, svc, project, zone, op, "creating "+what); err != nil {
		return nil, err
	}
	if want.Spec["power"] == "off" {
		if err := p.setPower(ctx, svc, project, zone, want.Name, "off"); err != nil {
			return nil, err
		}
	}
	// The insert's answer is an operation; the external address the
	// deploy needs is only on the instance.
	return p.readBack(ctx, svc, project, zone, want.Name, "created")
}

func (p *Provider) updateInstance(ctx context.Context, svc *compute.Service, want, have *cloud.Resource, fields []string) (*cloud.Resource, error) {
	project, zone := splitScope(want.Scope)
	fields = append([]string(nil), fields...)
	// Labels, tags and ssh keys first, power last: a failed start should
	// not leave stale labels, tags or keys behind, and an instance started
	// after them comes up with the keys the fleet wants.
	sort.SliceStable(fields, func(i, j int) bool { return updateOrder(fields[i]) < updateOrder(fields[j]) })
	for _, f := range fields {
		switch f {
		case "labels":
			if err := p.setLabels(ctx, svc, project, zone, want.Name, want.Labels, have); err != nil {
				return nil, err
			}
		case "tags":
			tags, _ := want.Extra[extraTags].([]string)
			if err := p.setTags(ctx, svc, project, zone, want.Name, tags, have); err != nil {
				return nil, err
			}
		case "ssh_keys":
			keys, _ := want.Extra[extraSSHKeys].([]string)
			if err := p.setSSHKeys(ctx, svc, project, zone, want.Name, keys, have); err != nil {
				return nil, err
			}
		case "power":
			if err := p.setPower(ctx, svc, project, zone, want.Name, want.Spec["power"]); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("gcp: instance %s in %s: %s cannot be changed in place", want.Name, want.Scope, f)
		}
	}
	// Starting gives the instance a new ephemeral address.
	return p.readBack(ctx, svc, project, zone, want.Name, "updated")
}

// updateOrder ranks the fields of an instance update: labels, tags, ssh
// keys, then whatever else, power last.
func updateOrder(field string) int {
	switch field {
	case "labels":
		return 0
	case "tags":
		return 1
	case "ssh_keys":
		return 2
	case "power":
		return 4
	}
	return 3
}

func (p *Provider) setPower(ctx context.Context, svc *compute.Service, project, zone, name, state string) error {
	what := fmt.Sprintf("instance %s in %s/%s", name, project, zone)
	reqID := newRequestID()
	var op *compute.Operation
	var err error
	switch state {
	case "on":
		what = "starting " + what
		err = p.retry(ctx, func() (err error) {
			op, err = svc.Instances.Start(project, zone, name).RequestId(reqID).Context(ctx).Do()
			return err
		})
	case "off":
		what = "stopping " + what
		err = p.retry(ctx, func() (err error) {
			op, err = svc.Instances.Stop(project, zone, name).RequestId(reqID).Context(ctx).Do()
			return err
		})
	default:
		return fmt.Errorf("gcp: %s: unknown power state %q", what, state)
	}
	if err != nil {
		return fmt.Errorf("gcp: %s: %w", what, err)
	}
	return p.wait(ctx, svc, project, zone, op, what)
}

// setLabels replaces the instance's labels.
func (p *Provider) setLabels(ctx context.Context, svc *compute.Service, project, zone, name string, labels map[string]string, have *cloud.Resource) error {
	what := fmt.Sprintf("setting labels of instance %s in %s/%s", name, project, zone)
	return p.guarded(ctx, svc, project, zone, name, what, have, extraLabelFingerprint,
		func(cur *cloud.Resource, reqID string) (*compute.Operation, error) {
			fp, _ := cur.Extra[extraLabelFingerprint].(string)
			req := &compute.InstancesSetLabelsRequest{Labels: labels, LabelFingerprint: fp}
			if len(labels) == 0 {
				req.ForceSendFields = []string{"Labels"}
			}
			return svc.Instances.SetLabels(project, zone, name, req).RequestId(reqID).Context(ctx).Do()
		})
}

// setTags replaces the instance's network tags (which decide the firewall
// rules that apply to it).
func (p *Provider) setTags(ctx context.Context, svc *compute.Service, project, zone, name string, tags []string, have *cloud.Resource) error {
	what := fmt.Sprintf("setting network tags of instance %s in %s/%s", name, project, zone)
	return p.guarded(ctx, svc, project, zone, name, what, have, extraTagsFingerprint,
		func(cur *cloud.Resource, reqID string) (*compute.Operation, error) {
			fp, _ := cur.Extra[extraTagsFingerprint].(string)
			req := &compute.Tags{Fingerprint: fp, Items: tags}
			if len(tags) == 0 {
				req.ForceSendFields = []string{"Items"}
			}
			return svc.Instances.SetTags(project, zone, name, req).RequestId(reqID).Context(ctx).Do()
		})
}

// setSSHKeys replaces the ssh-keys metadata item of the instance with
// keys (removes it if there are none). SetMetadata replaces all of the
// metadata: every other item (the image marker, what someone else put
// there) is sent back as the instance has it.
func (p *Provider) setSSHKeys(ctx context.Context, svc *compute.Service, project, zone, name string, keys []string, have *cloud.Resource) error {
	what := fmt.Sprintf("setting the ssh keys of instance %s in %s/%s", name, project, zone)
	return p.guarded(ctx, svc, project, zone, name, what, have, extraMetadataFingerprint,
		func(cur *cloud.Resource, reqID string) (*compute.Operation, error) {
			fp, _ := cur.Extra[extraMetadataFingerprint].(string)
			items, _ := cur.Extra[extraMetadataItems].([]*compute.MetadataItems)
			req := &compute.Metadata{Fingerprint: fp, Items: withSSHKeys(items, keys)}
			if len(req.Items) == 0 {
				req.ForceSendFields = []string{"Items"}
			}
			return svc.Instances.SetMetadata(project, zone, name, req).RequestId(reqID).Context(ctx).Do()
		})
}

// withSSHKeys is items with the ssh-keys item's value replaced by keys,
// one a line, added if missing, or removed if keys is empty. items is not
// changed; the other items keep their order.
func withSSHKeys(items []*compute.MetadataItems, keys []string) []*compute.MetadataItems {
	var value *string
	if len(keys) > 0 {
		v := strings.Join(keys, "\n")
		value = &v
	}
	out := make([]*compute.MetadataItems, 0, len(items)+1)
	for _, it := range items {
		if it == nil {
			continue
		}
		if it.Key != metaSSHKeys {
			out = append(out, it)
			continue
		}
		if value != nil {
			out = append(out, &compute.MetadataItems{Key: metaSSHKeys, Value: value})
			value = nil // GCE refuses a key twice
		}
	}
	if value != nil {
		out = append(out, &compute.MetadataItems{Key: metaSSHKeys, Value: value})
	}
	return out
}

// guarded makes a change that GCE guards with a fingerprint (labels, tags,
// metadata): call sends the request built from cur, the instance as last
// seen, with the fingerprint Extra[fingerprintKey]. That is have, as the
// plan listed it, unless it lacks the fingerprint; when it is stale
// (someone else changed the instance since the plan: 412) guarded reads
// the current instance and tries once more. Transient errors are retried
// with the same request id; the operation is waited for.
func (p *Provider) guarded(ctx context.Context, svc *compute.Service, project, zone, name, what string, have *cloud.Resource,
	fingerprintKey string, call func(cur *cloud.Resource, reqID string) (*compute.Operation, error)) error {
	cur := have
	for attempt := 0; ; attempt++ {
		fp := ""
		if cur != nil {
			fp, _ = cur.Extra[fingerprintKey].(string)
		}
		if fp == "" || attempt > 0 {
			var err error
			if cur, err = p.getInstance(ctx, svc, project, zone, name); err != nil {
				return fmt.Errorf("gcp: %s: %w", what, err)
			}
		}
		reqID := newRequestID()
		var op *compute.Operation
		err := p.retry(ctx, func() (err error) {
			op, err = call(cur, reqID)
			return err
		})
		if isStatus(err, http.StatusPreconditionFailed) && attempt == 0 {
			continue
		}
		if err != nil {
			return fmt.Errorf("gcp: %s: %w", what, err)
		}
		return p.wait(ctx, svc, project, zone, op, what)
	}
}

func (p *Provider) getInstance(ctx context.Context, svc *compute.Service, project, zone, name string) (*cloud.Resource, error) {
	var inst *compute.Instance
	err := p.retry(ctx, func() (err error) {
		inst, err = svc.Instances.Get(project, zone, name).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, err
	}
	return instanceToResource(project, zone, inst), nil
}

func (p *Provider) readBack(ctx context.Context, svc *compute.Service, project, zone, name, done string) (*cloud.Resource, error) {
	r, err := p.getInstance(ctx, svc, project, zone, name)
	if err != nil {
		return nil, fmt.Errorf("gcp: %s instance %s in %s/%s, but reading it back failed: %w", done, name, project, zone, err)
	}
	return r, nil
}

func (p *Provider) createFirewall(ctx context.Context, svc *compute.Service, want *cloud.Resource) (*cloud.Resource, error) {
	project := want.Scope
	what := fmt.Sprintf("firewall rule %s in %s", want.Name, project)
	fw, err := firewallFor(want)
	if err != nil {
		return nil, fmt.Errorf("gcp: creating %s: %w", what, err)
	}
	reqID := newRequestID()
	var op *compute.Operation
	err = p.retry(ctx, func() (err error) {
		op, err = svc.Firewalls.Insert(project, fw).RequestId(reqID).Context(ctx).Do()
		return err
	})
	if isStatus(err, http.StatusConflict) {
		var got *compute.Firewall
		gerr := p.retry(ctx, func() (err error) {
			got, err = svc.Firewalls.Get(project, want.Name).Context(ctx).Do()
			return err
		})
		if gerr != nil {
			return nil, fmt.Errorf("gcp: creating %s: it exists, and reading it failed: %w", what, gerr)
		}
		have := firewallToResource(project, got)
		if !have.Ours(want.Labels[cloud.LabelFleet]) {
			return nil, &cloud.NamesakeError{Provider: providerName, Kind: KindFirewall, Name: want.Name, Scope: project}
		}
		return have, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gcp: creating %s: %w", what, err)
	}
	if err := p.wait(ctx, svc, project, "", op, "creating "+what); err != nil {
		return nil, err
	}
	return firewallToResource(project, fw), nil
}

func (p *Provider) updateFirewall(ctx context.Context, svc *compute.Service, want *cloud.Resource) (*cloud.Resource, error) {
	project := want.Scope
	what := fmt.Sprintf("updating firewall rule %s in %s", want.Name, project)
	fw, err := firewallFor(want)
	if err != nil {
		return nil, fmt.Errorf("gcp: %s: %w", what, err)
	}
	reqID := newRequestID()
	var op *compute.Operation
	err = p.retry(ctx, func() (err error) {
		op, err = svc.Firewalls.Patch(project, want.Name, fw).RequestId(reqID).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gcp: %s: %w", what, err)
	}
	if err := p.wait(ctx, svc, project, "", op, what); err != nil {
		return nil, err
	}
	return firewallToResource(project, fw), nil
}

// instanceFor is the insert request for a wanted instance.
func instanceFor(want *cloud.Resource) (*compute.Instance, error) {
	_, zone := splitScope(want.Scope)
	typ := want.Spec["type"]
	disk, err := strconv.ParseInt(want.Spec["disk_gb"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("disk_gb %q: %w", want.Spec["disk_gb"], err)
	}
	gpus, err := strconv.ParseInt(orZero(want.Spec["gpus"]), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("gpus %q: %w", want.Spec["gpus"], err)
	}
	image := want.Spec["image"]
	tags, _ := want.Extra[extraTags].([]string)
	sshKeys, _ := want.Extra[extraSSHKeys].([]string)
	items := []*compute.MetadataItems{{Key: metaImage, Value: &image}}
	if len(sshKeys) > 0 {
		v := strings.Join(sshKeys, "\n")
		items = append(items, &compute.MetadataItems{Key: metaSSHKeys, Value: &v})
	}
	inst := &compute.Instance{
		Name:        want.Name,
		MachineType: "zones/" + zone + "/machineTypes/" + typ,
		Labels:      want.Labels,
		Tags:        &compute.Tags{Items: tags},
		Metadata:    &compute.Metadata{Items: items},
		Disks: []*compute.AttachedDisk{{
			Boot:       true,
			AutoDelete: true,
			Type:       "PERSISTENT",
			Mode:       "READ_WRITE",
			InitializeParams: &compute.AttachedDiskInitializeParams{
				SourceImage: image,
				DiskSizeGb:  disk,
				DiskType:    "zones/" + zone + "/diskTypes/" + diskType,
			},
		}},
		NetworkInterfaces: []*compute.NetworkInterface{{
			Network:       "global/networks/default",
			AccessConfigs: []*compute.AccessConfig{{Name: "External NAT", Type: "ONE_TO_ONE_NAT"}},
		}},
	}
	// A type of a GPU family (gcecatalog.GPUFamilies: A2, A3, A4, G2)
	// brings its GPUs; naming them again in guestAccelerators is refused.
	_, _, builtin := gcecatalog.BuiltinGPU(typ)
	if gpus > 0 && !builtin {
		inst.GuestAccelerators = []*compute.AcceleratorConfig{{
			AcceleratorType:  "zones/" + zone + "/acceleratorTypes/" + want.Spec["gpu"],
			AcceleratorCount: gpus,
		}}
	}
	if gpus > 0 || builtin {
		// GPUs, attached or built in, cannot be live-migrated: GCE
		// refuses an instance with GPUs and the default MIGRATE ("Instances
		// with guest accelerators do not support live migration.";
		// https://cloud.google.com/compute/docs/gpus/gpu-host-maintenance),
		// and restarting after maintenance is what keeps such a host up.
		restart := true
		inst.Scheduling = &compute.Scheduling{OnHostMaintenance: "TERMINATE", AutomaticRestart: &restart}
	}
	return inst, nil
}

// firewallFor is the rule for a wanted firewall resource.
func firewallFor(want *cloud.Resource) (*compute.Firewall, error) {
	var allowed []*compute.FirewallAllowed
	byProto := map[string]*compute.FirewallAllowed{}
	for _, a := range strings.Split(want.Spec["allow"], ",") {
		proto, port, hasPort := strings.Cut(strings.TrimSpace(a), ":")
		if proto == "" {
			return nil, fmt.Errorf("bad allow entry %q (want proto or proto:port)", a)
		}
		fa := byProto[proto]
		if fa == nil {
			fa = &compute.FirewallAllowed{IPProtocol: proto}
			byProto[proto] = fa
			allowed = append(allowed, fa)
		}
		if hasPort {
			fa.Ports = append(fa.Ports, port)
		}
	}
	return &compute.Firewall{
		Name:         want.Name,
		Description:  firewallDescription(want.Labels[cloud.LabelFleet]),
		Network:      "global/networks/default",
		Direction:    "INGRESS",
		Priority:     1000,
		Allowed:      allowed,
		SourceRanges: strings.Split(want.Spec["source"], ","),
		TargetTags:   strings.Split(want.Spec["target_tag"], ","),
	}, nil
}

// wait waits until op is DONE and turns its errors into one. GCE's
// operations.wait blocks until the operation ends or about two minutes
// pass, so the loop rarely turns more than once.
func (p *Provider) wait(ctx context.Context, svc *compute.Service, project, zone string, op *compute.Operation, what string) error {
	for op.Status != "DONE" {
		name := op.Name
		var next *compute.Operation
		err := p.retry(ctx, func() (err error) {
			if zone != "" {
				next, err = svc.ZoneOperations.Wait(project, zone, name).Context(ctx).Do()
			} else {
				next, err = svc.GlobalOperations.Wait(project, name).Context(ctx).Do()
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("gcp: %s: waiting for operation %s: %w", what, name, err)
		}
		op = next
		if op.Status != "DONE" {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(p.PollInterval):
			}
		}
	}
	if op.Error != nil && len(op.Error.Errors) > 0 {
		return &operationError{what: what, op: op.Name, errs: op.Error.Errors}
	}
	return nil
}

// operationError is an operation that ended with errors.
type operationError struct {
	what, op string
	errs     []*compute.OperationErrorErrors
}

func (e *operationError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, x := range e.errs {
		msgs[i] = x.Code + ": " + x.Message
	}
	return fmt.Sprintf("gcp: %s: operation %s failed: %s", e.what, e.op, strings.Join(msgs, "; "))
}

func (e *operationError) has(code string) bool {
	for _, x := range e.errs {
		if x.Code == code {
			return true
		}
	}
	return false
}

// retry runs fn with cloud.Retry, marking what is worth retrying. The
// compute client retries nothing itself (its calls go through
// gensupport.SendRequest, not SendRequestWithRetry), so this is the only
// retry layer and the attempts in cfg.Backoff are the requests made.
func (p *Provider) retry(ctx context.Context, fn func() error) error {
	return cloud.Retry(ctx, p.cfg.Backoff, func() error { return classify(ctx, fn()) })
}

// classify wraps rate limits, server errors and timeouts in
// cloud.TransientError.
func classify(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		if ge.Code == http.StatusTooManyRequests || ge.Code >= 500 {
			return &cloud.TransientError{Err: err}
		}
		// Older Google APIs say "rate limit" with a 403.
		for _, e := range ge.Errors {
			switch e.Reason {
			case "rateLimitExceeded", "userRateLimitExceeded", "backendError", "internalError":
				return &cloud.TransientError{Err: err}
			}
		}
		return err
	}
	var ae *google.AuthenticationError
	if errors.As(err, &ae) && ae.Temporary() {
		return &cloud.TransientError{Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &cloud.TransientError{Err: err}
	}
	return err
}

func isStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}

// splitScope splits "<project>/<zone>" (zone "" for a project scope).
func splitScope(scope string) (project, zone string) {
	project, zone, _ = strings.Cut(scope, "/")
	return project, zone
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

// newRequestID is a random UUID, the form GCE wants in requestId.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
