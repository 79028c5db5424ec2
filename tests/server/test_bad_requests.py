"""Bad input: each request gets the fitting 4xx with a sentence in ``detail``, and no job,
job folder or simulator operation appears."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from tests.server.conftest import data_files, form_fields
from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from veotui.core.job import ACTIVE_STATUSES, Status
from veotui.settings import load_settings

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 90)).save(out, "PNG")
    return out.getvalue()


PNG = png_bytes()
B64 = base64.b64encode

# (name, method, path, request keyword arguments, expected status)
BAD_REQUESTS = [
    (
        "malformed JSON",
        "POST",
        "/api/generate",
        {"content": b'{"prompt": ', "headers": {"content-type": "application/json"}},
        400,
    ),
    (
        "JSON not UTF-8",
        "POST",
        "/api/generate",
        {"content": b'{"prompt": "\xff"}', "headers": {"content-type": "application/json"}},
        400,
    ),
    ("JSON array", "POST", "/api/generate", {"json": ["prompt"]}, 422),
    (
        "lone surrogate in prompt",
        "POST",
        "/api/generate",
        {"content": b'{"prompt": "a\\ud800b"}', "headers": {"content-type": "application/json"}},
        422,
    ),
    (
        "lone surrogate in user",
        "POST",
        "/api/generate",
        {"content": b'{"prompt": "p", "user": "\\udfff"}', "headers": {"content-type": "application/json"}},
        422,
    ),
    (
        "lone surrogate in a bad image's name",
        "POST",
        "/api/generate",
        {
            "content": b'{"prompt": "p", "image_name": "\\ud800", "image_base64": "AAAA"}',
            "headers": {"content-type": "application/json"},
        },
        422,
    ),
    (
        "JSON nested 5,000 deep",
        "POST",
        "/api/generate",
        {"content": b"[" * 5_000 + b"]" * 5_000, "headers": {"content-type": "application/json"}},
        400,
    ),
    (
        "JSON nested 100,000 deep",
        "POST",
        "/api/generate",
        {"content": b"[" * 100_000 + b"]" * 100_000, "headers": {"content-type": "application/json"}},
        422,
    ),
    (
        "seed of 5000 digits",
        "POST",
        "/api/generate",
        {"content": b'{"prompt": "p", "seed": ' + b"9" * 5000 + b"}", "headers": {"content-type": "application/json"}},
        400,
    ),
    (
        "form with 40 fields",
        "POST",
        "/api/generate",
        {"data": {f"f{n}": "x" for n in range(40)}, "files": {"image": ("a.png", PNG, "image/png")}},
        400,
    ),
    (
        "form field over 64 KB",
        "POST",
        "/api/generate",
        {"data": {"prompt": "x" * 70_000}, "files": {"image": ("a.png", PNG, "image/png")}},
        400,
    ),
    (
        "form field twice",
        "POST",
        "/api/generate",
        {"data": {"prompt": ["a", "b"]}, "files": {"image": ("a.png", PNG, "image/png")}},
        422,
    ),
    (
        "url-encoded form",
        "POST",
        "/api/generate",
        {"content": b"prompt=a", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        415,
    ),
    (
        "NaN count",
        "POST",
        "/api/generate",
        {"content": b'{"prompt": "p", "number_of_videos": NaN}', "headers": {"content-type": "application/json"}},
        422,
    ),
    ("JSON string", "POST", "/api/generate", {"json": "make a video"}, 422),
    ("no prompt", "POST", "/api/generate", {"json": {"number_of_videos": 1}}, 422),
    ("null prompt", "POST", "/api/generate", {"json": {"prompt": None}}, 422),
    ("blank prompt", "POST", "/api/generate", {"json": {"prompt": "   "}}, 422),
    ("prompt too long", "POST", "/api/generate", {"json": {"prompt": "a" * 4001}}, 422),
    ("prompt is a number", "POST", "/api/generate", {"json": {"prompt": 42}}, 422),
    ("zero videos", "POST", "/api/generate", {"json": {"prompt": "p", "number_of_videos": 0}}, 422),
    ("five videos", "POST", "/api/generate", {"json": {"prompt": "p", "number_of_videos": 5}}, 422),
    ("fractional count", "POST", "/api/generate", {"json": {"prompt": "p", "number_of_videos": 2.5}}, 422),
    ("count as word", "POST", "/api/generate", {"json": {"prompt": "p", "number_of_videos": "many"}}, 422),
    ("count as bool", "POST", "/api/generate", {"json": {"prompt": "p", "number_of_videos": True}}, 422),
    ("unknown model", "POST", "/api/generate", {"json": {"prompt": "p", "model": "veo-2.0-generate-001"}}, 422),
    ("aspect 1:1", "POST", "/api/generate", {"json": {"prompt": "p", "aspect_ratio": "1:1"}}, 422),
    ("duration 10", "POST", "/api/generate", {"json": {"prompt": "p", "duration_seconds": 10}}, 422),
    ("resolution 8k", "POST", "/api/generate", {"json": {"prompt": "p", "resolution": "8k"}}, 422),
    ("negative seed", "POST", "/api/generate", {"json": {"prompt": "p", "seed": -5}}, 422),
    ("huge seed", "POST", "/api/generate", {"json": {"prompt": "p", "seed": 2**40}}, 422),
    ("negative prompt list", "POST", "/api/generate", {"json": {"prompt": "p", "negative_prompt": ["x"]}}, 422),
    ("empty user", "POST", "/api/generate", {"json": {"prompt": "p", "user": ""}}, 422),
    ("unknown field", "POST", "/api/generate", {"json": {"prompt": "p", "style": "noir"}}, 422),
    ("base64 garbage", "POST", "/api/generate", {"json": {"prompt": "p", "image_base64": "%%%not base64%%%"}}, 422),
    ("base64 number", "POST", "/api/generate", {"json": {"prompt": "p", "image_base64": 12}}, 422),
    ("base64 of text", "POST", "/api/generate", {"json": {"prompt": "p", "image_base64": B64(b"hello").decode()}}, 422),
    (
        "base64 truncated PNG",
        "POST",
        "/api/generate",
        {"json": {"prompt": "p", "image_base64": B64(PNG[:200]).decode()}},
        422,
    ),
    (
        "base64 over 10 MB",
        "POST",
        "/api/generate",
        {"json": {"prompt": "p", "image_base64": B64(b"\0" * (10 * 1048576 + 1)).decode()}},
        413,
    ),
    (
        "multipart non-image",
        "POST",
        "/api/generate",
        {"data": {"prompt": "p"}, "files": {"image": ("notes.txt", b"plain text", "text/plain")}},
        422,
    ),
    (
        "multipart truncated image",
        "POST",
        "/api/generate",
        {"data": {"prompt": "p"}, "files": {"image": ("cut.png", PNG[:150], "image/png")}},
        422,
    ),
    (
        "multipart empty image",
        "POST",
        "/api/generate",
        {"data": {"prompt": "p"}, "files": {"image": ("empty.png", b"", "image/png")}},
        422,
    ),
    (
        "multipart an unknown file field",
        "POST",
        "/api/generate",
        {
            "data": {"prompt": "p"},
            "files": [("image", ("a.png", PNG, "image/png")), ("other", ("b.png", PNG, "image/png"))],
        },
        422,
    ),
    (
        "multipart more files than any job takes",
        "POST",
        "/api/generate",
        {"data": {"prompt": "p"}, "files": [("reference_image", ("a.png", PNG, "image/png"))] * 6},
        400,
    ),
    (
        "multipart other file field",
        "POST",
        "/api/generate",
        {"data": {"prompt": "p"}, "files": {"photo": ("a.png", PNG, "image/png")}},
        422,
    ),
    (
        "multipart image as text",
        "POST",
        "/api/generate",
        {"data": {"prompt": "p"}, "files": {"image": (None, "not a file")}},
        422,
    ),
    (
        "multipart bad count",
        "POST",
        "/api/generate",
        {"data": {"prompt": "p", "number_of_videos": "9"}, "files": {"image": ("a.png", PNG, "image/png")}},
        422,
    ),
    ("form bad duration", "POST", "/api/generate", {"files": form_fields(prompt="p", duration_seconds="7")}, 422),
    (
        "multipart image over 10 MB",
        "POST",
        "/api/generate",
        {"data": {"prompt": "p"}, "files": {"image": ("big.png", b"\0" * (10 * 1048576 + 1), "image/png")}},
        413,
    ),
    (
        "multipart without boundary",
        "POST",
        "/api/generate",
        {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
        400,
    ),
    (
        "text/plain body",
        "POST",
        "/api/generate",
        {"content": b"prompt=p", "headers": {"content-type": "text/plain"}},
        415,
    ),
    ("no content type", "POST", "/api/generate", {"content": b"prompt=p"}, 415),
    ("GET on generate", "GET", "/api/generate", {}, 405),
    ("status of a non-id", "GET", "/api/status/abc", {}, 404),
    ("status path traversal", "GET", "/api/status/..%2F..%2Fveotui.db", {}, 404),
    ("status traversal dots", "GET", "/api/status/....", {}, 404),
    ("status of unknown id", "GET", f"/api/status/{UNKNOWN}", {}, 404),
    ("cancel unknown id", "POST", f"/api/cancel/{UNKNOWN}", {}, 404),
    ("retry unknown id", "POST", f"/api/retry/{UNKNOWN}", {}, 404),
    ("delete unknown id", "DELETE", f"/api/delete/{UNKNOWN}", {}, 404),
    ("delete traversal", "DELETE", "/api/delete/..%2Ftemp_downloads", {}, 404),
    ("zip of unknown id", "GET", f"/api/download/{UNKNOWN}", {}, 404),
    ("video index not a number", "GET", f"/api/download/{UNKNOWN}/video/first", {}, 422),
    ("video of unknown id", "GET", f"/api/download/{UNKNOWN}/video/1", {}, 404),
    ("timeline of unknown id", "GET", f"/api/jobs/{UNKNOWN}/events", {}, 404),
    ("negative limit", "GET", "/api/jobs?limit=-1", {}, 422),
    ("limit not a number", "GET", "/api/jobs?limit=ten", {}, 422),
    ("limit too large", "GET", "/api/jobs?limit=100000", {}, 422),
    ("negative offset", "GET", "/api/jobs?offset=-3", {}, 422),
    ("offset beyond 64 bits", "GET", "/api/jobs?offset=2572330985906632654848", {}, 422),
    ("resolve non-hex prefix", "GET", "/api/resolve/zz", {}, 404),
    ("unknown path", "GET", "/api/nothing-here", {}, 404),
]


def test_the_table_is_big_enough():
    assert len(BAD_REQUESTS) >= 25


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the whole table (each case checks that nothing was created)."""
    data_dir = tmp_path_factory.mktemp("bad-requests") / "data"
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(data_dir)})
    with server_thread(settings) as running, httpx.Client(base_url=running.url, timeout=20, trust_env=False) as client:
        yield settings, client


