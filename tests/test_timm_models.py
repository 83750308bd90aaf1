"""timm models by name, token layers as spatial maps, their receptive fields, and the start
checks for layers featvis cannot read (tuple outputs, MultiheadAttention, shared modules,
tokens without a grid, inputs the model cannot take). Real timm models with random weights."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from featvis.core.config import ConfigError
from featvis.core.hooks import UnknownLayerError, capture, get_layer, probe_calls, run_to_layers
from featvis.core.tokens import TokenGrid, token_grid
from featvis.render.fuse import prepare_model
from featvis.vision.checks import check_channels, check_layer, check_views, model_structure
from featvis.vision.models import InputSizeError, MissingWeightsError, UnknownModelError, load_model
from featvis.vision.receptive import ReceptiveFields, token_supports

VIT = {"architecture": "timm:vit_tiny_patch16_224", "allow_random": True, "image_size": 64}


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return load_model(VIT, "vit")


def test_preprocessing_comes_from_timms_pretrained_config():
    pre = load_model({"architecture": "timm:vit_tiny_patch16_224", "allow_random": True}).preprocess
    assert (pre.size, pre.mean, pre.std, pre.interpolation, pre.channels) == ((224, 224), (0.5,) * 3, (0.5,) * 3,
                                                                                "bicubic", 3)
    assert pre.class_names[1] == "goldfish"  # ImageNet-1k names, no download
    grey = load_model({"architecture": "timm:resnet18", "allow_random": True, "channels": 1}).preprocess
    assert grey.channels == 1 and grey.mean == pytest.approx((0.449,), abs=1e-3)  # the RGB mean, averaged


def test_weights_from_a_local_file_are_loaded(tmp_path):
    source = timm.create_model("resnet18", pretrained=False, num_classes=1000)
    torch.save(source.state_dict(), tmp_path / "r18.pth")
    loaded = load_model({"architecture": "timm:resnet18", "weights": str(tmp_path / "r18.pth")})
    assert torch.equal(loaded.module.conv1.weight, source.conv1.weight)
    assert loaded.weights == str(tmp_path / "r18.pth")


def test_weights_from_the_hugging_face_hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    source = timm.create_model("resnet18", pretrained=False)
    repo = source.pretrained_cfg["hf_hub_id"]
    snapshot = tmp_path / f"models--{repo.replace('/', '--')}" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    save_file(source.state_dict(), snapshot / "model.safetensors")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    loaded = load_model({"architecture": "timm:resnet18"})
    assert torch.equal(loaded.module.fc.weight, source.fc.weight)
    assert loaded.weights.endswith("model.safetensors")


def test_missing_weights_name_the_file_and_the_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"model\.safetensors.*hub cache .*timm/resnet18.*allow_random"):
        load_model({"architecture": "timm:resnet18"})


def test_unknown_timm_name_lists_close_matches():
    with pytest.raises(UnknownModelError, match="closest: vit_tiny_patch16_224"):
        load_model({"architecture": "timm:vit_tiny_patch16_244", "allow_random": True})


def test_token_layers_become_maps_over_the_patch_grid(vit):
    modules = dict(vit.module.named_modules())
    assert token_grid(modules["patch_embed"]) == TokenGrid(0, 4, 4)
    assert token_grid(modules["blocks.3"]) == TokenGrid(1, 4, 4)  # the class token is the prefix
    image = torch.randn(2, 3, 64, 64)
    with capture(vit.module, ["patch_embed.proj", "patch_embed", "blocks.3"]) as out:
        run_to_layers(vit.module, image, out)
    assert torch.equal(out["patch_embed"], out["patch_embed.proj"])  # known answer: the conv's own grid
    tokens = vit.module.blocks[:4](vit.module._pos_embed(vit.module.patch_embed(image)))
    assert torch.allclose(out["blocks.3"][:, :, 1, 2], tokens[:, 1 + 1 * 4 + 2], atol=1e-6)  # raster order


def test_token_fields_follow_the_gradient_support(vit):
    shape = vit.preprocess.input_shape()
    traced = ReceptiveFields(vit.module, shape, ["patch_embed", "blocks.0.attn.qkv", "blocks.0.attn", "blocks.1"])
    kinds = {layer: traced.layer_field(layer).kind for layer in traced.layer_node}
    assert kinds == {"patch_embed": "exact", "blocks.0.attn.qkv": "exact", "blocks.0.attn": "token",
                     "blocks.1": "token"}
    field = traced.layer_field("patch_embed")
    assert field.size == (16, 16) and field.box(1, 2) == (16, 32, 32, 48)
    support = token_supports(vit.module, shape, {"patch_embed": (1, 2), "blocks.0.attn": (1, 2)})
    ys, xs = np.nonzero(support["patch_embed"])
    assert (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1) == field.box(1, 2)  # exactly its own patch
    assert support["blocks.0.attn"].all()  # after attention: every pixel
    assert traced.field("blocks.1") is None and traced.field("patch_embed").size == (16, 16)


class Odd(nn.Module):
    """Layers featvis cannot read: a MultiheadAttention, a tuple output, a shared module, tokens with no grid."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 8)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.pair = PairOut()
        self.act = nn.ReLU()
        self.mix = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x.flatten(2).transpose(1, 2))  # (B, H*W, 8): a flatten, not a patch conv
        tokens = self.attention(tokens, tokens, tokens)[0]
        tokens = self.act(self.mix(self.act(tokens)))
        return self.pair(tokens)[0]


