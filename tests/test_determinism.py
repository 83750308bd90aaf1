"""Determinism you can rely on: byte-identical reruns at the default thread count, deterministic
algorithms enforced (not warned about), and no render or attribution op without a deterministic
CUDA kernel (checked on the CPU by recording the ATen ops a real render dispatches)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode

from featvis.core.device import make_deterministic
from featvis.core.io import sha256_file
from featvis.render import transforms
from featvis.render.transforms import affine_grid, bilinear_sample, resize_bilinear, warp
from workflow_helpers import ROOT


@pytest.fixture
def restore_torch_state():
    """make_deterministic changes process-wide settings: put them back for the other tests."""
    threads, flag, warn = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                           torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    env = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(flag, warn_only=warn)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
    if env is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = env


def test_make_deterministic_enforces_not_warns(restore_torch_state, monkeypatch):
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":0:0")  # no fixed cuBLAS workspace: replaced
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = True
    make_deterministic(3, 2)
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="deterministic"):  # an op with no deterministic kernel raises
        torch.zeros(4).put_(torch.tensor([0, 0]), torch.ones(2), accumulate=False)


# --- two processes, threads: 2, the same bytes ----------------------------------------------

RUN = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np
    import torch
    from featvis.core.io import save_npz, write_json
    from featvis.core.runtime import start_job
    from featvis.render.optimize import RenderSettings
    from featvis.render.recipes import render_channels
    from featvis.vision.features import extract_shard, write_shard
    from featvis.vision.models import load_model

    out, paths = Path(sys.argv[1]), sys.argv[2:]
    device = start_job([], {"seed": 0, "threads": 2, "device": "cpu"})  # as every rule script starts
    model = load_model({"architecture": "efficientnet_lite0", "weights": "random", "image_size": 48})
    write_shard(extract_shard(model, paths, ["_blocks.4", "_blocks.10"], device, batch_size=3, progress=False),
                out / "features")
    settings = RenderSettings(size=32, steps=3, param="laplacian", regularizers=[{"name": "tv", "weight": 0.1}])
    batch = render_channels(model.module, "_blocks.4", [0, 1, 2], settings, seed=0, device=str(device))
    save_npz(out / "render.npz", images=batch.result.images, trace=batch.result.trace, final=batch.result.final)
    write_json(out / "state.json", {"threads": torch.get_num_threads(),
                                    "warn_only": torch.is_deterministic_algorithms_warn_only_enabled()})
""")


def test_two_processes_at_two_threads_write_identical_bytes(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(5):
        paths.append(str(tmp_path / f"img{i}.png"))
        Image.fromarray(rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)).save(paths[-1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    runs = [tmp_path / "a", tmp_path / "b"]
    processes = [subprocess.Popen([sys.executable, "-c", RUN, str(out), *paths], env=env, stderr=subprocess.PIPE,
                                  text=True) for out in runs]  # side by side: they compete for the cores
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read()[-3000:]
    files = sorted(p.relative_to(runs[0]) for p in runs[0].rglob("*") if p.is_file())
    assert {str(f) for f in files} >= {"features/_blocks.4.npz", "features/_blocks.10.npz", "render.npz",
                                       "state.json"}
    for name in files:
        assert sha256_file(runs[0] / name) == sha256_file(runs[1] / name), name
    state = (runs[0] / "state.json").read_text()
    assert '"threads": 2' in state and '"warn_only": false' in state
    assert np.isfinite(np.load(runs[0] / "render.npz")["trace"]).all()


# --- the resampling CUDA runs, against torch's own kernels on the CPU ---------------------

def _grads(out: torch.Tensor, x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad(out, x, upstream)[0]


@pytest.fixture
def portable(monkeypatch):
    """Run the forms CUDA runs (gather, interpolation matrices) on the CPU too."""
    monkeypatch.setattr(transforms, "TORCH_KERNELS_ON_CPU", False)


def test_bilinear_sample_equals_grid_sample(portable):
    torch.manual_seed(0)
    x = torch.rand(3, 2, 13, 17, requires_grad=True)
    theta = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]) + 0.4 * torch.randn(3, 2, 3)
    theta[2, :, 2] = torch.tensor([1.3, -0.9])  # mostly outside the image: zeros padding decides
    for out_h, out_w in ((13, 17), (9, 21), (1, 1)):
        grid = affine_grid(theta, out_h, out_w)
        expected = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        got = bilinear_sample(x, grid)
        torch.testing.assert_close(got, expected, atol=2e-6, rtol=1e-5)
        torch.testing.assert_close(_grads(got, x), _grads(expected, x), atol=2e-5, rtol=1e-5)
    # exact pixel centres (the identity) give the image back, and half a pixel past the edge half of it
    identity = affine_grid(torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]), 13, 17)
    torch.testing.assert_close(bilinear_sample(x[:1], identity), x[:1], atol=1e-6, rtol=0)
    edge = torch.tensor([[[[1 + 1 / 17, 0.0]]]])  # x half a pixel right of the last centre
    torch.testing.assert_close(bilinear_sample(x[:1], edge)[0, :, 0, 0], F.grid_sample(x[:1], edge,
                               align_corners=False)[0, :, 0, 0], atol=1e-6, rtol=0)


