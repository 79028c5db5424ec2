import pytest

from veotui.core.access import Role, UserEntry
from veotui.core.errors import SettingsError
from veotui.generators import choose_generator
from veotui.settings import load_settings, token_sha256


def test_defaults(tmp_path):
    settings = load_settings(env={"VEOTUI_CONFIG": str(tmp_path / "none.toml")})
    assert settings.generator == "auto"
    assert settings.max_concurrent == 2
    assert settings.poll_interval is None
    assert settings.sim_seconds == 8.0
    assert settings.auto_delete_after_download == 5.0
    assert settings.remote == "http://127.0.0.1:8765"
    assert settings.gcs_bucket is None and settings.token is None
    assert settings.data_dir.name == "veotui"


def test_file_then_environment_then_flags(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        'max_concurrent = 3\nsim_seconds = 2.5\nauto_delete_after_download = "off"\n'
        'data_dir = "/srv/veo"\n[users]\nalice = "tok-a"\n[keymap]\ncancel = "x"\n'
    )
    env = {"VEOTUI_CONFIG": str(config), "VEOTUI_MAX_CONCURRENT": "4"}
    settings = load_settings(env=env, overrides={"data_dir": str(tmp_path / "d")})
    assert settings.max_concurrent == 4
    assert settings.sim_seconds == 2.5
    assert settings.auto_delete_after_download is None
    assert settings.data_dir == tmp_path / "d"
    assert settings.users == {"alice": UserEntry("alice", token_sha256("tok-a"), Role.OPERATOR, plain_token="tok-a")}
    assert settings.keymap == {"cancel": "x"}
    assert settings.db_path == tmp_path / "d" / "veotui.db"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("VEOTUI_MAX_CONCURRENT", "0", "VEOTUI_MAX_CONCURRENT must be a whole number of at least 1, got '0'"),
        ("VEOTUI_MAX_CONCURRENT", "two", "VEOTUI_MAX_CONCURRENT must be a whole number"),
        ("VEOTUI_POLL_INTERVAL", "-1", "VEOTUI_POLL_INTERVAL must be a number of seconds"),
        ("VEOTUI_SIM_SECONDS", "soon", "VEOTUI_SIM_SECONDS must be a number of seconds"),
        (
            "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD",
            "later",
            "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD must be a number of seconds \\(0 or more\\) or 'off'",
        ),
        ("VEOTUI_GENERATOR", "dalle", "VEOTUI_GENERATOR must be one of auto, sim, veo"),
        ("VEOTUI_REMOTE", "localhost:8765", "VEOTUI_REMOTE must be an http:// or https:// URL"),
        ("VEOTUI_ALLOWED_HOSTS", "https://veo.example.com", "VEOTUI_ALLOWED_HOSTS must list host names like"),
        ("VEOTUI_ALLOWED_HOSTS", "veo.example.com/api", "VEOTUI_ALLOWED_HOSTS must list host names like"),
        ("VEOTUI_ALLOWED_HOSTS", "veo*.example.com", "VEOTUI_ALLOWED_HOSTS must list host names like"),
        ("VEOTUI_ALLOWED_ORIGINS", "tool.example", "VEOTUI_ALLOWED_ORIGINS must list origins like"),
        ("VEOTUI_ALLOWED_ORIGINS", "https://tool.example/app", "VEOTUI_ALLOWED_ORIGINS must list origins like"),
        ("VEOTUI_HEADER_TIMEOUT", "0", "VEOTUI_HEADER_TIMEOUT must be a number of seconds above 0"),
        ("VEOTUI_BODY_TIMEOUT", "never", "VEOTUI_BODY_TIMEOUT must be a number of seconds"),
        ("VEOTUI_MAX_CONNECTIONS", "0", "VEOTUI_MAX_CONNECTIONS must be a whole number of at least 1"),
        ("VEOTUI_IMAGE_WORKERS", "none", "VEOTUI_IMAGE_WORKERS must be a whole number of at least 1"),
    ],
)
def test_bad_values_name_the_setting(tmp_path, variable, value, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(env={"VEOTUI_CONFIG": str(tmp_path / "none.toml"), variable: value})


def test_a_bad_config_file_is_named(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("max_concurrent = [")
    with pytest.raises(SettingsError, match=f"config file {config} cannot be read"):
        load_settings(env={"VEOTUI_CONFIG": str(config)})
    config.write_text("colour = 'red'")
    with pytest.raises(SettingsError, match="unknown setting 'colour'"):
        load_settings(env={"VEOTUI_CONFIG": str(config)})
    config.write_text("max_concurrent = 0")
    with pytest.raises(SettingsError, match=f"max_concurrent in {config} must be a whole number"):
        load_settings(env={"VEOTUI_CONFIG": str(config)})


def test_auto_picks_veo_only_with_google_settings(tmp_path):
    settings = load_settings(env={"VEOTUI_CONFIG": str(tmp_path / "none.toml")})
    assert choose_generator(settings, env={}) == "sim"
    assert choose_generator(settings, env={"GOOGLE_CLOUD_PROJECT": "p"}) == "veo"
    assert choose_generator(settings.replace(generator="sim"), env={"GOOGLE_CLOUD_PROJECT": "p"}) == "sim"


def test_a_user_name_with_a_control_character_is_refused(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[users]\n"eve\\u001b[2J" = "tok-e"\n')
    with pytest.raises(SettingsError, match=r"the user name 'eve\\\\x1b\[2J' holds a control character"):
        load_settings(env={"VEOTUI_CONFIG": str(config)})


def test_the_server_limits_and_allow_lists(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('allowed_hosts = ["Veo.Example.com", "*.corp.example"]\nimage_workers = 3\n')
    env = {
        "VEOTUI_CONFIG": str(config),
        "VEOTUI_ALLOWED_ORIGINS": "https://tool.example, http://localhost:3000",
        "VEOTUI_HEADER_TIMEOUT": "2.5",
        "VEOTUI_MAX_CONNECTIONS": "64",
    }
    settings = load_settings(env=env)
    assert settings.allowed_hosts == ("veo.example.com", "*.corp.example")
    assert settings.allowed_origins == ("https://tool.example", "http://localhost:3000")
    assert (settings.header_timeout, settings.body_timeout, settings.max_connections) == (2.5, 30.0, 64)
    assert settings.image_workers == 3
    defaults = load_settings(env={"VEOTUI_CONFIG": str(tmp_path / "none.toml")})
    assert (defaults.header_timeout, defaults.max_connections, defaults.image_workers) == (10.0, 1000, 2)
    assert defaults.allowed_hosts == defaults.allowed_origins == ()


def test_the_token_comes_from_the_most_specific_place(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    config = tmp_path / "config.toml"
    config.write_text('token = "from-the-config"\n')
    base = {"VEOTUI_CONFIG": str(config)}
    assert load_settings(env=base).token == "from-the-config"
    with_file = load_settings(env={**base, "VEOTUI_TOKEN_FILE": str(token_file)})
    assert (with_file.token, with_file.token_file) == ("from-the-file", token_file)
    flag = load_settings(env={**base, "VEOTUI_TOKEN_FILE": str(token_file)}, overrides={"token": "from-the-flag"})
    assert (flag.token, flag.token_file) == ("from-the-flag", None)
    file_flag = load_settings(env={**base, "VEOTUI_TOKEN": "env"}, overrides={"token_file": str(token_file)})
    assert file_flag.token == "from-the-file"
    with pytest.raises(SettingsError, match="VEOTUI_TOKEN and VEOTUI_TOKEN_FILE both give the token"):
        load_settings(env={**base, "VEOTUI_TOKEN": "env", "VEOTUI_TOKEN_FILE": str(token_file)})
    client = load_settings(env={**base, "VEOTUI_TOKEN_FILE": str(token_file)}, only={"remote", "token", "token_file"})
    assert client.token == "from-the-file"
