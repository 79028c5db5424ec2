"""``veotui users`` edits the config file in place: comments and everything else kept."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from veotui.settings import read_users

ORIGINAL = """# veotui on the team's box
max_concurrent = 2   # two slots

[users]
# the old form: still an operator
olga = "plain-old-token"

[prices]  # overrides
"""


def veotui(config, *args):
    env = {**os.environ, "VEOTUI_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "veotui", "users", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_users_round_trip_a_config_file_with_its_comments(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(ORIGINAL)
    added = veotui(config, "add", "alice", "--role", "viewer", "--budget", "20", "--max-concurrent", "2")
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    text = config.read_text()
    assert token not in text
    assert hashlib.sha256(token.encode()).hexdigest() in text
    for line in ORIGINAL.splitlines():
        assert line in text
    alice = read_users(config)["alice"]
    assert (alice.role.value, alice.daily_budget_usd, alice.max_concurrent) == ("viewer", 20.0, 2)

    listed = veotui(config, "list")
    assert "alice" in listed.stdout and "olga" in listed.stdout and "plain text" in listed.stdout
    assert token not in listed.stdout and "plain-old-token" not in listed.stdout

    rotated = veotui(config, "rotate", "olga")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip().splitlines()[-1]
    assert "plain-old-token" not in config.read_text()
    olga = read_users(config)["olga"]
    assert olga.token_sha256 == hashlib.sha256(new.encode()).hexdigest() and olga.plain_token is None

    assert veotui(config, "remove", "alice").returncode == 0
    assert set(read_users(config)) == {"olga"}
    text = config.read_text()
    for line in ("# veotui on the team's box", "max_concurrent = 2   # two slots", "[prices]  # overrides"):
        assert line in text


def test_users_refuses_a_bad_name_and_an_unknown_user(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(ORIGINAL)
    bad = veotui(config, "add", "a b")
    assert bad.returncode == 2 and "is not a user name" in bad.stderr
    missing = veotui(config, "remove", "nobody")
    assert missing.returncode == 2 and "nobody is not a user" in missing.stderr
    assert config.read_text() == ORIGINAL