class PairOut(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


@pytest.fixture(scope="module")
def odd_structure(tmp_path_factory):
    folder = tmp_path_factory.mktemp("odd")
    torch.save(Odd(), folder / "odd.pt")
    spec = {"architecture": "module", "weights": str(folder / "odd.pt"), "image_size": 6}
    return model_structure("odd", spec, folder / "cache")


@pytest.mark.parametrize("layer, message", [
    ("attention", "nn.MultiheadAttention, which returns"),
    ("pair", "returns a tuple"),
    ("act", "runs 2 times per forward pass"),
    ("mix", r"outputs 36 tokens of width 8 and featvis cannot infer their patch grid; set it in the config: "
            r"models\.odd\.token_grid"),
])
def test_unreadable_layers_are_rejected_at_start(odd_structure, layer, message):
    with pytest.raises(ConfigError, match=message) as error:
        check_layer("odd", layer, odd_structure, "analyses[0].layers")
    assert repr(layer) in str(error.value)


def test_a_configured_token_grid_makes_the_layer_readable(tmp_path):
    torch.save(Odd(), tmp_path / "odd.pt")
    spec = {"architecture": "module", "weights": str(tmp_path / "odd.pt"), "image_size": 6,
            "token_grid": {"prefix": 0, "height": 6, "width": 6}}
    structure = model_structure("odd", spec, tmp_path / "cache")
    check_layer("odd", "mix", structure, "analyses[0].layers")
    assert structure["shapes"]["mix"] == [8, 6, 6]


def test_channel_beyond_a_token_layers_width(vit, tmp_path):
    structure = model_structure("vit", VIT, tmp_path)
    check_channels("vit", "blocks.1", [191], structure, "render.jobs.a.channels")
    with pytest.raises(ConfigError, match="channel 192 is out of range for layer 'blocks.1' of vit, which has 192"):
        check_channels("vit", "blocks.1", [192], structure, "render.jobs.a.channels")


def test_forward_failing_at_the_configured_input_names_both_inputs(tmp_path):
    with pytest.raises(InputSizeError, match=r"fails at the configured input, 1 channels at 64x64 px .*"
                                             r"the architecture expects 3 channels at 224x224 px"):
        load_model({"architecture": "efficientnet_lite0", "channels": 1, "image_size": 64})
    fixed = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
    torch.save(fixed, tmp_path / "fixed.pt")
    with pytest.raises(InputSizeError, match=r"3 channels at 48x48 px \(mat1 and mat2 shapes cannot be multiplied"):
        load_model({"architecture": "module", "weights": str(tmp_path / "fixed.pt"), "image_size": 48})


def test_one_channel_batchnorm_model_prepares_for_rendering():
    grey = load_model({"architecture": "timm:resnet18", "allow_random": True, "channels": 1, "image_size": 32})
    net = prepare_model(grey.module, channels=1, probe_size=32)
    probe = torch.randn(1, 1, 32, 32)
    assert torch.allclose(net(probe), grey.module(probe), atol=1e-4)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # folded into the convs


def test_shared_modules_are_counted(vit):
    _, calls = probe_calls(vit.module, vit.preprocess.input_shape())
    assert max(calls.values()) == 1  # timm's ViT runs every module once


def test_deconvnet_on_a_model_without_relus_is_rejected_at_start(tmp_path):
    structure = model_structure("vit", VIT, tmp_path)
    config = {"attribution": {"layers": {"vit": ["blocks.1"]}},
              "analyses": [{"model": "vit", "views": {"attribution": ["blocks.1"]}}]}
    with pytest.raises(ConfigError, match=r"attribution.layers.vit: DeconvNet projections need ReLUs \(modules or "
                                          r"torch.relu / F.relu calls\) and vit has none; set "
                                          r"`attribution.layers: \{vit: \[\]\}`"):
        check_views(config, {"vit": structure})
    config["analyses"][0]["views"]["attribution"] = []
    assert check_views(config, {"vit": structure}) == []
    by_default = {"analyses": [{"model": "vit", "views": {"attribution": ["blocks.1"]}}]}  # not asked for by name
    assert check_views(by_default, {"vit": structure}) == [
        "DeconvNet projections need ReLUs (modules or torch.relu / F.relu calls) and vit has none: its projections "
        "are skipped (Grad-CAM still runs)"]
    assert by_default["analyses"][0]["views"]["attribution"] == []


def test_renders_take_their_size_from_the_model(vit):
    from featvis.render.jobs import fit_to_model
    from featvis.render.transforms import standard_transforms

    assert [t.get("size") for t in standard_transforms()] == [12, 8, None, None, 4]  # the Distill recipe at 128
    assert [t.get("size") for t in standard_transforms(32)] == [3, 2, None, None, 1]
    job = {"size": 128, "input_size": None, "transforms": "standard"}
    assert fit_to_model(job, vit) == {"size": 64, "input_size": 64, "transforms": standard_transforms(64)}
    effnet = load_model({"architecture": "efficientnet_lite0", "image_size": 160})
    assert fit_to_model(job, effnet) == job  # an ImageNet-sized CNN renders as before
    wide = load_model({"architecture": "timm:resnet18", "allow_random": True, "image_size": [32, 48]})
    assert fit_to_model(job, wide)["input_size"] == (32, 48) and fit_to_model(job, wide)["size"] == 48


def test_channels_last_layers_are_rejected_at_start(tmp_path):
    spec = {"architecture": "timm:swin_tiny_patch4_window7_224", "allow_random": True, "image_size": 56}
    structure = model_structure("swin", spec, tmp_path)
    with pytest.raises(ConfigError, match=r"layer 'layers.0' of swin outputs channels-last maps \(B, H, W, C\)"):
        check_layer("swin", "layers.0", structure, "analyses[0].layers")
    check_layer("swin", "patch_embed.proj", structure, "analyses[0].layers")  # the patch convolution is (B, C, H, W)


# --- the class token (and register tokens) as non-spatial units: `<layer>@cls` -----------------


def _blocks_by_hand(model, image: torch.Tensor, last: int) -> torch.Tensor:
    """A second implementation of a timm ViT's token sequence after block ``last``: its own parts,
    called in forward_features' order, with no hooks."""
    tokens = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(image))))
    for block in model.blocks[: last + 1]:
        tokens = block(tokens)
    return tokens


