"""Receptive fields traced from the forward pass equal the support of the input gradient."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from featvis.vision.receptive import Field, ReceptiveFields, receptive_fields
from gradient_support import box_mask, corner_centre_corner, gradient_supports


class Geometry(nn.Module):
    """Asymmetric padding, dilation, a strided residual branch and pooling in one net."""

    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 2, 0))
        self.stem = nn.Conv2d(2, 4, 3, stride=2)
        self.dilated = nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.branch = nn.Conv2d(4, 4, 1, stride=2)
        self.main = nn.Conv2d(4, 4, 5, stride=2, padding=2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.avg = nn.AvgPool2d(2)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.tanh(self.stem(self.pad(x)))
        x = torch.tanh(self.dilated(x)) + x
        x = self.main(x) + self.branch(x)
        x = self.avg(self.pool(F.pad(x, (1, 0, 0, 0))))
        return self.head(x.mean(dim=(2, 3)))


LAYERS = ["pad", "stem", "dilated", "main", "branch", "pool", "avg"]


def gradient_box(model, layer, shape, y, x):
    """Bounding box of the input pixels that change the layer's output at (y, x)."""
    store = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: store.update(out=o))
    image = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    model(image)
    handle.remove()
    (grad,) = torch.autograd.grad(store["out"][0, :, y, x].sum(), image)
    rows, cols = (grad.abs().sum(dim=(0, 1)) > 0).nonzero(as_tuple=True)
    if len(rows) == 0:  # a position inside padding sees no input at all
        return None
    return rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1


def output_size(model, layer, shape):
    store = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: store.update(o=o))
    model(torch.zeros(shape, dtype=next(model.parameters()).dtype))
    handle.remove()
    return store["o"].shape[-2:]


def same_box(box, reference):
    y0, y1, x0, x1 = box
    return (y1 <= y0 or x1 <= x0) if reference is None else box == reference


def smooth_copy(model):
    """Max pooling sends gradient to one winner only; an average pool over the same
    window has the same geometry and a gradient on every pixel of it."""
    model = copy.deepcopy(model)
    pool = model.pool
    model.pool = nn.AvgPool2d(pool.kernel_size, pool.stride, pool.padding, count_include_pad=True)
    return model


