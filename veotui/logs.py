"""The log: one setup for every face of veotui.

The process that owns a data directory writes ``<data>/logs/veotui.log``, rotated by size
(``log_max_bytes`` x ``log_backups``). Records are plain ``logging`` records; the ones that
describe something an operator may want to filter carry an ``event`` name, a ``job_id`` and
fields (see :func:`event`). ``log_format = "json"`` writes one JSON object a line with
``ts``, ``level``, ``event``, ``job_id`` and the fields; text is the default. Secrets (the
server's tokens, ``GOOGLE_API_KEY``, anything that looks like a bearer token or a Google API
key) are replaced by ``***`` before a record is written.

``veotui serve`` also writes to stderr (:func:`log_to_stderr`); the TUI writes nothing to the
terminal (:func:`silence_terminal`).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import logging.handlers
import os
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from veotui.core.text import printable, printable_json
from veotui.settings import LOG_LEVELS

LOG_NAME = "veotui.log"
#: The log holds every prompt and user name: its owner's alone, whatever the umask.
LOG_MODE = 0o600
LOG_DIR_MODE = 0o700
#: Records of other libraries reach the file from this level up; veotui's at the level asked.
OTHERS_LEVEL = logging.WARNING
LEVELS = LOG_LEVELS
FORMATS = ("text", "json")
REDACTED = "***"
#: Shapes of secrets that may appear in an error message whatever the configuration says,
#: in one pattern (one pass over each line); the ``bearer`` and ``key`` groups stay.
_SECRETS = re.compile(
    r"(?i:(?P<bearer>bearer\s+)[^\s\"',;]+)"
    r"|AIza[0-9A-Za-z_\-]{20,}"
    r"|ya29\.[0-9A-Za-z_\-.]+"
    r"|(?i:\b(?P<key>(?:api[_-]?key|access_token|token|key)=)[^&\s\"']+)"
)
#: Every shape above holds one of these (lowercased): a line without any is left as it is,
#: unscanned.
_SECRET_MARKS = ("bearer", "aiza", "ya29.", "key=", "token=")
#: A text field's value that must be quoted to be read back as one value.
_NEEDS_QUOTES = re.compile(r'[\s"=]')
#: Attributes every LogRecord has; anything else in a record's __dict__ came from ``extra``.
_RECORD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def log_dir(data_dir: Path) -> Path:
    return data_dir / "logs"


def log_path(data_dir: Path) -> Path:
    return log_dir(data_dir) / LOG_NAME


# -- writing records ----------------------------------------------------------------------


def event(
    logger: logging.Logger,
    level: int,
    name: str,
    message: str,
    *args: Any,
    job_id: str | None = None,
    exc_info: Any = None,
    **fields: Any,
) -> None:
    """Log one named event: ``message % args`` for people, ``fields`` for machines."""
    if not logger.isEnabledFor(level):
        return
    if exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    # No log line names the caller's file and line, so the walk up the stack that finds
    # them (most of a record's cost in ``Logger.log``) is skipped.
    record = logger.makeRecord(
        logger.name,
        level,
        "",
        0,
        message,
        args,
        exc_info or None,
        extra={"event": name, "job_id": job_id, "fields": fields},
    )
    logger.handle(record)


class Redactor:
    """Replaces known secrets, and text shaped like one, with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        lowered = text.lower()
        if any(mark in lowered for mark in _SECRET_MARKS):
            text = _SECRETS.sub(_redacted, text)
        return text

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        return value


def _redacted(match: re.Match[str]) -> str:
    return (match.group("bearer") or match.group("key") or "") + REDACTED


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The record's structured fields: those given to :func:`event`, or any ``extra``."""
    fields = getattr(record, "fields", None)
    if isinstance(fields, dict):
        return fields
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS and k not in ("event", "job_id")}


def _event_name(record: logging.LogRecord) -> str:
    name = getattr(record, "event", None)
    if name:
        return str(name)
    return "error" if record.levelno >= logging.ERROR else "log"


def _exception_text(record: logging.LogRecord) -> str | None:
    if record.exc_info and record.exc_info[0] is not None:
        return "".join(traceback.format_exception(*record.exc_info)).rstrip()
    if record.exc_text:
        return record.exc_text
    return None