def test_the_class_token_is_a_non_spatial_unit(vit):
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), capture(vit.module, ["blocks.3@cls", "blocks.3", "norm@cls", "blocks.3@0"]) as out:
        run_to_layers(vit.module, image, out)
        tokens = _blocks_by_hand(vit.module, image, 3)
        final = vit.module.forward_features(image)
    assert out["blocks.3@cls"].shape == (2, 192)  # (N, C), as a classifier's fc
    assert torch.allclose(out["blocks.3@cls"], tokens[:, 0], atol=1e-6)
    assert torch.equal(out["blocks.3@0"], out["blocks.3@cls"])  # by index: the same token
    spatial = tokens[:, 1:].reshape(2, 4, 4, 192).permute(0, 3, 1, 2)  # the patch tokens, raster order
    assert torch.allclose(out["blocks.3"], spatial, atol=1e-6)
    assert torch.allclose(out["norm@cls"], final[:, 0], atol=1e-6)  # timm's own class-token read-out input


def test_gradients_reach_the_image_through_the_class_token(vit):
    image = torch.randn(1, 3, 64, 64, requires_grad=True)
    with capture(vit.module, ["blocks.2", "blocks.2@cls"], detach=False) as out:
        logits = vit.module(image)
        out["blocks.2@cls"][:, 5].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    with torch.no_grad():
        assert torch.allclose(logits, vit.module(image), atol=1e-5)  # reading both leaves the model's output as is


