"""`veotui doctor`: checks the Google Cloud settings without generating anything, and
`veotui doctor --data`: checks the data directory without starting the engine.

Each check prints one line (``ok``, ``FAIL`` or ``--`` for not applicable) with what to do
about a failure. The Google checks: which generator ``auto`` picks; the mode (project or
express) and its settings; that the credentials give a token; that each Veo model answers
in the chosen location; that the bucket exists and takes writes and deletes. The data
checks: the directory and its permissions (a file is written and removed), the free space
on its disk, whether a veotui process holds it, and the database (veotui's, its schema,
``PRAGMA integrity_check``); the database is only read. Exit status 0 when nothing failed,
else 1.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from veotui.core.errors import DataUnusable, SettingsError
from veotui.datadir.lock import DataDirLock
from veotui.datadir.paths import CHOOSE_ANOTHER, os_problem
from veotui.datadir.privacy import exposed_secrets, open_to_others
from veotui.generators import choose_generator
from veotui.logs import LOG_NAME, log_dir
from veotui.settings import Settings
from veotui.store.database_file import APPLICATION_ID, identify, inspect
from veotui.store.migrations import MIGRATIONS

if TYPE_CHECKING:
    # Imported at run time only by the checks that need them: google-genai is slow to import.
    from google.auth.credentials import Credentials
    from google.genai import Client

    from veotui.generators.veo import VertexTarget

CHECK_TIMEOUT_SECONDS = 30.0
#: Less free space than this on the data directory's disk fails the check: a job's videos
#: and their zip take tens of megabytes.
LOW_SPACE_BYTES = 500 * 1024 * 1024


class _Report:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.failures = 0

    def ok(self, what: str, text: str) -> None:
        self._line("ok", what, text)

    def fail(self, what: str, text: str) -> None:
        self.failures += 1
        self._line("FAIL", what, text)

    def skip(self, what: str, text: str) -> None:
        self._line("--", what, text)

    def warn(self, what: str, text: str) -> None:
        self._line("warn", what, text)

    def _line(self, mark: str, what: str, text: str) -> None:
        print(f"  {mark:<5} {what}: {text}", file=self.out, flush=True)


def run_doctor(settings: Settings, env: Mapping[str, str] | None = None, out: TextIO | None = None) -> int:
    env = os.environ if env is None else env
    report = _Report(out or sys.stdout)
    print("veotui doctor: checking the Google Cloud settings (nothing is generated)", file=report.out)
    _check_tokens(settings, report)
    _check_secrets(settings, report)
    _check(settings, env, report)
    if report.failures:
        print(
            f"{report.failures} problem(s); fix them and run `veotui doctor` again. docs/veo.md has the details.",
            file=report.out,
        )
        return 1
    print("everything veotui needs for Veo is in place.", file=report.out)
    return 0


def _check_tokens(settings: Settings, report: _Report) -> None:
    """Tokens kept in plain text (the old ``[users] NAME = "token"`` form) still work; a
    hash is safer: whoever reads the config file learns nothing."""
    plain = sorted(user.name for user in settings.users.values() if user.plain_token)
    if plain:
        names = ", ".join(plain)
        print(
            f"  advice  users: the token of {names} sits in {settings.config_file} in plain text; "
            f"keep only its hash: veotui users rotate {plain[0]} (gives a new token, stores its SHA-256)",
            file=report.out,
        )


def run_data_doctor(settings: Settings, out: TextIO | None = None) -> int:
    report = _Report(out or sys.stdout)
    print(
        f"veotui doctor: checking the data directory {settings.data_dir} (the engine is not started)", file=report.out
    )
    _check_secrets(settings, report)
    _check_data(settings, report)
    if report.failures:
        print(f"{report.failures} problem(s); fix them and run `veotui doctor --data` again.", file=report.out)
        return 1
    print("the data directory is in order.", file=report.out)
    return 0


def _check_data(settings: Settings, report: _Report) -> None:
    data_dir = settings.data_dir
    if not data_dir.exists():
        blocker = next((p for p in data_dir.parents if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            report.fail("directory", f"{data_dir} cannot be created: {blocker} is a file; {CHOOSE_ANOTHER}")
        else:
            report.skip("directory", f"{data_dir} does not exist yet; veotui creates it at the first start")
        return
    if not data_dir.is_dir():
        report.fail("directory", f"{data_dir} is a file, not a directory; {CHOOSE_ANOTHER}")
        return
    info = data_dir.stat()
    owner = _owner(info.st_uid)
    mode = stat.filemode(info.st_mode)
    try:
        fd, probe = tempfile.mkstemp(prefix=".veotui-doctor-", dir=data_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        report.fail("permissions", str(os_problem(data_dir, exc, "cannot be written")) + f" ({mode}, owner {owner})")
    else:
        report.ok("permissions", f"{data_dir} is writable ({mode}, owner {owner})")

    _check_privacy(settings, report)
    usage = shutil.disk_usage(data_dir)
    space = f"{usage.free / 2**30:.1f} GB free of {usage.total / 2**30:.1f} GB"
    if usage.free < LOW_SPACE_BYTES:
        report.fail(
            "free space",
            f"only {space} on the disk of {data_dir}; free some space (each job's videos "
            "and their zip take tens of megabytes)",
        )
    else:
        report.ok("free space", space)

    holder = DataDirLock(data_dir).holder()
    if holder is None:
        report.ok("in use", "no veotui process holds the directory")
    else:
        report.skip("in use", holder)

    _check_database(settings.db_path, report)


def _check_secrets(settings: Settings, report: _Report) -> None:
    """The files that hold tokens are their owner's alone."""
    warnings = exposed_secrets(settings)
    for warning in warnings:
        report.warn("tokens", warning)
    if not warnings and (settings.config_holds_tokens or settings.token_file is not None):
        report.ok("tokens", "the files holding tokens are readable by their owner only")


