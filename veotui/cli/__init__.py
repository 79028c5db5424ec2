"""The ``veotui`` command: the TUI, ``serve``, the client verbs and ``doctor``.

Exit status: 0 success, 1 a failure explained on stderr in one line, 2 a bad value (a
flag, a job field the server refuses, or a setting veotui cannot use).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from veotui import __version__
from veotui.backend.base import QUEUE_PAGE
from veotui.core.access import DEFAULT_ROLE, Role
from veotui.core.capabilities import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODEL,
    DEFAULT_RESOLUTION,
    DURATIONS,
    MAX_REFERENCES,
    MAX_VIDEOS,
    MODELS,
    PERSON_GENERATION,
    REFERENCE_TYPES,
    RESOLUTIONS,
)
from veotui.core.errors import InvalidRequest, SettingsError, VeotuiError
from veotui.core.job import MOVES
from veotui.core.text import printable
from veotui.settings import CLIENT_SETTINGS, GENERATORS, LOG_LEVELS, Settings, load_settings

EPILOG = """\
settings come from the config file (VEOTUI_CONFIG, else config.toml in the user config
directory), then VEOTUI_* environment variables, then these flags. See docs/ for all of them.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veotui",
        description="Run Google Veo video generation jobs from a terminal: a live three-panel TUI "
        "on an embedded two-slot scheduler, or on a remote `veotui serve`. Without Google "
        "credentials it runs on an offline simulator.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"veotui {__version__}")
    _engine_flags(parser)
    _remote_flags(parser, help_remote="drive the veotui server at URL instead of the embedded engine")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the REST API with the embedded scheduler")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    serve.add_argument("--token", help="bearer token clients must send (VEOTUI_TOKEN)")
    serve.add_argument(
        "--token-file",
        metavar="FILE",
        help="read the token from FILE, so it never shows in ps (VEOTUI_TOKEN_FILE)",
    )
    serve.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="level of the log file and of stderr (default: the file at VEOTUI_LOG_LEVEL or info, stderr at warning)",
    )
    _engine_flags(serve)

    submit = commands.add_parser("submit", help="queue a job on the server and print its id")
    submit.add_argument("prompt", nargs="?", help="what the video should show (1-4000 characters)")
    submit.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="queue every job of a JSON Lines file (one job a line, the fields of the REST body; "
        "image paths relative to the file); checks every line first, prints one id a line",
    )
    submit.add_argument("--image", metavar="PATH", help="input image (PNG, JPEG, WebP, GIF, AVIF; <= 10 MB)")
    submit.add_argument(
        "--count",
        type=int,
        choices=range(1, MAX_VIDEOS + 1),
        default=1,
        metavar="N",
        help=f"number of videos, 1-{MAX_VIDEOS} (default 1)",
    )
    submit.add_argument("--model", choices=MODELS, default=DEFAULT_MODEL)
    submit.add_argument("--aspect-ratio", choices=ASPECT_RATIOS, default=DEFAULT_ASPECT_RATIO)
    submit.add_argument(
        "--duration",
        type=int,
        choices=DURATIONS,
        default=DEFAULT_DURATION,
        metavar="S",
        help=", ".join(map(str, DURATIONS)) + " seconds",
    )
    submit.add_argument("--resolution", choices=RESOLUTIONS, default=DEFAULT_RESOLUTION)
    submit.add_argument("--negative-prompt", metavar="TEXT")
    submit.add_argument("--seed", type=int, metavar="N")
    modes = submit.add_argument_group("Veo 3.1 modes")
    modes.add_argument("--last-frame", metavar="PATH", help="the video ends on this image (needs --image)")
    modes.add_argument(
        "--reference",
        metavar="PATH",
        action="append",
        default=[],
        help=f"a reference image that keeps a character or product consistent (up to {MAX_REFERENCES})",
    )
    modes.add_argument("--reference-type", choices=REFERENCE_TYPES, help="asset (default) or style")
    modes.add_argument(
        "--audio",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="make sound (the model's default) or a silent, cheaper video",
    )
    modes.add_argument("--person-generation", choices=PERSON_GENERATION)
    modes.add_argument(
        "--enhance-prompt", action=argparse.BooleanOptionalAction, default=None, help="let Veo rewrite the prompt"
    )
    modes.add_argument(
        "--extend", metavar="JOB[:N]", help="continue video N (default 1) of a completed job (an id or its start)"
    )
    submit.add_argument("--wait", action="store_true", help="show progress and wait until the job ends")
    submit.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the same KEY within 24 h makes one job however often the submit is sent (1-200 printable "
        "characters); without it veotui uses a key of its own for its retries",
    )
    _remote_flags(submit)

    models = commands.add_parser(
        "models",
        help="what each Veo model takes and costs, with the source of each fact",
        description="Each Veo model: what it accepts (modes, resolutions, lengths, videos, aspect ratios), its "
        "prices by resolution, whether it is preview, and the page and date behind each fact. With --remote "
        "(or VEOTUI_REMOTE) the server's table, its price overrides included; without, this installation's, "
        "with this machine's [prices] overrides.",
    )
    models.add_argument("--json", action="store_true", help="print JSON (the body of GET /api/models)")
    _remote_flags(models)

    jobs = commands.add_parser("jobs", help="list processing, queued and recent jobs")
    jobs.add_argument("--json", action="store_true", help="print JSON")
    jobs.add_argument("--limit", type=int, default=20, help="history rows (default 20)")
    jobs.add_argument(
        "--all",
        action="store_true",
        help=f"every queued job (without it, the first {QUEUE_PAGE} and how many more wait)",
    )
    _remote_flags(jobs)

    for name, text in (
        ("status", "show one job"),
        ("cancel", "cancel a queued or processing job (or many: --queued, --all)"),
        ("retry", "queue a failed or cancelled job again"),
        ("delete", "delete a job and all its files (or the whole history: --finished)"),
    ):
        verb = commands.add_parser(name, help=text)
        bulk = name in ("cancel", "delete")
        verb.add_argument("job", nargs="?" if bulk else None, help="a job id or any unique prefix of one")
        if name == "status":
            verb.add_argument("--json", action="store_true", help="print JSON")
        if name == "cancel":
            verb.add_argument("--queued", action="store_true", help="cancel every queued job")
            verb.add_argument("--all", action="store_true", help="cancel every queued and processing job")
        if name == "delete":
            verb.add_argument("--finished", action="store_true", help="delete every ended job (the history)")
        if bulk:
            verb.add_argument("-y", "--yes", action="store_true", help="do not ask before acting on many jobs")
        _remote_flags(verb)

    download = commands.add_parser(
        "download",
        help="download a completed job's videos (the server then deletes the job after a few seconds)",
        description="Save a completed job's videos. Downloading the zip, or every video, starts the "
        "server's auto-delete: the job and its files are removed auto_delete_after_download seconds "
        "later (5 by default; `off` on the server keeps jobs). Only the job's owner (or the server's "
        "own token) starts it. --keep saves without starting it.",
    )
    download.add_argument("job", help="a job id or any unique prefix of one")
    download.add_argument("-o", "--output", default=".", metavar="DIR", help="directory to save into (default .)")
    download.add_argument("--video", type=int, metavar="N", help="only video N (1-based); default: the zip of all")
    download.add_argument(
        "--keep", action="store_true", help="save without starting the auto-delete: the job stays on the server"
    )
    _remote_flags(download)

    queue = commands.add_parser("queue", help="pause, resume or show the queue (alone: status)")
    queue.add_argument("--json", action="store_true", help="with status (or alone): print JSON")
    _remote_flags(queue)
    actions = queue.add_subparsers(dest="queue_action", metavar="ACTION")
    pause = actions.add_parser("pause", help="start no new job until resumed (processing jobs go on)")
    pause.add_argument("reason", nargs="?", help="why, shown with the pause")
    _remote_flags(pause)
    resume = actions.add_parser("resume", help="start queued jobs again")
    _remote_flags(resume)
    queue_status = actions.add_parser("status", help="whether the queue is paused, and why")
    queue_status.add_argument("--json", action="store_true", help="print JSON")
    _remote_flags(queue_status)

    move = commands.add_parser("move", help="move a queued job: top, bottom, up, down or to position N")
    move.add_argument("job", help="a job id or any unique prefix of one")
    move.add_argument("where", type=_where, metavar="top|bottom|up|down|N", help="where to (N: 1-based position)")
    _remote_flags(move)

    hooks = commands.add_parser("hooks", help="the server's webhooks: deliveries and a test ping (admin)")
    hook_actions = hooks.add_subparsers(dest="hooks_action", metavar="ACTION", required=True)
    deliveries = hook_actions.add_parser("deliveries", help="each delivery with its state and attempts, newest first")
    deliveries.add_argument("--job", metavar="JOB", help="only the deliveries of this job (an id or its start)")
    deliveries.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    deliveries.add_argument("--json", action="store_true", help="print JSON (the body of GET /api/webhooks/deliveries)")
    _remote_flags(deliveries)
    hooks_test = hook_actions.add_parser("test", help="send a ping event to every hook now and print each answer")
    hooks_test.add_argument("--json", action="store_true", help="print JSON")
    _remote_flags(hooks_test)

    doctor = commands.add_parser(
        "doctor",
        help="check the Google Cloud settings without generating anything (with --remote: ask the server)",
    )
    doctor.add_argument(
        "--data",
        action="store_true",
        help="check the data directory instead: permissions, free space, the database's integrity "
        "(without starting the engine)",
    )
    _engine_flags(doctor)
    _remote_flags(doctor, help_remote="ask the veotui server at URL how it stands (VEOTUI_REMOTE)")

    users = commands.add_parser("users", help="add, list, rotate or remove the server's users (the config file)")
    user_actions = users.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    add = user_actions.add_parser("add", help="add a user with a new token (printed once; only its hash is kept)")
    add.add_argument("name", help="the user's name: letters, digits and . _ @ -")
    add.add_argument("--role", choices=[r.value for r in Role], default=DEFAULT_ROLE.value, help="default operator")
    add.add_argument("--budget", type=_usd, metavar="USD", help="the user's own daily budget in US dollars")
    add.add_argument("--max-concurrent", type=_at_least_one, metavar="N", help="at most N of their jobs processing")
    user_actions.add_parser("list", help="every user with their role, budget and limit (never a token)")
    rotate = user_actions.add_parser("rotate", help="give a user a new token; the old one stops working")
    rotate.add_argument("name")
    remove = user_actions.add_parser("remove", help="remove a user; their next request gets 401")
    remove.add_argument("name")

    audit = commands.add_parser("audit", help="the server's audit log, newest first (admin)")
    audit.add_argument("--user", metavar="U", help="only this user's entries")
    audit.add_argument("--job", metavar="J", help="only entries of the job whose id starts with J")
    audit.add_argument("-f", "--follow", action="store_true", help="keep printing new entries as they come")
    audit.add_argument("--limit", type=_at_least_one, default=50, metavar="N", help="entries (default 50)")
    audit.add_argument("--json", action="store_true", help="print one JSON object a line")
    _remote_flags(audit)

    logs = commands.add_parser(
        "logs",
        help="print the log: the data directory's (works while veotui runs), or with --remote the server's",
    )
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new records as they come")
    logs.add_argument("--job", metavar="JOB", help="only records of the job whose id starts with JOB")
    logs.add_argument(
        "--since", metavar="DURATION", help="only records of the last DURATION: 90s, 15m, 2h, 1d (or seconds)"
    )
    logs.add_argument("--json", action="store_true", help="print one JSON object a line")
    logs.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS, help="data directory (VEOTUI_DATA_DIR)")
    _remote_flags(logs, help_remote="read the log of the veotui server at URL (VEOTUI_REMOTE; its own token)")
    return parser


