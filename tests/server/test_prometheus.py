"""``GET /metrics``: the Prometheus text format, parsed with prometheus_client's own parser,
exact after a known set of jobs, the same after a restart, and only with the token."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.waiting import wait_for
from veotui.server import running_server

TOKEN = "metrics-s3cret"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


async def run_known_jobs(client: httpx.AsyncClient) -> dict[str, dict]:
    prompts = {
        "plain one": "completed",
        "plain two": "completed",
        "retried [flaky]": "completed",
        "broken [fail]": "failed",
        "blocked [filtered]": "failed",
    }
    ids = {}
    for prompt in prompts:
        answer = await client.post("/api/generate", json={"prompt": prompt}, headers=AUTH)
        ids[prompt] = answer.json()["job_id"]
    cancelled = (await client.post("/api/generate", json={"prompt": "never mind"}, headers=AUTH)).json()["job_id"]
    await client.post(f"/api/cancel/{cancelled}", headers=AUTH)

    async def all_ended() -> bool:
        for job_id in ids.values():
            status = (await client.get(f"/api/status/{job_id}", headers=AUTH)).json()["status"]
            if status not in ("completed", "failed", "cancelled"):
                return False
        return True

    await wait_for(all_ended, timeout=30, what="every job to end")
    jobs = {}
    for prompt, job_id in ids.items():
        jobs[prompt] = (await client.get(f"/api/status/{job_id}", headers=AUTH)).json()
        assert jobs[prompt]["status"] == prompts[prompt], jobs[prompt]
    jobs["never mind"] = (await client.get(f"/api/status/{cancelled}", headers=AUTH)).json()
    return jobs


async def scrape(client: httpx.AsyncClient) -> dict:
    answer = await client.get("/metrics", headers=AUTH)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


async def test_exact_counts_after_known_jobs_and_the_same_after_a_restart(make_settings):
    settings = make_settings(token=TOKEN)
    async with running_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=20) as client:
            jobs = await run_known_jobs(client)
            found = await scrape(client)
            await wait_for(lambda: server.backend.dir_size.value() > 0, what="the data directory's size to be measured")
            found = await scrape(client)

    assert value(found, "veotui_jobs_total", status="completed") == 3
    assert value(found, "veotui_jobs_total", status="failed") == 2
    assert value(found, "veotui_jobs_total", status="cancelled") == 1
    kinds = sorted(jobs[p]["error_kind"] for p in ("broken [fail]", "blocked [filtered]"))
    assert {k: value(found, "veotui_errors_total", kind=k) for k in kinds} == {k: kinds.count(k) for k in kinds}
    assert value(found, "veotui_retries_total", call="submit") == 2
    assert value(found, "veotui_queue_length") == 0 and value(found, "veotui_processing_jobs") == 0
    assert value(found, "veotui_job_duration_seconds_count") == 3
    assert value(found, "veotui_job_duration_seconds_bucket", le="+Inf") == 3
    assert value(found, "veotui_job_duration_seconds_sum") > 0
    started = sum(1 for job in jobs.values() if job["attempts"] >= 1)
    assert value(found, "veotui_queue_wait_seconds_count") == started
    # Only the three completed jobs went through the download stage and out of it.
    assert value(found, "veotui_stage_duration_seconds_count", stage="downloading") == 3
    # Each generation bought (an operation was created) counts its estimate once.
    bought = sum(job["estimated_cost_usd"] for job in jobs.values() if job["operation"])
    assert bought > 0 and value(found, "veotui_estimated_cost_usd_total") == pytest.approx(bought)
    assert value(found, "veotui_data_dir_bytes") > 0
    assert value(found, "process_resident_memory_bytes") > 0 and ("process_cpu_seconds_total", ()) in found
    assert not any(name.startswith("veotui_gcs_") for name, _ in found)  # no bucket, no series

    async with running_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=20) as client:
            again = await scrape(client)
            figures = (await client.get("/api/metrics", headers=AUTH)).json()
            series = (await client.get("/api/metrics/series", params={"hours": 24}, headers=AUTH)).json()
    persisted = {
        key: v for key, v in found.items() if key[0].startswith("veotui_") and key[0] not in ("veotui_data_dir_bytes",)
    }
    assert {key: again[key] for key in persisted} == persisted

    assert figures["completed"] == 3 and figures["failed"] == 2 and figures["cancelled"] == 1
    assert figures["processing_seconds_p50"] <= figures["processing_seconds_p95"]
    assert figures["queue_wait_seconds_avg"] is not None
    assert figures["estimated_cost_usd_total"] == pytest.approx(bought)
    assert figures["retries_by_call"] == {"submit": 2}
    assert series["hours"] == 24 and len(series["series"]) == 24
    assert sum(h["completed"] for h in series["series"]) == 3
    assert sum(h["failed"] for h in series["series"]) == 2


async def test_metrics_need_the_token(make_settings):
    settings = make_settings(token=TOKEN)
    async with running_server(settings) as server:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as client:
            for path in ("/metrics", "/api/metrics", "/api/metrics/series"):
                refused = await client.get(path)
                assert refused.status_code == 401 and "token" in refused.json()["detail"]
                wrong = await client.get(path, headers={"authorization": "Bearer nope"})
                assert wrong.status_code == 401
            assert (await client.get("/api/health")).status_code == 200
            bad = await client.get("/api/metrics/series", params={"hours": 0}, headers=AUTH)
            assert bad.status_code == 422 and "hours" in bad.json()["detail"]
