"""Settings: a TOML file, then environment variables on top, then command-line overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from veotui.core.access import Role, UserEntry
from veotui.core.errors import SettingsError
from veotui.core.prices import PriceTable, parse_overrides, price_table
from veotui.core.text import printable
from veotui.core.webhooks import END_EVENTS, Hook, parse_events

APP_NAME = "veotui"
GENERATORS = ("auto", "sim", "veo")
DEFAULT_REMOTE = "http://127.0.0.1:8765"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    generator: str = "auto"
    max_concurrent: int = 2
    #: None means the generator's own default (30 s for Veo, 1 s for the simulator).
    poll_interval: float | None = None
    sim_seconds: float = 8.0
    #: Seconds after a download before a completed job is deleted; None means off.
    auto_delete_after_download: float | None = 5.0
    gcs_bucket: str | None = None
    token: str | None = None
    remote: str = DEFAULT_REMOTE
    downloads_dir: Path = field(default_factory=lambda: Path(platformdirs.user_downloads_dir()))
    #: A stuck remote operation is failed after this many seconds; None waits forever.
    veo_deadline: float | None = 1800.0
    #: First backoff step of the auto-retry; later steps double (full jitter).
    retry_base_seconds: float = 2.0
    max_attempts: int = 3
    #: The server's users by name: their token's hash, role, budget and limit.
    users: Mapping[str, UserEntry] = field(default_factory=dict)
    #: Key remapping of the TUI: binding id -> keys.
    keymap: Mapping[str, str] = field(default_factory=dict)
    #: Estimated US dollars the jobs sent to Google may cost per UTC day; None: no limit.
    daily_budget_usd: float | None = None
    #: ``submit --vary`` asks before queuing a sweep estimated above this many US dollars; None: never asks.
    confirm_over_usd: float | None = 10.0
    #: The log file (<data>/logs/veotui.log): level, text or json, size before rotation, backups kept.
    log_level: str = "info"
    log_format: str = "text"
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    #: How the TUI draws pictures: auto (a graphics protocol where the terminal has one,
    #: else half-blocks), kitty, sixel, halfblocks, or off.
    pictures: str = "auto"
    #: The config file's ``[prices]``: model -> key -> US dollars per second.
    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    config_file: Path | None = None
    #: The config file sets ``token`` or ``[users]``.
    config_holds_tokens: bool = False
    #: Where jobs are kept: ``sqlite`` (<data>/veotui.db) or a ``postgresql://`` URL.
    store: str = "sqlite"
    #: On PostgreSQL: seconds without a heartbeat after which another server of the fleet
    #: takes over a server's processing jobs.
    lease_seconds: float = 30.0
    #: Whether the servers of a fleet share the data directory (True), or each keeps its own
    #: as a cache while the bucket holds the job files (False: needs PostgreSQL and a bucket).
    shared_dir: bool = True
    #: Without a shared directory: the most bytes of job files the cache keeps.
    cache_max_bytes: int = 10 * 1024**3
    #: Which queued job starts next: ``fifo`` (queue order) or ``fair`` (the oldest job of the
    #: user with the fewest jobs processing).
    queue_policy: str = "fifo"
    #: Days the audit log keeps an entry.
    audit_retention_days: int = 90
    #: Where job events are posted: the config file's ``[[webhooks]]`` and
    #: ``VEOTUI_WEBHOOK_URL`` / ``VEOTUI_WEBHOOK_SECRET``.
    webhooks: tuple[Hook, ...] = ()
    #: The file the token was read from (``token_file``), for the warning about its mode.
    token_file: Path | None = None
    #: Host names the server answers for beside its bound address and loopback
    #: (``*.example.com`` for a domain's names, ``*`` for any).
    allowed_hosts: tuple[str, ...] = ()
    #: Origins (``https://tool.example``) of web pages that may change things on the server.
    allowed_origins: tuple[str, ...] = ()
    #: Seconds a connection may take to send a request's headers.
    header_timeout: float = 10.0
    #: Seconds a request's body may stall (no byte arriving) before the connection is closed.
    body_timeout: float = 30.0
    #: Open connections the server keeps; past them a new connection is answered 503.
    max_connections: int = 1000
    #: Input images converted at once.
    image_workers: int = 2

    @property
    def price_table(self) -> PriceTable:
        return price_table(self.prices)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "veotui.db"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "temp_downloads"

    @property
    def sim_dir(self) -> Path:
        return self.data_dir / "sim"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


#: setting name -> (environment variable, parser)
def _positive_int(name: str, raw: Any) -> int:
    try:
        value = int(str(raw).strip()) if not isinstance(raw, bool) else None
    except ValueError:
        value = None
    if value is None or value < 1:
        raise SettingsError(f"{name} must be a whole number of at least 1, got {raw!r}")
    return value


def _seconds(name: str, raw: Any, *, allow_off: bool = False) -> float | None:
    if allow_off and (raw is False or str(raw).strip().lower() in {"off", "none", "never", ""}):
        return None
    try:
        value = float(str(raw).strip()) if not isinstance(raw, bool) else -1.0
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        extra = " or 'off'" if allow_off else ""
        raise SettingsError(f"{name} must be a number of seconds (0 or more){extra}, got {raw!r}")
    return value


def _dollars(name: str, raw: Any) -> float | None:
    """An amount in US dollars (more than 0), or off."""
    if raw is False or str(raw).strip().lower() in {"off", "none", ""}:
        return None
    text = str(raw).strip().removeprefix("$") if not isinstance(raw, bool) else "x"
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise SettingsError(f"{name} must be an amount of US dollars above 0 (like 50 or 12.5) or 'off', got {raw!r}")
    return value


def _generator(name: str, raw: Any) -> str:
    value = str(raw).strip().lower()
    if value not in GENERATORS:
        raise SettingsError(f"{name} must be one of {', '.join(GENERATORS)}, got {raw!r}")
    return value


def _count(name: str, raw: Any) -> int:
    try:
        value = int(str(raw).strip()) if not isinstance(raw, bool) else None
    except ValueError:
        value = None
    if value is None or value < 0:
        raise SettingsError(f"{name} must be a whole number (0 or more), got {raw!r}")
    return value


_SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "k": 1024, "mb": 1024**2, "m": 1024**2, "gb": 1024**3, "g": 1024**3}


def _bytes(name: str, raw: Any) -> int:
    """A size in bytes: 10485760, "10MB", "512 KB"."""
    text = str(raw).strip().lower().replace(" ", "") if not isinstance(raw, bool) else ""
    digits = text.rstrip("kmgb")
    unit = text[len(digits) :]
    try:
        value = float(digits) * _SIZE_UNITS[unit] if digits else -1
    except (ValueError, KeyError):
        value = -1
    if value < 1024:
        raise SettingsError(f"{name} must be a size of at least 1 KB, like 10MB or 1048576, got {raw!r}")
    return int(value)


def _one_of(*choices: str) -> Callable[[str, Any], str]:
    def parse(name: str, raw: Any) -> str:
        value = str(raw).strip().lower()
        if value not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def _text(name: str, raw: Any) -> str | None:
    value = str(raw).strip()
    return value or None


def _lease(name: str, raw: Any) -> float:
    value = _seconds(name, raw)
    if not value or value < 0.5:
        raise SettingsError(f"{name} must be a number of seconds of at least 0.5, got {raw!r}")
    return value


def _url(name: str, raw: Any) -> str:
    value = str(raw).strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return value


def _store(name: str, raw: Any) -> str:
    text = str(raw).strip()
    if text == "sqlite" or text.startswith(("postgresql://", "postgres://")):
        return text
    raise SettingsError(f"{name} must be sqlite or a postgresql:// URL, got {text!r}")


def _flag(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in {"true", "1", "yes", "on"}:
        return True
    if value in {"false", "0", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _positive_seconds(name: str, raw: Any) -> float:
    value = _seconds(name, raw)
    if not value:
        raise SettingsError(f"{name} must be a number of seconds above 0, got {raw!r}")
    return value


def _listed(raw: Any) -> list[str]:
    """A list from TOML, or comma-separated text from the environment or a flag."""
    items = raw if isinstance(raw, list) else str(raw).split(",")
    return [str(item).strip().lower() for item in items if str(item).strip()]


def _host_names(name: str, raw: Any) -> tuple[str, ...]:
    names = _listed(raw)
    for host in names:
        bare = host.removeprefix("*.") if host != "*" else "x"
        if not bare or any(c in bare for c in "/@?#* ") or "://" in host:
            raise SettingsError(
                f"{name} must list host names like veo.example.com, *.example.com or 10.0.0.5 "
                f"(no scheme, port or path), got {host!r}"
            )
    return tuple(names)


def _origins(name: str, raw: Any) -> tuple[str, ...]:
    origins = []
    for origin in _listed(raw):
        scheme, _, rest = origin.partition("://")
        if scheme not in ("http", "https") or not rest or any(c in rest for c in "/?#@ "):
            raise SettingsError(
                f"{name} must list origins like https://tool.example or http://localhost:3000 "
                f"(a scheme and a host, with a port if not the default, no path), got {origin!r}"
            )
        origins.append(origin)
    return tuple(origins)


def _file(name: str, raw: Any) -> Path:
    value = str(raw).strip()
    if not value:
        raise SettingsError(f"{name} must be a file path")
    return Path(value).expanduser()


def _path(name: str, raw: Any) -> Path:
    value = str(raw).strip()
    if not value:
        raise SettingsError(f"{name} must be a directory path")
    return Path(value).expanduser()


LOG_LEVELS = ("debug", "info", "warning", "error")
QUEUE_POLICIES = ("fifo", "fair")

SETTINGS_TABLE: dict[str, tuple[str, Any]] = {
    "data_dir": ("VEOTUI_DATA_DIR", _path),
    "generator": ("VEOTUI_GENERATOR", _generator),
    "max_concurrent": ("VEOTUI_MAX_CONCURRENT", _positive_int),
    "poll_interval": ("VEOTUI_POLL_INTERVAL", _seconds),
    "sim_seconds": ("VEOTUI_SIM_SECONDS", _seconds),
    "auto_delete_after_download": (
        "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD",
        lambda n, r: _seconds(n, r, allow_off=True),
    ),
    "gcs_bucket": ("VEOTUI_GCS_BUCKET", _text),
    "token": ("VEOTUI_TOKEN", _text),
    "remote": ("VEOTUI_REMOTE", _url),
    "downloads_dir": ("VEOTUI_DOWNLOADS_DIR", _path),
    "veo_deadline": ("VEOTUI_VEO_DEADLINE", lambda n, r: _seconds(n, r, allow_off=True)),
    "retry_base_seconds": ("VEOTUI_RETRY_BASE_SECONDS", _seconds),
    "max_attempts": ("VEOTUI_MAX_ATTEMPTS", _positive_int),
    "daily_budget_usd": ("VEOTUI_DAILY_BUDGET_USD", _dollars),
    "confirm_over_usd": ("VEOTUI_CONFIRM_OVER_USD", _dollars),
    "log_level": ("VEOTUI_LOG_LEVEL", _one_of(*LOG_LEVELS)),
    "log_format": ("VEOTUI_LOG_FORMAT", _one_of("text", "json")),
    "log_max_bytes": ("VEOTUI_LOG_MAX_BYTES", _bytes),
    "log_backups": ("VEOTUI_LOG_BACKUPS", _count),
    "pictures": ("VEOTUI_PICTURES", _one_of("auto", "kitty", "sixel", "halfblocks", "off")),
    "store": ("VEOTUI_STORE", _store),
    "lease_seconds": ("VEOTUI_LEASE_SECONDS", _lease),
    "shared_dir": ("VEOTUI_SHARED_DIR", _flag),
    "cache_max_bytes": ("VEOTUI_CACHE_MAX_BYTES", _bytes),
    "queue_policy": ("VEOTUI_QUEUE_POLICY", _one_of(*QUEUE_POLICIES)),
    "audit_retention_days": ("VEOTUI_AUDIT_RETENTION_DAYS", _positive_int),
    "token_file": ("VEOTUI_TOKEN_FILE", _file),
    "allowed_hosts": ("VEOTUI_ALLOWED_HOSTS", _host_names),
    "allowed_origins": ("VEOTUI_ALLOWED_ORIGINS", _origins),
    "header_timeout": ("VEOTUI_HEADER_TIMEOUT", _positive_seconds),
    "body_timeout": ("VEOTUI_BODY_TIMEOUT", _positive_seconds),
    "max_connections": ("VEOTUI_MAX_CONNECTIONS", _positive_int),
    "image_workers": ("VEOTUI_IMAGE_WORKERS", _positive_int),
}


def default_config_file() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


#: The config file's tables (beside its plain settings).
SETTINGS_TABLES = ("users", "keymap", "prices", "webhooks")
#: What a client verb reads; it ignores (and never refuses) the server's settings.
CLIENT_SETTINGS = frozenset({"remote", "token", "token_file", "confirm_over_usd"})


def load_settings(
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    only: Collection[str] | None = None,
) -> Settings:
    """Read the config file, then the environment, then explicit overrides (CLI flags).
    ``only``: read just these settings; the others keep their defaults, unchecked."""
    env = os.environ if env is None else env
    config_path = Path(env["VEOTUI_CONFIG"]).expanduser() if env.get("VEOTUI_CONFIG") else default_config_file()
    raw: dict[str, tuple[str, Any, int]] = {}
    holds_tokens = False
    users: dict[str, UserEntry] = {}
    keymap: dict[str, str] = {}
    prices: dict[str, dict[str, float]] = {}
    hooks: list[Hook] = []
    if config_path.is_file():
        try:
            document = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise SettingsError(f"config file {config_path} cannot be read: {exc}") from exc
        holds_tokens = "token" in document or "users" in document
        for key, value in document.items():
            if only is not None and key not in only and (key in SETTINGS_TABLE or key in SETTINGS_TABLES):
                continue
            if key == "users":
                users = _users_table(config_path, value)
            elif key == "keymap":
                keymap = _keymap_table(config_path, value)
            elif key == "prices":
                prices = parse_overrides(str(config_path), value)
            elif key == "webhooks":
                hooks = _webhooks_table(config_path, value)
            elif key in SETTINGS_TABLE:
                raw[key] = (f"{key} in {config_path}", value, 0)
            else:
                raise SettingsError(
                    f"unknown setting {key!r} in {config_path}; known: "
                    + ", ".join([*SETTINGS_TABLE, *SETTINGS_TABLES])
                )
    for key, (variable, _) in SETTINGS_TABLE.items():
        if variable in env and (only is None or key in only):
            raw[key] = (variable, env[variable], 1)
    for key, value in (overrides or {}).items():
        if value is not None and (only is None or key in only):
            raw[key] = (f"--{key.replace('_', '-')}", value, 2)

    if only is None or "webhooks" in only:
        hooks = _webhooks_from_env(env, hooks)
    values: dict[str, Any] = {}
    for key, (source, value, _) in raw.items():
        parser = SETTINGS_TABLE[key][1]
        values[key] = parser(source, value)
    if "token_file" in raw:
        _token_from_file(values, raw)
    data_dir = values.pop("data_dir", None) or Path(platformdirs.user_data_dir(APP_NAME))
    return Settings(
        data_dir=data_dir,
        users=users,
        keymap=keymap,
        prices=prices,
        webhooks=tuple(hooks),
        config_file=config_path if config_path.is_file() else None,
        config_holds_tokens=holds_tokens,
        **values,
    )


#: A user name ``veotui users add`` accepts: shown in the header, counted in the metrics,
#: written in the audit log, and a bare key in the config file.
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_USER_KEYS = ("token_sha256", "role", "daily_budget_usd", "max_concurrent")


def token_sha256(token: str) -> str:
    """What the config file keeps of a token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _token_from_file(values: dict[str, Any], raw: Mapping[str, tuple[str, Any, int]]) -> None:
    """``token_file`` gives the token (so it never shows in ``ps``), unless ``token`` comes
    from a later source (a flag over the environment over the config file)."""
    file_source, _, file_layer = raw["token_file"]
    if "token" in raw:
        token_source, _, token_layer = raw["token"]
        if token_layer == file_layer:
            raise SettingsError(f"{token_source} and {file_source} both give the token; keep one of them")
        if token_layer > file_layer:
            values["token_file"] = None
            return
    path: Path = values["token_file"]
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingsError(f"{file_source}: cannot read the token file {path}: {reason}") from None
    if not text or any(c.isspace() for c in text):
        raise SettingsError(f"{file_source}: the token file {path} must hold the token alone, on one line")
    values["token"] = text


