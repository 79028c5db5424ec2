"""Fault classes at the edge of the network, on the generator itself: what was never sent
may be sent again; what was sent and not answered may not."""

from __future__ import annotations

import socket

import httpx2
import pytest
from google.genai import errors as genai_errors

from tests.veo.fake_vertex import Fault
from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.generators.base import JobInputs, PermanentFault, SubmitOutcomeUnknown, TransientFault
from veotui.generators.veo import retry_delay


def a_job(prompt: str = "a quiet harbour") -> Job:
    return Job(job_id=new_job_id(), status=Status.GENERATING, request=JobRequest(prompt=prompt))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_refused_connection_is_transient_because_nothing_was_sent(make_settings, make_veo):
    generator = make_veo(make_settings(), GOOGLE_VERTEX_BASE_URL=f"http://127.0.0.1:{closed_port()}")
    try:
        with pytest.raises(TransientFault, match="nothing was sent") as caught:
            await generator.submit(a_job(), JobInputs())
        assert not isinstance(caught.value, SubmitOutcomeUnknown)
        with pytest.raises(TransientFault, match="could not reach Vertex AI to check the operation"):
            await generator.poll(a_job(), "projects/p/locations/l/publishers/google/models/m/operations/1")
    finally:
        await generator.aclose()


async def test_a_gateway_timeout_on_submit_is_an_unknown_outcome(make_settings, make_veo, fake_vertex):
    fake_vertex.faults.append(Fault("predictLongRunning", status=504, message="Deadline exceeded"))
    generator = make_veo(make_settings())
    try:
        with pytest.raises(SubmitOutcomeUnknown, match="504 DEADLINE_EXCEEDED"):
            await generator.submit(a_job(), JobInputs())
    finally:
        await generator.aclose()


async def test_an_unknown_operation_is_lost_for_good(make_settings, make_veo, fake_vertex):
    generator = make_veo(make_settings())
    try:
        with pytest.raises(PermanentFault) as caught:
            await generator.poll(
                a_job(),
                "projects/test-proj/locations/us-central1/publishers/google/models/veo-3.1-generate-001/operations/gone",
            )
    finally:
        await generator.aclose()
    assert caught.value.kind == "operation_lost"
    assert "no longer knows this operation" in str(caught.value)


def test_the_retry_delay_comes_from_retry_info_or_the_retry_after_header():
    retry_info = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"}],
        }
    }
    assert retry_delay(genai_errors.ClientError(429, retry_info)) == 12.5
    header = httpx2.Response(429, headers={"Retry-After": "7"})
    assert retry_delay(genai_errors.ClientError(429, {"error": {"code": 429}}, header)) == 7.0
    assert retry_delay(genai_errors.ClientError(429, {"error": {"code": 429}})) is None


async def test_a_dropped_connection_is_unknown_on_submit_and_transient_on_poll(make_settings, make_veo, fake_vertex):
    fake_vertex.faults += [
        Fault("predictLongRunning", drop=True, accepted=True),
        Fault("fetchPredictOperation", drop=True),
    ]
    generator = make_veo(make_settings())
    try:
        with pytest.raises(SubmitOutcomeUnknown, match="no answer came back"):
            await generator.submit(a_job(), JobInputs())
        [operation] = fake_vertex.operations
        with pytest.raises(TransientFault, match="could not reach Vertex AI to check the operation"):
            await generator.poll(a_job(), operation)
        assert await generator.poll(a_job(), operation) is None  # the connection is back: pending
    finally:
        await generator.aclose()
