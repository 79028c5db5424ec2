"""``veotui logs``: print the data directory's log, filtered, optionally following it.

It only reads files, so it works while another process owns the data directory. Rotated
files (``veotui.log.5`` ... ``veotui.log.1``) come first, oldest first. A record is a line
that starts with a timestamp (text) or a ``{`` (JSON), with any following lines (a stack
trace) that start with neither.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from veotui.core.text import printable, printable_json
from veotui.logs import log_path
from veotui.settings import Settings

_TEXT_START = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) +(\w+) +(\S+)(?: job=(\S+))? ?(.*)$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
FOLLOW_INTERVAL = 0.25


class UsageError(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"--since must be a duration like 90s, 15m, 2h or 1d, got {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2).lower()])


def _starts_record(line: str) -> bool:
    return line.startswith("{") or bool(_TEXT_START.match(line))


@dataclass
class Record:
    lines: list[str]

    def parsed(self) -> dict[str, Any]:
        first = self.lines[0].rstrip("\n")
        if first.startswith("{"):
            try:
                decoded = json.loads(first)
                if isinstance(decoded, dict):
                    return decoded
            except ValueError:
                pass
        match = _TEXT_START.match(first)
        if not match:
            return {"ts": None, "level": None, "event": None, "job_id": None, "message": first}
        ts, level, name, job_id, message = match.groups()
        data: dict[str, Any] = {
            "ts": ts,
            "level": level.lower(),
            "event": name,
            "job_id": job_id,
            "message": message,
        }
        trace = "".join(self.lines[1:]).rstrip("\n")
        if trace:
            data["exception"] = trace
        return data

    def text(self) -> str:
        if not self.lines[0].startswith("{"):
            return "".join(self.lines).rstrip("\n")
        data = self.parsed()
        head = [str(data.get("ts")), f"{str(data.get('level', '')).upper():<7}", str(data.get("event"))]
        if data.get("job_id"):
            head.append(f"job={data['job_id']}")
        head.append(str(data.get("message", "")))
        line = " ".join(head)
        if data.get("exception"):
            line += "\n" + str(data["exception"])
        return line

    def as_json(self) -> str:
        return json.dumps(self.parsed(), ensure_ascii=False)


def records(lines: Iterable[str]) -> Iterator[Record]:
    current: list[str] = []
    for line in lines:
        if current and _starts_record(line):
            yield Record(current)
            current = []
        if current or _starts_record(line):
            current.append(line)
    if current:
        yield Record(current)


def matcher(job: str | None, since: timedelta | None, now: datetime | None = None) -> Callable[[Record], bool]:
    prefix = job.strip().lower() if job else None
    if prefix is not None and (not prefix or not all(c in "0123456789abcdef-" for c in prefix)):
        raise UsageError(f"--job must be a job id or the start of one, got {job!r}")
    cutoff = ((now or datetime.now(UTC)) - since) if since is not None else None

    def matches(record: Record) -> bool:
        data = record.parsed()
        if prefix is not None and not str(data.get("job_id") or "").startswith(prefix):
            return False
        if cutoff is not None:
            try:
                moment = datetime.fromisoformat(str(data.get("ts")).replace("Z", "+00:00"))
            except ValueError:
                return False
            if moment < cutoff:
                return False
        return True

    return matches


def log_files(path: Path) -> list[Path]:
    """The rotated files, oldest first, then the current one."""
    backups = []
    for candidate in path.parent.glob(path.name + ".*"):
        suffix = candidate.name[len(path.name) + 1 :]
        if suffix.isdigit():
            backups.append((int(suffix), candidate))
    return [p for _, p in sorted(backups, reverse=True)] + ([path] if path.exists() else [])


def run_logs(
    settings: Settings,
    *,
    follow: bool = False,
    job: str | None = None,
    since: str | None = None,
    as_json: bool = False,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    try:
        matches = matcher(job, parse_duration(since) if since else None)
    except UsageError as exc:
        print(f"veotui: {exc}", file=sys.stderr)
        return 2
    path = log_path(settings.data_dir)
    files = log_files(path)
    if not files and not follow:
        print(f"veotui: there is no log at {path} yet (veotui writes it while it runs)", file=sys.stderr)
        return 1

    def emit(record: Record) -> None:
        if matches(record):
            # Whatever a request put in the file (by an older veotui, or by hand) reaches
            # the terminal as visible escapes, never as a control sequence.
            out.write((printable_json(record.as_json()) if as_json else printable(record.text())) + "\n")

    for file in files:
        if file == path:
            break
        with open(file, encoding="utf-8", errors="replace") as handle:
            for record in records(handle):
                emit(record)
    with contextlib.suppress(KeyboardInterrupt):
        _read_current(path, emit, follow, out)
    return 0


def _read_current(path: Path, emit: Callable[[Record], None], follow: bool, out: TextIO) -> None:
    handle = None
    identity = None
    pending = ""
    current: list[str] = []
    try:
        while True:
            if handle is None and path.exists():
                handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - kept open while following
                identity = path.stat().st_ino
            if handle is not None:
                chunk = handle.read()
                if chunk:
                    pending += chunk
                    *complete, pending = pending.split("\n")
                    for line in complete:
                        line += "\n"
                        if current and _starts_record(line):
                            emit(Record(current))
                            current = []
                        if current or _starts_record(line):
                            current.append(line)
                    continue
            # At the end of what is written: the handler writes a record whole, so it is complete.
            if current:
                emit(Record(current))
                current = []
            out.flush()
            if not follow:
                return
            time.sleep(FOLLOW_INTERVAL)
            if handle is not None:
                try:
                    stat = path.stat()
                    rotated = stat.st_ino != identity or stat.st_size < handle.tell()
                except FileNotFoundError:
                    rotated = True
                if rotated:
                    # Whatever was written to the old file after the last read is in veotui.log.1.
                    rest = handle.read()
                    if rest:
                        pending += rest
                        continue
                    handle.close()
                    handle, pending = None, ""
    finally:
        if handle is not None:
            handle.close()
