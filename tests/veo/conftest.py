"""Fixtures of the Veo tests (the Cloud Storage emulator is in tests/conftest.py): the fake
Vertex AI server, and the real ``VeoGenerator`` pointed at both. Nothing reaches Google."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.cloud import storage
from google.oauth2.credentials import Credentials
from PIL import Image

from tests.conftest import PROJECT
from tests.veo.fake_vertex import FakeVertex
from veotui.generators.render import render_video
from veotui.generators.veo import VeoGenerator
from veotui.settings import Settings

LOCATION = "us-central1"


@pytest.fixture(scope="session")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real, small H.264 MP4: what the fake server hands out as Veo's videos."""
    path = tmp_path_factory.mktemp("mp4") / "sample.mp4"
    render_video(path, prompt="fake veo output", index=1, seconds=1)
    return path.read_bytes()


@pytest.fixture
def fake_vertex(mp4: bytes, storage_client: storage.Client) -> Iterator[FakeVertex]:
    fake = FakeVertex(video=mp4, storage_client=storage_client).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def veo_env(fake_vertex: FakeVertex, gcs_emulator: str) -> dict[str, str]:
    """Project-mode settings, as an operator would export them."""
    return {
        "GOOGLE_GENAI_USE_VERTEXAI": "true",
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "GOOGLE_CLOUD_LOCATION": LOCATION,
        "GOOGLE_VERTEX_BASE_URL": fake_vertex.url,
        "STORAGE_EMULATOR_HOST": gcs_emulator,
    }


@pytest.fixture
def make_veo(veo_env: dict[str, str]) -> Callable[..., VeoGenerator]:
    """A VeoGenerator on the fakes with a static bearer token in place of ADC."""

    def make(settings: Settings, *, request_timeout: float = 10.0, **env: str) -> VeoGenerator:
        return VeoGenerator.from_settings(
            settings,
            {**veo_env, **env},
            credentials=Credentials(token="fake-access-token"),
            request_timeout=request_timeout,
        )

    return make


@pytest.fixture
def png_image() -> bytes:
    """An input image as a user would give it (PNG; veotui converts it to JPEG)."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), (200, 80, 20)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def service_account_file(tmp_path: Path, fake_vertex: FakeVertex) -> Path:
    """A service-account key whose token endpoint is the fake server."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "key-project",
                "private_key_id": "test-key-1",
                "private_key": pem,
                "client_email": "veotui@key-project.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": f"{fake_vertex.url}/token",
            }
        )
    )
    return path
