"""A data directory or database veotui cannot use: ``veotui serve`` and ``veotui`` (the TUI)
refuse it in one line that names the file, says what is wrong and what to do, exit 1, and
never write to a file that is not theirs."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server.harness import ServeProcess, server_env
from tests.support.damage import damage_an_index_page
from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.store.database_file import APPLICATION_ID
from veotui.store.migrations import MIGRATIONS
from veotui.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow

SERVE = ("serve", "--port", "0")
TUI = ()


def run(data_dir: Path, args: tuple[str, ...] = SERVE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "veotui", *args],
        env=server_env(data_dir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(data_dir: Path, args: tuple[str, ...] = SERVE) -> str:
    """The one line a refused start prints (exit status 1, no traceback, no URL)."""
    result = run(data_dir, args)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert "veotui serves" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def a_veotui_database(path: Path, jobs: int = 300) -> None:
    store = SqliteStore(path)  # makes the data directory as veotui does: private
    store.insert_many(
        Job(
            job_id=new_job_id(),
            status=Status.QUEUED,
            request=JobRequest.from_mapping({"prompt": f"job {n} " + "a long prompt " * 20}),
        )
        for n in range(jobs)
    )
    store.close()


def digest(data_dir: Path) -> dict[str, str]:
    """Every file in the directory but the lock, by content hash."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in data_dir.iterdir()
        if p.is_file() and p.name != "veotui.lock"
    }


def backups(data_dir: Path) -> list[Path]:
    return sorted(p for p in data_dir.glob("veotui.db.damaged-*") if not p.name.endswith("-wal"))


@pytest.mark.parametrize("args", [SERVE, TUI], ids=["serve", "tui"])
def test_garbage_is_refused_and_copied_aside(tmp_path, args):
    data = tmp_path / "data"
    data.mkdir()
    garbage = random.Random(1).randbytes(8192)
    (data / "veotui.db").write_bytes(garbage)
    line = refused(data, args)
    assert f"{data / 'veotui.db'} is damaged" in line
    assert "does not start with a SQLite header" in line
    [copy] = backups(data)
    assert f"a copy is at {copy}" in line
    assert copy.read_bytes() == garbage == (data / "veotui.db").read_bytes()
    if args == SERVE:
        # A second refusal makes no second copy of the same damage.
        refused(data, args)
        assert backups(data) == [copy]


