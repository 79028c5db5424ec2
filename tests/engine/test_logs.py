"""The data directory's log: what a job's life writes there, in text and in JSON lines, the
stack trace of an internal error, no secret ever, and rotation by size."""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.support.fakes import ControlledGenerator
from tests.support.waiting import wait_for
from veotui.backend.local import LocalBackend
from veotui.core.job import Status
from veotui.datadir.logfile import Record, log_files, records
from veotui.logs import FileLog, event, log_path
from veotui.server import running_server


def read_records(data_dir: Path) -> list[dict]:
    """Every record of the log and its rotated files, parsed (text or JSON alike)."""
    found = []
    for path in log_files(log_path(data_dir)):
        with open(path, encoding="utf-8") as handle:
            found += [record.parsed() for record in records(handle)]
    return found


def of_job(found: list[dict], job_id: str, name: str | None = None) -> list[dict]:
    return [r for r in found if r.get("job_id") == job_id and (name is None or r["event"] == name)]


async def run_to_end(backend, fields: dict) -> str:
    job = await backend.submit(fields)

    async def ended() -> bool:
        return (await backend.get(job.job_id)).status.is_final

    await wait_for(ended, what="the job to end")
    return job.job_id


async def test_a_completed_job_in_json_lines(make_settings):
    settings = make_settings(log_format="json")
    async with LocalBackend(settings, env={}) as backend:
        job_id = await run_to_end(
            backend, {"prompt": "a lighthouse at dusk", "number_of_videos": 2, "seed": 7, "user": "ana"}
        )
    lines = log_path(settings.data_dir).read_text(encoding="utf-8").splitlines()
    found = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in found:
        assert {"ts", "level", "event", "job_id", "message"} <= record.keys()
        assert record["ts"].endswith("Z")

    events = [r["event"] for r in found]
    assert events[0] == "engine.start" and events[-1] == "engine.stop"
    assert "engine.recovered" in events
    assert next(r for r in found if r["event"] == "engine.start")["job_id"] is None

    [submitted] = of_job(found, job_id, "job.submitted")
    assert submitted["user"] == "ana" and submitted["prompt"] == "a lighthouse at dusk"
    assert submitted["parameters"]["number_of_videos"] == 2 and submitted["parameters"]["seed"] == 7
    assert submitted["image_bytes"] is None

    transitions = of_job(found, job_id, "job.transition")
    assert [(t["previous"], t["status"]) for t in transitions] == [
        ("queued", "starting"),
        ("starting", "uploading_image"),
        ("uploading_image", "generating"),
        ("generating", "processing"),
        ("processing", "downloading"),
        ("downloading", "completed"),
    ]
    timeline = await_timeline(settings, job_id)
    assert [t["at"] for t in transitions] == timeline
    assert transitions[-1]["detail"] == "2 video(s)"


def await_timeline(settings, job_id: str) -> list[str]:
    """The transition timestamps the store recorded (the log must carry the same ones)."""
    with sqlite3.connect(settings.db_path) as conn:
        rows = conn.execute(
            "SELECT at FROM events WHERE job_id = ? AND kind = 'transition' ORDER BY id", (job_id,)
        ).fetchall()
    return [at for (at,) in rows]


