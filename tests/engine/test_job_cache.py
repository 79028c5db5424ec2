"""The data directory as a bounded cache of job files (a fleet without a shared directory):
least recently used folders go first, the jobs running here and folders in use stay, and the
order survives a restart because it is the folders' own modification times."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from veotui.backend.local import check_mode
from veotui.core.errors import SettingsError
from veotui.datadir.cache import JobCache
from veotui.datadir.files import JobFiles
from veotui.settings import Settings, load_settings


def cached(files: JobFiles, job_id: str, size: int, used_seconds_ago: float) -> None:
    folder = files.ensure(job_id)
    (folder / "generated_video_1.mp4").write_bytes(b"v" * size)
    when = time.time() - used_seconds_ago
    os.utime(folder, (when, when))


def test_the_least_recently_used_folders_go_first_until_the_cache_fits(tmp_path: Path) -> None:
    files = JobFiles(tmp_path / "temp_downloads")
    for job_id, ago in (("old", 300), ("middle", 200), ("new", 100)):
        cached(files, job_id, 1000, ago)
    cache = JobCache(files, max_bytes=2000, grace=0)
    assert cache.trim() == ["old"]
    assert files.job_ids_on_disk() == {"middle", "new"}
    assert cache.trim() == []  # it fits now


def test_a_touch_makes_a_folder_the_most_recent(tmp_path: Path) -> None:
    files = JobFiles(tmp_path / "temp_downloads")
    cached(files, "a", 1000, 300)
    cached(files, "b", 1000, 200)
    cache = JobCache(files, max_bytes=1000, grace=0)
    cache.touch("a")
    assert cache.trim() == ["b"]
    # A new cache on the same directory (a restart) reads the same order from the disk.
    assert [job.job_id for job in JobCache(files, 1000).jobs()] == ["a"]


def test_running_jobs_and_folders_in_use_are_never_evicted(tmp_path: Path) -> None:
    files = JobFiles(tmp_path / "temp_downloads")
    cached(files, "running", 1000, 900)
    cached(files, "idle", 1000, 800)
    cached(files, "streaming", 1000, 5)
    cache = JobCache(files, max_bytes=1000, busy=lambda: {"running"}, grace=60)
    assert cache.trim() == ["idle"]
    assert files.job_ids_on_disk() == {"running", "streaming"}
    assert cache.size() == 2000  # over the bound, but nothing more may go


def test_the_cache_bound_is_a_setting_with_units() -> None:
    settings = load_settings({"VEOTUI_CACHE_MAX_BYTES": "2GB", "VEOTUI_SHARED_DIR": "false"})
    assert settings.cache_max_bytes == 2 * 1024**3
    assert settings.shared_dir is False
    with pytest.raises(SettingsError, match="VEOTUI_SHARED_DIR must be true or false"):
        load_settings({"VEOTUI_SHARED_DIR": "maybe"})


@pytest.mark.parametrize(
    ("store", "bucket", "missing"),
    [
        ("sqlite", "b", "VEOTUI_STORE set to a postgresql:// URL"),
        ("postgresql://db/veotui", None, "VEOTUI_GCS_BUCKET"),
        ("sqlite", None, "VEOTUI_STORE set to a postgresql:// URL and VEOTUI_GCS_BUCKET"),
    ],
)
def test_no_shared_directory_needs_postgresql_and_a_bucket(
    tmp_path: Path, store: str, bucket: str | None, missing: str
) -> None:
    settings = Settings(data_dir=tmp_path, shared_dir=False, store=store, gcs_bucket=bucket)
    with pytest.raises(SettingsError, match=f"needs {missing}:"):
        check_mode(settings)
    check_mode(settings.replace(shared_dir=True))  # the shared directory needs neither
