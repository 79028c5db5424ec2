"""A small filesystem a test can fill: tmpfs when it may mount one (root), else a
loop-mounted ext4 image, else a skip that says why."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


@contextmanager
def small_filesystem(mount_point: Path, size_mb: int = 8) -> Iterator[Path]:
    """``mount_point`` on a fresh filesystem of ``size_mb`` MiB; unmounted on exit."""
    mount_point.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a small filesystem for disk-full tests needs root (to mount tmpfs or a loop image)")
    tmpfs = _run("mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(mount_point))
    if tmpfs.returncode != 0:
        image = mount_point.with_name(mount_point.name + ".img")
        with image.open("wb") as handle:
            handle.truncate(size_mb * 1024 * 1024)
        made = _run("mkfs.ext4", "-q", "-m", "0", "-F", str(image)) if shutil.which("mkfs.ext4") else None
        loop = _run("mount", "-o", "loop", str(image), str(mount_point)) if made and made.returncode == 0 else None
        if loop is None or loop.returncode != 0:
            reason = (loop or made or tmpfs).stderr.strip() or "mkfs.ext4 is missing"
            pytest.skip(f"cannot mount tmpfs ({tmpfs.stderr.strip()}) nor a loop image ({reason})")
    try:
        yield mount_point
    finally:
        if _run("umount", str(mount_point)).returncode != 0:
            _run("umount", "-l", str(mount_point))


def fill(directory: Path, name: str = "filler") -> Path:
    """Write a file in ``directory`` until the disk has not one byte left; return it."""
    path = directory / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1024 * 1024, 65536, 4096, 512, 1):
            block = b"\0" * chunk
            with suppress(OSError):
                while os.write(fd, block):
                    pass
    finally:
        os.close(fd)
    return path


def free_bytes(directory: Path) -> int:
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize
