"""A web page cannot drive the server: cross-site forms, bodies and embeds are refused, a
rebound Host name is refused before any route runs, and no redirect names a foreign host;
while the product's own clients (the CLI, the remote backend) and curl work as before."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image

from tests.server.conftest import form_fields
from tests.server.harness import server_thread
from tests.support.env import FAST_ENV
from veotui.backend.remote import RemoteBackend
from veotui.settings import load_settings

EVIL = "https://evil.example"


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 20, 20)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("cross-site") / "data"
    settings = load_settings(
        env={
            **FAST_ENV,
            "VEOTUI_DATA_DIR": str(data_dir),
            "VEOTUI_SIM_SECONDS": "60",
            "VEOTUI_AUTO_DELETE_AFTER_DOWNLOAD": "off",
            "VEOTUI_ALLOWED_HOSTS": "veo.example.com, *.corp.example",
            "VEOTUI_ALLOWED_ORIGINS": "https://tool.example",
        }
    )
    with server_thread(settings) as running:
        yield running


@pytest.fixture
def client(served):
    """A client of the server, whose queue is held (jobs stay queued) during the test."""
    with httpx.Client(base_url=served.url, timeout=30, trust_env=False) as client:
        client.post("/api/queue/pause", json={"reason": "held by the test"})
        yield client
        client.post("/api/queue/resume")


def queued_count(client: httpx.Client) -> int:
    return client.get("/api/queue").json()["length"]


# -- forms and bodies a page can send without asking the server first ------------------


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("url-encoded form", {"data": {"prompt": "drive-by"}}),
        ("multipart form", {"files": form_fields(prompt="drive-by")}),
        ("multipart form with an image", {"files": [*form_fields(prompt="drive-by"), ("image", ("a.png", png()))]}),
        ("text/plain form", {"content": b'{"prompt": "drive-by"}', "headers": {"content-type": "text/plain"}}),
        ("JSON fetch", {"json": {"prompt": "drive-by"}}),
    ],
)
@pytest.mark.parametrize(
    "site_headers",
    [
        {"origin": EVIL, "sec-fetch-site": "cross-site"},
        {"origin": EVIL},  # a browser without fetch metadata
        {"sec-fetch-site": "cross-site"},
        {"origin": "null", "sec-fetch-site": "cross-site"},  # a sandboxed frame, a file: page
        {"origin": "http://localhost:3000", "sec-fetch-site": "same-site"},  # another port of this host
    ],
)
def test_a_cross_site_submit_is_refused_and_queues_nothing(client, name, kwargs, site_headers):
    before = queued_count(client)
    headers = {**kwargs.get("headers", {}), **site_headers}
    answer = client.post("/api/generate", **{**kwargs, "headers": headers})
    assert answer.status_code == 403, (name, answer.text)
    assert "cross-site request refused" in answer.json()["detail"]
    assert queued_count(client) == before


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/api/queue/pause", {"content": b'{"reason": "owned"}', "headers": {"content-type": "text/plain"}}),
        ("POST", "/api/queue/pause", {}),
        ("POST", "/api/queue/resume", {}),
        ("POST", "/api/cancel/{job}", {}),
        ("POST", "/api/retry/{job}", {}),
        ("POST", "/api/move/{job}", {"json": {"to": "top"}}),
        ("DELETE", "/api/delete/{job}", {}),
    ],
)
def test_no_cross_site_request_changes_anything(client, method, path, kwargs):
    job = client.post("/api/generate", json={"prompt": "mine"}).json()
    before = client.get(f"/api/status/{job['job_id']}").json()
    queue_before = client.get("/api/queue").json()
    headers = {**kwargs.get("headers", {}), "origin": EVIL, "sec-fetch-site": "cross-site"}
    answer = client.request(method, path.format(job=job["job_id"]), **{**kwargs, "headers": headers})
    assert answer.status_code == 403, answer.text
    assert client.get(f"/api/status/{job['job_id']}").json() == before
    assert client.get("/api/queue").json() == queue_before


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/api/queue/pause", b'{"reason": "lunch"}', "text/plain"),
        ("/api/queue/pause", b"reason=lunch", "application/x-www-form-urlencoded"),
        ("/api/queue/pause", b"--b\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
        ("/api/move/{job}", b'{"to": "top"}', "text/plain"),
        ("/api/queue/resume", b"", "application/x-www-form-urlencoded"),
        ("/api/cancel/{job}", b"", "text/plain"),
        ("/api/generate", b"prompt=sneaky", "application/x-www-form-urlencoded"),
        ("/api/generate", b'{"prompt": "sneaky"}', None),
    ],
)
def test_a_route_takes_only_its_real_content_type(client, path, body, content_type):
    """Even from no site at all (curl): a body only a form could send is not taken as JSON."""
    job = client.post("/api/generate", json={"prompt": "mine"}).json()
    before = client.get(f"/api/status/{job['job_id']}").json()
    queue_before = client.get("/api/queue").json()
    headers = {"content-type": content_type} if content_type else {}
    answer = client.post(path.format(job=job["job_id"]), content=body, headers=headers)
    assert answer.status_code == 415, answer.text
    assert "application/json" in answer.json()["detail"]
    assert client.get("/api/queue").json() == queue_before
    assert client.get(f"/api/status/{job['job_id']}").json() == before
    client.post(f"/api/cancel/{job['job_id']}")


def test_a_page_may_not_embed_a_download_from_another_site(client):
    job = client.post("/api/generate", json={"prompt": "mine"}).json()
    embedded = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"}
    answer = client.get(f"/api/download/{job['job_id']}/video/1", headers=embedded)
    assert answer.status_code == 403
    assert "another site's page may not load" in answer.json()["detail"]
    # A link the user follows from another site still opens.
    followed = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    assert client.get("/api/health", headers=followed).status_code == 200
    client.post(f"/api/cancel/{job['job_id']}")


def test_same_origin_pages_and_allowed_origins_may_change_things(served, client):
    own = f"http://{urlsplit(served.url).netloc}"
    answer = client.post(
        "/api/generate", json={"prompt": "from /docs"}, headers={"origin": own, "sec-fetch-site": "same-origin"}
    )
    assert answer.status_code == 202, answer.text
    allowed = client.post(
        f"/api/cancel/{answer.json()['job_id']}",
        headers={"origin": "https://tool.example", "sec-fetch-site": "cross-site"},
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["status"] == "cancelled"


# -- DNS rebinding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/jobs"),
        ("GET", "/api/info"),
        ("GET", "/api/status/{job}"),
        ("GET", "/api/download/{job}"),
        ("DELETE", "/api/delete/{job}"),
        ("GET", "/api/events"),
        ("GET", "/openapi.json"),
        ("GET", "/api/health"),
    ],
)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "localhost.evil"])
def test_a_foreign_host_is_refused_before_any_route(served, client, method, path, host):
    job = client.post("/api/generate", json={"prompt": "mine"}).json()
    answer = client.request(method, path.format(job=job["job_id"]), headers={"host": host})
    assert answer.status_code == 421, answer.text
    assert "allowed_hosts" in answer.json()["detail"]
    assert str(served.backend.settings.data_dir) not in answer.text
    assert client.get(f"/api/status/{job['job_id']}").json()["status"] == "queued"
    client.post(f"/api/cancel/{job['job_id']}")


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST:1", "127.0.0.1", "[::1]:9", "veo.example.com", "a.corp.example", "b.a.corp.example:443"],
)
def test_loopback_names_and_allowed_hosts_are_answered(client, host):
    answer = client.get("/api/queue", headers={"host": host})
    assert answer.status_code == 200, answer.text


def test_the_address_the_server_is_bound_to_is_answered(tmp_path):
    settings = load_settings(env={**FAST_ENV, "VEOTUI_DATA_DIR": str(tmp_path / "data")})
    with server_thread(settings, host="127.0.0.2") as running:
        assert urlsplit(running.url).hostname == "127.0.0.2"
        with httpx.Client(base_url=running.url, timeout=30, trust_env=False) as client:
            # Host: 127.0.0.2:PORT, the address the connection came in on (with a wildcard
            # bind, whichever of the machine's addresses it reached).
            assert client.get("/api/queue").status_code == 200
            # A name that leads here is not answered unless allowed.
            refused = client.get("/api/queue", headers={"host": f"box.lan:{urlsplit(running.url).port}"})
            assert refused.status_code == 421
            assert client.get("/api/queue", headers={"host": "127.0.0.3"}).status_code == 421


def test_no_redirect_names_a_foreign_host(client):
    # A foreign Host never reaches the router.
    answer = client.get("/api/jobs/", headers={"host": "evil.example"}, follow_redirects=False)
    assert answer.status_code == 421
    assert "location" not in answer.headers
    # An allowed one gets a 404 that names the right path, not a redirect.
    answer = client.get("/api/jobs/", headers={"host": "veo.example.com"}, follow_redirects=False)
    assert answer.status_code == 404
    assert "location" not in answer.headers
    assert answer.json()["detail"].endswith("paths have no trailing slash: /api/jobs")


def test_no_answer_grants_another_origin_access(client):
    """The server sends no CORS headers: a page of another origin reads nothing."""
    preflight = client.options(
        "/api/generate",
        headers={"origin": EVIL, "access-control-request-method": "POST", "access-control-request-headers": "x"},
    )
    assert preflight.status_code >= 400
    read = client.get("/api/jobs", headers={"origin": EVIL})
    for answer in (preflight, read):
        assert not [name for name in answer.headers if name.lower().startswith("access-control-")]


# -- the product's own clients and curl ------------------------------------------------------


def veotui(served, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "VEOTUI_CONFIG": "/nonexistent/veotui-test-config.toml", "HOME": "/tmp"}
    return subprocess.run(
        [sys.executable, "-m", "veotui", *args, "--remote", served.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_cli_verbs_work_unchanged(served, client, tmp_path):
    picture = tmp_path / "sky.png"
    picture.write_bytes(png())
    submitted = veotui(served, "submit", "a sky", "--image", str(picture))
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    second = veotui(served, "submit", "another").stdout.strip()
    for args in (
        ("queue", "pause", "lunch break"),
        ("move", second[:8], "top"),
        ("queue", "resume"),
        ("cancel", job_id[:8]),
        ("retry", job_id[:8]),
        ("cancel", job_id[:8]),
        ("delete", job_id[:8]),
        ("cancel", second[:8]),
    ):
        result = veotui(served, *args)
        assert result.returncode == 0, (args, result.stderr)
    assert client.get(f"/api/status/{job_id}").status_code == 404


async def test_the_remote_backend_works_unchanged(served):
    async with RemoteBackend(served.url.replace("127.0.0.1", "localhost")) as backend:
        await backend.pause("a reason")  # before the submit, so the job stays queued and can move
        job = await backend.submit({"prompt": "remote"}, png(), "sky.png", references=())
        moved = await backend.move(job.job_id, to="top")
        assert moved.queue_position == 1
        await backend.resume()
        assert (await backend.cancel(job.job_id)).status.value == "cancelled"
        await backend.retry(job.job_id)
        await backend.delete(job.job_id)


def test_curl_form_and_json_file_uploads_work(served, client, tmp_path):
    picture = tmp_path / "harbour.png"
    picture.write_bytes(png())
    body = tmp_path / "job.json"
    body.write_text(json.dumps({"prompt": "from a file", "seed": 7}))
    url = f"{served.url}/api/generate"
    runs = [
        ["curl", "-s", "-X", "POST", url, "-F", "prompt=pan over the harbour", "-F", f"image=@{picture}"],
        ["curl", "-s", "-X", "POST", url, "-F", "prompt=no picture", "-F", "duration_seconds=4"],
        ["curl", "-s", url, "-d", f"@{body}", "-H", "Content-Type: application/json"],
    ]
    for command in runs:
        answer = json.loads(subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout)
        assert answer["status"] == "queued", answer
        client.post(f"/api/cancel/{answer['job_id']}")
    paused = subprocess.run(
        ["curl", "-s", "-X", "POST", f"{served.url}/api/queue/pause"], capture_output=True, text=True, check=True
    )
    assert json.loads(paused.stdout)["paused"] is True
    client.post("/api/queue/resume")


@pytest.mark.parametrize(
    ("host", "server", "allowed"),
    [
        ("0.0.0.0", ("127.0.0.1", 8765), True),  # the bound address, as the start-up line prints it
        ("10.0.0.5", ("10.0.0.5", 8765), True),  # the address a wildcard bind was reached on
        ("10.0.0.5", ("::ffff:10.0.0.5", 8765), True),  # the same, on a dual-stack socket
        ("10.0.0.6", ("10.0.0.5", 8765), False),
        ("render-box", ("10.0.0.5", 8765), False),
        ("veo.example.com", None, True),
        ("example.com", None, False),  # *.example.com names subdomains only
    ],
)
def test_which_hosts_a_wildcard_bind_answers_for(host, server, allowed):
    from veotui.server.security import HostGuard

    guard = HostGuard(app=None, allowed_hosts=("veo.example.com", "*.example.com"), bound="0.0.0.0")  # type: ignore[arg-type]
    assert guard.allows(host, server) is allowed
