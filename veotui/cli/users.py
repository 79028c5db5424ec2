"""``veotui users add|list|rotate|remove``: the server's users in the config file.

The file is edited in place with tomlkit, so its comments, order and layout stay as they
were; only the user's own table changes. A new token is printed once and only its SHA-256
is written. A running server applies the change within a few seconds, or at once on SIGHUP.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

import tomlkit
from tomlkit.items import Table

from veotui.core.access import Role
from veotui.core.errors import InvalidRequest, SettingsError
from veotui.datadir.files import write_atomic
from veotui.settings import USER_NAME, Settings, default_config_file, read_users, token_sha256

APPLIED = "a running server applies it within 5 s (or at once: kill -HUP <its pid>)"


def run_users(args: argparse.Namespace, settings: Settings) -> int:
    path = settings.config_file or _config_path()
    action = args.users_action
    if action == "list":
        return _list(path)
    name = args.name
    if not USER_NAME.fullmatch(name):
        raise InvalidRequest(
            f"{name!r} is not a user name: 1 to 64 letters, digits and . _ @ - (starting with a letter or digit)"
        )
    document = _read(path)
    users = document.get("users")
    if users is not None and not isinstance(users, Table):
        raise SettingsError(f"[users] in {path} is not a table; fix it by hand first")
    if action == "add":
        if users is not None and name in users:
            raise InvalidRequest(f"{name} is already a user in {path}; use veotui users rotate {name} for a new token")
        token = secrets.token_urlsafe(32)
        entry = tomlkit.table()
        entry.add("token_sha256", token_sha256(token))
        entry.add("role", args.role)
        if args.budget is not None:
            entry.add("daily_budget_usd", args.budget)
        if args.max_concurrent is not None:
            entry.add("max_concurrent", args.max_concurrent)
        if users is None:
            users = tomlkit.table(is_super_table=True)
            document.add("users", users)
        users.add(name, entry)
        _write(path, document)
        print(f"added {name} ({args.role}) to {path}; {APPLIED}")
        print(f"{name}'s token (shown this once; only its SHA-256 is kept):", file=sys.stderr)
        print(token)
        return 0
    if users is None or name not in users:
        raise InvalidRequest(f"{name} is not a user in {path}; veotui users list shows them")
    if action == "rotate":
        token = secrets.token_urlsafe(32)
        current = users[name]
        if isinstance(current, Table):
            current["token_sha256"] = token_sha256(token)
        else:  # the old form, NAME = "token": it becomes a table, an operator as before
            entry = tomlkit.table()
            entry.add("token_sha256", token_sha256(token))
            entry.add("role", Role.OPERATOR.value)
            users[name] = entry
        _write(path, document)
        print(f"rotated {name}'s token in {path}: the old one stops working; {APPLIED}")
        print(f"{name}'s new token (shown this once; only its SHA-256 is kept):", file=sys.stderr)
        print(token)
        return 0
    del users[name]
    _write(path, document)
    print(f"removed {name} from {path}; {APPLIED}")
    return 0


def _list(path: Path) -> int:
    users = read_users(path)
    if not users:
        print(f"no users in {path}")
        return 0
    print(f"{'USER':<20} {'ROLE':<9} {'BUDGET/DAY':>11} {'AT ONCE':>7}  TOKEN")
    for user in users.values():
        budget = f"${user.daily_budget_usd:,.2f}" if user.daily_budget_usd is not None else "-"
        limit = str(user.max_concurrent) if user.max_concurrent is not None else "-"
        token = "plain text: run veotui users rotate" if user.plain_token else f"sha256 {user.token_sha256[:12]}…"
        print(f"{user.name:<20} {user.role.value:<9} {budget:>11} {limit:>7}  {token}")
    return 0


def _config_path() -> Path:
    variable = os.environ.get("VEOTUI_CONFIG")
    return Path(variable).expanduser() if variable else default_config_file()


def _read(path: Path) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return tomlkit.document()
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.ParseError) as exc:
        raise SettingsError(f"config file {path} cannot be read: {exc}") from exc


def _write(path: Path, document: tomlkit.TOMLDocument) -> None:
    text = tomlkit.dumps(document)
    read_users(path, text)  # never write a file the server would refuse
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    write_atomic(path, text.encode("utf-8"))
    os.chmod(path, mode)
