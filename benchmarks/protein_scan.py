"""Time of the substitution scan (all 19 substitutions at every position) on the CPU.

For each length, a random sequence (amino acids drawn uniformly, fixed seed) is scanned
with the default model (AntiBERTy; only the time matters here, not the scores):

* ``masked``   - one masked copy per residue, ``--batch`` copies per model pass, long
                 sequences tiled at the model's limit (510 residues for AntiBERTy) with the
                 stage's default overlap of 256;
* ``wildtype`` - one unmasked pass (tiled the same way), the ``scan: wildtype`` option.

Usage: python benchmarks/protein_scan.py [--lengths 400 1200] [--threads 2] [--batch 8]
Writes benchmarks/results/protein_scan.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from featvis.protein.attention import summarize
from featvis.protein.models import load_protein_model
from featvis.protein.scan import masked_scan_log_probs, scan_tiles
from featvis.protein.sequences import AMINO_ACIDS


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="antiberty")
    parser.add_argument("--lengths", type=int, nargs="+", default=[400, 1200])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, nargs="+", default=[8])
    parser.add_argument("--out", default="benchmarks/results/protein_scan.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_protein_model(args.model)
    rng = np.random.default_rng(0)
    rows = []
    for length in args.lengths:
        sequence = "".join(rng.choice(list(AMINO_ACIDS), size=length))
        tiles = len(scan_tiles(length, lm.max_residues, 256))
        wild = timed(lambda sequence=sequence: summarize(lm, sequence))
        for batch in args.batch:
            masked = timed(lambda sequence=sequence, batch=batch: masked_scan_log_probs(lm, sequence, batch_size=batch))
            rows.append((length, tiles, batch, masked, wild, os.getloadavg()[1]))
            print(f"{length} residues, {tiles} window(s), batch {batch}: masked {masked:.1f} s, wildtype {wild:.1f} s",
                  flush=True)
    lines = [
        "# Substitution scan time on the CPU",
        "",
        f"Model `{lm.name}` ({lm.num_layers} layers, limit {lm.max_residues} residues), torch {torch.__version__}, "
        f"{args.threads} threads, {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        "(shared with other work while measured; one run each). Command: "
        f"`python benchmarks/protein_scan.py --lengths {' '.join(map(str, args.lengths))} "
        f"--batch {' '.join(map(str, args.batch))}`.",
        "",
        "`wildtype` is the unmasked pass of the importance stage (importance, pair maps and the wild-type "
        "log-probabilities together), so it is an upper bound for `scan: wildtype`.",
        "",
        "| residues | windows | batch | masked scan (s) | per residue (ms) | wildtype pass (s) | load (5 min) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {n} | {t} | {b} | {m:.1f} | {1000 * m / n:.0f} | {w:.2f} | {a:.1f} |" for n, t, b, m, w, a in rows]
    lines += ["", "Load: the machine's 5-minute load average when each scan finished (2 cores; above 2, other "
              "processes were competing and the times are longer than on an idle machine)."]
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