def test_register_and_distillation_tokens_by_name():
    from featvis.core.tokens import attach_token_grids

    registers = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, reg_tokens=2).eval()
    grids = attach_token_grids(registers, (1, 3, 32, 32))
    assert grids["blocks.0"] == TokenGrid(3, 2, 2) and grids["blocks.0"].names == ("cls", "reg0", "reg1")
    image = torch.randn(1, 3, 32, 32)
    with torch.no_grad(), capture(registers, ["blocks.0@reg1", "blocks.0@2"]) as out:
        run_to_layers(registers, image, out)
        tokens = _blocks_by_hand(registers, image, 0)
    assert torch.allclose(out["blocks.0@reg1"], tokens[:, 2], atol=1e-6) and torch.equal(out["blocks.0@2"],
                                                                                         out["blocks.0@reg1"])
    no_class = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, reg_tokens=2,
                                 class_token=False, global_pool="avg").eval()
    assert attach_token_grids(no_class, (1, 3, 32, 32))["blocks.0"].names == ("reg0", "reg1")
    with pytest.raises(UnknownLayerError, match=r"unknown token @cls of 'blocks.0', whose 2 prefix token\(s\) are "
                                                r"@reg0, @reg1, @0, @1"):
        get_layer(no_class, "blocks.0@cls")
    distilled = timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False, img_size=32).eval()
    assert attach_token_grids(distilled, (1, 3, 32, 32))["blocks.0"].names == ("cls", "dist")


@pytest.fixture(scope="module")
def vit_structure(tmp_path_factory):
    return model_structure("vit", VIT, tmp_path_factory.mktemp("vit"))


@pytest.mark.parametrize("layer, message", [
    ("head@cls", r"'head' is not a token layer .* so it has no @cls token; use 'head' itself"),
    ("patch_embed@cls", r"'patch_embed' has no class or register tokens \(its tokens are the 4x4 patch grid only\)"),
    ("blocks.1@reg0", r"unknown token @reg0 of 'blocks.1', whose 1 prefix token\(s\) are @cls, @0"),
    ("blocks.1@1", r"unknown token @1 of 'blocks.1'"),
    ("blocks.99@cls", r"unknown layer 'blocks.99' \(closest: "),
])
def test_bad_prefix_token_names_are_rejected_at_start(vit_structure, layer, message):
    with pytest.raises(ConfigError, match=message) as error:
        check_layer("vit", layer, vit_structure, "analyses[0].layers")
    assert str(error.value).startswith("analyses[0].layers: ")


def test_class_token_shapes_and_channels_at_start(vit_structure):
    from featvis.core.config import is_spatial
    from featvis.vision.checks import layer_shapes, layer_width

    check_layer("vit", "blocks.1@cls", vit_structure, "analyses[0].layers")
    shapes = layer_shapes(vit_structure)
    assert shapes["blocks.1@cls"] == (192,) and not is_spatial(shapes["blocks.1@cls"])  # Grad-CAM never picks it
    assert "patch_embed@cls" not in shapes and layer_width(vit_structure, "blocks.11@cls") == 192
    with pytest.raises(ConfigError, match="channel 192 is out of range for layer 'blocks.1@cls' of vit"):
        check_channels("vit", "blocks.1@cls", [192], vit_structure, "render.jobs.a.channels")


