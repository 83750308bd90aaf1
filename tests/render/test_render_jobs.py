import pytest

from featvis.render.jobs import layer_channels, settings_from_job


def test_settings_from_a_config_job():
    job = {"model": "m", "layer": "l", "size": 96, "steps": 10, "octaves": [[48, 4], [96, 6]],
           "transforms": "none", "input_size": None}
    settings = settings_from_job(job, (0.1, 0.2, 0.3), (1, 1, 1))
    assert settings.size == 96 and settings.steps == 10
    assert settings.schedule() == [(48, 4), (96, 6)]
    assert settings.mean == (0.1, 0.2, 0.3) and settings.input_size is None


@pytest.mark.parametrize("steps", [0, -1, 2.5])
def test_bad_steps_in_a_job(steps):
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        settings_from_job({"steps": steps}, (0, 0, 0), (1, 1, 1))


def test_all_channels_and_checked_lists(grating_net):
    assert layer_channels(grating_net, "relu", "all") == [0, 1]
    assert layer_channels(grating_net, "conv", [1]) == [1]
    with pytest.raises(ValueError, match="channel 2 is out of range for layer 'relu', which has 2"):
        layer_channels(grating_net, "relu", [0, 2])
    with pytest.raises(ValueError, match="list of integers or 'all'"):
        layer_channels(grating_net, "relu", "some")
    with pytest.raises(KeyError, match="unknown layer 'fc'"):
        layer_channels(grating_net, "fc", "all")