def _check_privacy(settings: Settings, report: _Report) -> None:
    """Prompts and user names (the database, the log) are their owner's alone."""
    data_dir = settings.data_dir
    logs = log_dir(data_dir)
    exposed = [
        f"{path} ({mode})"
        for path in (data_dir, settings.db_path, logs, logs / LOG_NAME)
        if (mode := open_to_others(path)) is not None
    ]
    if exposed:
        report.warn(
            "privacy",
            f"other users of this machine can read {', '.join(exposed)}; these hold every prompt and user name: "
            f"chmod 700 {data_dir} (veotui makes its new files private by itself)",
        )
    else:
        report.ok("privacy", "the data directory, its database and its log are readable by their owner only")


def _check_database(path: Path, report: _Report) -> None:
    if not path.exists():
        report.skip("database", f"{path} does not exist yet; veotui creates it at the first start")
        return
    try:
        identify(path, backup=False)
        facts = inspect(path)
    except DataUnusable as exc:
        report.fail("database", str(exc))
        return
    version, problems = facts.schema_version, facts.integrity
    size = f"{path.stat().st_size / 2**20:.1f} MB"
    stamp = "" if facts.application_id == APPLICATION_ID else "; stamped as veotui's at the next start"
    if version > len(MIGRATIONS):
        report.fail("database", f"{path} was written by a newer veotui (schema {version}); upgrade veotui")
    else:
        later = f", migrated to {len(MIGRATIONS)} at the next start" if version < len(MIGRATIONS) else ""
        report.ok("database", f"{path}: veotui's, schema {version}{later}, {facts.jobs} jobs, {size}{stamp}")
    if problems == ["ok"]:
        report.ok("integrity", "PRAGMA integrity_check: ok")
    else:
        report.fail(
            "integrity",
            f"{path} is damaged (integrity_check: {' '.join(' '.join(problems).split())}); copy it aside and "
            f"recover what it holds with `sqlite3 {path} .recover`",
        )


def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _check(settings: Settings, env: Mapping[str, str], report: _Report) -> None:
    # Imported here: google-genai takes a moment to import, and only doctor and veo need it.
    from veotui.generators import veo

    chosen = choose_generator(settings.replace(generator="auto"), env)
    if settings.generator == "sim":
        report.skip("generator", "VEOTUI_GENERATOR is sim: veotui uses the simulator whatever these checks say")
    elif chosen == "sim" and settings.generator == "auto":
        report.fail(
            "generator",
            "no Google settings found, so `auto` runs the offline simulator. Set GOOGLE_API_KEY "
            "(express mode), or GOOGLE_CLOUD_PROJECT with Application Default Credentials",
        )
        return
    else:
        report.ok("generator", f"{settings.generator} -> veo")

    try:
        target, credentials = veo.resolve(env)
    except SettingsError as exc:
        report.fail("settings", str(exc))
        return
    mode = (
        "express mode (GOOGLE_API_KEY)" if target.express else f"project {target.project}, location {target.location}"
    )
    report.ok("settings", mode + (f", endpoint {target.base_url}" if target.base_url else ""))

    if credentials is not None and not _check_token(credentials, report):
        return
    if credentials is None:
        report.skip("credentials", f"API key ending ...{(target.api_key or '')[-4:]}; the model check below tries it")

    client = veo.make_client(target, credentials, timeout=CHECK_TIMEOUT_SECONDS)
    try:
        for model in veo.MODEL_LIMITS:
            _check_model(client, target, model, report)
    finally:
        client.close()

    if not settings.gcs_bucket:
        report.skip("bucket", "VEOTUI_GCS_BUCKET is not set: images and videos travel inline with the requests")
        return
    try:
        bucket = veo.connect_bucket(settings.gcs_bucket, env, target, credentials)
    except SettingsError as exc:
        report.fail("bucket", str(exc))
        return
    try:
        report.ok("bucket", bucket.check_access())
    except Exception as exc:  # noqa: BLE001 - any failure of the bucket check is the answer
        report.fail("bucket", str(exc))
    finally:
        bucket.close()


