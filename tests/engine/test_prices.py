"""The price table, its overrides from the config file, and the estimate of a job."""

from __future__ import annotations

import dataclasses

import pytest

from veotui.core.capabilities import MODELS
from veotui.core.errors import SettingsError
from veotui.core.prices import DEFAULT_PRICES, PRICES_READ_ON, PRICES_SOURCE, estimate_cost, price_table
from veotui.core.request import JobRequest
from veotui.settings import load_settings


def request(**fields) -> JobRequest:
    return JobRequest.from_mapping({"prompt": "a kite", **fields})


def test_every_model_has_a_price_with_and_without_sound_at_every_resolution():
    assert PRICES_SOURCE and PRICES_READ_ON
    for model in MODELS:
        entry = DEFAULT_PRICES[model]
        for resolution in ("720p", "1080p"):
            with_sound = entry.per_second(audio=True, resolution=resolution)
            silent = entry.per_second(audio=False, resolution=resolution)
            assert with_sound is not None and silent is not None
            assert 0 < silent < with_sound < 1


def test_the_estimate_is_seconds_times_videos_times_the_price_per_second():
    per_second = DEFAULT_PRICES["veo-3.1-generate-001"].per_second(audio=True, resolution="720p")
    assert per_second is not None
    assert estimate_cost(request(duration_seconds=8, number_of_videos=4)) == round(8 * 4 * per_second, 2)
    one = estimate_cost(request(duration_seconds=4))
    assert one is not None and estimate_cost(request(duration_seconds=4, number_of_videos=3)) == round(3 * one, 2)


def test_silence_is_cheaper_and_the_models_default_is_sound():
    default_sound = JobRequest(prompt="a kite", model="veo-3.1-generate-001", resolution="720p", duration_seconds=8)
    silent = estimate_cost(dataclasses.replace(default_sound, generate_audio=False))
    default = estimate_cost(default_sound)
    assert silent is not None and default is not None and silent < default
    assert default == estimate_cost(request(duration_seconds=8))


def test_resolutions_are_priced_apart_where_google_does():
    lite = "veo-3.1-lite-generate-001"
    low = estimate_cost(request(model=lite, resolution="720p"))
    high = estimate_cost(request(model=lite, resolution="1080p"))
    assert low is not None and high is not None and low < high


def test_an_unknown_model_has_no_estimate():
    # Built directly: validation would refuse the model before any price is looked up.
    assert estimate_cost(JobRequest(prompt="a kite", model="veo-9", resolution="720p", duration_seconds=8)) is None


def test_the_config_file_overrides_prices(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[prices."veo-3.1-generate-001"]\naudio = 0.5\naudio_1080p = 0.75\n'
        '[prices."veo-3.1-fast-generate-001"]\nsilent = 0.01\n'
    )
    settings = load_settings(env={"VEOTUI_CONFIG": str(config)})
    table = settings.price_table
    assert estimate_cost(request(duration_seconds=4), table) == 2.0
    assert estimate_cost(request(duration_seconds=4, resolution="1080p"), table) == 3.0
    fast = table.get("veo-3.1-fast-generate-001")
    assert fast is not None and fast.per_second(audio=False, resolution="720p") == 0.01
    # What the file does not name keeps the shipped figure.
    assert fast.per_second(audio=True, resolution="720p") == DEFAULT_PRICES["veo-3.1-fast-generate-001"].per_second(
        audio=True, resolution="720p"
    )
    assert estimate_cost(request(model="veo-3.1-lite-generate-001"), table) == estimate_cost(
        request(model="veo-3.1-lite-generate-001")
    )


def test_a_model_only_the_config_file_prices_gets_an_estimate():
    table = price_table({"veo-9": {"audio": 1.0}})
    entry = table.get("veo-9")
    assert entry is not None and entry.per_second(audio=True, resolution="1080p") == 1.0


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("prices = 3\n", "[prices]"),
        ('[prices]\n"veo-3.1-generate-001" = 0.4\n', "veo-3.1-generate-001"),
        ('[prices."veo-3.1-generate-001"]\nsound = 0.4\n', "'sound'"),
        ('[prices."veo-3.1-generate-001"]\naudio_8k = 0.4\n', "'audio_8k'"),
        ('[prices."veo-3.1-generate-001"]\naudio = -1\n', "audio"),
        ('[prices."veo-3.1-generate-001"]\naudio = "cheap"\n', "audio"),
        ('[prices."veo-3.1-generate-001"]\naudio = true\n', "audio"),
    ],
)
def test_bad_prices_in_the_config_file_are_named(tmp_path, text, names):
    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_settings(env={"VEOTUI_CONFIG": str(config)})
    assert names in str(caught.value) and str(config) in str(caught.value)


def test_a_job_that_asks_for_silence_is_estimated_at_the_silent_price():
    silent, default = estimate_cost(request(generate_audio=False)), estimate_cost(request())
    assert silent is not None and default is not None and silent < default
    assert estimate_cost(request(generate_audio=True)) == default