async def test_a_completed_job_in_text(make_settings):
    settings = make_settings()
    async with LocalBackend(settings, env={}) as backend:
        job_id = await run_to_end(backend, {"prompt": "rain on a tin roof"})
    text = log_path(settings.data_dir).read_text(encoding="utf-8")
    assert not text.lstrip().startswith("{")
    lines = [line for line in text.splitlines() if f"job={job_id}" in line]
    assert "job.submitted" in lines[0] and 'prompt="rain on a tin roof"' in lines[0]
    assert any("job.transition" in line and "downloading -> completed" in line for line in lines)
    found = read_records(settings.data_dir)
    assert [r["event"] for r in of_job(found, job_id)][-1] == "job.transition"


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_an_internal_error_is_logged_with_its_stack_trace(make_settings, log_format):
    settings = make_settings(log_format=log_format)
    generator = ControlledGenerator()
    generator.submit_faults.append(RuntimeError("the generator tripped over its own feet"))
    async with LocalBackend(settings, generator=generator) as backend:
        job_id = await run_to_end(backend, {"prompt": "a crash"})
        assert (await backend.get(job_id)).error_kind == "internal"
    found = read_records(settings.data_dir)
    [crash] = of_job(found, job_id, "job.internal_error")
    assert crash["level"] == "error"
    assert "Traceback (most recent call last)" in crash["exception"]
    assert "RuntimeError: the generator tripped over its own feet" in crash["exception"]
    assert "runner.py" in crash["exception"]
    failed = of_job(found, job_id, "job.transition")[-1]
    assert failed["level"] == "warning" and "-> failed" in failed["message"]
    if log_format == "json":
        assert failed["error_kind"] == "internal"


async def test_retries_are_logged_with_their_backoff(make_settings):
    from veotui.generators.base import TransientFault

    settings = make_settings(log_format="json")
    generator = ControlledGenerator()
    generator.submit_faults.append(TransientFault("503 UNAVAILABLE"))
    async with LocalBackend(settings, generator=generator) as backend:
        job = await backend.submit({"prompt": "once more"})
        await wait_for(lambda: generator.submitted == [job.job_id], what="the second submit")
        metrics = await backend.metrics()
    [retry] = of_job(read_records(settings.data_dir), job.job_id, "job.retry")
    assert retry["call"] == "submit" and retry["attempt"] == 2 and retry["error"] == "503 UNAVAILABLE"
    assert retry["backoff_seconds"] >= 0
    assert metrics["retries_by_call"] == {"submit": 1}


async def test_a_delete_logs_the_folder_and_each_remote_object(make_settings):
    settings = make_settings(log_format="json")
    async with LocalBackend(settings, env={}) as backend:
        job_id = await run_to_end(backend, {"prompt": "short-lived"})
        await backend.delete(job_id)
        await wait_for(lambda: not backend.store.pending_cleanups(), what="the remote clean-up")
    found = of_job(read_records(settings.data_dir), job_id)
    [folder] = [r for r in found if r["event"] == "cleanup.folder"]
    assert folder["outcome"] == "removed" and folder["path"].endswith(f"job_{job_id}")
    objects = [r for r in found if r["event"] == "cleanup.object"]
    assert objects and all(r["outcome"] == "deleted" for r in objects)
    assert [r["event"] for r in found].count("job.deleted") == 1


async def test_no_token_or_api_key_reaches_the_log(make_settings, monkeypatch, tmp_path):
    admin, alice = "admin-secret-token-4711", "alice-secret-token-0815"
    api_key = "AIzaSyD-fake-but-shaped-like-a-key-1234567"
    monkeypatch.setenv("GOOGLE_API_KEY", api_key)
    config = tmp_path / "config.toml"
    config.write_text(f'[users]\nalice = "{alice}"\n')
    settings = make_settings(token=admin, log_level="debug", config=str(config))
    assert settings.users["alice"].token_sha256 == hashlib.sha256(alice.encode()).hexdigest()
    async with running_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
            for token in (admin, alice, "wrong-token-guess-9999"):
                await client.get("/api/jobs", headers={"authorization": f"Bearer {token}"})
            answer = await client.post(
                "/api/generate",
                json={"prompt": "a quiet harbour"},
                headers={"authorization": f"Bearer {alice}"},
            )
            assert answer.status_code == 202
            job_id = answer.json()["job_id"]
        # An error message that quotes secrets (as a library's exception text might).
        event(
            logging.getLogger("veotui.test"),
            logging.ERROR,
            "test.leak",
            "call failed with Authorization: Bearer %s and key=%s, token %s",
            admin,
            api_key,
            alice,
            job_id=job_id,
            header=f"Bearer {alice}",
        )
        logging.getLogger("httpx").warning("GET https://example.invalid/?key=%s failed", api_key)
    text = log_path(settings.data_dir).read_text(encoding="utf-8")
    assert "http.request" in text and "test.leak" in text  # debug records were written
    for secret in (admin, alice, api_key, "wrong-token-guess-9999"):
        assert secret not in text
    assert "***" in text