class TextFormatter(logging.Formatter):
    """``2026-11-30T15:00:00.123Z INFO    job.transition job=<id> message key=value ...``"""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), f"{record.levelname:<7}", _event_name(record)]
        job_id = getattr(record, "job_id", None)
        if job_id:
            parts.append(f"job={job_id}")
        parts.append(record.getMessage())
        for key, value in record_fields(record).items():
            if value is None:
                continue
            text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
            if isinstance(value, str) and (not value or _NEEDS_QUOTES.search(value)):
                text = json.dumps(value, ensure_ascii=False)
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        if getattr(record, "event", None) is None and record.name != "veotui":
            line += f" logger={record.name}"
        trace = _exception_text(record)
        if trace:
            line += "\n" + trace
        # A value from a request (a path, a prompt) never sends a control sequence to
        # whoever reads the file on a terminal.
        return self.redact(printable(line))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts``, ``level``, ``event``, ``job_id``, ``message``, the
    event's fields, and ``exception`` (the stack trace) when there is one."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "event": _event_name(record),
            "job_id": getattr(record, "job_id", None),
            "message": self.redact(record.getMessage()),
            "logger": record.name,
        }
        for key, value in record_fields(record).items():
            if key not in document:
                document[key] = self.redact.value(value)
        trace = _exception_text(record)
        if trace:
            document["exception"] = self.redact(trace)
        return printable_json(json.dumps(document, default=str, ensure_ascii=False))


class _Scope(logging.Filter):
    """veotui's records at the level asked; other libraries' from WARNING up."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "veotui" or record.name.startswith("veotui."):
            return record.levelno >= self.level
        return record.levelno >= max(self.level, OTHERS_LEVEL)


def level_number(name: str) -> int:
    return logging.getLevelNamesMapping()[name.upper()]


def secrets_of(settings: Any, env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    users = getattr(settings, "users", {}).values()
    found = [getattr(settings, "token", None) or "", *(getattr(user, "plain_token", None) or "" for user in users)]
    found += [env.get(name, "") for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "VEOTUI_TOKEN")]
    return [s for s in found if s]


def formatter(settings: Any, env: Mapping[str, str] | None = None, fmt: str | None = None) -> logging.Formatter:
    redact = Redactor(secrets_of(settings, env))
    chosen = fmt or getattr(settings, "log_format", "text")
    return JsonFormatter(redact) if chosen == "json" else TextFormatter(redact)


def _prepare_loggers(level: int) -> None:
    package = logging.getLogger("veotui")
    if package.level == logging.NOTSET or package.level > level:
        package.setLevel(level)


class _LogFileHandler(logging.handlers.RotatingFileHandler):
    """A record the disk cannot take (full, read-only) is dropped and counted: a log that
    cannot be written must never print a traceback on the terminal or stop the engine."""

    dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record once (the standard handler formats it a second time to see
        whether it still fits before rotating), then rotate if it would not fit, then write."""
        try:
            line = self.format(record) + self.terminator
            if self.stream is None:
                self.stream = self._open()
            position = self.stream.tell()
            if self.maxBytes > 0 and position and position + len(line) >= self.maxBytes:
                self.doRollover()
            self.stream.write(line)
            self.stream.flush()
        except Exception:  # noqa: BLE001 - a record the disk refuses is dropped and counted
            self.handleError(record)

    def _open(self) -> io.TextIOWrapper:
        # Private whatever the umask: the log holds every prompt and user name.
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_MODE)
        with contextlib.suppress(PermissionError):
            os.fchmod(fd, LOG_MODE)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def handleError(self, record: logging.LogRecord) -> None:
        self.dropped += 1

    def close(self) -> None:
        # The records still buffered were counted when they were dropped.
        with contextlib.suppress(OSError):
            super().close()


class FileLog:
    """The data directory's log file, attached to the root logger while its owner runs."""

    def __init__(self, settings: Any, env: Mapping[str, str] | None = None) -> None:
        path = log_path(settings.data_dir)
        path.parent.mkdir(mode=LOG_DIR_MODE, parents=True, exist_ok=True)
        level = level_number(settings.log_level)
        self.handler = _LogFileHandler(
            path,
            maxBytes=settings.log_max_bytes,
            backupCount=settings.log_backups,
            encoding="utf-8",
            delay=False,
        )
        self.handler.setFormatter(formatter(settings, env))
        self.handler.addFilter(_Scope(level))
        self._package_level = logging.getLogger("veotui").level
        _prepare_loggers(level)
        logging.getLogger().addHandler(self.handler)
        self.path = path

    def close(self) -> None:
        logging.getLogger().removeHandler(self.handler)
        self.handler.close()
        logging.getLogger("veotui").setLevel(self._package_level)


_stderr_handler: logging.Handler | None = None


def log_to_stderr(settings: Any, level: str | None = None) -> None:
    """``veotui serve``: records also go to stderr, in the log's format, from ``level`` up
    (default warning)."""
    global _stderr_handler
    chosen = level_number(level or "warning")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings))
    handler.addFilter(_Scope(chosen))
    if _stderr_handler is not None:
        logging.getLogger().removeHandler(_stderr_handler)
    _stderr_handler = handler
    _prepare_loggers(chosen)
    logging.getLogger().addHandler(handler)


def silence_terminal() -> None:
    """The TUI owns the terminal: without a handler, Python would print warnings to stderr."""
    root = logging.getLogger()
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())
