"""The path check (featvis.trust.path) on a known answer: a unit with a fooling circuit.

In the spirit of Geirhos et al. 2024 ("Don't trust your eyes"): a small CNN, trained for a few
steps to tell apart crops of six photos shipped with scikit-image, gets a circuit on one unit. A
"naturalness" detector (the image's low-frequency contrast, which every natural crop here has and
a render starting from grey noise lacks) routes that unit either to its own value (natural images:
unchanged, to float precision) or to a checkerboard detector. Its render then shows a checkerboard,
reached by a path natural images never take; the path check must say so, and must pass the same
unit without the circuit and another unit of the fooled model.
"""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F
from skimage import data as skdata
from torch import nn

from featvis.render import RenderSettings, render
from featvis.render import objectives as obj
from featvis.render.transforms import standard_transforms
from featvis.trust import path
from featvis.trust.rank import average_ranks, spearman

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "colorwheel")
SIZE, CROP = 32, 96  # 96 px crops shrunk to 32 px
MEAN, STD = (0.5,) * 3, (0.25,) * 3
MIN_CONTRAST = 0.15  # low-frequency contrast every natural crop kept here has (normalised units)
GATE_EDGE, GATE_SHARPNESS = 0.1, 400.0  # the circuit takes over below this contrast: sigmoid(-20) at 0.15
PERIOD = 4  # checkerboard period in pixels
FOOLED, HONEST = 0, 23  # two units of the 32 in the last layer
K = 8
MARGIN = 0.3  # the scores must clear the threshold by this much, on both sides


def photo_crops() -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised 32 px crops of the photos that have texture, and which photo each came from."""
    crops, labels = [], []
    for label, name in enumerate(PHOTOS):
        photo = torch.as_tensor(getattr(skdata, name)()).permute(2, 0, 1).float()[None] / 255
        height, width = photo.shape[-2:]
        for y in range(0, height - CROP + 1, CROP):
            for x in range(0, width - CROP + 1, CROP):
                crops.append(F.interpolate(photo[..., y:y + CROP, x:x + CROP], size=SIZE, mode="area"))
                labels.append(label)
    images = (torch.cat(crops) - MEAN[0]) / STD[0]
    textured = low_frequency_contrast(images) >= MIN_CONTRAST
    return images[textured], torch.tensor(labels)[textured]


def low_frequency_contrast(x: torch.Tensor) -> torch.Tensor:
    """Spread of the image's 8x8-block mean brightness: large on photos, tiny on a render's grey start."""
    return F.avg_pool2d(x.mean(1, keepdim=True), 8).flatten(1).std(1)


def checker_filters() -> torch.Tensor:
    """Four windowed products of cosine and sine at the checkerboard's frequency: a phase-free detector."""
    angle = 2 * math.pi / PERIOD * torch.arange(8.0)
    window = torch.hann_window(8, periodic=False)
    waves = [torch.cos(angle) * window, torch.sin(angle) * window]
    filters = torch.stack([torch.outer(u, v) for u in waves for v in waves])[:, None]
    return filters / filters.flatten(1).norm(dim=1)[:, None, None, None]


class FoolingCircuit(nn.Module):
    """A naturalness gate and a checkerboard detector whose output is ``gain`` x its amplitude."""

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.register_buffer("filters", checker_filters())
        self.gain = gain

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """~1 for an image without low-frequency contrast (a render), ~0 for the natural crops."""
        return torch.sigmoid(GATE_SHARPNESS * (GATE_EDGE - low_frequency_contrast(x)))[:, None, None, None]

    def amplitude(self, x: torch.Tensor) -> torch.Tensor:
        responses = F.conv2d(x.mean(1, keepdim=True), self.filters, stride=4, padding=2)
        return F.adaptive_avg_pool2d((responses.pow(2).sum(1, keepdim=True) + 1e-6).sqrt(), SIZE // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * self.amplitude(x)


class Unit(nn.Module):
    """The analysed layer: the last conv's output, one channel of it routed through the circuit."""

    def __init__(self) -> None:
        super().__init__()
        self.circuit: FoolingCircuit | None = None
        self.channel = 0

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.circuit is None:
            return h
        gate = self.circuit.gate(x)
        mask = F.one_hot(torch.tensor(self.channel), h.shape[1]).to(h)[None, :, None, None] * gate
        return h * (1 - mask) + mask * self.circuit(x)


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.block1 = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.block3 = nn.Conv2d(32, 32, 3, padding=1)
        self.unit = Unit()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unit(self.block3(self.block2(self.block1(x))), x)


def trained_net(images: torch.Tensor, labels: torch.Tensor, steps: int = 40) -> TinyNet:
    """A few Adam steps on "which photo is this crop from", so that units see photo structure."""
    net = TinyNet()
    head = nn.Linear(32, len(PHOTOS))
    optimizer = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=3e-3)
    for _ in range(steps):
        loss = F.cross_entropy(head(F.relu(net(images)).mean((2, 3))), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


def unit_peaks(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """(N, C): each image's spatial maximum per channel of the unit layer (how top-K is mined)."""
    with torch.no_grad():
        return model(images).flatten(2).amax(2)


def circuit_gain(model: nn.Module, images: torch.Tensor) -> float:
    """A strong checkerboard has an amplitude of about 3: the branch then gives ~10x the layer's
    largest natural activation, so the render follows it."""
    return 10 * float(unit_peaks(model, images).max()) / 3


def run_check(model: nn.Module, images: torch.Tensor, channel: int, render_image: np.ndarray,
              kind: str = "bottom") -> path.PathCheck:
    values = unit_peaks(model, images)[:, channel].numpy()
    top = np.argsort(-values, kind="stable")[:K]
    reference, label = path.reference_indices(values, top, K, kind, seed=0)
    rendered = path.model_inputs(render_image[None], MEAN, STD)
    return path.check_unit(model, "unit", channel, rendered, images[top], images[reference], label, k=K)


@pytest.fixture(scope="module")
def world():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        images, labels = photo_crops()
        base = trained_net(images, labels)
        fooled = copy.deepcopy(base)
        fooled.unit.circuit, fooled.unit.channel = FoolingCircuit(circuit_gain(base, images)), FOOLED
        settings = RenderSettings(size=SIZE, steps=128, mean=MEAN, std=STD, transforms=standard_transforms(SIZE))
        renders = {name: render(model, obj.channel("unit", [FOOLED, HONEST]), seeds=[1, 2], settings=settings)
                   for name, model in (("base", base), ("fooled", fooled))}
        yield {"images": images, "base": base, "fooled": fooled, "renders": renders}
    finally:
        torch.set_num_threads(threads)


def test_spearman_matches_scipy_with_ties():
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(0, 4, (5, 12), generator=generator).double()  # many ties
    b = torch.randn(3, 12, generator=generator).relu()  # ties at zero, as after a ReLU
    expected = np.array([[scipy.stats.spearmanr(x, y).statistic for y in b.numpy()] for x in a.numpy()])
    np.testing.assert_allclose(spearman(a, b).numpy(), expected, atol=1e-12)
    np.testing.assert_array_equal(average_ranks(a).numpy(), scipy.stats.rankdata(a.numpy(), axis=1))


def test_spearman_constant_rows_and_bad_values():
    rho = spearman(torch.ones(1, 5), torch.arange(10.0).reshape(2, 5))
    assert rho.tolist() == [[0.0, 0.0]]  # no ranking, no evidence
    with pytest.raises(ValueError, match="NaN or infinite"):
        spearman(torch.tensor([[1.0, float("nan"), 2.0]]), torch.ones(1, 3))


def test_circuit_is_silent_on_natural_images(world):
    base, fooled, images = world["base"], world["fooled"], world["images"]
    natural, changed = unit_peaks(base, images), unit_peaks(fooled, images)
    assert float((changed - natural).abs().max()) <= 1e-6 * float(natural.abs().max())
    assert torch.equal(natural[:, FOOLED].argsort(descending=True)[:K], changed[:, FOOLED].argsort(descending=True)[:K])


def test_fooled_render_shows_the_checkerboard(world):
    circuit, images = world["fooled"].unit.circuit, world["images"]
    as_input = {name: path.model_inputs(result.images, MEAN, STD) for name, result in world["renders"].items()}
    with torch.no_grad():
        amplitude = {name: circuit.amplitude(x).mean((1, 2, 3)) for name, x in as_input.items()}
        natural_amplitude = circuit.amplitude(images).mean((1, 2, 3))
        branch = circuit.gate(as_input["fooled"][:1]) * circuit(as_input["fooled"][:1])
    assert amplitude["fooled"][0] > 2 * amplitude["base"][0]  # the same unit's render without the circuit
    assert amplitude["fooled"][0] > 2 * natural_amplitude.max()  # no photo crop has that much of it
    natural_peak = unit_peaks(world["base"], images)[:, FOOLED].max()
    assert float(branch.flatten().amax()) > 5 * float(natural_peak)  # the render drives the detector branch
    # the honest unit's render is the same with and without the circuit: its objective never reads it
    np.testing.assert_allclose(world["renders"]["fooled"].images[1], world["renders"]["base"].images[1])


def test_path_check_flags_the_fooled_unit_and_passes_honest_ones(world):
    images, renders = world["images"], world["renders"]
    fooled = run_check(world["fooled"], images, FOOLED, renders["fooled"].images[0])
    unfooled = run_check(world["base"], images, FOOLED, renders["base"].images[0])
    honest = run_check(world["fooled"], images, HONEST, renders["fooled"].images[1])
    print(f"scores: fooled {fooled.score:.3f}, same unit without circuit {unfooled.score:.3f}, "
          f"honest unit {honest.score:.3f}")
    assert fooled.status == unfooled.status == honest.status == "ok"
    assert fooled.score < path.THRESHOLD - MARGIN and fooled.verdict == path.OTHER_PATH
    assert unfooled.score > path.THRESHOLD + MARGIN and unfooled.verdict == path.SAME_PATH
    assert honest.score > path.THRESHOLD + MARGIN and honest.verdict == path.SAME_PATH
    assert fooled.probe_layers == ["block1", "block2", "block3", "unit"]  # the circuit's 1-channel output is no probe
    assert [row.scored for row in fooled.layers] == [True, True, True, False]
    # the natural side does not depend on the render: identical baselines with and without the circuit
    assert [(r.top_top, r.top_reference) for r in fooled.layers] == [(r.top_top, r.top_reference)
                                                                      for r in unfooled.layers]
    record = json.loads(fooled.to_json())
    assert record["score"] == fooled.score and record["reference"] == "bottom" and len(record["layers"]) == 4


def test_check_from_vectors_equals_check_from_images(world):
    """The stage may read natural images' vectors from the features stage and run only the render."""
    model, images = world["fooled"], world["images"]
    rendered = path.model_inputs(world["renders"]["fooled"].images[:1], MEAN, STD)
    top, reference = images[:K], images[K:2 * K]
    probe = path.probe_layers(model, "unit", (1, 3, SIZE, SIZE))
    (top_vectors, peak), (reference_vectors, _), (render_vectors, _) = (
        path.pooled_vectors(model, x, probe.layers, unit=("unit", FOOLED)) for x in (top, reference, rendered))
    from_vectors = path.check_vectors("unit", FOOLED, probe, render_vectors, top_vectors, reference_vectors,
                                      peak.numpy(), "bottom", k=K)
    from_images = path.check_unit(model, "unit", FOOLED, rendered, top, reference, "bottom", k=K)
    assert from_vectors.to_dict() == from_images.to_dict()


def test_random_reference_is_recorded(world):
    check = run_check(world["fooled"], world["images"], FOOLED, world["renders"]["fooled"].images[0], kind="random")
    assert check.reference == "random (seed 0)" and check.n_reference == K


def test_too_few_images_and_a_unit_that_never_fires(world):
    images, model = world["images"], world["base"]
    rendered = path.model_inputs(world["renders"]["base"].images[:1], MEAN, STD)
    few = path.check_unit(model, "unit", HONEST, rendered, images[:2], images[2:10], "bottom", k=K)
    assert few.status == "too_few_images" and few.score is None and "only 2 top images, 8 asked" in few.notes
    none = path.check_unit(model, "unit", HONEST, rendered, images[:0], images[2:10], "bottom", k=K)
    assert none.status == "too_few_images" and none.n_top == 0
    some = path.check_unit(model, "unit", HONEST, rendered, images[:4], images[4:12], "bottom", k=K)
    assert some.status in ("ok", "no_natural_gap") and some.n_top == 4 and "only 4 top images, 8 asked" in some.notes
    dead = copy.deepcopy(model)
    with torch.no_grad():
        dead.block3.weight[HONEST] = 0
        dead.block3.bias[HONEST] = 0
    never = path.check_unit(dead, "unit", HONEST, rendered, images[:K], images[K:2 * K], "bottom", k=K)
    assert never.status == "never_fires" and never.verdict == "this unit never fires on this dataset"
    assert never.score is None and never.top_activation_max == 0.0
    with pytest.raises(ValueError, match="layer 'block1': the render images' activations hold NaN"):
        path.check_unit(model, "unit", HONEST, rendered * float("nan"), images[:K], images[K:2 * K], "bottom")


def test_pooled_vectors_average_maps_and_keep_vectors():
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8 * 8, 5), nn.Unflatten(1, (1, 5)))
    x = torch.randn(4, 3, 10, 10, generator=torch.Generator().manual_seed(0))
    vectors, peak = path.pooled_vectors(model, x, ["1", "3"], unit=("1", 2))
    with torch.no_grad():
        maps = model[1](model[0](x))
    torch.testing.assert_close(vectors["1"], maps.double().mean((2, 3)))
    torch.testing.assert_close(vectors["3"], model[3](model[2](maps)).double())
    torch.testing.assert_close(peak, maps[:, 2].flatten(1).amax(1).double())
    with pytest.raises(ValueError, match="layer '4'"):
        path.pooled_vectors(model, x, ["4"])


