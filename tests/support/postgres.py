"""A private PostgreSQL cluster for tests: ``initdb`` in a temporary folder, a free loopback
port, a Unix socket in the same folder, stopped by its PID when the tests end.

PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` system
user (Debian's package creates it). Where no PostgreSQL binaries can be found the tests that
need one are skipped with the reason.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from veotui.store import open_store

if TYPE_CHECKING:
    from veotui.store.postgres import PostgresStore

#: The tests' settings: nothing waits for the disk (a crash of the test machine loses nothing of value).
FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
#: PostgreSQL's own defaults: every commit waits for its WAL to reach the disk.
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}

SEARCH = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14", "13")]


def find_bin_dir() -> Path | None:
    for folder in SEARCH:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Owner(TypedDict, total=False):
    """The keyword arguments of ``subprocess`` that run a program as another user."""

    user: int
    group: int
    extra_groups: list[int]


@dataclass
class Cluster:
    bin_dir: Path
    root: Path
    port: int
    user: str = "veotui"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    databases: int = 0
    #: Server settings (``-c name=value``). The tests' default trades durability for speed;
    #: a benchmark that compares with durable systems passes :data:`DURABLE`.
    settings: dict[str, str] = field(default_factory=lambda: dict(FAST))

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _as_owner(self) -> Owner:
        if os.geteuid() != 0:
            return {}
        owner = pwd.getpwnam("postgres")
        return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}

    def start(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                self.user,
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            **self._as_owner(),
        )
        log = open(self.root / "postgres.log", "wb")  # noqa: SIM115 - the server writes it for its whole life
        self.process = subprocess.Popen(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
                *(arg for name, value in self.settings.items() for arg in ("-c", f"{name}={value}")),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            **self._as_owner(),
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start: {(self.root / 'postgres.log').read_text()[-2000:]}")
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        self.databases += 1
        name = f"veotui_test_{self.databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # immediate shutdown: nothing to keep
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(settings: dict[str, str] | None = None) -> Cluster:
    """A private cluster started with ``settings`` (by default :data:`FAST`)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL is not installed (no initdb found); apt-get install postgresql")
    cluster = Cluster(
        bin_dir=bin_dir,
        root=Path(tempfile.mkdtemp(prefix="veotui-pg-")),
        port=free_port(),
        settings=dict(FAST if settings is None else settings),
    )
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster


def open_shared_store(url: str, data_dir: Path) -> PostgresStore:
    """The store a fleet server opens on ``url``: the PostgreSQL store, with its fleet calls."""
    from veotui.store.postgres import PostgresStore

    store = open_store(url, data_dir)
    assert isinstance(store, PostgresStore)
    return store
