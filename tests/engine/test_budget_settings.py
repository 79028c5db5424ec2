"""``daily_budget_usd``: from the environment or the config file, refused clearly when wrong."""

from __future__ import annotations

import pytest

from veotui.core.errors import SettingsError
from veotui.settings import load_settings


@pytest.mark.parametrize("raw, value", [("50", 50.0), ("12.5", 12.5), ("$8", 8.0), ("off", None), ("", None)])
def test_the_budget_from_the_environment(tmp_path, raw, value):
    env = {"VEOTUI_CONFIG": str(tmp_path / "none.toml"), "VEOTUI_DAILY_BUDGET_USD": raw}
    assert load_settings(env=env).daily_budget_usd == value


def test_no_budget_by_default_and_one_from_the_config_file(tmp_path):
    assert load_settings(env={"VEOTUI_CONFIG": str(tmp_path / "none.toml")}).daily_budget_usd is None
    config = tmp_path / "config.toml"
    config.write_text("daily_budget_usd = 25\n")
    assert load_settings(env={"VEOTUI_CONFIG": str(config)}).daily_budget_usd == 25.0
    env = {"VEOTUI_CONFIG": str(config), "VEOTUI_DAILY_BUDGET_USD": "40"}
    assert load_settings(env=env).daily_budget_usd == 40.0


@pytest.mark.parametrize("raw", ["0", "-5", "lots", "inf", "nan"])
def test_a_wrong_budget_is_named(tmp_path, raw):
    env = {"VEOTUI_CONFIG": str(tmp_path / "none.toml"), "VEOTUI_DAILY_BUDGET_USD": raw}
    with pytest.raises(SettingsError, match="VEOTUI_DAILY_BUDGET_USD must be an amount of US dollars"):
        load_settings(env=env)