def _check_token(credentials: Credentials, report: _Report) -> bool:
    import google.auth.exceptions
    import google.auth.transport.requests

    who = getattr(credentials, "service_account_email", None) or type(credentials).__name__
    if credentials.valid:
        report.ok("credentials", f"{who} (a token is at hand)")
        return True
    try:
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as exc:
        from veotui.generators.veo import NO_ADC_HELP

        report.fail("credentials", f"{who} could not get a token ({exc}); {NO_ADC_HELP}")
        return False
    report.ok("credentials", f"{who} obtained a token")
    return True


def _check_model(client: Client, target: VertexTarget, model: str, report: _Report) -> None:
    from google.genai import errors as genai_errors

    from veotui.generators import veo

    try:
        client.models.get(model=model)
    except genai_errors.APIError as exc:
        report.fail(f"model {model}", str(veo.api_fault(exc, during="submit", target=target, model=model)))
    except veo.TRANSPORT_ERRORS as exc:
        where = f" at {target.base_url}" if target.base_url else ""
        report.fail(
            f"model {model}",
            f"cannot reach Vertex AI{where} ({type(exc).__name__}: {exc}); check the network "
            "(and GOOGLE_VERTEX_BASE_URL, if set)",
        )
    else:
        report.ok(f"model {model}", "available")


def run_server_doctor(settings: Settings, *, data: bool = False, out: TextIO | None = None) -> int:
    """With ``--remote`` (or ``VEOTUI_REMOTE``): how the server stands, from what it says of
    itself (``GET /api/health``, ``/api/info``, ``/api/queue``): it answers, the token is
    accepted, which generator it runs, whether its data directory takes writes, the fleet,
    the queue. The Google checks need the server's own settings: run ``veotui doctor`` on its
    machine. ``data`` (``--data``): only the server, the token and its data directory."""
    import anyio

    report = _Report(out or sys.stdout)
    print(f"veotui doctor: asking the veotui server at {settings.remote}", file=report.out)
    anyio.run(_check_server, settings, report, data)
    if report.failures:
        print(f"{report.failures} problem(s) on the server at {settings.remote}.", file=report.out)
        return 1
    print("the server is in order.", file=report.out)
    return 0


async def _check_server(settings: Settings, report: _Report, data: bool) -> None:
    import httpx

    from veotui.backend.remote import RemoteBackend
    from veotui.core.errors import VeotuiError

    url = settings.remote.rstrip("/")
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10.0, trust_env=False) as client:
            health = await client.get("/api/health")
    except httpx.HTTPError as exc:
        report.fail("server", f"nothing answers at {url} ({type(exc).__name__}); is `veotui serve` running there?")
        return
    try:
        body = health.json()
    except ValueError:
        body = {}
    if health.status_code == 200 and body.get("status") == "ok":
        report.ok("server", f"{url} answers (GET /api/health: ok)")
    elif health.status_code == 503:
        report.fail("server", f"{url} answers, degraded: {body.get('detail', 'GET /api/health answered 503')}")
    else:
        report.fail("server", f"{url} answered GET /api/health with {health.status_code}; is it a veotui server?")
        return
    try:
        async with RemoteBackend(url, settings.token) as backend:
            info = await backend.info()
            state = await backend.queue()
    except VeotuiError as exc:
        report.fail("token", str(exc))
        return
    report.ok("token", "accepted" if settings.token else "the server asks for none")
    where = f"data directory {info.data_dir}" if info.data_dir else "its data directory"
    if info.storage.ok:
        report.ok("storage", f"{where} takes writes")
    else:
        reason = f" ({info.storage.reason})" if info.storage.reason else ""
        report.fail("storage", f"{where}: {info.storage.label}{reason}")
    if data:
        return
    if info.is_simulator:
        report.skip(
            "generator",
            "the server runs the offline simulator (it found no Google settings); "
            "run `veotui doctor` on the server's machine to see what is missing",
        )
    else:
        report.ok("generator", f"{info.generator}; `veotui doctor` on the server's machine checks its Google settings")
    if info.fleet is not None:
        report.ok("fleet", f"{info.fleet_size} live server(s)")
    waiting = f"{state.length} job(s) queued; {info.max_concurrent} slots"
    if state.paused:
        report.skip("queue", f"paused{f' ({state.reason})' if state.reason else ''}; {waiting}")
    else:
        report.ok("queue", f"running; {waiting}")
