"""``submit --after`` and ``--extend`` on an unfinished job as real ``python -m veotui``
subprocesses against a real server whose jobs take long enough to be waited for."""

from __future__ import annotations

import functools

import pytest

from tests.cli.test_sweeps import veotui
from tests.cli.test_verbs import TOKEN, UUID
from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from tests.support.waiting import wait_until
from veotui.settings import load_settings


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("chains") / "data"
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(data_dir), "VEOTUI_SIM_SECONDS": "60"})
    with server_thread(settings.replace(token=TOKEN)) as running:
        yield running


def submit(server, *args: str) -> tuple[str, str]:
    done = veotui(server, "submit", *args)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert UUID.match(job_id), done.stdout
    return job_id, done.stderr


def status(server, job_id: str) -> str:
    shown = veotui(server, "status", job_id)
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def cancelled(server, job_id: str) -> bool:
    return "cancelled" in status(server, job_id)


def test_after_and_extend_wait_for_an_unfinished_job_and_its_cancel_ends_the_chain(server):
    first, _ = submit(server, "a boat sets off")
    second, said = submit(server, "a map of the crossing", "--after", first[:8])
    assert f"queued: waits for job {first} to complete" in said
    assert f"waits for job {first} to complete" in status(server, second)
    extension, said = submit(server, "the boat crosses the bay", "--extend", f"{first[:8]}:1")
    assert f"waits for job {first} to complete" in said

    assert veotui(server, "cancel", first).returncode == 0
    for waiting in (second, extension):
        wait_until(functools.partial(cancelled, server, waiting), what="the waiting job to be cancelled")
        assert f"job {first}, which this job waited for, cancelled" in status(server, waiting)


def test_after_a_job_that_does_not_exist_or_failed_is_refused(server):
    missing = veotui(server, "submit", "p", "--after", "00000000-0000-4000-8000-000000000077")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "00000000-0000-4000-8000-000000000077" in missing.stderr
    cancelled, _ = submit(server, "to be cancelled")
    assert veotui(server, "cancel", cancelled).returncode == 0
    refused = veotui(server, "submit", "p", "--after", cancelled)
    assert refused.returncode == 1, refused.stderr
    assert f"after: job {cancelled} cancelled; it will not complete" in refused.stderr