async def test_the_log_rotates_by_size_and_keeps_the_backups_asked(make_settings):
    settings = make_settings(log_max_bytes="2KB", log_backups=2)
    async with LocalBackend(settings, env={}) as backend:
        for n in range(6):
            await run_to_end(backend, {"prompt": f"job number {n} " + "x" * 200})
    path = log_path(settings.data_dir)
    assert path.with_name("veotui.log.1").exists() and path.with_name("veotui.log.2").exists()
    assert not path.with_name("veotui.log.3").exists()
    for file in log_files(path):
        assert file.stat().st_size <= 2048 + 1024  # one record may overflow the limit
    # The records still read as records across the files, oldest first.
    found = read_records(settings.data_dir)
    assert found[-1]["event"] == "engine.stop"
    assert [r["ts"] for r in found] == sorted(r["ts"] for r in found)


def test_a_file_log_records_only_while_attached(make_settings):
    settings = make_settings()
    file_log = FileLog(settings)
    logging.getLogger("veotui.test").warning("while attached")
    file_log.close()
    logging.getLogger("veotui.test").warning("after")
    text = log_path(settings.data_dir).read_text(encoding="utf-8")
    assert "while attached" in text and "after" not in text
    assert Record([text.splitlines(True)[0]]).parsed()["level"] == "warning"


def test_a_log_the_disk_refuses_is_dropped_without_a_traceback(make_settings, capfd):
    settings = make_settings()
    file_log = FileLog(settings)
    try:
        # /dev/full refuses every write with ENOSPC, as a full data directory would.
        assert file_log.handler.stream is not None
        file_log.handler.stream.close()
        file_log.handler.stream = open("/dev/full", "w", encoding="utf-8")  # noqa: SIM115 - the handler closes it
        logging.getLogger("veotui.test").warning("nowhere to go")
    finally:
        file_log.close()
    assert file_log.handler.dropped == 1
    assert capfd.readouterr().err == ""


async def test_the_store_logs_each_transition_once(make_settings):
    settings = make_settings(log_format="json")
    generator = ControlledGenerator()
    async with LocalBackend(settings, generator=generator) as backend:
        job = await backend.submit({"prompt": "cancel me"})
        await wait_for(lambda: generator.submitted, what="the submit")
        await backend.cancel(job.job_id)
        assert (await backend.get(job.job_id)).status == Status.CANCELLED
    transitions = of_job(read_records(settings.data_dir), job.job_id, "job.transition")
    assert transitions[-1]["status"] == "cancelled" and transitions[-1]["detail"] == "cancelled by user"
    assert len(transitions) == len({t["at"] + t["status"] for t in transitions})


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_a_prompt_cannot_forge_a_record(make_settings, log_format):
    settings = make_settings(log_format=log_format)
    forged = "2026-11-30T15:00:00.000Z ERROR   job.internal_error forged"
    async with LocalBackend(settings, env={}) as backend:
        job_id = await run_to_end(backend, {"prompt": f'rain\n{forged}\n{{"event": "forged"}}\tend'})
    found = read_records(settings.data_dir)
    assert not [
        r for r in found if r["event"] in ("job.internal_error", "forged") or r.get("ts", "").startswith("2026-11-30")
    ]
    submitted = of_job(found, job_id, "job.submitted")
    assert len(submitted) == 1
    lines = log_path(settings.data_dir).read_text(encoding="utf-8").splitlines()
    assert not any(line.startswith(forged[:24]) or line.startswith('{"event"') for line in lines)