def test_a_truncated_database_is_refused_as_damaged(tmp_path):
    data = tmp_path / "data"
    db = data / "veotui.db"
    a_veotui_database(db)
    whole = db.read_bytes()
    db.write_bytes(whole[: len(whole) // 2])
    line = refused(data)
    assert f"{db} is damaged (" in line
    assert "a copy is at" in line and ".recover" in line
    assert backups(data)[0].read_bytes() == whole[: len(whole) // 2]


def test_a_database_with_scrambled_pages_is_refused_as_damaged(tmp_path):
    data = tmp_path / "data"
    db = data / "veotui.db"
    a_veotui_database(db)
    raw = bytearray(db.read_bytes())
    page = 4096
    assert len(raw) > 8 * page
    rng = random.Random(2)
    for number in (2, 4, 6):
        raw[number * page : (number + 1) * page] = rng.randbytes(page)
    db.write_bytes(bytes(raw))
    line = refused(data)
    assert f"{db} is damaged (" in line
    assert "a copy is at" in line


def test_a_directory_named_veotui_db_is_refused(tmp_path):
    data = tmp_path / "data"
    (data / "veotui.db").mkdir(parents=True)
    line = refused(data)
    assert line == (
        f"veotui: {data / 'veotui.db'} is a directory, not a database; move it away or choose another "
        "data directory (--data-dir or VEOTUI_DATA_DIR)"
    )


def test_a_data_dir_that_is_a_file_or_sits_under_one_is_refused(tmp_path):
    a_file = tmp_path / "data"
    a_file.write_text("not a directory")
    assert refused(a_file) == (
        f"veotui: data directory {a_file} is a file, not a directory; choose another data directory "
        "(--data-dir or VEOTUI_DATA_DIR)"
    )
    under = a_file / "veotui" / "data"
    line = refused(under)
    assert line.startswith(f"veotui: data directory {under} cannot be created: {a_file} is a file;")
    assert a_file.read_text() == "not a directory"


@pytest.fixture
def read_only_mount(tmp_path):
    """A tmpfs holding a veotui database, remounted read-only (needs root)."""
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only file system needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        a_veotui_database(mount_point / "data" / "veotui.db", jobs=3)
        subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)
        yield mount_point / "data"
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_read_only_mount_is_refused(read_only_mount):
    line = refused(read_only_mount)
    assert line.startswith(f"veotui: data directory {read_only_mount} cannot be written:")
    assert "read-only file system" in line and "remount it read-write" in line


def foreign_database(path: Path, user_version: int, application_id: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE foo (x INTEGER); INSERT INTO foo VALUES (1);"
        f" PRAGMA user_version = {user_version}; PRAGMA application_id = {application_id};"
    )
    conn.close()


@pytest.mark.parametrize(
    ("user_version", "application_id", "args"),
    [(0, 0, SERVE), (7, 0, SERVE), (1, 0x12345678, SERVE), (7, 0, TUI)],
    ids=["v0", "v7", "other-app", "v7-tui"],
)
def test_another_applications_database_is_refused_and_left_byte_identical(tmp_path, user_version, application_id, args):
    data = tmp_path / "data"
    foreign_database(data / "veotui.db", user_version, application_id)
    before = digest(data)
    line = refused(data, args)
    assert line.startswith(f"veotui: {data / 'veotui.db'} is not a veotui database (it has tables foo")
    assert line.endswith("; veotui left it untouched; choose another data directory (--data-dir or VEOTUI_DATA_DIR)")
    assert digest(data) == before  # the same bytes, and no -wal, -shm or journal appeared
    assert not backups(data)


def test_a_foreign_database_that_looks_like_veotuis_but_lacks_its_tables_is_refused(tmp_path):
    data = tmp_path / "data"
    path = data / "veotui.db"
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE jobs (id TEXT); PRAGMA user_version = 2;")
    conn.close()
    before = digest(data)
    assert "is not a veotui database (it has tables jobs)" in refused(data)
    assert digest(data) == before


def test_a_veotui_database_from_before_the_stamp_opens_and_is_stamped(tmp_path):
    data = tmp_path / "data"
    path = data / "veotui.db"
    data.mkdir()
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    old.execute(
        "INSERT INTO jobs (job_id, queue_seq, status, prompt, number_of_videos, model, aspect_ratio,"
        " duration_seconds, resolution, user, created_at, finished_at) VALUES"
        " ('00000000-0000-4000-8000-000000000001', 1, 'failed', 'from before', 1, 'veo-3.1-generate-001',"
        " '16:9', 8, '720p', 'local', '2026-01-01T00:00:00.000Z', '2026-01-01T00:01:00.000Z')"
    )
    old.commit()
    old.close()
    assert path.read_bytes()[68:72] == bytes(4)
    server = ServeProcess(server_env(data))
    try:
        with httpx.Client(base_url=server.url, trust_env=False) as client:
            history = client.get("/api/jobs").json()["history"]
            assert [job["prompt"] for job in history] == ["from before"]
        server.signal(15)
        assert server.wait(15) == 0
    finally:
        server.kill()
    assert int.from_bytes(path.read_bytes()[68:72], "big") == APPLICATION_ID


def test_a_large_damaged_database_starts_and_is_reported_damaged_by_the_check_after_start(tmp_path):
    data = tmp_path / "data"
    db = data / "veotui.db"
    a_veotui_database(db)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE ballast (data BLOB)")  # past the size checked before start
    conn.execute("INSERT INTO ballast VALUES (zeroblob(40 * 1024 * 1024))")
    conn.commit()
    conn.close()
    damage_an_index_page(db)
    server = ServeProcess(server_env(data))
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            deadline = time.monotonic() + 60
            while (health := client.get("/api/health")).status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.05)  # the check runs in the background after start
            assert health.status_code == 503
            assert health.json()["storage"] == "damaged"
            storage = client.get("/api/info").json()["storage"]
            assert storage["state"] == "damaged"
            assert f"{db} is damaged (quick_check:" in storage["reason"]
    finally:
        server.kill()


def test_a_small_damaged_index_is_refused_before_start(tmp_path):
    data = tmp_path / "data"
    db = data / "veotui.db"
    a_veotui_database(db)
    damage_an_index_page(db)
    line = refused(data)
    assert f"{db} is damaged (quick_check:" in line
