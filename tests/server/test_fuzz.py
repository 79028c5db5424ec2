"""Hypothesis-generated requests against the real server: whatever arrives, the answer is
never a 5xx, and every 4xx carries a sentence in ``detail``.

(Schemathesis would derive these from /openapi.json; it is not a dependency, so the
strategies below follow the same document by hand: every path, its parameters, both
request body types of POST /api/generate.)
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from veotui.core.request import JobRequest
from veotui.settings import load_settings

FUZZ = hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

#: Text including lone surrogates, which JSON carries as \ud800 escapes.
any_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
field_names = st.sampled_from([*JobRequest.FIELDS, "image_base64", "image_name"]) | any_text
plausible = {
    "prompt": any_text,
    "number_of_videos": st.integers(-2, 6) | st.text(max_size=3),
    "model": st.sampled_from(["veo-3.1-generate-001", "veo-3.1-lite-generate-001", "veo-x", ""]),
    "duration_seconds": st.sampled_from([4, 6, 8, 5, "8", "eight", 8.0, 8.5]),
    "seed": st.integers(-(2**40), 2**40) | st.none(),
    "image_base64": st.text(max_size=40) | st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
}
path_segment = st.text(max_size=40).map(lambda t: quote(t, safe=""))
paths = st.one_of(
    st.tuples(st.just("GET"), path_segment.map("/api/status/{}".format)),
    st.tuples(st.just("POST"), path_segment.map("/api/cancel/{}".format)),
    st.tuples(st.just("POST"), path_segment.map("/api/retry/{}".format)),
    st.tuples(st.just("DELETE"), path_segment.map("/api/delete/{}".format)),
    st.tuples(st.just("GET"), path_segment.map("/api/download/{}".format)),
    st.tuples(
        st.just("GET"), st.tuples(path_segment, path_segment).map(lambda p: f"/api/download/{p[0]}/video/{p[1]}")
    ),
    st.tuples(st.just("GET"), path_segment.map("/api/jobs/{}/events".format)),
    st.tuples(st.just("GET"), path_segment.map("/api/resolve/{}".format)),
    st.tuples(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]), path_segment.map("/api/{}".format)),
)
queries = st.dictionaries(st.sampled_from(["limit", "offset", "q", "x"]), st.text(max_size=12), max_size=3)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    # Long simulated operations: jobs that happen to be valid wait instead of rendering.
    env = {**FAST_ENV, "VEOTUI_DATA_DIR": str(data_dir), "VEOTUI_SIM_SECONDS": "600"}
    with server_thread(load_settings(env=env)) as running:
        with httpx.Client(base_url=running.url, timeout=20, trust_env=False) as http:
            yield http


def post_json(client: httpx.Client, body) -> httpx.Response:
    # json.dumps writes NaN and Infinity as a lenient client would; httpx's encoder refuses them.
    return client.post("/api/generate", content=json.dumps(body), headers={"content-type": "application/json"})


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.request.method, response.request.url, response.text)
    if response.status_code >= 400:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail


@FUZZ
@given(body=st.dictionaries(field_names, json_values, max_size=6) | json_values)
def test_any_json_body(client, body):
    check(post_json(client, body))


@FUZZ
@given(body=st.fixed_dictionaries({}, optional=plausible))
def test_plausible_json_fields(client, body):
    check(post_json(client, body))


@FUZZ
@given(
    # Forms carry bytes, so no lone surrogates here (the client could not even encode them).
    fields=st.dictionaries(st.sampled_from(JobRequest.FIELDS) | st.text(max_size=12), st.text(max_size=20), max_size=5),
    image=st.none() | st.binary(max_size=200),
)
def test_any_form(client, fields, image):
    files = {"image": ("upload.bin", image, "application/octet-stream")} if image is not None else None
    check(client.post("/api/generate", data=fields, files=files))


@FUZZ
@given(
    body=st.binary(max_size=200),
    content_type=st.sampled_from(["application/json", "multipart/form-data; boundary=b", "text/plain", ""]),
)
def test_any_raw_body(client, body, content_type):
    check(client.post("/api/generate", content=body, headers={"content-type": content_type} if content_type else {}))


@FUZZ
@given(route=paths, params=queries)
def test_any_path_and_query(client, route, params):
    method, path = route
    check(client.request(method, path, params=params))
    check(client.get("/api/jobs", params=params))