def _users_table(path: Path, value: Any) -> dict[str, UserEntry]:
    """``[users.NAME]`` tables, and the old form ``[users] NAME = "token"`` (an operator)."""
    if not isinstance(value, dict):
        raise SettingsError(f"[users] in {path} must hold one [users.NAME] table per user")
    users: dict[str, UserEntry] = {}
    hashes: dict[str, str] = {}
    for name, entry in value.items():
        where = f"[users.{printable(str(name), keep='')}] in {path}"
        if not name or printable(name, keep="") != name:
            raise SettingsError(
                f"[users] in {path}: the user name {printable(name, keep='')!r} holds a control character; "
                "user names are shown and counted, so they must be plain text"
            )
        if isinstance(entry, str) and entry:
            user = UserEntry(name, token_sha256(entry), plain_token=entry)
        elif isinstance(entry, dict):
            user = _user_entry(where, name, entry)
        else:
            raise SettingsError(
                f'{where} must be a table with token_sha256 and role (or the old form {name} = "token")'
            )
        if user.token_sha256 in hashes:
            raise SettingsError(f"{where} has the same token as the user {hashes[user.token_sha256]}")
        hashes[user.token_sha256] = name
        users[name] = user
    return users


def _user_entry(where: str, name: str, entry: Mapping[str, Any]) -> UserEntry:
    unknown = sorted(set(entry) - set(_USER_KEYS))
    if unknown:
        raise SettingsError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join(_USER_KEYS)}")
    digest = entry.get("token_sha256")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
        raise SettingsError(
            f"{where}: token_sha256 must be the 64 hex digits of the token's SHA-256 (veotui users add)"
        )
    role = entry.get("role", Role.OPERATOR.value)
    if role not in {r.value for r in Role}:
        raise SettingsError(f"{where}: role must be one of {', '.join(r.value for r in Role)}, got {role!r}")
    budget = _dollars(f"{where}: daily_budget_usd", entry["daily_budget_usd"]) if "daily_budget_usd" in entry else None
    limit = _positive_int(f"{where}: max_concurrent", entry["max_concurrent"]) if "max_concurrent" in entry else None
    return UserEntry(name, digest.lower(), Role(role), budget, limit)


