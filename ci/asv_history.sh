#!/usr/bin/env bash
# asv's results history on a git branch, so that each CI run on main adds a point to the dashboard.
#   ci/asv_history.sh pull   copy the branch's results into asv_bench/results (nothing when the branch is new)
#   ci/asv_history.sh push   commit asv_bench/results to the branch and push it
# Env: ASV_HISTORY_BRANCH (asv-results), ASV_HISTORY_REMOTE (origin), ASV_RESULTS_DIR (asv_bench/results).
set -euo pipefail
cd "$(dirname "$0")/.."
branch="${ASV_HISTORY_BRANCH:-asv-results}"
remote="${ASV_HISTORY_REMOTE:-origin}"
results="${ASV_RESULTS_DIR:-asv_bench/results}"
work="$(mktemp -d)"
trap 'git worktree remove --force "$work" 2>/dev/null || true; rm -rf "$work"' EXIT

case "${1:-}" in
  pull)
    mkdir -p "$results"
    if git fetch --quiet "$remote" "refs/heads/$branch:refs/remotes/$remote/$branch" 2>/dev/null; then
      git worktree add --quiet --detach "$work" "$remote/$branch"
      cp -a "$work/." "$results/"
      rm -rf "$results/.git"
      echo "asv history: $(find "$results" -name '*.json' | wc -l) result files from $remote/$branch"
    else
      echo "asv history: no branch $branch on $remote yet; starting a new history"
    fi
    ;;
  push)
    [ -d "$results" ] || { echo "asv history: $results does not exist" >&2; exit 1; }
    if git fetch --quiet "$remote" "refs/heads/$branch:refs/remotes/$remote/$branch" 2>/dev/null; then
      git worktree add --quiet --detach "$work" "$remote/$branch"
    else
      git worktree add --quiet --detach "$work" HEAD
      git -C "$work" checkout --quiet --orphan "$branch"
      git -C "$work" rm -rf --quiet --ignore-unmatch . >/dev/null
    fi
    # Results only accumulate: the history keeps files that this run did not produce.
    cp -a "$results/." "$work/"
    git -C "$work" add -A
    if git -C "$work" diff --cached --quiet; then
      echo "asv history: nothing new"
      exit 0
    fi
    git -C "$work" commit --quiet -m "asv results for $(git rev-parse --short HEAD)"
    git -C "$work" push --quiet "$remote" "HEAD:refs/heads/$branch"
    echo "asv history: pushed $(git -C "$work" ls-files | grep -c '\.json$') result files to $remote/$branch"
    ;;
  *)
    echo "usage: $0 pull|push" >&2
    exit 2
    ;;
esac