@pytest.mark.parametrize("name, method, path, kwargs, expected", BAD_REQUESTS, ids=[r[0] for r in BAD_REQUESTS])
def test_bad_request(shared, name, method, path, kwargs, expected):
    settings, client = shared
    files_before = data_files(settings.data_dir)
    response = client.request(method, path, **kwargs)
    assert response.status_code == expected, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 8
    lists = client.get("/api/jobs").json()
    assert lists["processing"] == lists["queued"] == lists["history"] == []
    assert data_files(settings.data_dir) == files_before


async def test_details_name_what_is_wrong(http):
    cases = {
        "number_of_videos": {"prompt": "p", "number_of_videos": 9},
        "model": {"prompt": "p", "model": "x"},
        "style": {"prompt": "p", "style": "noir"},
    }
    for word, body in cases.items():
        assert word in (await http.post("/api/generate", json=body)).json()["detail"]
    response = await http.post(
        "/api/generate", data={"prompt": "p"}, files={"image": ("notes.txt", b"x", "text/plain")}
    )
    assert "notes.txt" in response.json()["detail"]
    response = await http.get("/api/jobs?limit=-1")
    assert response.json()["detail"].startswith("limit:")


async def test_conflicts_answer_409_naming_the_status(http):
    job_id = (await http.post("/api/generate", json={"prompt": "p"})).json()["job_id"]
    for method, path in (("POST", f"/api/retry/{job_id}"), ("GET", f"/api/download/{job_id}")):
        response = await http.request(method, path)
        assert response.status_code == 409
        # The simulated job moves on meanwhile: any stage before completed may be named.
        assert any(f"is {status.value};" in response.json()["detail"] for status in (Status.QUEUED, *ACTIVE_STATUSES))