def test_resize_bilinear_equals_interpolate(portable):
    x = torch.rand(2, 3, 7, 10, requires_grad=True)
    for size in ((14, 20), (28, 40), (5, 3), (7, 10), (9, 31)):
        expected = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        got = resize_bilinear(x, size)
        torch.testing.assert_close(got, expected, atol=2e-6, rtol=1e-5)
        torch.testing.assert_close(_grads(got, x), _grads(expected, x), atol=2e-5, rtol=1e-5)


def test_warp_is_the_same_on_both_paths(monkeypatch):
    images = torch.rand(2, 3, 20, 20)
    matrices = torch.eye(3).repeat(2, 1, 1)
    matrices[:, 0, 0], matrices[:, 0, 1], matrices[:, 0, 2] = 0.9, 0.2, torch.tensor([1.5, -2.0])
    gain, bias = torch.full((1, 3, 1, 1), 2.0), torch.full((1, 3, 1, 1), -1.0)
    torch_kernels = warp(images, matrices, (16, 18), 0.5, gain, bias)
    monkeypatch.setattr(transforms, "TORCH_KERNELS_ON_CPU", False)
    torch.testing.assert_close(warp(images, matrices, (16, 18), 0.5, gain, bias), torch_kernels, atol=1e-5, rtol=1e-5)


# --- no op without a deterministic CUDA kernel in a render or an attribution ---------------

# ATen ops that torch.use_deterministic_algorithms(True) makes raise on CUDA (its documented
# list, by ATen name; the CPU runs the same ops, so recording them on the CPU finds them).
NO_DETERMINISTIC_CUDA_KERNEL = {
    "avg_pool3d_backward", "_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward",
    "adaptive_max_pool2d_backward", "fractional_max_pool2d_backward", "fractional_max_pool3d_backward",
    "max_unpool2d", "max_unpool3d", "upsample_linear1d_backward", "upsample_bilinear2d_backward",
    "upsample_bicubic2d_backward", "upsample_trilinear3d_backward", "_upsample_bilinear2d_aa_backward",
    "_upsample_bicubic2d_aa_backward", "reflection_pad1d_backward", "reflection_pad2d_backward",
    "reflection_pad3d_backward", "nll_loss2d_forward", "_ctc_loss_backward", "put_", "put", "histc", "bincount",
    "median", "nanmedian", "grid_sampler_2d_backward", "grid_sampler_3d_backward", "_embedding_bag_backward",
}


class OpRecorder(TorchDispatchMode):
    """The ATen ops a computation dispatches, backward passes included."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def test_the_op_list_names_real_ops():
    missing = [name for name in NO_DETERMINISTIC_CUDA_KERNEL if not hasattr(torch.ops.aten, name)]
    assert not missing
    with OpRecorder() as recorder:  # and the recorder sees what it must find
        x = torch.rand(1, 1, 4, 4, requires_grad=True)
        F.interpolate(x, size=(8, 8), mode="bilinear").sum().backward()
    assert "upsample_bilinear2d_backward" in recorder.ops


def test_renders_and_attributions_use_only_deterministic_cuda_ops(portable, restore_torch_state):
    from featvis.render.optimize import RenderSettings
    from featvis.render.recipes import render_channels, render_interpolation
    from featvis.vision.attribution import grad_cam, project
    from featvis.vision.models import load_model

    make_deterministic(0, 2)  # strict: on the CPU too, nothing here may lack a deterministic kernel
    lite = load_model({"architecture": "efficientnet_lite0", "weights": "random"}).module
    mnist = load_model({"architecture": "mnist_cnn", "weights": "random"}).module
    laplacian = RenderSettings(size=24, steps=2, param="laplacian", input_size=32, snapshots=[1],
                               regularizers=[{"name": "blur", "weight": 0.1}, {"name": "tv", "weight": 0.1}])
    with OpRecorder() as recorder:
        render_channels(lite, "_blocks.4", [0, 1], laplacian, copies=2, diversity=0.5)
        render_interpolation(lite, "_blocks.4", 0, 1, 3, RenderSettings(size=24, steps=2), shared_lowres=(4,))
        render_channels(mnist, "fc", [3], RenderSettings(size=28, steps=2, mean=(0.13,), std=(0.31,)))
        images = torch.rand(2, 3, 48, 48)
        for method in ("deconvnet", "guided_backprop"):
            project(lite, "_blocks.4", images, 1, [0, 1], [1, 0], method)
            project(mnist, "conv2", torch.rand(2, 1, 28, 28), 0, [3, 4], [5, 6], method)
        grad_cam(lite, "_blocks.4", images)
        grad_cam(mnist, "conv2", torch.rand(2, 1, 28, 28))
    assert "gather" in recorder.ops  # the portable resampling ran
    assert not recorder.ops & NO_DETERMINISTIC_CUDA_KERNEL, sorted(recorder.ops & NO_DETERMINISTIC_CUDA_KERNEL)
