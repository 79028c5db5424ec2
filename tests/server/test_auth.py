"""Bearer tokens: every route but /api/health needs one; per-user tokens name the user."""

from __future__ import annotations

import hmac
import re

import httpx
import pytest

from veotui.core.access import UserEntry
from veotui.server import running_server, serve
from veotui.server.running import is_loopback
from veotui.settings import token_sha256

ADMIN = "admin-s3cret"
ALICE = "alice-t0ken"
SAMPLE_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
async def guarded(settings):
    settings = settings.replace(token=ADMIN, users={"alice": UserEntry("alice", token_sha256(ALICE))})
    async with running_server(settings, keepalive=0.2) as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=20, trust_env=False) as client:
            yield running, client


def every_route(app) -> list[tuple[str, str]]:
    routes = []
    for route in app.routes:
        methods: set[str] = getattr(route, "methods", None) or {"GET"}
        path = re.sub(r"\{job_id\}", SAMPLE_ID, route.path)
        path = path.replace("{index}", "1").replace("{prefix}", "00")
        for method in sorted(methods - {"HEAD"}):
            routes.append((method, path))
    return routes


async def test_every_route_but_health_demands_the_token(guarded):
    running, client = guarded
    routes = every_route(running.app)
    assert {p for _, p in routes} >= {"/openapi.json", "/docs", "/api/generate", "/api/events", "/api/metrics"}
    for method, path in routes:
        if path == "/api/health":
            continue
        for headers in (
            {},
            {"authorization": "Bearer wrong"},
            {"authorization": f"Basic {ADMIN}"},
            {"authorization": f"Bearer {ADMIN}x"},
        ):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "token" in response.json()["detail"]
        if path == "/api/events":
            continue  # a stream: checked below
        response = await client.request(method, path, headers={"authorization": f"Bearer {ADMIN}"})
        assert response.status_code != 401, (method, path)
        assert response.status_code < 500, (method, path, response.text)
    assert (await client.get("/api/health")).json() == {"status": "ok"}
    async with client.stream("GET", "/api/events", headers={"authorization": f"Bearer {ALICE}"}) as response:
        assert response.status_code == 200


async def test_unknown_paths_do_not_leak_without_a_token(guarded):
    _, client = guarded
    assert (await client.get("/api/does-not-exist")).status_code == 401


async def test_a_user_token_names_the_jobs_user(guarded):
    _, client = guarded
    as_alice = {"authorization": f"Bearer {ALICE}"}
    job = (await client.post("/api/generate", json={"prompt": "p", "user": "mallory"}, headers=as_alice)).json()
    assert job["user"] == "alice"
    as_admin = {"authorization": f"Bearer {ADMIN}"}
    job = (await client.post("/api/generate", json={"prompt": "p", "user": "bob"}, headers=as_admin)).json()
    assert job["user"] == "bob"
    metrics = (await client.get("/api/metrics", headers=as_admin)).json()
    assert metrics["jobs_by_user"] == {"alice": 1, "bob": 1}


def test_serve_refuses_a_public_host_without_a_token(settings, capsys):
    assert serve(settings, host="0.0.0.0", port=0) == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0 without a token" in err and "--token" in err
    assert not settings.db_path.exists(), "nothing was started"


@pytest.mark.parametrize(
    "host, loopback",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.4", False),
        ("example.org", False),
    ],
)
def test_loopback_detection(host, loopback):
    assert is_loopback(host) is loopback


def test_no_token_is_held_and_the_admin_token_is_compared_in_constant_time(monkeypatch):
    """A user's token is looked up by its SHA-256: the table holds no token, and a lookup's
    timing tells about the hash of the guess, not how close it came. The admin token is
    compared once, in constant time, whatever was sent."""
    from veotui.server import auth

    compared: list[bytes] = []
    real = hmac.compare_digest

    def counting(given: bytes, known: bytes) -> bool:
        compared.append(known)
        return real(given, known)

    monkeypatch.setattr(hmac, "compare_digest", counting)  # the module the server compares tokens with
    users = {name: UserEntry(name, token_sha256(token)) for name, token in (("alice", ALICE), ("bob", "bob-t0ken"))}
    table = auth.TokenTable(ADMIN, users)
    assert ALICE.encode() not in repr(vars(table)).encode()
    for given, expected in ((ALICE, "alice"), ("bob-t0ken", "bob"), (ADMIN, "admin"), ("nope", None)):
        compared.clear()
        actor = table.check(given)
        assert (actor.user if actor is not None else None) == expected
        assert compared == [ADMIN.encode()]