def test_class_token_field_is_the_whole_image(vit, tmp_path):
    from featvis.vision.receptive import load_fields, save_fields

    shape = vit.preprocess.input_shape()
    traced = ReceptiveFields(vit.module, shape, ["blocks.1", "blocks.1@cls"])
    assert traced.layer_field("blocks.1@cls") is None and traced.field("blocks.1@cls") is None  # as an fc layer
    assert traced.layer_field("blocks.1").kind == "token"  # the spatial map keeps its token field
    save_fields(tmp_path / "fields.npz", shape, {n: traced.layer_field(n) for n in ("blocks.1", "blocks.1@cls")})
    assert load_fields(tmp_path / "fields.npz")[1]["blocks.1@cls"] is None


def test_render_a_class_token_channel(vit):
    from featvis.render import objectives as obj
    from featvis.render.optimize import RenderSettings, render

    settings = RenderSettings(mean=vit.preprocess.mean, std=vit.preprocess.std, size=64, steps=6, transforms="none")
    result = render(vit.module, obj.channel("blocks.2@cls", [3, 7]), [0, 1], settings)
    assert result.images.shape == (2, 64, 64, 3) and result.activations["blocks.2@cls"].shape == (2, 192)
    assert (result.trace[-1] > result.trace[0]).all()  # each item's class-token channel rises under Adam


# --- images resized as the model's preprocessing says: interpolation and crop_pct -------------


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A real photo (scikit-image's chelsea, 300x451), so the resampling filters disagree."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("photo") / "chelsea.png"
    Image.fromarray(data.chelsea()).save(path)
    return path


def _pil_view(path, size: int, interpolation, cover: int) -> np.ndarray:
    """Known answer: PIL's own resize of the shorter side to ``cover``, then the centre ``size``."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        width = round(image.width * cover / image.height)  # chelsea is wider than tall
        image = image.resize((width, cover), interpolation)
    left, top = (width - size) // 2, (cover - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)))


def test_a_timm_model_sees_images_resized_as_timm_says(vit, photo):
    from PIL import Image

    from featvis.vision.data import model_image

    assert (vit.preprocess.interpolation, vit.preprocess.crop_pct) == ("bicubic", 0.9)  # timm's pretrained config
    seen = model_image(photo, vit.preprocess)
    expected = _pil_view(photo, 64, Image.Resampling.BICUBIC, 71)  # floor(64 / 0.9) = 71, as timm's eval transform
    np.testing.assert_array_equal(seen, expected)
    assert not np.array_equal(seen, _pil_view(photo, 64, Image.Resampling.BILINEAR, 71))  # the filter matters
    nearest = load_model({**VIT, "interpolation": "nearest", "crop_pct": 1.0}).preprocess  # the config overrides
    np.testing.assert_array_equal(model_image(photo, nearest), _pil_view(photo, 64, Image.Resampling.NEAREST, 64))


def test_other_models_still_resize_bilinearly_with_no_crop(photo):
    from PIL import Image

    from featvis.vision.data import display_image, model_image

    effnet = load_model({"architecture": "efficientnet_lite0", "image_size": 96}).preprocess
    assert (effnet.interpolation, effnet.crop_pct) == ("bilinear", 1.0)
    seen = model_image(photo, effnet)
    np.testing.assert_array_equal(seen, _pil_view(photo, 96, Image.Resampling.BILINEAR, 96))
    np.testing.assert_array_equal(seen, display_image(photo, 96))  # what every stage cut before


def test_unknown_interpolation_is_a_clear_error(photo):
    from featvis.vision.data import display_image
    from featvis.vision.models import Preprocess

    with pytest.raises(ValueError, match=r"interpolation 'cubic' is not a resampling filter featvis knows \(one of "
                                         r"nearest, box, bilinear, hamming, bicubic, lanczos\)"):
        Preprocess(64, (0.5,), (0.5,), interpolation="cubic")
    with pytest.raises(ValueError, match="unknown interpolation 'cubic'"):
        display_image(photo, 64, interpolation="cubic")
    with pytest.raises(ValueError, match=r"crop_pct 1.5 must be in \(0, 1\]"):
        Preprocess(64, (0.5,), (0.5,), crop_pct=1.5)
