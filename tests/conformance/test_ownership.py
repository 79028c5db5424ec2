"""Who may do what to whose job, on both backends (the engine in-process acting for a user,
and the real server reached with that user's token) over both stores (SQLite and
PostgreSQL). Every refusal names who, what and whose job, and changes nothing: the job, the
queue's order and its pause stay as they were, and the audit log says "refused"."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest

from tests.team.test_roles_api import ADMIN, CONFIG, TOKENS
from veotui.backend.base import Backend
from veotui.backend.local import LocalBackend
from veotui.backend.remote import RemoteBackend
from veotui.core.access import ADMIN as ADMIN_ACTOR
from veotui.core.errors import Forbidden
from veotui.core.job import Status
from veotui.server import running_server
from veotui.settings import Settings

Team = Callable[[str], Backend]


@pytest.fixture(params=["local", "remote"])
def team_for(request: pytest.FixtureRequest, make_settings, store_location: str, tmp_path: Path):
    """``team_for()``: an async context manager yielding ``as_user(name)``, the backend under
    test acting for alice, bob (operators), vic (a viewer) or admin, on the store under test."""
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    settings: Settings = make_settings(config=str(config), token=ADMIN, store=store_location)

    @asynccontextmanager
    async def make() -> AsyncIterator[Team]:
        if request.param == "local":
            async with LocalBackend(settings, env={}) as engine:
                users = engine.users

                def local(name: str) -> Backend:
                    return engine.acting_for(ADMIN_ACTOR if name == "admin" else users[name].actor, "127.0.0.1")

                yield local
        else:
            async with running_server(settings, keepalive=0.5) as server, AsyncExitStack() as clients:
                backends = {
                    name: await clients.enter_async_context(RemoteBackend(server.url, token))
                    for name, token in {**TOKENS, "admin": ADMIN}.items()
                }
                yield backends.__getitem__

    return make


async def queue_order(backend: Backend) -> list[str]:
    return [job.job_id for job in (await backend.list_jobs()).queued]


async def test_a_refusal_names_who_what_and_whose_and_changes_nothing(team_for):
    async with team_for() as as_user:
        admin, alice, bob, vic = (as_user(name) for name in ("admin", "alice", "bob", "vic"))
        await admin.pause("held for the test")
        first = await alice.submit({"prompt": "alice's first"})
        ended = await alice.submit({"prompt": "alice's second"})
        await alice.cancel(ended.job_id)
        mine = await bob.submit({"prompt": "bob's own"})
        job_id = first.job_id
        order = await queue_order(admin)
        before = {job_id: await admin.get(job_id), ended.job_id: await admin.get(ended.job_id)}

        refused = [
            (bob.cancel(job_id), f"bob may not cancel alice's job {job_id}"),
            (bob.delete(job_id), f"bob may not delete alice's job {job_id}"),
            (bob.move(job_id, to="top"), f"bob may not move alice's job {job_id}"),
            (bob.retry(ended.job_id), f"bob may not retry alice's job {ended.job_id}"),
            (bob.resume(), "bob may not resume the queue"),
            (bob.pause("mine"), "bob may not pause the queue"),
            (vic.cancel(mine.job_id), f"vic may not cancel bob's job {mine.job_id}"),
            (vic.submit({"prompt": "a viewer's"}), "vic may not submit jobs"),
            (bob.audit(), "bob may not read the audit log of this server"),
        ]
        for call, sentence in refused:
            with pytest.raises(Forbidden) as refusal:
                await call
            assert str(refusal.value) == sentence

        # Nothing changed: the jobs, the queue's order, its pause, the job count.
        for known, job in before.items():
            assert await admin.get(known) == job
        assert await queue_order(admin) == order
        queue = await admin.queue()
        assert queue.paused and queue.reason == "held for the test"
        lists = await admin.list_jobs()
        assert lists.queued_total == 2 and not lists.processing

        # The audit log says "refused", newest first, with who and what.
        noted = [e for e in await admin.audit(user="bob") if (e.detail or "").startswith("refused: ")]
        assert [e.action for e in reversed(noted)] == ["cancel", "delete", "move", "retry", "resume", "pause", "audit"]
        assert noted[-1].detail == f"refused: bob may not cancel alice's job {job_id}"
        assert all(e.role == "operator" for e in noted)
        assert [e.detail for e in await admin.audit(user="vic")][:2] == [
            "refused: vic may not submit jobs",
            f"refused: vic may not cancel bob's job {mine.job_id}",
        ]

        # Each may act on their own jobs, and the admin on everyone's.
        assert (await bob.cancel(mine.job_id)).status == Status.CANCELLED
        assert (await alice.retry(ended.job_id)).status == Status.QUEUED
        assert (await admin.cancel(job_id)).status == Status.CANCELLED
        assert [(e.user, e.action) for e in await admin.audit(job_id=job_id)] == [
            ("admin", "cancel"),
            ("bob", "move"),  # refused
            ("bob", "delete"),  # refused
            ("bob", "cancel"),  # refused
            ("alice", "submit"),
        ]


async def test_an_operator_moves_their_jobs_among_their_own(team_for):
    async with team_for() as as_user:
        admin, alice, bob = as_user("admin"), as_user("alice"), as_user("bob")
        await admin.pause()
        a1 = (await alice.submit({"prompt": "a1"})).job_id
        b1 = (await bob.submit({"prompt": "b1"})).job_id
        a2 = (await alice.submit({"prompt": "a2"})).job_id
        b2 = (await bob.submit({"prompt": "b2"})).job_id
        await alice.move(a2, to="top")
        assert await queue_order(admin) == [a2, b1, a1, b2]  # never ahead of bob's
        await bob.move(b1, to="bottom")
        assert await queue_order(admin) == [a2, b2, a1, b1]
        await admin.move(a1, to="top")
        assert await queue_order(admin) == [a1, a2, b2, b1]


async def test_me_says_who_the_backend_acts_for(team_for):
    async with team_for() as as_user:
        alice = await as_user("alice").me()
        assert (alice.user, alice.role.value, alice.daily_budget_usd, alice.max_concurrent) == (
            "alice",
            "operator",
            25.0,
            1,
        )
        assert (await as_user("vic").me()).role.value == "viewer"
        admin = await as_user("admin").me()
        assert (admin.user, admin.role.value) == ("admin", "admin")