def read_users(path: Path, text: str | None = None) -> dict[str, UserEntry]:
    """The ``[users]`` of the config file at ``path`` as it is now (none if it is gone), or
    of ``text`` as that file would read."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8") if text is None else text)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        raise SettingsError(f"config file {path} cannot be read: {exc}") from exc
    return _users_table(path, document.get("users", {}))


def _keymap_table(path: Path, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise SettingsError(f'[keymap] in {path} must map binding ids to keys, like cancel = "x"')
    return dict(value)


def _webhooks_table(path: Path, value: Any) -> list[Hook]:
    """``[[webhooks]]`` tables: ``url``, ``secret`` and ``events`` (end statuses, or "*")."""
    if not isinstance(value, list) or not all(isinstance(table, dict) for table in value):
        raise SettingsError(f'webhooks in {path} must be [[webhooks]] tables, each with url = "..." and secret = "..."')
    hooks: list[Hook] = []
    for number, table in enumerate(value, start=1):
        where = f"[[webhooks]] number {number} in {path}"
        unknown = sorted(set(table) - {"url", "secret", "events"})
        if unknown:
            raise SettingsError(f"{where} has {unknown[0]!r}; a hook takes url, secret and events")
        hooks.append(_hook(where, table.get("url"), table.get("secret"), table.get("events", list(END_EVENTS))))
    _no_repeated_urls(hooks, str(path))
    return hooks


def _webhooks_from_env(env: Mapping[str, str], hooks: list[Hook]) -> list[Hook]:
    url, secret = env.get("VEOTUI_WEBHOOK_URL"), env.get("VEOTUI_WEBHOOK_SECRET")
    if not url and not secret:
        return hooks
    hook = _hook("VEOTUI_WEBHOOK_URL and VEOTUI_WEBHOOK_SECRET", url, secret, list(END_EVENTS))
    # The variables name one hook; the file's hook at the same address gives way to it.
    return [*(h for h in hooks if h.url != hook.url), hook]


def _hook(where: str, url: Any, secret: Any, events: Any) -> Hook:
    if not isinstance(url, str) or not url.strip():
        raise SettingsError(f"{where}: a hook needs a url (http:// or https://)")
    url = url.strip()
    if not url.startswith(("http://", "https://")) or printable(url, keep="") != url or " " in url:
        raise SettingsError(f"{where}: the url must be an http:// or https:// address, got {printable(url)!r}")
    if not isinstance(secret, str) or len(secret) < 16:
        raise SettingsError(
            f"{where}: a hook needs a secret of at least 16 characters to sign its deliveries "
            "(for example the output of `python3 -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    try:
        wanted = parse_events(f"{where}: events", events)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return Hook(url=url, secret=secret, events=wanted)


def _no_repeated_urls(hooks: list[Hook], where: str) -> None:
    seen: set[str] = set()
    for hook in hooks:
        if hook.url in seen:
            raise SettingsError(f"{where} names the hook {hook.url} twice; give each address one [[webhooks]] table")
        seen.add(hook.url)
