"""A process's memory as the kernel counts it: resident now, and the peak since a reset."""

from __future__ import annotations

import io
from pathlib import Path


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


def rss_mb(pid: int) -> float:
    return _status_mb(pid, "VmRSS")


def peak_mb(pid: int) -> float:
    """The peak resident size (VmHWM) since the process started or :func:`reset_peak`."""
    return _status_mb(pid, "VmHWM")


def reset_peak(pid: int) -> None:
    """Start VmHWM again from the current resident size (Linux 4.0 and later)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def large_png(size: tuple[int, int] = (7070, 7070), colour: tuple[int, int, int, int] = (20, 160, 90, 128)) -> bytes:
    """A PNG of ``size`` RGBA pixels (just under 50 million by default) that compresses to a
    few hundred kilobytes: small to send, large to decode."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGBA", size, colour).save(out, "PNG")
    return out.getvalue()