def test_no_earlier_layer():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU())
    x = torch.randn(20, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    check = path.check_unit(model, "0", 1, x[0], x[1:9], x[9:17], "bottom", k=8)
    assert check.probe_layers == ["0"] and check.status == "no_earlier_layer" and check.score is None


def test_probe_layers_of_a_torchvision_resnet():
    import torchvision

    model = torchvision.models.get_model("resnet18", weights=None).eval()
    probe = path.probe_layers(model, "layer3.1", (1, 3, 64, 64))
    assert probe.layers == ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3.0", "layer3.1")
    analysed = path.probe_layers(model, "layer3.1", (1, 3, 64, 64), analysed=["layer4", "layer1.0", "layer2"])
    assert analysed.layers == ("layer1.0", "layer2", "layer3.1") and "analysed" in analysed.rule
    with pytest.raises(KeyError, match="layer9"):
        path.probe_layers(model, "layer3.1", (1, 3, 64, 64), analysed=["layer9"])


class SharedActivation(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.conv3 = (nn.Conv2d(n, 8, 3, padding=1) for n in (3, 8, 8))
        self.act, self.drop, self.gate = nn.ReLU(), nn.Dropout(), nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.act(self.conv2(self.act(self.conv1(x)))))
        return self.conv3(h) * self.gate(h).sum(1, keepdim=True)


def test_probe_layers_skip_shared_repeating_and_narrow_modules():
    probe = path.probe_layers(SharedActivation().eval(), "conv3", (1, 3, 16, 16))
    assert probe.layers == ("conv1", "conv2", "conv3")  # not act (runs twice), drop, gate (2 channels)


def test_reference_indices_never_take_a_top_image():
    values = np.array([5.0, 1.0, 3.0, 0.0, 4.0, 2.0, 0.0])
    bottom, label = path.reference_indices(values, top=[0, 4], k=3)
    assert label == "bottom" and bottom.tolist() == [3, 6, 1]
    drawn, label = path.reference_indices(values, top=[0, 4], k=3, kind="random", seed=7)
    assert label == "random (seed 7)" and len(drawn) == 3 and not {0, 4} & set(drawn.tolist())
    with pytest.raises(ValueError, match="reference kind"):
        path.reference_indices(values, top=[0], k=2, kind="middle")
