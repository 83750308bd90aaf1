"""The masked scan with the ESM-2 8M architecture, before and after the logits-only path.

*before*: fair-esm's ESM2 forward, the scan's pass until this change (it computes and returns
every layer's averaged attention weights even when only the logits are used);
*after*: the same weights in transformers' ``EsmForMaskedLM`` through ``ProteinLM.logits``
(scaled-dot-product attention, no attention weights, no per-layer outputs).

Random weights (seed 0) and a random 1,179-residue sequence (seed 0): the time depends only on the
architecture and the window. A full scan is one pass per residue, each over the residue's window
(1,022 residues + 2 special tokens here), so ``--positions`` masked copies of the first window are
timed for both paths and the full scan is their per-position time x residues; ``--full`` also times
the complete scan on the after path. The scores of the timed positions are compared.

Usage: python benchmarks/protein_scan_esm2.py [--positions 48] [--batch 8] [--threads 2] [--full]
Writes benchmarks/results/protein_scan_esm2.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from featvis.protein.attention import residue_log_probs
from featvis.protein.models import fair_esm2_module, random_esm2
from featvis.protein.scan import masked_scan_log_probs, scan_tiles
from featvis.protein.sequences import AMINO_ACIDS

LENGTH = 1179


@torch.inference_mode()
def scan_positions(lm, sequence: str, positions: list[int], batch: int) -> tuple[np.ndarray, float]:
    """Log-probabilities at ``positions`` (0-based, in the first window) with each masked, and the seconds taken."""
    tokens = lm.encode(sequence[: lm.max_residues])
    out = np.zeros((len(positions), 20), dtype=np.float32)
    start = time.perf_counter()
    for k in range(0, len(positions), batch):
        chunk = positions[k : k + batch]
        copies = tokens.repeat(len(chunk), 1)
        copies[torch.arange(len(chunk)), torch.tensor(chunk) + 1] = lm.mask_id
        logits = lm.logits(copies)
        for row, pos in enumerate(chunk):
            out[k + row] = residue_log_probs(lm, logits[row])[pos].numpy()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/protein_scan_esm2.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    after = random_esm2("esm2_t6_8M_UR50D", seed=0)
    fair = fair_esm2_module("esm2_t6_8M_UR50D", seed=0)
    before = dataclasses.replace(after, _logits=lambda tokens: fair(tokens)["logits"])
    sequence = "".join(np.random.default_rng(0).choice(list(AMINO_ACIDS), size=LENGTH))
    positions = np.linspace(0, after.max_residues - 1, args.positions).astype(int).tolist()
    scan_positions(after, sequence, positions[: args.batch], args.batch)  # warm-up
    scan_positions(before, sequence, positions[: args.batch], args.batch)
    # The two paths take turns, one batch each, so a change of machine load falls on both alike.
    parts: dict[str, list] = {"before": [], "after": []}
    for k in range(0, len(positions), args.batch):
        for name, lm in (("before", before), ("after", after)):
            parts[name].append(scan_positions(lm, sequence, positions[k : k + args.batch], args.batch))
    results = {}
    for name, chunks in parts.items():
        seconds = sum(t for _, t in chunks)
        results[name] = (np.concatenate([scores for scores, _ in chunks]), seconds, os.getloadavg()[0])
        print(f"{name}: {args.positions} positions in {seconds:.1f} s", flush=True)
    diff = float(np.abs(results["before"][0] - results["after"][0]).max())
    full = None
    if args.full:
        start = time.perf_counter()
        masked_scan_log_probs(after, sequence, batch_size=args.batch)
        full = (time.perf_counter() - start, os.getloadavg()[0])
        print(f"after, full scan: {full[0]:.1f} s", flush=True)
    windows = len(scan_tiles(LENGTH, after.max_residues, 256))
    lines = [
        "# Masked scan, ESM-2 8M architecture: before and after the logits-only path",
        "",
        f"ESM-2 `esm2_t6_8M_UR50D` shape (6 layers, width 320, 20 heads), random weights (seed 0); a random "
        f"{LENGTH}-residue sequence (seed 0), {windows} windows of {after.max_residues} residues; batches of "
        f"{args.batch} masked copies; torch {torch.__version__}, {args.threads} threads, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other work. Command: "
        f"`python benchmarks/protein_scan_esm2.py --positions {args.positions} --batch {args.batch}"
        f"{' --full' if args.full else ''}`.",
        "",
        f"{args.positions} positions spread over the first window, each masked once, timed on both paths "
        f"(every pass is over the full {after.max_residues + 2}-token window, as in the scan); the full scan is "
        f"the per-position time x {LENGTH} residues. The two paths take turns batch by batch, so load changes "
        "fall on both alike.",
        "",
        "| path | timed positions (s) | per position (ms) | full scan, estimated (min) | load (1 min) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (_, seconds, load) in results.items():
        per = seconds / args.positions
        lines.append(f"| {name} | {seconds:.1f} | {1000 * per:.0f} | {per * LENGTH / 60:.1f} | {load:.1f} |")
    speedup = results["before"][1] / results["after"][1]
    lines += ["", f"Speed-up: **{speedup:.1f}x**. Largest difference of the log-probabilities at the timed "
              f"positions: {diff:.1e} (float32 arithmetic in a different order)."]
    if full:
        lines += ["", f"The full {LENGTH}-residue masked scan on the after path, measured: {full[0]:.0f} s "
                  f"({full[0] / 60:.1f} min; load {full[1]:.1f})."]
    Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