def _conflicting(args: argparse.Namespace) -> str | None:
    """What argparse cannot say: one of two ways to name what a verb acts on."""
    if args.command == "submit" and (args.prompt is None) == (args.from_file is None):
        return "give a PROMPT or --from FILE (one of them)"
    if args.command == "submit" and args.from_file and args.wait:
        return "--wait follows one job; it does not go with --from"
    if args.command == "submit" and args.from_file and args.idempotency_key:
        return 'each line of --from carries its own "idempotency_key"; --idempotency-key is for one job'
    if args.command == "cancel":
        chosen = [name for name in ("job", "queued", "all") if getattr(args, name)]
        if len(chosen) != 1:
            return "give a JOB, --queued or --all (one of them)"
    if args.command == "delete" and bool(args.job) == bool(args.finished):
        return "give a JOB or --finished (one of them)"
    return None


def _usd(text: str) -> float:
    try:
        value = float(text.strip().removeprefix("$"))
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected an amount of US dollars above 0, like 20 or 12.5, got {text!r}")
    return value


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _where(text: str) -> str | int:
    if text in MOVES:
        return text
    try:
        position = int(text)
    except ValueError:
        position = 0
    if position < 1:
        raise argparse.ArgumentTypeError(f"expected top, bottom, up, down or a position of 1 or more, got {text!r}")
    return position


