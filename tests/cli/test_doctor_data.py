"""``veotui doctor --data`` as a real command: the data directory's permissions, free space,
holder and database, without starting the engine and without writing to the database."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys

import pytest

from tests.cli.test_startup_faults import (
    a_veotui_database,
    backups,
    digest,
    foreign_database,
    read_only_mount,  # noqa: F401 - a fixture
)
from tests.server.harness import ServeProcess, server_env

pytestmark = pytest.mark.slow


def doctor(data_dir, expect: int) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "veotui", "doctor", "--data"],
        env=server_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == expect, result
    assert "Traceback" not in result.stderr
    return result.stdout


def line(output: str, check: str) -> str:
    return next(row.strip() for row in output.splitlines() if row.split(":")[0].split()[-1:] == [check])


def test_a_healthy_directory_in_use_by_a_server(tmp_path):
    data = tmp_path / "data"
    server = ServeProcess(server_env(data))
    try:
        output = doctor(data, 0)
    finally:
        server.signal(signal.SIGTERM)
        server.wait(15)
        server.kill()
    assert line(output, "permissions").startswith(f"ok    permissions: {data} is writable (drwx")
    assert line(output, "space").startswith("ok    free space: ")
    assert f"in use by veotui process {server.process.pid}" in line(output, "use")
    assert "veotui's, schema" in line(output, "database")
    assert line(output, "integrity") == "ok    integrity: PRAGMA integrity_check: ok"
    assert output.rstrip().endswith("the data directory is in order.")
    assert not [p for p in data.iterdir() if p.name.startswith(".veotui-doctor-")]


def test_scrambled_pages_fail_the_integrity_check_and_the_file_is_left_alone(tmp_path):
    data = tmp_path / "data"
    db = data / "veotui.db"
    a_veotui_database(db)
    raw = bytearray(db.read_bytes())
    # Scramble the last pages (the jobs' rows), keeping the schema readable.
    pages = len(raw) // 4096
    rng = random.Random(3)
    for number in range(pages - 4, pages - 1):
        raw[number * 4096 + 8 : (number + 1) * 4096] = rng.randbytes(4096 - 8)
    db.write_bytes(bytes(raw))
    before = digest(data)
    output = doctor(data, 1)
    assert line(output, "integrity").startswith(f"FAIL  integrity: {db} is damaged (integrity_check: ")
    assert "1 problem(s)" in output
    assert digest(data) == before and not backups(data)


def test_another_applications_database_fails_and_is_left_alone(tmp_path):
    data = tmp_path / "data"
    foreign_database(data / "veotui.db", user_version=7)
    before = digest(data)
    output = doctor(data, 1)
    assert "is not a veotui database (it has tables foo)" in line(output, "database")
    assert digest(data) == before


def test_a_data_dir_that_is_a_file(tmp_path):
    a_file = tmp_path / "data"
    a_file.write_text("x")
    assert line(doctor(a_file, 1), "directory").startswith(f"FAIL  directory: {a_file} is a file, not a directory")


def test_a_read_only_mount_fails_the_permission_check(read_only_mount):  # noqa: F811
    output = doctor(read_only_mount, 1)
    assert "read-only file system" in line(output, "permissions")
    assert line(output, "integrity") == "ok    integrity: PRAGMA integrity_check: ok"


def test_a_nearly_full_disk_fails_the_space_check(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        output = doctor(mount_point, 1)
        assert line(output, "space").startswith("FAIL  free space: only 0.0 GB free of 0.0 GB")
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
