"""What veotui keeps is its owner's alone, whatever the umask: the data directory 0700, the
database (with its WAL and SHM), the log, the lock and the job files 0600. A config or token
file that others can read is warned about, and a token can come from a file so that it never
shows in ``ps``."""

from __future__ import annotations

import io
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.server.harness import ServeProcess, server_env
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

TOKEN = "t0ken-from-a-file"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


def veotui(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "veotui", *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o000])
def test_everything_in_the_data_directory_is_private_whatever_the_umask(tmp_path, umask):
    data = tmp_path / "data"
    server = ServeProcess(server_env(data, VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD="off"), umask=umask)
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            job = client.post("/api/generate", files=[("prompt", (None, "private")), ("image", ("a.png", png()))])
            job_id = job.json()["job_id"]
            wait_until(lambda: client.get(f"/api/status/{job_id}").json()["status"] == "completed", what="completed")
            assert client.get(f"/api/download/{job_id}").status_code == 200
            assert client.get(f"/api/jobs/{job_id}/pictures").status_code == 200
            names = {p.name for p in data.rglob("*")}
            assert {"veotui.db", "veotui.db-wal", "veotui.db-shm", "veotui.log", "veotui.lock"} <= names
            assert {"uploaded_image.jpg", "all_videos.zip", "generated_video_1.mp4"} <= names
            exposed = [
                f"{path.relative_to(data)} {oct(mode(path))}"
                for path in [data, *data.rglob("*")]
                if mode(path) & (stat.S_IRWXG | stat.S_IRWXO)
            ]
            assert exposed == []
            assert mode(data) == 0o700
            assert (
                mode(data / "veotui.db") == mode(data / "veotui.db-wal") == mode(data / "logs" / "veotui.log") == 0o600
            )
    finally:
        server.signal(signal.SIGTERM)
        server.wait(15)
        server.kill()


def test_files_left_open_by_an_older_veotui_are_made_private_and_an_open_directory_is_warned_about(tmp_path):
    data = tmp_path / "data"
    server = ServeProcess(server_env(data))
    server.signal(signal.SIGTERM)
    assert server.wait(15) == 0
    # As an older veotui left them under umask 022.
    os.chmod(data, 0o755)
    for name in ("veotui.db", "logs/veotui.log"):
        os.chmod(data / name, 0o644)
    doctor = veotui(server_env(data), "doctor", "--data")
    assert doctor.returncode == 0, doctor.stdout
    privacy = next(line for line in doctor.stdout.splitlines() if "privacy:" in line)
    assert privacy.split()[0] == "warn" and f"chmod 700 {data}" in privacy and "veotui.db (-rw-r--r--)" in privacy

    again = ServeProcess(server_env(data))
    try:
        assert mode(data / "veotui.db") == mode(data / "logs" / "veotui.log") == 0o600
        assert mode(data) == 0o755, "a directory the owner made is not changed behind their back"
    finally:
        again.signal(signal.SIGTERM)
        again.wait(15)
        again.kill()
    assert f"the data directory {data} (drwxr-xr-x) lets other users of this machine in" in again.stderr()


@pytest.mark.parametrize(
    ("content", "file_mode", "warned"),
    [
        (f'token = "{TOKEN}"\n', 0o644, True),
        ('[users]\nalice = "a-long-token"\n', 0o640, True),
        (f'token = "{TOKEN}"\n', 0o600, False),
        ("max_concurrent = 2\n", 0o644, False),
    ],
)
def test_a_config_file_holding_tokens_that_others_can_read_is_warned_about(tmp_path, content, file_mode, warned):
    config = tmp_path / "config.toml"
    config.write_text(content)
    config.chmod(file_mode)
    env = server_env(tmp_path / "data", VEOTUI_CONFIG=str(config))
    expected = f"the config file {config} holds tokens and other users of this machine can read it"
    server = ServeProcess(env)
    server.signal(signal.SIGTERM)
    server.wait(15)
    assert (expected in server.stderr()) is warned
    for args in (("doctor", "--data"), ("doctor",)):
        doctor = veotui(env, *args)
        assert (expected in doctor.stdout) is warned, doctor.stdout
        if warned:
            assert f"chmod 600 {config}" in doctor.stdout


def test_a_token_file_gives_the_token_without_it_showing_in_ps(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    data = tmp_path / "data"
    server = ServeProcess(server_env(data), "--host", "127.0.0.1", "--token-file", str(token_file))
    try:
        command_line = Path(f"/proc/{server.process.pid}/cmdline").read_bytes()
        assert TOKEN.encode() not in command_line
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            assert client.get("/api/queue").status_code == 401
            assert client.get("/api/queue", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        client_env = {**server_env(Path("/nonexistent")), "VEOTUI_REMOTE": server.url}
        by_env = veotui({**client_env, "VEOTUI_TOKEN_FILE": str(token_file)}, "queue", "status")
        assert by_env.returncode == 0, by_env.stderr
        by_flag = veotui(client_env, "queue", "status", "--token-file", str(token_file))
        assert by_flag.returncode == 0, by_flag.stderr
        assert veotui(client_env, "queue", "status").returncode == 1
    finally:
        server.signal(signal.SIGTERM)
        server.wait(15)
        server.kill()
    assert "token file" not in server.stderr()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the token file"),
        ("", "must hold the token alone, on one line"),
        ("two\nlines", "must hold the token alone, on one line"),
    ],
)
def test_a_token_file_that_cannot_give_a_token_is_one_line_and_exit_2(tmp_path, content, message):
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    result = veotui(server_env(tmp_path / "data", VEOTUI_TOKEN_FILE=str(token_file)), "serve", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.startswith("veotui: VEOTUI_TOKEN_FILE: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_token_file_others_can_read_is_warned_about_and_token_and_file_together_are_refused(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    env = server_env(tmp_path / "data", VEOTUI_TOKEN_FILE=str(token_file))
    server = ServeProcess(env)
    server.signal(signal.SIGTERM)
    server.wait(15)
    assert f"the token file {token_file} holds tokens and other users of this machine can read it" in server.stderr()
    both = veotui({**env, "VEOTUI_TOKEN": "other"}, "serve", "--port", "0")
    assert both.returncode == 2
    assert "VEOTUI_TOKEN and VEOTUI_TOKEN_FILE both give the token" in both.stderr
    # A flag is more specific than the environment: it wins, without a complaint.
    flagged = ServeProcess({**env, "VEOTUI_TOKEN": "other"}, "--token", "from-the-flag")
    try:
        with httpx.Client(base_url=flagged.url, trust_env=False) as client:
            assert client.get("/api/queue", headers={"authorization": "Bearer from-the-flag"}).status_code == 200
    finally:
        flagged.kill()
