#!/usr/bin/env bash
# SLURM at scale: benchmarks/configs/slurm_scale.yaml (10,000 images, 5 feature shards and 4
# mining shards, faiss HNSW neighbours, PCA) run three ways on one machine, then compared:
#   1. local:  snakemake --cores 2
#   2. slurm:  snakemake --profile profiles/slurm (shards as SLURM array jobs)
#   3. fault:  the SLURM run again, with one running features shard scancel'ed; Snakemake
#              reports the failure and stops; the same command is run again and completes.
# Every file under results/ must have the same sha256 in all three. Not part of CI (CI runs
# the tiny .ci/slurm_smoke.sh); results go in benchmarks/results/slurm_scale.md.
#
# Usage, from the repository root inside the venv, as root (it starts the loopback cluster
# of .ci/slurm_cluster.sh when none is running):
#   bash benchmarks/slurm_scale.sh [work-dir]      # default: a new /tmp/slurm_scale.XXXX
# Prints job counts, wall times, the hash comparison and the fault test's outcome.
set -euo pipefail
shopt -s inherit_errexit
config=benchmarks/configs/slurm_scale.yaml
work=${1:-$(mktemp -d /tmp/slurm_scale.XXXX)}
mkdir -p "$work"/{local,slurm,fault}
bash .ci/slurm_cluster.sh
pip show -q snakemake-executor-plugin-slurm >/dev/null 2>&1 || pip install -q -e ".[slurm]"

# run <name> <log> <snakemake args...>: wall seconds into $work/<name>.seconds; exit status kept
run() {
  local name=$1 log=$2; shift 2
  local start=$SECONDS status=0
  snakemake "$@" --configfile "$config" >"$log" 2>&1 || status=$?
  echo $((SECONDS - start)) >"$work/$name.seconds"
  return $status
}

hashes() {  # sha256 of every file under results/, by relative path
  (cd "$1" && find results -type f -print0 | sort -z | xargs -0 sha256sum)
}

steps() { grep -o "[0-9]* of [0-9]* steps" "$1" | tail -1; }

echo "== 1. local run"
run local "$work/local/run.log" --cores 2 --directory "$work/local"
echo "local: $(steps "$work/local/run.log") in $(cat "$work/local.seconds") s"

echo "== 2. SLURM run"
run slurm "$work/slurm/run.log" --profile profiles/slurm --directory "$work/slurm"
echo "slurm: $(steps "$work/slurm/run.log") in $(cat "$work/slurm.seconds") s;" \
  "$(grep -c 'submitted with SLURM jobid\|Submitted array job' "$work/slurm/run.log") sbatch calls," \
  "$(grep -c 'Submitted array job' "$work/slurm/run.log") of them arrays"

echo "== 3. fault test: scancel a running features shard"
uuid_file="$work/fault/cancelled"
(
  # wait for a features_shard job of this run (the plugin's --comment names the rule and the
  # wildcards; the job's working directory is the run's) to be RUNNING and to have started
  # its work (its featvis log exists: model loaded, forward pass under way), then cancel it
  for _ in $(seq 2400); do
    read -r task comment < <(squeue -h -t RUNNING -o "%i %k %Z" |
      awk -v dir="$work/fault" '$2 ~ /^rule_features_shard/ && $3 == dir {print $1, $2; exit}') || true
    if [ -n "${task:-}" ] && compgen -G "$work/fault/logs/features/*/*/shard${comment##*_}.log" >/dev/null; then
      scancel "$task"; echo "$task $comment" >"$uuid_file"; exit 0
    fi
    sleep 0.5
  done
) &
canceller=$!
if run fault1 "$work/fault/run1.log" --profile profiles/slurm --directory "$work/fault"; then
  echo "fault test: FAILED (the run with a cancelled shard did not fail)"; exit 1
fi
wait $canceller
read -r task comment <"$uuid_file"
echo "cancelled SLURM job $task ($comment); first run stopped after $(cat "$work/fault1.seconds") s:"
grep -o "SLURM-job '$task' failed, SLURM status is: '[A-Z]*'" "$work/fault/run1.log" | head -1
grep -c "^Error in rule" "$work/fault/run1.log" | xargs echo "jobs reported failed:"
shard="shard=${comment##*_}"
left=$(find "$work"/fault/results/features/*/*/shards -mindepth 1 -maxdepth 1 -printf "%f " | tr ' ' '\n' | sort | xargs)
echo "after the failure, feature shard folders on disk: $left (cancelled: $shard)"
run fault2 "$work/fault/run2.log" --profile profiles/slurm --directory "$work/fault"
echo "rerun: $(steps "$work/fault/run2.log") in $(cat "$work/fault2.seconds") s"
grep -B2 -A12 "^rule features_shard:" "$work/fault/run2.log" | grep -o "shard=[0-9]*" | sort -u | tr '\n' ' '
echo "<- feature shards the rerun computed"
grep -A12 "^rule features_shard:" "$work/fault/run2.log" | grep -q "$shard\b" \
  || { echo "fault test: FAILED (the cancelled shard, $shard, was not recomputed)"; exit 1; }

echo "== hashes"
for name in local slurm fault; do hashes "$work/$name" >"$work/$name.sha256"; done
echo "$(wc -l <"$work/local.sha256") files under results/"
status=0
for name in slurm fault; do
  if diff "$work/local.sha256" "$work/$name.sha256" >"$work/$name.diff"; then
    echo "$name: every sha256 matches the local run"
  else
    echo "$name: DIFFERS from the local run ($work/$name.diff)"; status=1
  fi
done
exit $status
