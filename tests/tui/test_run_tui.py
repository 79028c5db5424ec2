"""``run_tui``: a backend that cannot start is one line on stderr and exit status 1."""

from __future__ import annotations

import socket

from veotui.datadir.lock import DataDirLock
from veotui.tui import run_tui


def test_a_busy_data_directory_is_one_clear_line(settings, capsys):
    holder = DataDirLock(settings.data_dir)
    holder.acquire("http://127.0.0.1:8765")
    try:
        assert run_tui(settings) == 1
    finally:
        holder.release()
    err = capsys.readouterr().err
    assert err.startswith("veotui: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_an_unreachable_server_is_one_clear_line(settings, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert run_tui(settings, remote=f"http://127.0.0.1:{port}") == 1
    err = capsys.readouterr().err
    assert err.startswith("veotui: ") and err.count("\n") == 1
