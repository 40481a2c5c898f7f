package deps

import (
	"context"
	"fmt"
	"strings"
)

// Verify checks the lock against the world, fetching what is not cached,
// and returns one message per problem (none: all is well):
//
//   - fleet.lock is missing or does not match fleet.deps;
//   - a ref now names another commit than the lock (a moved tag or a
//     branch that advanced), or cannot be looked up;
//   - a cached tree's hash differs from the lock, or the commit's files,
//     fetched afresh, do.
//
// The error is for what prevents verifying at all (an unreadable fleet.deps).
func (p *Project) Verify(ctx context.Context) ([]string, error) {
	root, err := p.readDeps()
	if err != nil {
		return nil, err
	}
	l, err := ReadLock(p.LockPath())
	if isNotExist(err) {
		return []string{fmt.Sprintf("%s: no such file: run fleet deps lock", p.lockLabel())}, nil
	}
	if err != nil {
		return []string{err.Error()}, nil
	}
	var problems []string
	for _, m := range mismatch(root, l) {
		problems = append(problems, fmt.Sprintf("%s does not match %s: %s: run fleet deps lock", p.lockLabel(), p.label(), m))
	}
	for _, e := range l.Deps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !isCommit(e.Ref) {
			commit, err := lsRemote(ctx, e.Git, e.Ref)
			switch {
			case err != nil:
				problems = append(problems, fmt.Sprintf("dependency %s: cannot look up ref %q: %v", e.Name, e.Ref, err))
			case commit != e.Commit:
				problems = append(problems, fmt.Sprintf("dependency %s: ref %q of %s now names commit %s, but %s has %s: the ref moved after the lock was written; find out why, and if the new commit is trusted run fleet deps update %s",
					e.Name, e.Ref, e.Git, commit, p.lockLabel(), e.Commit, e.Name))
			}
		}
		dir, fetched, err := p.Cache.Ensure(ctx, e.Git, e.Commit)
		if err != nil {
			problems = append(problems, fmt.Sprintf("dependency %s: %v", e.Name, err))
			continue
		}
		if err := checkHash(dir, e.Commit, e.SHA256, fetched); err != nil {
			problems = append(problems, fmt.Sprintf("dependency %s: %v", e.Name, strings.ReplaceAll(err.Error(), "fleet.lock", p.lockLabel())))
		}
	}
	return problems, nil
}