def test_fields_equal_gradient_support_on_hand_built_net():
    model = Geometry().double()
    with torch.no_grad():  # positive weights: no cancellation can hide a pixel from the gradient
        for p in model.parameters():
            p.abs_().add_(0.01)
    shape = (1, 2, 47, 53)
    fields = ReceptiveFields(model, shape, LAYERS)
    reference = smooth_copy(model)
    for layer in LAYERS:
        height, width = output_size(model, layer, shape)
        for y, x in [(0, 0), (height // 2, width // 3), (height - 1, width - 1)]:
            box = fields.box(layer, y, x)
            assert same_box(box, gradient_box(reference, layer, shape, y, x)), (layer, y, x)


def test_global_pooling_and_linear_are_global():
    fields = receptive_fields(Geometry(), (1, 2, 32, 32), ["head"])
    assert fields["head"] is None


# Real EfficientNet-Lite0 layers against the gradient support: tests/test_receptive_support.py.


def test_stem_padding_is_asymmetric(lite0):
    """Stride-2 'same' padding adds a pixel only on the right and bottom: no offset at 0."""
    field = receptive_fields(lite0.module, (1, 3, 64, 64), ["_conv_stem"])["_conv_stem"]
    assert field.lo == (0, 0) and field.size == (3, 3) and field.jump == (2, 2)


def test_layer_field_box_is_the_exact_box():
    model = Geometry()
    field = receptive_fields(model, (1, 2, 47, 53), ["branch"])["branch"]
    exact = ReceptiveFields(model, (1, 2, 47, 53), ["branch"])
    assert field.box(11, 12, 47, 53) == exact.box("branch", 11, 12) == (38, 45, 44, 51)
    with pytest.raises(ValueError, match="traced at"):
        field.box(0, 0, 64, 64)


# --- the op taxonomy: layouts and per-position ops stay on the map; ops that mix positions are global


class Apply(nn.Module):
    """One function as a named layer."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class ChannelsLastBlock(nn.Module):
    """ConvNeXt's block in miniature: depthwise conv, then LayerNorm and an MLP over channels in
    channels-last layout, permuted back and added to the input."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(width, width, 5, padding=2, groups=width)
        self.norm = nn.LayerNorm(width)
        self.fc1, self.fc2 = nn.Linear(width, 2 * width), nn.Linear(2 * width, width)

    def forward(self, x):
        y = self.norm(self.dw(x).permute(0, 2, 3, 1))
        return x + self.fc2(F.gelu(self.fc1(y))).permute(0, 3, 1, 2)


class SpatialGate(nn.Module):
    """CBAM's spatial attention: the channel mean and max per position, a 3x3 conv, a sigmoid gate."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x):
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class Layouts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, stride=2)
        self.block = ChannelsLastBlock(4)
        self.crop = Apply(lambda x: x[:, :, 1:, :-2])  # a crop by slicing shifts the field
        self.groups = Apply(lambda x: x.view(x.shape[0], 2, 2, *x.shape[2:]).sum(1).transpose(2, 3).transpose(2, 3))
        self.gate = SpatialGate()
        self.mix = Apply(lambda x: F.softmax(F.pad(x, (1, 0, 2, 0)), dim=1))
        self.down = nn.Conv2d(2, 3, 3, stride=2)

    def forward(self, x):
        return self.down(self.mix(self.gate(self.groups(self.crop(self.block(self.stem(x)))))))


LAYOUT_LAYERS = ["stem", "block", "crop", "groups", "gate", "mix", "down"]


def test_layouts_and_per_position_ops_keep_exact_fields():
    model, shape = Layouts().double(), (1, 2, 29, 31)
    traced = ReceptiveFields(model, shape, [*LAYOUT_LAYERS, "block.fc2"])
    assert {layer: traced.kind(layer) for layer in LAYOUT_LAYERS} == dict.fromkeys(LAYOUT_LAYERS, "exact")
    probes = [(layer, y, x) for layer in LAYOUT_LAYERS for y, x in corner_centre_corner(traced.grid_size(layer))]
    for probe, support in zip(probes, gradient_supports(model, shape, probes)):
        assert torch.equal(support, box_mask(traced.box(*probe), shape[-2:])), probe
    assert traced.field("crop").lo == (traced.field("block").lo[0] + 2, traced.field("block").lo[1])
    # a channels-last output is on the map, but featvis would read its dims 2, 3 as positions
    assert traced.kind("block.fc2") == "global" and "(B, C, H, W)" in traced.reason("block.fc2")


SAME_SIZE_MIXING = {
    "group_norm": lambda x: F.group_norm(x, 2),
    "instance_norm": lambda x: F.instance_norm(x),
    "layer_norm": lambda x: F.layer_norm(x, x.shape[1:]),
    "softmax": lambda x: F.softmax(x, dim=-1),
    "roll": lambda x: torch.roll(x, 3, dims=3),
    "flip": lambda x: torch.flip(x, dims=(2,)),
    "batch_norm": lambda x: F.batch_norm(x, None, None, training=True),
    "mean": lambda x: x * x.mean(dim=3, keepdim=True),  # a gate pooled along rows only: each row mixes
}
UNMAPPED = {
    "interpolate": lambda x: F.interpolate(x, scale_factor=2.0, mode="bilinear"),
    "glu": lambda x: F.glu(torch.cat([x, x], dim=1), dim=1),  # not in the taxonomy: global, to be safe
}


def shifted_by_assignment(x):
    """Writes the map one column right into a fresh tensor: an op that returns nothing."""
    out = torch.zeros_like(x)
    out[..., 1:] = x[..., :-1]
    return out * x


UNMAPPED["setitem"] = shifted_by_assignment


def around(fn) -> nn.Module:
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), Apply(fn), nn.Conv2d(4, 4, 3, padding=1)).double()


@pytest.mark.parametrize("op", list(SAME_SIZE_MIXING))
def test_ops_that_mix_positions_are_global(op):
    """A same-size op is not position-wise just because the map keeps its size: the gradient of a
    corner position reaches past the box a position-wise reading would give, so the field is global."""
    model, shape = around(SAME_SIZE_MIXING[op]), (4, 2, 12, 12)
    traced = ReceptiveFields(model, shape, ["0", "1", "2"])
    assert traced.kind("0") == "exact" and traced.kind("1") == traced.kind("2") == "global"
    assert traced.reason("2").startswith(f"{op} in 1"), traced.reason("2")
    (support,) = gradient_supports(model, shape, [("1", 0, 0)])
    assert (support & ~box_mask(traced.box("0", 0, 0), shape[-2:])).any()


@pytest.mark.parametrize("op", list(UNMAPPED))
def test_resampling_and_unknown_ops_are_global(op):
    traced = ReceptiveFields(around(UNMAPPED[op]), (1, 2, 12, 12), ["1", "2"])
    assert traced.kind("2") == "global" and traced.layer_field("2") is None
    assert traced.reason("2").startswith(f"{op} in 1"), traced.reason("2")


# --- global gates: taken as per-channel scales, the field is local and says so


class Gate(nn.Module):
    """Squeeze-excitation by hand, its gate applied as torchvision (keepdim), timm's ECA (a (B, C)
    vector viewed as (B, C, 1, 1) and expanded) and others (viewed) apply theirs."""

    def __init__(self, width: int, form: str) -> None:
        super().__init__()
        self.fc, self.form = nn.Linear(width, width), form

    def forward(self, x):
        if self.form == "keepdim":
            return x * torch.sigmoid(x.mean((2, 3), keepdim=True))
        gate = torch.sigmoid(self.fc(x.mean((2, 3)))).view(*x.shape[:2], 1, 1)
        return x * (gate.expand_as(x) if self.form == "expand" else gate)


@pytest.mark.parametrize("form", ["keepdim", "view", "expand"])
def test_a_global_gate_makes_a_local_field(form):
    model = nn.Sequential(nn.Conv2d(2, 4, 3), Gate(4, form), nn.Conv2d(4, 4, 3, stride=2, padding=1)).double()
    shape = (1, 2, 21, 21)
    traced = ReceptiveFields(model, shape, ["0", "1", "2"])
    assert [traced.kind(layer) for layer in "012"] == ["exact", "local", "local"]
    assert traced.reason("2") == "global gate in 1 (Gate) treated as a per-channel scale"
    assert traced.field("2") == Field((2, 2), (-1, -1), (3, 3))  # two 3x3 convs, as if there were no gate
    probes = [("2", y, x) for y, x in corner_centre_corner(traced.grid_size("2"))]
    for probe, support in zip(probes, gradient_supports(model, shape, probes, frozen=True)):
        assert torch.equal(support, box_mask(traced.box(*probe), shape[-2:])), probe
    assert all(s.all() for s in gradient_supports(model, shape, probes))  # live, the gate sees every pixel
    field = traced.layer_field("2")
    assert (field.kind, field.reason) == ("local", traced.reason("2"))
