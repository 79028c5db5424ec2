"""A running ``veotui serve`` process follows its config file's users: at once on SIGHUP, and
``veotui doctor`` advises hashing a token kept in plain text."""

from __future__ import annotations

import io
import os
import signal

from tests.fleet.servers import FleetServer
from tests.server.harness import server_env
from tests.support.waiting import wait_until
from veotui.cli.doctor import run_doctor
from veotui.settings import load_settings, token_sha256

ALICE, BOB, CAROL = "alice-token-1", "bob-token-22", "carol-token3"  # bob's and carol's: same length


def users_file(second: str, token: str) -> str:
    return (
        "# the team\n"
        f'[users.alice]\ntoken_sha256 = "{token_sha256(ALICE)}"\n\n'
        f'[users.{second}]\ntoken_sha256 = "{token_sha256(token)}"\nrole = "viewer"\n'
    )


def status(server: FleetServer, token: str) -> int:
    with server.client() as client:
        return client.get("/api/me", headers={"authorization": f"Bearer {token}"}).status_code


def test_sighup_applies_a_change_the_periodic_look_cannot_see(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(users_file("bobby", BOB))
    env = server_env(tmp_path / "data", VEOTUI_CONFIG=str(config), VEOTUI_TOKEN="the-servers-own-token")
    server = FleetServer(env).serving()
    try:
        assert status(server, BOB) == 200 and status(server, CAROL) == 401
        # carol takes bobby's place in a file of the same size, inode and time: only SIGHUP
        # makes the server read it.
        before = os.stat(config)
        with open(config, "r+") as file:
            file.write(users_file("carol", CAROL))
        os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(config)
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
        server.signal(signal.SIGHUP)
        wait_until(lambda: status(server, CAROL) == 200, 30, what="carol let in after SIGHUP")
        assert status(server, BOB) == 401
        assert status(server, ALICE) == 200
        assert server.process.poll() is None  # SIGHUP reloads; it does not stop the server
    finally:
        server.stop()


def test_doctor_advises_hashing_a_token_kept_in_plain_text(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[users]\nolga = "plain-old-token"\n')
    settings = load_settings({"VEOTUI_CONFIG": str(config), "VEOTUI_DATA_DIR": str(tmp_path / "data")})
    out = io.StringIO()
    run_doctor(settings, {}, out=out)
    advice = next(line for line in out.getvalue().splitlines() if line.strip().startswith("advice  users:"))
    assert "olga" in advice and "plain text" in advice and "veotui users rotate olga" in advice
    assert "plain-old-token" not in out.getvalue()
