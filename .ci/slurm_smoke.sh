#!/usr/bin/env bash
# The tiny test config through profiles/slurm on a one-node loopback cluster: every
# rule becomes a real SLURM job. Run from the repository root inside the venv.
set -euo pipefail
shopt -s inherit_errexit
bash .ci/slurm_cluster.sh
pip install -q -e ".[slurm]"
work=$(mktemp -d)
python - "$work" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from workflow_helpers import TINY_CONFIG, write_config
write_config(Path(sys.argv[1]) / "config.yaml", TINY_CONFIG)
PY
timeout 1200 snakemake --profile profiles/slurm --directory "$work" --configfile "$work/config.yaml" 2>&1 | tee "$work/run.log"
test -s "$work/results/weights/efficientnet_lite0/filters.png"
test -s "$work/results/features/mnist_cnn/mnist5k/fc/meta.json"
grep -q "submitted with SLURM jobid" "$work/run.log"  # the jobs really went through SLURM
echo "SLURM smoke run: 1 passed, 0 failed"
