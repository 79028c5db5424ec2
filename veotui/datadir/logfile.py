"""Reading the data directory's log: its records, filtered, and new ones as they are written.

It only reads files, so it works while another process owns the data directory. Rotated
files (``veotui.log.5`` ... ``veotui.log.1``) come first, oldest first. A record is a line
that starts with a timestamp (text) or a ``{`` (JSON), with any following lines (a stack
trace) that start with neither. ``veotui logs`` reads it here; ``veotui serve`` reads it for
``GET /api/logs``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from veotui.core.errors import InvalidRequest
from veotui.core.text import printable, printable_json

_TEXT_START = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) +(\w+) +(\S+)(?: job=(\S+))? ?(.*)$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: Seconds between two looks at the file while following it.
FOLLOW_INTERVAL = 0.25


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise InvalidRequest(f"since must be a duration like 90s, 15m, 2h or 1d, got {text!r}")
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

    def shown(self, as_json: bool) -> str:
        """The record as one line of JSON, or as its text (a stack trace on the lines after).
        Whatever a request put in the file (by an older veotui, or by hand) reaches the
        terminal as visible escapes, never as a control sequence."""
        return printable_json(self.as_json()) if as_json else printable(self.text())


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
    """Whether a record is of the job whose id starts with ``job`` and of the last ``since``."""
    prefix = job.strip().lower() if job else None
    if prefix is not None and (not prefix or not all(c in "0123456789abcdef-" for c in prefix)):
        raise InvalidRequest(f"job must be a job id or the start of one, got {job!r}")
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


def rotated_records(path: Path) -> Iterator[Record]:
    """The records of the rotated files, oldest first (the current file is :class:`LogTail`'s)."""
    for file in log_files(path):
        if file == path:
            break
        with open(file, encoding="utf-8", errors="replace") as handle:
            yield from records(handle)


class LogTail:
    """The records of the current log file: all of it at the first :meth:`read`, then those
    written since, following the file through its rotations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None
        self._identity: int | None = None
        self._pending = ""
        self._current: list[str] = []

    def read(self) -> list[Record]:
        """Every record complete now. The handler writes a record whole, so what ends the
        file is a complete record."""
        found: list[Record] = []
        while True:
            if self._handle is None and self.path.exists():
                self._handle = open(self.path, encoding="utf-8", errors="replace")  # noqa: SIM115 - kept open
                self._identity = self.path.stat().st_ino
            if self._handle is None:
                return found
            chunk = self._handle.read()
            if chunk:
                self._take(chunk, found)
                continue
            if self._current:
                found.append(Record(self._current))
                self._current = []
            if not self._rotated():
                return found
            # What was written to the old file after the last read is in veotui.log.1.
            rest = self._handle.read()
            if rest:
                self._take(rest, found)
                continue
            self._handle.close()
            self._handle, self._pending = None, ""

    def _take(self, chunk: str, found: list[Record]) -> None:
        self._pending += chunk
        *complete, self._pending = self._pending.split("\n")
        for line in complete:
            line += "\n"
            if self._current and _starts_record(line):
                found.append(Record(self._current))
                self._current = []
            if self._current or _starts_record(line):
                self._current.append(line)

    def _rotated(self) -> bool:
        assert self._handle is not None
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return True
        return stat.st_ino != self._identity or stat.st_size < self._handle.tell()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
