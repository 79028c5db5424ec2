"""How veotui reaches Vertex AI from the environment: express mode, a service-account key,
and settings that are present but cannot work, which stop veotui at start with a sentence
naming what is missing."""

from __future__ import annotations

import pytest

from tests.veo.test_veo_jobs import run_job
from veotui.backend.local import LocalBackend
from veotui.core.errors import InvalidRequest, SettingsError
from veotui.core.job import Status
from veotui.core.request import JobRequest
from veotui.generators import choose_generator
from veotui.generators.veo import VeoGenerator


async def test_express_mode_from_the_environment(make_settings, fake_vertex):
    settings = make_settings(generator="auto")
    env = {"GOOGLE_API_KEY": "express-key", "GOOGLE_VERTEX_BASE_URL": fake_vertex.url}
    async with LocalBackend(settings, env=env) as backend:
        info = await backend.info()
        job = await run_job(backend, {"prompt": "a tram at dusk"})

    assert (info.generator, info.is_simulator) == ("veo", False)
    assert job.status == Status.COMPLETED, job.error
    for request in fake_vertex.requests:
        assert request.path.startswith("/v1beta1/publishers/google/models/veo-3.1-generate-001:")
        assert request.headers["x-goog-api-key"] == "express-key"
        assert "authorization" not in request.headers


async def test_a_service_account_key_names_the_project_and_signs_in(make_settings, fake_vertex, service_account_file):
    settings = make_settings()
    env = {
        "GOOGLE_GENAI_USE_VERTEXAI": "true",
        "GOOGLE_APPLICATION_CREDENTIALS": str(service_account_file),
        "GOOGLE_VERTEX_BASE_URL": fake_vertex.url,
    }
    generator = VeoGenerator.from_settings(settings, env)
    async with LocalBackend(settings, generator=generator) as backend:
        job = await run_job(backend, {"prompt": "a lighthouse"})

    assert job.status == Status.COMPLETED, job.error
    [token] = fake_vertex.calls("token")
    assert token.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    [submit] = fake_vertex.submits()
    assert submit.path.startswith("/v1beta1/projects/key-project/locations/us-central1/")
    assert submit.headers["authorization"] == "Bearer service-account-token"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        (
            {"GOOGLE_CLOUD_PROJECT": "my-proj", "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"},
            ["GOOGLE_CLOUD_PROJECT is my-proj", "/nonexistent/key.json", "gcloud auth application-default login"],
        ),
        (
            {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"},
            ["GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "gcloud auth application-default login"],
        ),
    ],
)
async def test_settings_present_but_wrong_stop_the_start(make_settings, env, names):
    settings = make_settings(generator="auto")
    with pytest.raises(SettingsError) as caught:
        await LocalBackend(settings, env=env).start()
    for name in names:
        assert name in str(caught.value)
    # Nothing was left holding the data directory: the simulator starts on it right after.
    async with LocalBackend(settings.replace(generator="sim"), env={}) as backend:
        assert (await backend.info()).is_simulator


def test_a_bucket_with_an_api_key_alone_needs_credentials_for_storage(make_settings, fake_vertex):
    settings = make_settings(gcs_bucket="my-bucket")
    env = {
        "GOOGLE_API_KEY": "express-key",
        "GOOGLE_VERTEX_BASE_URL": fake_vertex.url,
        "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json",
    }
    with pytest.raises(SettingsError, match="VEOTUI_GCS_BUCKET is my-bucket, but an API key does not cover"):
        VeoGenerator.from_settings(settings, env)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "sim"),
        ({"GOOGLE_API_KEY": "k"}, "veo"),
        ({"GOOGLE_CLOUD_PROJECT": "p"}, "veo"),
        ({"GOOGLE_GENAI_USE_VERTEXAI": "true"}, "veo"),
        ({"GOOGLE_GENAI_USE_VERTEXAI": "false"}, "sim"),
        ({"GOOGLE_API_KEY": "  "}, "sim"),
    ],
)
def test_auto_picks_veo_only_when_google_settings_are_present(make_settings, env, expected):
    assert choose_generator(make_settings(generator="auto"), env) == expected


def test_validate_names_a_retired_model_and_its_replacement(make_settings, make_veo):
    generator = make_veo(make_settings())
    generator.validate(JobRequest(prompt="ok", model="veo-3.1-lite-generate-001", duration_seconds=4))
    with pytest.raises(InvalidRequest, match="retired on Vertex AI on 2026-06-30; use veo-3.1-generate-001"):
        generator.validate(JobRequest(prompt="x", model="veo-3.0-generate-001"))


async def test_the_api_version_can_be_switched_to_v1(make_settings, make_veo, fake_vertex, monkeypatch):
    # The escape hatch docs/veo.md gives for "RESOURCE_PROJECT_INVALID" on v1beta1.
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")
    settings = make_settings()
    async with LocalBackend(settings, generator=make_veo(settings)) as backend:
        job = await run_job(backend, {"prompt": "a pier"})

    assert job.status == Status.COMPLETED, job.error
    assert {r.path.split("/")[1] for r in fake_vertex.requests} == {"v1"}
