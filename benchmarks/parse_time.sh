#!/usr/bin/env bash
# How long Snakemake takes to parse the workflow and plan the default run (`snakemake -n`), with the
# model-structure cache warm, at two commits side by side: the planning cost every command pays
# (a dry run, `--report`, every cluster job's start). Usage: benchmarks/parse_time.sh <before> [after] [runs]
set -euo pipefail
before=$1; after=${2:-HEAD}; runs=${3:-7}
root=$(git rev-parse --show-toplevel); work=$(mktemp -d)
for commit in "$before" "$after"; do
    git -C "$root" worktree add -q --detach "$work/$commit" "$commit"
    cd "$work/$commit"
    snakemake -n --cores 2 >/dev/null 2>&1  # warms the model-structure cache (.snakemake/featvis/models)
    times=$(for _ in $(seq "$runs"); do /usr/bin/time -f %e snakemake -n --cores 2 2>&1 >/dev/null | tail -1; done)
    torch=$(python -X importtime -m snakemake -n --cores 2 2>&1 >/dev/null | grep -cE '\|\s+torch$' || true)
    echo "$commit $(git rev-parse --short HEAD): median $(echo "$times" | sort -n | sed -n "$(( (runs + 1) / 2 ))p") s" \
         "of $runs (all: $(echo $times)); torch imported: $([ "$torch" -gt 0 ] && echo yes || echo no)"
    cd "$root"; git worktree remove --force "$work/$commit"
done
