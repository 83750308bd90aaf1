"""InceptionV1 as Lucid defines it (the ``inception5h`` graph behind the Distill articles),
module for module as torch-lucent 0.1.8's ``lucent.modelzoo.inceptionv1`` builds it.

Module names are lucent's, so layer names are ``conv2d0`` ... ``mixed5b`` (ReLU outputs and
the concatenated mixed blocks) and the state-dict keys (``mixed4a_1x1_pre_relu_conv.weight``,
...) are lucent's: its weights file ``inception5h.pth`` loads unchanged. The forward pass
repeats lucent's op for op: TF-style asymmetric "same" padding written as explicit
``F.pad`` calls (max pools pad with -inf), local response norm after ``maxpool0`` and
``conv2d2``, and softmax at the end (``softmax2``; the logits are
``softmax2_pre_activation_matmul``). The input is Lucid's value range [-117, 138]
(``x * 255 - 117`` for x in [0, 1]), i.e. mean 117/255 and std 1/255 (see :data:`PREPROCESS`).

One deliberate difference: the ReLUs are plain ``nn.ReLU``. lucent's default
``RedirectedReLU`` has the same forward pass but leaks gradient below zero, and DeconvNet /
guided backprop need to find ``nn.ReLU`` modules to swap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Lucid's InceptionV1.image_value_range = (-117, 255 - 117) on RGB in [0, 1] * 255.
MEAN = (117 / 255,) * 3
STD = (1 / 255,) * 3
IMAGE_SIZE = 224  # lucent's render_vis upsamples renders smaller than this to 224
WEIGHTS_FILE = "inception5h.pth"  # the name torch.hub gives lucent's download (model_urls["inceptionv1"])
WEIGHTS_URL = "https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth"
NUM_OUTPUTS = 1008  # inception5h's 1008 outputs (ImageNet plus unused slots); no class names ship with it

# block: (input, 1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce), widths from inception5h
BLOCKS = {
    "mixed3a": (192, 64, 96, 128, 16, 32, 32),
    "mixed3b": (256, 128, 128, 192, 32, 96, 64),
    "mixed4a": (480, 192, 96, 204, 16, 48, 64),
    "mixed4b": (508, 160, 112, 224, 24, 64, 64),
    "mixed4c": (512, 128, 128, 256, 24, 64, 64),
    "mixed4d": (512, 112, 144, 288, 32, 64, 64),
    "mixed4e": (528, 256, 160, 320, 32, 128, 128),
    "mixed5a": (832, 256, 160, 320, 48, 128, 128),
    "mixed5b": (832, 384, 192, 384, 48, 128, 128),
}
# a stride-2 max pool (TF "same": one extra row and column of -inf at the end) before these blocks
POOL_BEFORE = {"mixed4a": "maxpool4", "mixed5a": "maxpool10"}


class Concat(nn.Module):
    """The mixed block's output: its four branches along channels (lucent's ``CatLayer``)."""

    def forward(self, tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.cat(tensors, 1)


class MaxPool(nn.Module):
    """A 3x3 max pool with TF padding done by ``F.pad`` (-inf), as lucent writes it."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.pad = (0, 1, 0, 1) if stride == 2 else (1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(x, self.pad, value=float("-inf")), 3, stride=self.stride)


def _lrn(x: torch.Tensor) -> torch.Tensor:
    return F.local_response_norm(x, size=9, alpha=9.99999974738e-05, beta=0.5, k=1)


class InceptionV1(nn.Module):
    """Lucid's InceptionV1; input (N, 3, H, W) in Lucid's range [-117, 138]; output softmax (N, 1008).

    The final 7x7 average pool needs a 224 px input; every layer up to ``mixed5b`` runs at any size.
    """

    def __init__(self) -> None:
        super().__init__()
        self._stem()
        for name, (cin, c1, r3, c3, r5, c5, cp) in BLOCKS.items():
            if name in POOL_BEFORE:
                self.add_module(POOL_BEFORE[name], MaxPool(2))
            self._block(name, cin, c1, r3, c3, r5, c5, cp)
        self.softmax2_pre_activation_matmul = nn.Linear(1024, NUM_OUTPUTS)
        self.softmax2 = nn.Softmax(dim=1)

    def _conv(self, name: str, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        self.add_module(f"{name}_pre_relu_conv", nn.Conv2d(cin, cout, kernel, stride))
        self.add_module(name, nn.ReLU())

    def _stem(self) -> None:
        self._conv("conv2d0", 3, 64, 7, 2)
        self.maxpool0 = MaxPool(2)
        self._conv("conv2d1", 64, 64, 1)
        self._conv("conv2d2", 64, 192, 3)
        self.maxpool1 = MaxPool(2)

    def _block(self, name: str, cin: int, c1: int, r3: int, c3: int, r5: int, c5: int, cp: int) -> None:
        self._conv(f"{name}_1x1", cin, c1, 1)
        self._conv(f"{name}_3x3_bottleneck", cin, r3, 1)
        self._conv(f"{name}_5x5_bottleneck", cin, r5, 1)
        self.add_module(f"{name}_pool", MaxPool(1))
        self._conv(f"{name}_pool_reduce", cin, cp, 1)
        self._conv(f"{name}_3x3", r3, c3, 3)
        self._conv(f"{name}_5x5", r5, c5, 5)
        self.add_module(name, Concat())

    def _conv_relu(self, name: str, x: torch.Tensor, pad: int = 0) -> torch.Tensor:
        """conv (after symmetric zero padding, as lucent pads) then its ReLU."""
        if pad:
            x = F.pad(x, (pad,) * 4)
        return getattr(self, name)(getattr(self, f"{name}_pre_relu_conv")(x))

    def _mixed(self, name: str, x: torch.Tensor) -> torch.Tensor:
        branch1 = self._conv_relu(f"{name}_1x1", x)
        branch3 = self._conv_relu(f"{name}_3x3", self._conv_relu(f"{name}_3x3_bottleneck", x), pad=1)
        branch5 = self._conv_relu(f"{name}_5x5", self._conv_relu(f"{name}_5x5_bottleneck", x), pad=2)
        pool = self._conv_relu(f"{name}_pool_reduce", getattr(self, f"{name}_pool")(x))
        return getattr(self, name)((branch1, branch3, branch5, pool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2d0(self.conv2d0_pre_relu_conv(F.pad(x, (2, 3, 2, 3))))
        x = self._conv_relu("conv2d1", _lrn(self.maxpool0(x)))
        x = self.maxpool1(_lrn(self._conv_relu("conv2d2", x, pad=1)))
        for name in BLOCKS:
            if name in POOL_BEFORE:
                x = getattr(self, POOL_BEFORE[name])(x)
            x = self._mixed(name, x)
        x = F.avg_pool2d(x, kernel_size=7, stride=1, count_include_pad=False).reshape(-1, 1024)
        return self.softmax2(self.softmax2_pre_activation_matmul(x))
