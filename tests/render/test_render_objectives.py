import numpy as np
import pytest
import torch

from featvis.render import objectives as obj


@pytest.fixture
def acts():
    gen = torch.Generator().manual_seed(0)
    return {"a": torch.randn(4, 6, 5, 7, generator=gen), "fc": torch.randn(4, 10, generator=gen)}


def test_channel_one_index_per_item(acts):
    score = obj.channel("a", [0, 3, 5, 1])(acts)
    expected = [acts["a"][i, c].mean() for i, c in enumerate([0, 3, 5, 1])]
    torch.testing.assert_close(score, torch.stack(expected))


def test_neuron_defaults_to_centre(acts):
    score = obj.neuron("a", 2)(acts)
    torch.testing.assert_close(score, acts["a"][:, 2, 2, 3])
    torch.testing.assert_close(obj.neuron("a", 2, x=0, y=4)(acts), acts["a"][:, 2, 4, 0])


def test_arithmetic_matches_the_terms(acts):
    a, b = obj.channel("a", 1), obj.layer("a")
    combined = a + 2 * b - 0.5 * obj.neuron("a", 0)
    expected = a(acts) + 2 * b(acts) - 0.5 * obj.neuron("a", 0)(acts)
    torch.testing.assert_close(combined(acts), expected)
    torch.testing.assert_close((-a)(acts), -a(acts))
    assert set(combined.layers) == {"a"}


def test_interpolation_weights_run_from_a_to_b(acts):
    a, b = obj.channel("a", 0), obj.channel("a", 1)
    mixed = obj.interpolate(a, b, 4)(acts)
    t = torch.linspace(0, 1, 4)
    torch.testing.assert_close(mixed, (1 - t) * a(acts) + t * b(acts))
    with pytest.raises(ValueError, match="at least 2 frames"):
        obj.interpolate(a, b, 1)


def test_layer_is_mean_square(acts):
    torch.testing.assert_close(obj.layer("a")(acts), acts["a"].pow(2).mean((1, 2, 3)))


def test_class_logit_and_probability_against_numpy(acts):
    logits = acts["fc"].numpy().astype(np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(obj.class_logit("fc", 3)(acts).numpy(), logits[:, 3], rtol=1e-6)
    np.testing.assert_allclose(obj.class_probability("fc", [1, 2, 3, 4])(acts).numpy(),
                               probs[np.arange(4), [1, 2, 3, 4]], rtol=1e-5)


def test_direction_dot_and_cosine(acts):
    v = torch.arange(6, dtype=torch.float32)
    dot = (acts["a"] * v.reshape(1, -1, 1, 1)).sum(1).mean((1, 2))
    torch.testing.assert_close(obj.direction("a", v)(acts), dot)
    cos = torch.nn.functional.cosine_similarity(acts["a"], v.reshape(1, -1, 1, 1), dim=1).mean((1, 2))
    torch.testing.assert_close(obj.direction("a", v, cossim=True)(acts), cos)
    rand = obj.random_direction("a", 6, seed=3)
    torch.testing.assert_close(rand(acts), obj.random_direction("a", 6, seed=3)(acts))


def test_diversity_against_numpy(acts):
    a = acts["a"].numpy().astype(np.float64).reshape(4, 6, -1)
    grams = np.stack([x @ x.T for x in a]).reshape(4, -1)
    grams /= np.linalg.norm(grams, axis=1, keepdims=True)
    sim = grams @ grams.T
    groups = [0, 0, 1, 1]
    expected = [-np.mean([sim[i, j] for j in range(4) if j != i and groups[j] == groups[i]])
                for i in range(4)]
    np.testing.assert_allclose(obj.diversity("a", groups)(acts).numpy(), expected, rtol=1e-5)


def test_diversity_is_lowest_for_identical_items():
    same = {"a": torch.ones(3, 2, 4, 4)}
    torch.testing.assert_close(obj.diversity("a")(same), torch.full((3,), -1.0))


def test_alignment_is_zero_for_identical_frames_and_negative_otherwise(acts):
    same = {"a": acts["a"][:1].expand(4, -1, -1, -1)}
    torch.testing.assert_close(obj.alignment("a")(same), torch.zeros(4))
    assert (obj.alignment("a")(acts) < 0).all()
    # the per-item split preserves the total: sum over pairs of mean squared distance / 2^d
    a = acts["a"]
    total = sum(((a[d:] - a[:-d]) ** 2).flatten(1).mean(1).sum() / 2**d for d in range(1, 4))
    torch.testing.assert_close(obj.alignment("a")(acts).sum(), -total)


def test_channel_out_of_range_is_a_clear_error(acts):
    with pytest.raises(obj.ChannelOutOfRangeError, match="out of range for layer 'a', which has 6"):
        obj.channel("a", [0, 6, 1, 2]).check(acts)
    with pytest.raises(ValueError, match="out of range"):
        obj.class_logit("fc", 10).check(acts)
    with pytest.raises(ValueError, match="has 3 components"):
        obj.direction("a", [1.0, 2.0, 3.0]).check(acts)


def test_wrong_number_of_indices_is_a_clear_error(acts):
    with pytest.raises(ValueError, match="3 indices for a batch of 4"):
        obj.channel("a", [0, 1, 2])(acts)


def test_stack_gives_each_item_its_own_objective(acts):
    a, b = obj.channel("a", 1), obj.channel("a", 4)
    items = [a, a + b, b, -a]
    score = obj.stack(items)(acts)
    expected = torch.stack([o(acts)[i] for i, o in enumerate(items)])
    torch.testing.assert_close(score, expected)
    with pytest.raises(ValueError, match="stack of 2 objectives for a batch of 4"):
        obj.stack([a, b])(acts)
