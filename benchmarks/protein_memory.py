"""Peak resident memory of the attention stage vs a plain forward pass and fair-esm's all-heads call.

Each variant runs in a fresh subprocess on the CPU with the same random-weight ESM-2
architecture and the same random sequence:

* ``forward``      - ``model(tokens)``: logits only, no attention output;
* ``head_weights`` - ``model(tokens, need_head_weights=True)``: all layers x heads x T x T;
* ``stage``        - ``featvis.protein.attention.summarize``: every aggregation the report uses
                     (mean, max, APC, rollout, contact head, per-layer importance) and logits.

Two peaks are read from ``/proc/self/status``: the whole process (VmHWM, which includes
building the model) and the pass alone (VmHWM reset through ``/proc/self/clear_refs``
after the model is built, so it is the model's weights plus what the pass adds).

Usage: python benchmarks/protein_memory.py [--model esm2_t33_650M_UR50D] [--length 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

GIB = 1024**3


def _vm(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def worker(mode: str, model_name: str, length: int, threads: int) -> dict:
    import numpy as np
    import torch

    from featvis.protein.attention import summarize
    from featvis.protein.models import ESM_TOKENS, fair_esm2_module, random_esm2
    from featvis.protein.sequences import AMINO_ACIDS

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    sequence = "".join(rng.choice(list(AMINO_ACIDS), size=length))
    # fair-esm's own module for its all-heads call; the stage runs the same weights in transformers
    lm = fair_esm2_module(model_name, seed=0) if mode == "head_weights" else random_esm2(model_name, seed=0)
    ids = [ESM_TOKENS.index("<cls>"), *(ESM_TOKENS.index(c) for c in sequence), ESM_TOKENS.index("<eos>")]
    tokens = torch.tensor([ids])
    after_load = _vm("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    start = time.perf_counter()
    with torch.inference_mode():
        if mode == "forward":
            lm.logits(tokens)
        elif mode == "head_weights":
            out = lm(tokens, need_head_weights=True)
            assert out["attentions"].shape[1:3] == (lm.num_layers, lm.attention_heads)
        elif mode == "stage":
            summarize(lm, sequence)
        else:
            raise ValueError(mode)
    seconds = time.perf_counter() - start
    return {
        "mode": mode,
        "after_load": after_load,
        "pass_peak": _vm("VmHWM"),
        "seconds": seconds,
        "process_peak_ru": _ru_maxrss(),
    }


def _ru_maxrss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="esm2_t33_650M_UR50D")
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "protein_memory.md"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.length, args.threads)))
        return
    tables = {}
    for allocator, env in ALLOCATORS.items():
        rows = {}
        for mode in ("forward", "head_weights", "stage"):
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                mode,
                "--model",
                args.model,
                "--length",
                str(args.length),
                "--threads",
                str(args.threads),
            ]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, **env})
            rows[mode] = json.loads(done.stdout.strip().splitlines()[-1])
            print(allocator, mode, rows[mode], file=sys.stderr)
        tables[allocator] = rows
    write_report(tables, args)


# glibc raises its mmap threshold (up to 32 MiB) after large frees, so later mid-sized
# temporaries land on the heap and fragment it; the peak then depends on allocation order.
# A fixed threshold returns every large temporary to the OS on free: a steadier comparison.
ALLOCATORS = {
    "glibc defaults": {},
    "glibc, fixed mmap threshold (MALLOC_MMAP_THRESHOLD_=131072)": {"MALLOC_MMAP_THRESHOLD_": "131072"},
}


def write_report(tables: dict, args: argparse.Namespace) -> None:
    lines = [
        "# Protein attention memory (CPU)",
        "",
        f"Random-weight `{args.model}` architecture, one random {args.length}-residue sequence, "
        f"{args.threads} threads, each variant in a fresh process. Python {platform.python_version()}, "
        "torch " + torch_version() + ".",
        "Produced by `python benchmarks/protein_memory.py`. Times are wall-clock on a shared machine (noisy).",
        "",
    ]
    for allocator, rows in tables.items():
        lines += _table(allocator, rows)
    lines += [
        "The pass peak is VmHWM after resetting it (`/proc/self/clear_refs`) once the model is built, so "
        "it counts the weights plus what the pass allocates; ru_maxrss is the whole process including "
        "building the model. The CUDA build of torch adds about 0.5 GiB of libraries to every process.",
        "",
        "Under glibc defaults the plain forward's peak includes heap fragmentation: glibc raises its mmap "
        "threshold after large frees, so later mid-sized temporaries stay on the heap, and the peak depends "
        "on allocation order. With a fixed threshold every large temporary is returned on free, and the "
        "peak is the weights plus one layer's working set; that table is the steadier comparison.",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print("\n".join(lines))


def torch_version() -> str:
    import torch

    return torch.__version__


def _table(allocator: str, rows: dict) -> list[str]:
    base = rows["forward"]
    lines = [
        f"## {allocator}",
        "",
        "| variant | RSS after model built (GiB) | peak RSS during the pass (GiB) | ratio to plain forward | "
        "process peak, ru_maxrss (GiB) | pass time (s) |",
        "|---|---|---|---|---|---|",
    ]
    labels = {
        "forward": "plain forward, no attention output",
        "head_weights": "fair-esm `need_head_weights=True`",
        "stage": "featvis attention stage (all aggregations)",
    }
    for mode, row in rows.items():
        lines.append(
            f"| {labels[mode]} | {row['after_load'] / GIB:.2f} | {row['pass_peak'] / GIB:.2f} | "
            f"{row['pass_peak'] / base['pass_peak']:.3f} | {row['process_peak_ru'] / GIB:.2f} | "
            f"{row['seconds']:.1f} |"
        )
    stage = rows["stage"]["pass_peak"] / base["pass_peak"]
    heads = rows["head_weights"]["pass_peak"] / base["pass_peak"]
    lines += [
        "",
        f"Stage / plain forward: **{stage:.3f}** (target <= 1.10). All-heads call / plain forward: **{heads:.3f}**.",
        "",
    ]
    return lines


if __name__ == "__main__":
    main()