def _engine_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--generator", choices=GENERATORS, default=argparse.SUPPRESS, help="auto (default), sim or veo")
    parser.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS, help="data directory (VEOTUI_DATA_DIR)")


def _remote_flags(parser: argparse.ArgumentParser, help_remote: str | None = None) -> None:
    parser.add_argument(
        "--remote", metavar="URL", default=argparse.SUPPRESS, help=help_remote or "server URL (VEOTUI_REMOTE)"
    )
    if not any(a.dest == "token" for a in parser._actions):
        parser.add_argument("--token", default=argparse.SUPPRESS, help="bearer token (VEOTUI_TOKEN)")
        parser.add_argument(
            "--token-file",
            metavar="FILE",
            default=argparse.SUPPRESS,
            help="read the bearer token from FILE, so it never shows in ps (VEOTUI_TOKEN_FILE)",
        )


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("generator", "data_dir", "remote", "token", "token_file", "log_level"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    # A client verb reads only where the server is: a server setting it cannot parse is the
    # server's business.
    only = None if args.command in ENGINE_COMMANDS and not asks_server(args) else CLIENT_SETTINGS
    if args.command == "models":
        only = CLIENT_SETTINGS | {"prices"}  # the local table shows this machine's overrides
    return load_settings(overrides=overrides, only=only)


def asks_server(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``logs`` or ``doctor`` ask a server rather than read this machine's data
    directory: ``--remote`` given, or ``VEOTUI_REMOTE`` set without a ``--data-dir``."""
    if args.command not in ("logs", "doctor"):
        return False
    if getattr(args, "remote", None):
        return True
    env = os.environ if env is None else env
    return bool(env.get("VEOTUI_REMOTE")) and getattr(args, "data_dir", None) is None


#: A verb whose reader closed the pipe ends as if SIGPIPE had stopped it, as Unix tools do.
BROKEN_PIPE_STATUS = 128 + 13


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = _conflicting(args)
    if problem:
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(problem)
    try:
        try:
            settings = settings_from(args)
        except SettingsError as exc:
            print(f"veotui: {exc}", file=sys.stderr)
            return 2
        try:
            status = dispatch(args, settings)
        except InvalidRequest as exc:
            print(f"veotui: {printable(str(exc))}", file=sys.stderr)
            return 2
        except VeotuiError as exc:
            print(f"veotui: {printable(str(exc))}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        # What is still buffered goes now, while a closed pipe can still be caught.
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return closed_pipe()


def closed_pipe() -> int:
    """The reader of stdout went away (``veotui jobs | head -1``): stop quietly. Python would
    flush stdout again at exit and print an error there, so stdout now points at /dev/null."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return BROKEN_PIPE_STATUS


#: The commands that run (or read) the engine here; every other one is a client verb.
ENGINE_COMMANDS = frozenset({None, "serve", "logs", "doctor", "users"})


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "serve" or (command is None and not getattr(args, "remote", None)):
        # A data directory or database that cannot be used is refused before the server
        # or the TUI is even imported (the engine checks again when it opens them).
        from veotui.store import is_postgres
        from veotui.store.database_file import preflight

        if not is_postgres(settings.store):
            preflight(settings.data_dir, settings.db_path)
    if command is None:
        from veotui.tui import run_tui

        remote = getattr(args, "remote", None)
        return run_tui(settings, remote=remote)
    if command == "serve":
        from veotui.server import serve

        return serve(settings, host=args.host, port=args.port, log_level=getattr(args, "log_level", None))
    if command == "logs":
        filters = {"follow": args.follow, "job": args.job, "since": args.since, "as_json": args.json}
        if asks_server(args):
            import anyio

            from veotui.cli.logs import remote_logs

            return anyio.run(functools.partial(remote_logs, settings, **filters))
        from veotui.cli.logs import run_logs

        return run_logs(settings, **filters)
    if command == "doctor":
        if asks_server(args):
            from veotui.cli.doctor import run_server_doctor

            return run_server_doctor(settings, data=args.data)
        from veotui.cli.doctor import run_data_doctor, run_doctor

        return run_data_doctor(settings) if args.data else run_doctor(settings)
    if command == "users":
        from veotui.cli.users import run_users

        return run_users(args, settings)
    from veotui.cli.verbs import run_verb

    return run_verb(args, settings)


if __name__ == "__main__":
    sys.exit(main())
