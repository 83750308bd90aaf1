"""The models users train load as they are, and every checkpoint problem names the file and the fix:
a fine-tuned head read from the file, a user's own class named by `builder:`, a truncated file, one of
another architecture, another head size, a class pickled from a script, an error in the user's forward."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import timm
import torch
import torchvision

from featvis.core.config import ConfigError
from featvis.vision.builders import BuilderError
from featvis.vision.checkpoints import (
    ArchitectureMismatchError,
    CheckpointError,
    HeadSizeError,
    UnreadableCheckpointError,
)
from featvis.vision.checks import check_vision
from featvis.vision.models import InputSizeError, load_model

NET = textwrap.dedent('''
    import sys

    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, num_classes=4):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.act = nn.ReLU()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, num_classes)

        def forward(self, x):
            return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


    class Broken(Net):
        def forward(self, x):
            raise ValueError("my layer wants 5 channels")


    class Functional(Net):
        def __init__(self):
            super().__init__()
            del self.act  # no ReLU module: only the call below

        def forward(self, x):
            return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


    if __name__ == "__main__":
        torch.manual_seed(0)
        model = Net()
        torch.save(model, sys.argv[1])
        torch.save(model.state_dict(), sys.argv[2])
''')


@pytest.fixture(scope="module")
def script_net(tmp_path_factory):
    """A class defined in a user's script, saved from it as a whole module and as a state dict."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "my_net.py").write_text(NET)
    subprocess.run([sys.executable, "my_net.py", "whole.pt", "state.pt"], cwd=folder, check=True)
    return folder


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """A torchvision ResNet-18 with a 5-class head, saved as a state dict."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=5).eval()
    path = tmp_path_factory.mktemp("ft") / "resnet18_5.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_finetuned_torchvision_head_is_read_from_the_file(finetuned):
    reference, path = finetuned
    loaded = load_model({"architecture": "resnet18", "weights": str(path)}, "mine")
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(loaded.module(x), reference(x))
    assert loaded.preprocess.class_names == ("0", "1", "2", "3", "4")
    named = load_model({"architecture": "resnet18", "weights": str(path), "class_names": list("abcde")})
    assert named.preprocess.class_names == tuple("abcde")


def test_head_size_mismatch_suggests_num_classes(finetuned):
    _, path = finetuned
    with pytest.raises(HeadSizeError, match=r"head 'fc' in .*resnet18_5.pt has 5 outputs, but the model was built "
                                            r"with 10: set `num_classes: 5`"):
        load_model({"architecture": "resnet18", "weights": str(path), "num_classes": 10})
    with pytest.raises(HeadSizeError, match="`class_names` lists 3 names but the classifier head has 5 outputs"):
        load_model({"architecture": "resnet18", "weights": str(path), "class_names": ["a", "b", "c"]})


def test_finetuned_timm_head_and_wrapped_checkpoint(tmp_path):
    model = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
    torch.save({"epoch": 7, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
               tmp_path / "ckpt.pth")  # as a training script with DataParallel saves it
    loaded = load_model({"architecture": "timm:resnet18", "weights": str(tmp_path / "ckpt.pth")})
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded.module(x), model(x))
    assert loaded.module.get_classifier().out_features == 3


def test_num_classes_builds_the_head_without_a_file():
    loaded = load_model({"architecture": "efficientnet_lite0", "weights": "random", "num_classes": 7})
    assert loaded.module(torch.zeros(1, 3, 32, 32)).shape == (1, 7)


def test_truncated_checkpoint(finetuned, tmp_path):
    _, path = finetuned
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UnreadableCheckpointError, match=r"cut.pt \([\d,]+ bytes\) cannot be read: it is truncated, "
                                                        r"corrupt or not a torch checkpoint .*Copy or save it again"):
        load_model({"architecture": "resnet18", "weights": str(cut)})


def test_checkpoint_of_another_architecture(tmp_path):
    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), tmp_path / "mobile.pt")
    with pytest.raises(ArchitectureMismatchError) as error:
        load_model({"architecture": "resnet18", "weights": str(tmp_path / "mobile.pt")})
    message = str(error.value)
    assert "mobile.pt does not fit this architecture" in message
    assert "of the model's keys are not in the file (first: conv1.weight, bn1.weight, bn1.bias)" in message
    assert "keys in the file are not in the model (first: features.0.0.weight" in message
    assert "Set `architecture:` to the one it was saved from" in message


def test_class_pickled_from_a_script_says_how_to_load_it(script_net):
    with pytest.raises(CheckpointError, match=r"pickled from a script: its class 'Net' was defined in that script "
                                              r"\(__main__\).*`builder: path/to/script.py:Net`"):
        load_model({"architecture": "module", "weights": str(script_net / "whole.pt"), "image_size": 16})


def test_builder_loads_a_whole_pickle_and_a_state_dict(script_net):
    builder = f"{script_net / 'my_net.py'}:Net"
    whole = load_model({"architecture": "module", "builder": builder, "weights": str(script_net / "whole.pt"),
                        "image_size": 16})
    state = load_model({"architecture": "module", "builder": builder, "weights": str(script_net / "state.pt"),
                        "image_size": 16})
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(whole.module(x), state.module(x))
    assert state.preprocess.channels == 3 and type(state.module).__name__ == "Net"


def test_builder_kwargs_and_a_state_dict_without_builder(script_net, tmp_path):
    module = load_model({"architecture": "module", "builder": f"{script_net / 'my_net.py'}:Net", "allow_random": True,
                         "builder_kwargs": {"num_classes": 2}, "image_size": 16}).module
    assert module.fc.out_features == 2
    with pytest.raises(CheckpointError, match="holds a state dict .*name the model class it belongs to with `builder:"):
        load_model({"architecture": "module", "weights": str(script_net / "state.pt"), "image_size": 16})


@pytest.mark.parametrize(("builder", "message"), [
    ("nowhere/missing_net.py:Net", r"builder file 'nowhere/missing_net.py' not found \(looked at .*missing_net.py\)"),
    ("my_net.py:Nett", r"unknown name 'Nett' \(closest: Net"),
    ("not_a_package_xyz.models:Net", "builder module 'not_a_package_xyz.models' cannot be imported"),
    ("my_net.py", "expected `package.module:function` or `path/to/file.py:function`"),
])
def test_bad_builder_is_named(script_net, monkeypatch, builder, message):
    monkeypatch.chdir(script_net)
    with pytest.raises(BuilderError, match=message):
        load_model({"architecture": "module", "builder": builder, "weights": "state.pt", "image_size": 16})


def test_error_in_the_users_forward_names_its_place(script_net):
    with pytest.raises(InputSizeError, match=r"my layer wants 5 channels; raised at .*my_net.py:22 in forward\); "
                                             r"fix the model's code there"):
        load_model({"architecture": "module", "builder": f"{script_net / 'my_net.py'}:Broken", "allow_random": True,
                    "image_size": 16})


def test_start_check_lists_every_checkpoint_problem(finetuned, script_net, tmp_path):
    """check_vision runs when Snakemake parses: each broken model is one line, all at once."""
    _, path = finetuned
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:1000])
    models = {
        "cut": {"architecture": "resnet18", "weights": str(tmp_path / "cut.pt")},
        "head": {"architecture": "resnet18", "weights": str(path), "num_classes": 3},
        "pickle": {"architecture": "module", "weights": str(script_net / "whole.pt"), "image_size": 16},
        "fine": {"architecture": "resnet18", "weights": str(path), "image_size": 32},
        "other": {"architecture": "resnet34", "weights": str(path)},
        "builder": {"architecture": "module", "builder": str(tmp_path / "gone.py:Net"), "image_size": 16},
    }
    with pytest.raises(ConfigError) as error:
        check_vision({"datasets": {}, "models": models, "analyses": []}, tmp_path / "cache")
    lines = str(error.value).splitlines()
    assert lines[0] == "5 models cannot be loaded:"
    assert any(line.startswith("  - models.other: resnet34: ") and "does not fit this architecture" in line
               for line in lines)
    assert any(line.startswith("  - models.builder: builder file ") and "gone.py" in line for line in lines)
    truncated = "cut.pt (1,000 bytes) cannot be read: it is truncated"
    assert any(line.startswith("  - models.cut: resnet18: ") and truncated in line for line in lines)
    assert any(line.startswith("  - models.head: resnet18: the classifier head 'fc'") for line in lines)
    assert any(line.startswith("  - models.pickle: module: ") and "builder:" in line for line in lines)


def test_weights_and_builder_source_make_the_identity(script_net, tmp_path):
    """What every stage's params carry: a changed weights file or builder file is a new identity."""
    from featvis.vision.checks import model_structure

    for name in ("my_net.py", "state.pt"):
        (tmp_path / name).write_bytes((script_net / name).read_bytes())
    spec = {"architecture": "module", "builder": f"{tmp_path / 'my_net.py'}:Net", "weights": str(tmp_path / "state.pt"),
            "image_size": 16}
    first = model_structure("mine", spec, tmp_path / "cache")["weights_id"]
    assert first == model_structure("mine", spec, tmp_path / "cache")["weights_id"]
    assert first.count("sha256:") == 2
    with open(tmp_path / "my_net.py", "a") as handle:
        handle.write("# a new line in the model's source\n")
    second = model_structure("mine", spec, tmp_path / "cache")["weights_id"]
    assert second.split()[0] == first.split()[0] and second != first


def test_start_check_finds_relus_written_in_the_forward(script_net, tmp_path):
    """DeconvNet's start check: a ReLU module, or torch.relu called in the forward (no module)."""
    from featvis.vision.checks import model_structure

    def structure(name, builder):
        spec = {"architecture": "module", "builder": f"{script_net / 'my_net.py'}:{builder}", "allow_random": True,
                "image_size": 16}
        return model_structure(name, spec, tmp_path)

    functional = structure("functional", "Functional")
    assert functional["rectifiers"] is True and not any("act" in m for m in functional["modules"])
    assert model_structure("vit", {"architecture": "timm:vit_tiny_patch16_224", "allow_random": True,
                                   "image_size": 32}, tmp_path)["rectifiers"] is False
