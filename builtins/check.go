package builtins

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/fleet-nix/fleet/engine/model"
	"go.starlark.net/starlark"
)

// checkGroup is the check module: health checks a deploy waits for.
func checkGroup() []Builtin {
	return []Builtin{
		{Fn: builtinCheckCommand, Doc: Doc{Name: "check.command", Group: "deploy", Signature: `check.command(command)`,
			Text: `A command run on the machine after activation (through sh -c); exit status 0 passes.
"systemctl is-system-running --wait" waits for boot-time units to settle.`}},
		{Fn: builtinCheckHTTP, Doc: Doc{Name: "check.http", Group: "deploy", Signature: `check.http(url, status = 200)`,
			Text: `An HTTP(S) GET from where fleet runs; passes when the answer has the given status.
Redirects are followed, unless status is a redirect (3xx): then the first answer counts.`}},
		{Fn: builtinCheckTCP, Doc: Doc{Name: "check.tcp", Group: "deploy", Signature: `check.tcp(address)`,
			Text: `A TCP connection from where fleet runs to "host:port"; passes when it is accepted.`}},
	}
}

// CheckValue is what check.* return.
type CheckValue struct {
	c    model.Check
	repr string
}

func (c *CheckValue) String() string        { return c.repr }
func (c *CheckValue) Type() string          { return "check." + c.c.Kind }
func (c *CheckValue) Freeze()               {}
func (c *CheckValue) Truth() starlark.Bool  { return starlark.True }
func (c *CheckValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: %s", c.Type()) }

func builtinCheckCommand(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cmd string
	if err := unpack(b.Name(), args, kwargs, "command", &cmd); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cmd) == "" {
		return nil, fmt.Errorf("check.command: empty command")
	}
	return &CheckValue{c: model.Check{Kind: "command", Command: cmd}, repr: callRepr(b.Name(), []string{quote(cmd)}, nil)}, nil
}

func builtinCheckHTTP(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var u string
	status := 200
	if err := unpack(b.Name(), args, kwargs, "url", &u, "status?", &status); err != nil {
		return nil, err
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return nil, fmt.Errorf("check.http: %q is not an http(s) URL", u)
	}
	if status < 100 || status > 599 {
		return nil, fmt.Errorf("check.http: status %d is not an HTTP status", status)
	}
	return &CheckValue{c: model.Check{Kind: "http", URL: u, Status: status},
		repr: callRepr(b.Name(), []string{quote(u)}, map[string]string{"status": fmt.Sprint(status)})}, nil
}

func builtinCheckTCP(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var addr string
	if err := unpack(b.Name(), args, kwargs, "address", &addr); err != nil {
		return nil, err
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return nil, fmt.Errorf("check.tcp: %q is not host:port", addr)
	}
	return &CheckValue{c: model.Check{Kind: "tcp", Address: addr}, repr: callRepr(b.Name(), []string{quote(addr)}, nil)}, nil
}

// checkList accepts a list of check.* values.
type checkList []model.Check

func (l *checkList) Unpack(v starlark.Value) error {
	it, ok := v.(starlark.Indexable)
	if !ok || v.Type() == "string" {
		return typeErr("a list of check.command/http/tcp(...)", v)
	}
	for i := 0; i < it.Len(); i++ {
		c, ok := it.Index(i).(*CheckValue)
		if !ok {
			return fmt.Errorf("element %d: %w", i, typeErr("check.command/http/tcp(...)", it.Index(i)))
		}
		*l = append(*l, c.c)
	}
	return nil
}
