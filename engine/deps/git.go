package deps

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// gitBin is the git command (a variable for tests).
var gitBin = "git"

// git runs the git command in dir (if not "") with the user's environment,
// minus variables that would point it at another repository, and returns
// its standard output. Errors carry git's own message.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, gitBin, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR":
			continue // set when fleet runs from a git hook; they would redirect git
		}
		cmd.Env = append(cmd.Env, kv)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, ok := err.(*exec.Error); ok {
			return nil, fmt.Errorf("cannot run git (%v): install git; fleet fetches dependencies with it", err)
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("git %s: %s", args[0], msg)
	}
	return stdout.Bytes(), nil
}

// lsRemote resolves ref in the repository at url to a commit hash. A full
// commit hash is its own answer (git cannot list commits, only refs). A
// name is looked up as a tag (an annotated tag peeled to its commit), then
// as a branch; being both is an error.
func lsRemote(ctx context.Context, url, ref string) (string, error) {
	if isCommit(ref) {
		return ref, nil
	}
	out, err := git(ctx, "", "ls-remote", "--", url, ref, ref+"^{}")
	if err != nil {
		return "", err
	}
	refs := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		hash, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok {
			refs[name] = hash
		}
	}
	lookup := func(name string) (string, bool) {
		if h, ok := refs[name+"^{}"]; ok {
			return h, true
		}
		h, ok := refs[name]
		return h, ok
	}
	if ref == "HEAD" || strings.HasPrefix(ref, "refs/") {
		if h, ok := lookup(ref); ok {
			return h, nil
		}
		return "", fmt.Errorf("%s has no ref %s", url, ref)
	}
	tag, isTag := lookup("refs/tags/" + ref)
	branch, isBranch := lookup("refs/heads/" + ref)
	switch {
	case isTag && isBranch && tag != branch:
		return "", fmt.Errorf("%q is both a tag and a branch of %s: write ref = \"refs/tags/%s\" or \"refs/heads/%s\"", ref, url, ref, ref)
	case isTag:
		return tag, nil
	case isBranch:
		return branch, nil
	}
	hint := ""
	if shortRE.MatchString(ref) {
		hint = " (an abbreviated commit hash cannot be looked up remotely: write all of it)"
	}
	return "", fmt.Errorf("%s has no tag or branch %q%s", url, ref, hint)
}

// fetchInto fetches commit of url into the empty folder dir and checks it
// out there, leaving dir/.git for the caller to remove. It first asks for
// the commit alone (depth 1, what hosting services allow); a server that
// refuses wants by hash gets a full fetch of its branches and tags.
func fetchInto(ctx context.Context, dir, url, commit string) error {
	if _, err := git(ctx, "", "init", "-q", "--template=", "--", dir); err != nil {
		return err
	}
	if _, err := git(ctx, dir, "fetch", "-q", "--depth", "1", "--no-tags", "--", url, commit); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if _, err2 := git(ctx, dir, "fetch", "-q", "--no-tags", "--", url,
			"+refs/heads/*:refs/fleet/heads/*", "+refs/tags/*:refs/fleet/tags/*"); err2 != nil {
			return err // the first answer says more
		}
		if _, err2 := git(ctx, dir, "cat-file", "-e", commit+"^{commit}"); err2 != nil {
			return fmt.Errorf("commit %s is not in %s (%v): the lock names a commit the repository does not have; run fleet deps update", commit, url, err)
		}
	}
	if _, err := git(ctx, dir, "-c", "core.autocrlf=false", "-c", "advice.detachedHead=false",
		"checkout", "-q", "--detach", commit); err != nil {
		return err
	}
	head, err := git(ctx, dir, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(head)); got != commit {
		return fmt.Errorf("fetched %s but checked out %s", commit, got)
	}
	return nil
}
