"""The job store: the job logic, written once, over a database connection.

:class:`JobStore` holds what the store means: a job's moves (checked against the allowed
transitions and written with a compare-and-set on the status it had), its queue keys, the
events and aggregates each change records, the pause state, the day's spend, clean-ups,
estimates and, on a database shared by a fleet, the slot claim, leases and heartbeats. It
runs its SQL through a :class:`~veotui.store.connection.Connection`; the driver under it
(:mod:`veotui.store.sqlite`, :mod:`veotui.store.postgres`) runs statements and supplies the
dialect, nothing more.

Each change of a job is one :class:`~veotui.store.connection.JobChange`: the row, its event,
its aggregates and the notification to other servers, written in one transaction that reads
nothing back (on PostgreSQL one statement: one round trip). The store keeps a write-through
copy of the unfinished jobs it wrote: the status a change expects comes from it, and the
compare-and-set in SQL says whether it still holds. On SQLite this process is the only writer
(the data directory's lock), so reads are served from the copy too; on a shared database
reads go to the database and a change whose copy was stale is read again and tried once more.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio

from veotui.core.access import AuditEntry
from veotui.core.errors import Conflict, InvalidRequest, JobNotFound, StorageUnavailable, clipped
from veotui.core.idempotency import KEY_LIFETIME, KeyClaim, KeyTaken
from veotui.core.job import (
    ACTIVE_STATUSES,
    FINAL_STATUSES,
    Change,
    Job,
    JobEvent,
    QueueState,
    Status,
    can_transition,
    isoformat,
    parse_time,
    utcnow,
)
from veotui.core.progress import fold_sample, with_progress
from veotui.core.stats import SUM_BUCKET, Snapshot, bucket_of, hour_of, series_rows, summary
from veotui.core.webhooks import Attempt, Delivery, Hook, job_deliveries
from veotui.datadir.health import StorageGuard
from veotui.logs import event
from veotui.store.aggregates import JOBS_NOW
from veotui.store.connection import Connection, FleetConnection, JobChange, Row, Statement, Transaction
from veotui.store.fleet import LeaseLost
from veotui.store.rows import as_job_fields, cleanup_job, column_values, job_from_row, job_to_row
from veotui.store.steps import Read, Steps, Transact, Write, arun, run

#: Neighbours re-spaced at first when a move finds no room between two keys (doubles).
RESPACE_WINDOW = 8
#: Smallest gap a respacing leaves, relative to the keys' size: 2**-32 leaves ~20 halvings
#: of a double's 52-bit mantissa.
ROOM_AFTER_RESPACE = 2.0**-32
#: How long, and how many, removed jobs are remembered for a later lookup.
TOMBSTONE_DAYS = 7
TOMBSTONE_ROWS = 10_000
#: Why the engine removed a job, as a lookup of it then says.
AUTO_DELETED = "deleted after download"
#: A LIMIT meaning "all rows" in both SQL dialects (SQLite's -1 is an error elsewhere).
NO_LIMIT = 2**62
#: Attempts kept with a delivery (the latest; ``tries`` counts them all).
KEPT_ATTEMPTS = 50
#: The moves whose commit does not wait for the disk. Undone by a power cut, each is done
#: again from the durable state before it, and nothing is bought twice: a start (the job is
#: queued again, and nothing was sent, as sending waits for the durable ``submitting``) and a
#: completion (the job is downloading again, from the operation whose name is durable).
REDOABLE = frozenset({Status.STARTING, Status.COMPLETED})
#: Base of veotui's advisory lock keys ("veot"); the slot claim adds to it.
SERVER_LOCK = 0x76656F74
#: Transaction-level advisory lock taken by each slot claim: claims are counted one at a time.
SLOTS_LOCK = SERVER_LOCK + 2
#: Seconds between a server's heartbeats (shorter with a short lease: a third of it).
HEARTBEAT_SECONDS = 10.0
#: A lease's length by default (``VEOTUI_LEASE_SECONDS``).
LEASE_SECONDS = 30.0

#: Jobs whose newest known state this process keeps the order of (see ``JobStore._is_newest``):
#: far more than the jobs a process moves at once.
NEWEST_KEPT = 10_000

log = logging.getLogger("veotui.store")
T = TypeVar("T")

Listener = Callable[[Change], None]
_ACTIVE = tuple(s.value for s in ACTIVE_STATUSES)
_FINAL = tuple(s.value for s in FINAL_STATUSES)


class JobStore:
    """Every read and write of veotui's jobs, on whichever database ``connection`` reaches.

    A write the disk or the database refuses raises :class:`StorageUnavailable` (the
    driver marks ``guard`` degraded); nothing of it is written."""

    def __init__(self, connection: Connection, guard: StorageGuard, path: Path) -> None:
        self.db = connection
        #: The same database for the engine's awaited calls (``a``-named methods), or None
        #: where they run on :attr:`db` (SQLite).
        self._async = connection.asynchronous()
        self.dialect = connection.dialect
        self.guard = guard
        #: The SQLite file, or where it would be (named in messages; PostgreSQL keeps the data).
        self.path = path
        #: Whether this store is shared by a fleet of servers (PostgreSQL).
        self.fleet = connection.shared
        self.server_id = ""
        self.lease_seconds = LEASE_SECONDS
        self.url_served: str | None = None
        self._listeners: list[Listener] = []
        # The unfinished jobs as this process last wrote or read them.
        self._copy: dict[str, Job] = {}
        # In a fleet: the processing jobs this server claimed or took over.
        self._owned: set[str] = set()
        # Alone on the database: counts kept by every write, read from memory.
        self._counts: dict[str, int] | None = None
        # The pause row, kept while it is known to be current: always when alone on the
        # database, while listening to the others' changes when shared.
        self._pause: tuple[bool, bool, str | None, str | None] | None = None
        self._pause_trusted = not self.fleet
        # When each job's current stage, and its run, began in this process, by the monotonic
        # clock: durations measured with it survive a wall-clock step.
        self._stage_clock: dict[str, tuple[Status, float]] = {}
        self._run_clock: dict[str, float] = {}
        # Each model's estimate and sample count as this process last wrote them.
        self._estimates: dict[str, tuple[float, int]] = {}
        # Awaited steps of one job may resume in another order than they were sent in (a
        # submit's insert after the job's claim): when each job's newest known state was sent,
        # so that an older one is neither kept nor told.
        self._stamps = itertools.count(1)
        self._newest: OrderedDict[str, int] = OrderedDict()
        self._sql = Statements(self.dialect)
        #: The hooks each status change is delivered to (written to the outbox with it).
        self.webhooks: tuple[Hook, ...] = ()

    def __repr__(self) -> str:
        return f"JobStore({self.db!r})"

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        self.db.close()

    async def aclose(self) -> None:
        """Close the store, and the connections of its awaited calls (they belong to the loop)."""
        if self._async is not None:
            await self._async.close()
        self.close()

    def add_listener(self, listener: Listener) -> None:
        """Called after every commit that changes a job, with the change."""
        self._listeners.append(listener)

    def _tell(self, change: Change, sent: int | None = None) -> None:
        """Tell the listeners; ``sent``: when the step that made the job's state was sent
        (:meth:`_stamp`), where a newer state may have been told already."""
        if sent is not None and not self._is_newest(change.job_id, sent):
            return
        for listener in self._listeners:
            listener(change)

    def _stamp(self) -> int | None:
        """The order of a step about to be sent that reads or writes a job's state (None where
        no step is awaited, so every step's answer comes in the order it was sent)."""
        return next(self._stamps) if self._async is not None else None

    def _is_newest(self, job_id: str, sent: int) -> bool:
        """Whether a state of the job from a step sent at ``sent`` is no older than every one
        this process kept or told; if so, it is noted as the newest."""
        newest = self._newest.get(job_id)
        if newest is not None and newest > sent:
            return False
        self._newest[job_id] = sent
        self._newest.move_to_end(job_id)
        if len(self._newest) > NEWEST_KEPT:
            self._newest.popitem(last=False)
        return True

    def _read(self, sql: str, **params: Any) -> list[Row]:
        return self.db.read(Statement(sql, params))

    def _one(self, sql: str, **params: Any) -> Row | None:
        rows = self.db.read(Statement(sql, params))
        return rows[0] if rows else None

    def _run(self, steps: Steps[T]) -> T:
        """Run job logic written as steps (:mod:`veotui.store.steps`), waiting for each answer."""
        return run(steps, self.db)

    async def _arun(self, steps: Steps[T]) -> T:
        """Run job logic written as steps; where the database answers over a network, the
        event loop goes on with other work meanwhile."""
        if self._async is None:
            return run(steps, self.db)
        # Once sent, a step is seen through: its answer is kept and told before a cancel of
        # the caller (a job stopped here) takes effect, so nothing this process wrote goes
        # unrecorded in its copy, its listeners or its log.
        with anyio.CancelScope(shield=True):
            answer = await arun(steps, self._async)
        return answer

    def probe(self) -> None:
        """A small real write: raises :class:`StorageUnavailable` while the disk refuses."""
        self.db.write([Statement(self._sql.touch)], "write to its database")

    @property
    def schema_version(self) -> int:
        return self.db.schema_version()

    def integrity_check(self) -> str:
        return self.db.integrity_check()

    def deferred_check(self) -> str | None:
        """The check a large database skipped at open (SQLite), run on a connection of its
        own: what is damaged, in a sentence, or None."""
        return self.db.deferred_check()

    # -- reading --------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        return self._run(self._getting(job_id))

    async def aget(self, job_id: str) -> Job:
        return await self._arun(self._getting(job_id))

    def _getting(self, job_id: str) -> Steps[Job]:
        if not self.fleet or job_id in self._owned:
            # Alone on the database, or a job this server runs: nobody else writes it but to
            # cancel or delete it, which this server hears of (and its next write finds).
            job = self._copy.get(job_id)
            if job is not None:
                return job
        rows = yield Read.of(self._sql.job_by_id, job_id=job_id)
        if not rows:
            raise JobNotFound(job_id, self._gone(job_id, exact=True))
        # Not numbered: a read tells nobody, so it must not hold back the tell of a write that
        # was sent before it and answers after it. A stale read kept here costs a write one
        # more try at most (the compare-and-set).
        return self._remember(job_from_row(rows[0]))

    def find(self, job_id: str) -> Job | None:
        return self._run(self._finding(job_id))

    async def afind(self, job_id: str) -> Job | None:
        return await self._arun(self._finding(job_id))

    def _finding(self, job_id: str) -> Steps[Job | None]:
        try:
            return (yield from self._getting(job_id))
        except JobNotFound:
            return None

    def _gone(self, job_id: str, *, exact: bool) -> str | None:
        """Why a job that is no longer here was removed, if the engine removed it lately."""
        if exact:
            row = self._one(self._sql.tombstone, job_id=job_id)
        else:
            rows = self._read(self._sql.tombstones_from, low=job_id, high=job_id + "\uffff")
            row = rows[0] if len(rows) == 1 else None
        if row is None:
            return None
        at = parse_time(row[1])
        when = at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else row[1]
        return f"job {row[0]} was {row[2]} at {when}"

    def _remember(self, job: Job, *, owned: bool | None = None, sent: int | None = None) -> Job:
        if sent is not None and not self._is_newest(job.job_id, sent):
            return job  # a newer state is kept already
        if job.status.is_final:
            self._copy.pop(job.job_id, None)
        else:
            self._copy[job.job_id] = job
        if owned or (owned is None and job.job_id in self._owned and job.status.is_active):
            self._owned.add(job.job_id)
        else:
            self._owned.discard(job.job_id)
        return job

    def resolve(self, prefix: str) -> str:
        prefix = prefix.strip().lower()
        if not prefix or not all(c in "0123456789abcdef-" for c in prefix):
            raise JobNotFound(prefix, f"{prefix!r} is not a job id or the start of one")
        rows = self._read(self._sql.ids_from, low=prefix, high=prefix + "\uffff")
        if not rows:
            raise JobNotFound(prefix, self._gone(prefix, exact=False) or f"no job id starts with {prefix!r}")
        if len(rows) > 1:
            raise InvalidRequest(f"more than one job id starts with {prefix!r}; give more of it")
        return str(rows[0][0])

    def active(self) -> list[Job]:
        return [job_from_row(row) for row in self._read(self._sql.active)]

    def queued(self, limit: int | None = None, offset: int = 0) -> list[Job]:
        """Queued jobs in FIFO order, each with its 1-based position; ``limit`` jobs from
        the ``offset``-th (None: every one)."""
        rows = self._read(self._sql.queued_page, limit=NO_LIMIT if limit is None else limit, offset=offset)
        return [job_from_row(row).replace(queue_position=n) for n, row in enumerate(rows, start=offset + 1)]

    def next_queued(self) -> Job | None:
        """The first queued job that may start: jobs waiting for another job are passed over
        by the index, not read."""
        return self._run(self._next_queued())

    def _next_queued(self) -> Steps[Job | None]:
        rows = yield Read.of(self._sql.next_ready)
        return job_from_row(rows[0]) if rows else None

    def waiting_on(self, job_id: str) -> list[Job]:
        """The queued jobs waiting for ``job_id`` (read by the ``jobs_waiting`` index)."""
        return self._run(self._waiting_on(job_id))

    def _waiting_on(self, job_id: str) -> Steps[list[Job]]:
        rows = yield Read.of(self._sql.waiting_on, job_id=job_id)
        return [job_from_row(row) for row in rows]

    def queue_position(self, job: Job) -> int:
        """The 1-based place of a job with ``job.queue_seq`` among the queued jobs, counted
        in the index from the nearer end (by key) with the queue's length kept by every
        write: a job at the back or at the front costs a few index steps, not a walk."""
        seq = job.queue_seq
        ends = self._one(self._sql.queue_ends)
        head, tail = (ends[0], ends[1]) if ends is not None else (None, None)
        if head is not None and tail is not None and tail - seq < seq - head:
            row = self._one(self._sql.queued_from, seq=seq)
            return self.queue_length() - int(row[0] if row else 0) + 1
        row = self._one(self._sql.queued_before, seq=seq)
        return int(row[0] if row else 0) + 1

    def history(self, limit: int = 100, offset: int = 0) -> tuple[list[Job], int]:
        """Ended jobs, newest first, one page; and how many there are in all."""
        rows = self._read(self._sql.history_page, limit=limit, offset=offset) if limit else []
        counts = self.count_by_status()
        return [job_from_row(row) for row in rows], sum(counts.get(s, 0) for s in _FINAL)

    def search(self, text: str, limit: int = 500) -> list[Job]:
        """Jobs whose prompt, id, status or user contains ``text`` (case-insensitive)."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return [job_from_row(row) for row in self._read(self._sql.search, pattern=pattern, limit=limit)]

    def group(self, name: str, limit: int) -> list[Job]:
        """The jobs of group ``name`` in the order they were queued, at most ``limit``."""
        return [job_from_row(row) for row in self._read(self._sql.group, name=name, limit=limit)]

    def downloaded_completed(self) -> list[Job]:
        """Completed jobs whose videos were downloaded: their auto-delete is due or pending."""
        return [job_from_row(row) for row in self._read(self._sql.downloaded_completed)]

    def all_job_ids(self) -> set[str]:
        return {row[0] for row in self._read(self._sql.all_ids)}

    def known_ids(self, job_ids: Iterable[str]) -> set[str]:
        """Those of ``job_ids`` the store holds (read in batches: as many as there are
        folders, not as many as there are jobs)."""
        wanted = list(job_ids)
        known: set[str] = set()
        for start in range(0, len(wanted), 500):
            batch = {f"id{n}": job_id for n, job_id in enumerate(wanted[start : start + 500])}
            marks = ", ".join(self.dialect.param(name) for name in batch)
            known.update(row[0] for row in self._read(f"SELECT job_id FROM jobs WHERE job_id IN ({marks})", **batch))
        return known

    def count_by_status(self) -> dict[str, int]:
        """Jobs per status, from the counts every write keeps (never a count of the table)."""
        if self._counts is not None:
            return dict(self._counts)
        counts = {str(status): int(value) for status, value in self._read(self._sql.jobs_now) if value}
        if not self.fleet:
            self._counts = counts
        return dict(counts)

    def _count(self, status: str, step: int) -> None:
        if self._counts is not None:
            self._counts[status] = self._counts.get(status, 0) + step

    def queue_length(self) -> int:
        return self._run(self._queue_length())

    def _queue_length(self) -> Steps[int]:
        if self._counts is not None:
            return self._counts.get(Status.QUEUED.value, 0)
        rows = yield Read.of(self._sql.queued_now)
        return int(rows[0][0]) if rows and rows[0][0] else 0

    def processing_count(self) -> int:
        counts = self.count_by_status()
        return sum(counts.get(s, 0) for s in _ACTIVE)

    def timeline(self, job_id: str) -> list[JobEvent]:
        return [
            JobEvent(job_id=r[0], at=parse_time(r[1]) or utcnow(), status=Status(r[2]), detail=r[3])
            for r in self._read(self._sql.timeline, job_id=job_id)
        ]

    def estimate(self, model: str) -> float | None:
        row = self._one(self._sql.estimate, model=model)
        return float(row[0]) if row else None

    def metrics(self) -> dict[str, Any]:
        """All-time figures from the aggregates kept with the event log (deleted jobs still
        count); the cost does not grow with the history."""
        return {
            "queue_length": self.queue_length(),
            "processing": self.processing_count(),
            **summary(self.metric_snapshot()),
        }

    def metric_snapshot(self) -> Snapshot:
        return Snapshot([tuple(row) for row in self._read(self._sql.metric_values)])

    def metric_series(self, hours: int, now: datetime | None = None) -> list[dict[str, Any]]:
        """Jobs ended per hour by status and the longest queue of each hour, for the last
        ``hours`` hours (the current one included), oldest first."""
        now = now or utcnow()
        keys = [hour_of(isoformat(now - timedelta(hours=n)) or "") for n in range(hours - 1, -1, -1)]
        rows = self._read(self._sql.metric_hours, first=keys[0], last=keys[-1])
        return series_rows([tuple(r) for r in rows], keys)

    def count(self, name: str, labels: str = "", amount: float = 1.0) -> None:
        """Add to a persisted counter (e.g. ``retries_total``)."""
        self.db.write([self.dialect.add_metrics([(name, labels, 0, amount)])], "count a retry")

    # -- a job's changes ------------------------------------------------------------------

    def insert(self, job: Job, *, audit: AuditEntry | None = None, claim: KeyClaim | None = None) -> Job:
        """A new queued job, at the back of the queue (and its ``audit`` entry, in the same
        transaction). With a ``claim``, the job and its idempotency key are written in one
        transaction, and only while the key is free (or its hold expired): a key another
        submit holds raises :class:`KeyTaken`, and nothing is written."""
        return self._run(self._inserting(job, audit, claim))

    async def ainsert(self, job: Job, *, audit: AuditEntry | None = None, claim: KeyClaim | None = None) -> Job:
        """:meth:`insert`, awaited."""
        return await self._arun(self._inserting(job, audit, claim))

    def _inserting(self, job: Job, audit: AuditEntry | None, claim: KeyClaim | None) -> Steps[Job]:
        now = utcnow()
        job = job.replace(status=Status.QUEUED)
        change = JobChange(
            job.job_id,
            insert=job_to_row(job),
            counters=("queue_seq",),
            returning=("queue_seq",),
            queued_delta=1,
            queue_max_hour=hour_of(isoformat(now) or ""),
            notify=self._payloads("job", job.job_id),
            # A job that waits for another is not yet one its user could start.
            load=(job.request.user, 0, int(job.waiting_for is None), None),
            audit=_audit_row(audit, now),
        )
        change.events.append(_event(job, isoformat(job.created_at), Status.QUEUED, "submitted", kind="submitted"))
        change.add("submitted_total", job.request.user)
        change.add(JOBS_NOW, Status.QUEUED.value)
        change.deliveries = self._deliveries(job, Status.QUEUED, now)
        sent = self._stamp()
        if claim is None:
            rows = yield Write(self.dialect.change(change), "queue the job", change.durable)
        else:
            rows = yield from self._writing_claimed(change, claim, now)
        assert rows is not None  # an insert has no compare-and-set
        job = job.replace(queue_seq=_key(rows[0]["queue_seq"]))
        self._count(Status.QUEUED.value, +1)
        self._remember(job, sent=sent)
        self._clock(job)
        # At the back of the queue: its place is the queue's length.
        if "queued_after" in rows[0].keys():  # noqa: SIM118 - sqlite3.Row
            length = rows[0]["queued_after"]
        else:
            length = yield from self._queue_length()
        job = job.replace(queue_position=int(length))
        self._tell(Change("job", job.job_id, job), sent)
        if job.waiting_for is not None:
            settled = yield from self._settling_waits(job)
            if settled.waiting_for is None:
                return settled.replace(queue_position=job.queue_position if settled.status == Status.QUEUED else None)
        return job

    def insert_many(self, jobs: Iterable[Job]) -> None:
        """Bulk insert (imports, benchmarks) as given, numbered in order; no listeners are told."""
        jobs = list(jobs)
        ended = sorted(
            (n for n, job in enumerate(jobs) if job.status.is_final),
            key=lambda n: (jobs[n].finished_at or jobs[n].created_at, n),
        )
        with self.db.transaction("record the jobs") as tx:
            seq = self._advance(tx, "queue_seq", len(jobs))
            first_finished = self._advance(tx, "finished_seq", len(ended))
            finished = {n: first_finished + rank for rank, n in enumerate(ended)}
            statuses: dict[str, int] = {}
            for start in range(0, len(jobs), 200):
                rows = [
                    job_to_row(job.replace(queue_seq=seq + n, finished_seq=finished.get(n), submitting=False))
                    for n, job in enumerate(jobs[start : start + 200], start=start)
                ]
                tx.write([self._sql.insert_jobs(rows)])
                for row in rows:
                    statuses[row["status"]] = statuses.get(row["status"], 0) + 1
            if statuses:
                tx.write([self.dialect.add_metrics([(JOBS_NOW, s, 0, n) for s, n in statuses.items()])])
            loads: dict[str, list[int]] = {}
            for job in jobs:
                if not job.status.is_final and job.waiting_for is None:
                    counts = loads.setdefault(job.request.user, [0, 0])
                    counts[0 if job.status.is_active else 1] += 1
            for user, (running, waiting) in loads.items():
                tx.write([Statement(self._sql.add_load, {"lu": user, "lr": running, "lq": waiting, "ls": None})])
        self._counts = None
        if not self.fleet:
            self.count_by_status()

    def _writing_claimed(self, change: JobChange, claim: KeyClaim, now: datetime) -> Steps[list[Row] | None]:
        params = {
            "scope": claim.scope,
            "idempotency_key": claim.key,
            "fingerprint": claim.fingerprint,
            "job_id": change.job_id,
            "created_at": isoformat(now),
            "expired": isoformat(now - KEY_LIFETIME),
        }

        def claimed() -> Steps[list[Row] | None]:
            # The key's primary key decides: of two submits racing, the second one's claim
            # waits for the first to commit, then finds the key held and writes nothing.
            if not (yield Write([Statement(self._sql.claim_key, params, guard=True)])):
                raise KeyTaken(claim.key)
            written: list[Row] | None = yield Write(self.dialect.change(change), last=True)
            return written

        rows: list[Row] | None = yield Transact(claimed(), "queue the job")
        return rows

    def keyed_job(self, scope: str, key: str) -> tuple[str, str] | None:
        """The job an idempotency key of ``scope`` made within its lifetime, and the
        fingerprint of the request that made it."""
        since = isoformat(utcnow() - KEY_LIFETIME)
        row = self._one(self._sql.keyed_job, scope=scope, idempotency_key=key, since=since)
        return (str(row[0]), str(row[1])) if row else None

    def _deliveries(self, job: Job, status: Status, now: datetime) -> list[dict[str, Any]]:
        """The outbox rows of a job's move to ``status``: one per hook that wants it."""
        if not self.webhooks:
            return []
        shown = with_progress(job, self._estimates.get(job.request.model, (0.0, 0))[0], now)
        return [
            {
                "delivery_id": delivery.delivery_id,
                "url": delivery.url,
                "event": delivery.event,
                "job_id": delivery.job_id,
                "body": delivery.body,
                "created_at": isoformat(delivery.created_at),
                "next_attempt_at": isoformat(delivery.next_attempt_at),
            }
            for delivery in job_deliveries(self.webhooks, status, shown.to_dict(), now)
        ]

    # -- the webhook outbox ---------------------------------------------------------------

    def claim_deliveries(self, claimer: str, limit: int, lease_seconds: float) -> list[Delivery]:
        """Up to ``limit`` due pending deliveries, oldest due first, each claimed by
        ``claimer`` for ``lease_seconds``. On a shared database a row another sender is
        claiming is passed over, and a claim is taken over only once its lease ran out."""
        now = utcnow()
        params = {
            "claimer": claimer,
            "until": isoformat(now + timedelta(seconds=lease_seconds)),
            "now": isoformat(now),
            "limit": limit,
        }
        rows = self.db.write([Statement(self._sql.claim_deliveries, params)], "claim webhook deliveries")
        return sorted((_delivery(row) for row in rows or ()), key=lambda d: d.next_attempt_at or d.created_at)

    def record_attempt(
        self, delivery: Delivery, claimer: str, attempt: Attempt, state: str, next_at: datetime | None
    ) -> None:
        """Add ``attempt`` to the delivery, set its state and next try, end the claim; a
        claim that ran out and was taken over meanwhile records nothing."""
        kept = [a.to_dict() for a in (*delivery.attempts, attempt)][-KEPT_ATTEMPTS:]
        params = {
            "delivery_id": delivery.delivery_id,
            "claimer": claimer,
            "state": state,
            "tries": delivery.tries + 1,
            "attempts": json.dumps(kept),
            "next_at": isoformat(next_at),
        }
        self.db.write([Statement(self._sql.record_attempt, params)], "record a webhook delivery")

    def next_delivery_due(self) -> datetime | None:
        row = self._one(self._sql.next_delivery)
        return parse_time(row[0]) if row else None

    def release_deliveries(self) -> None:
        """Every claim ends (a database this process alone writes, at start: a claim held by
        a process that was killed is void)."""
        self.db.write([Statement(self._sql.release_deliveries)], "release webhook deliveries")

    def forget_ended(self, before: datetime) -> None:
        """Deliveries that ended before ``before`` go, and so do idempotency keys past their lifetime."""
        self.db.write(
            [
                Statement(self._sql.forget_deliveries, {"before": isoformat(before)}),
                Statement(self._sql.forget_keys, {"before": isoformat(utcnow() - KEY_LIFETIME)}),
            ],
            "forget old webhook deliveries",
        )

    def deliveries(self, job_id: str | None = None, limit: int = 100) -> list[Delivery]:
        """Deliveries (of one job), newest first."""
        if job_id is None:
            rows = self._read(self._sql.deliveries, limit=limit)
        else:
            rows = self._read(self._sql.job_deliveries, job_id=job_id, limit=limit)
        return [_delivery(row) for row in rows]

    def _advance(self, tx: Transaction, counter: str, count: int) -> int:
        """The first of ``count`` new numbers of ``counter`` (inside ``tx``)."""
        rows = tx.write([Statement(self._sql.advance, {"count": count, "name": counter})])
        assert rows
        return int(rows[0][0]) - count + 1

    def transition(
        self,
        job_id: str,
        target: Status,
        *,
        expect: Iterable[Status] | None = None,
        detail: str | None = None,
        seconds: float | None = None,
        via: Sequence[Status] = (),
        sample: tuple[str, float, float | None] | None = None,
        audit: AuditEntry | None = None,
        **fields: Any,
    ) -> Job:
        """Move a job to ``target`` in one transaction, if the move is allowed from its
        current status (and that status is one of ``expect``, when given).

        ``via``: stages passed on the way, where no work happens between them; each is
        recorded (its event, its aggregates) in the same transaction. ``fields``, ``detail``
        and ``seconds`` belong to ``target``. ``sample``: a generation time, (model, seconds,
        prior), folded into the model's moving estimate in the same transaction. ``audit``: the
        request's entry in the audit log, written in the same transaction."""
        return self._run(self._transitioning(job_id, target, expect, detail, seconds, via, sample, audit, fields))

    async def atransition(
        self,
        job_id: str,
        target: Status,
        *,
        expect: Iterable[Status] | None = None,
        detail: str | None = None,
        seconds: float | None = None,
        via: Sequence[Status] = (),
        sample: tuple[str, float, float | None] | None = None,
        audit: AuditEntry | None = None,
        **fields: Any,
    ) -> Job:
        """:meth:`transition`, awaited."""
        steps = self._transitioning(job_id, target, expect, detail, seconds, via, sample, audit, fields)
        return await self._arun(steps)

    def _transitioning(
        self,
        job_id: str,
        target: Status,
        expect: Iterable[Status] | None,
        detail: str | None,
        seconds: float | None,
        via: Sequence[Status],
        sample: tuple[str, float, float | None] | None,
        audit: AuditEntry | None,
        fields: dict[str, Any],
    ) -> Steps[Job]:
        now = utcnow()
        allowed = set(expect) if expect is not None else None
        steps = (*via, target)
        doing = f"record that job {job_id} is {target.value}"
        first = self._first_estimate(sample)

        def plan(before: Job) -> tuple[JobChange, Job]:
            if allowed is not None and before.status not in allowed:
                raise Conflict(f"job {job_id} is {before.status.value}; it cannot become {target.value}")
            change: JobChange | None = None
            job = before
            for n, step in enumerate(steps, 1):
                if not can_transition(job.status, step):
                    raise Conflict(f"job {job_id} is {job.status.value}; it cannot become {step.value}")
                last = n == len(steps)
                part, job = self._plan_transition(
                    job, step, now, detail if last else None, seconds if last else None, dict(fields) if last else {}
                )
                change = part if change is None else change.then(part)
            assert change is not None
            change.audit = _audit_row(audit, now)
            if sample is not None and first is not None:
                change.sample = (sample[0], sample[1], first)
            return change, job

        dependants = (yield from self._waiting_on(job_id)) if target.is_final else []
        before, job, sent = yield from self._changing(job_id, plan, doing)
        if sample is not None and first is not None:
            self._estimates.pop(sample[0], None)  # folded in SQL: the cached sample count is stale
        self._count(before.status.value, -1)
        self._count(target.value, +1)
        self._clock(job)
        self._tell(Change("job", job_id, job), sent)
        previous = before.status
        for n, step in enumerate(steps, 1):
            last = n == len(steps)
            event(
                log,
                logging.WARNING if step == Status.FAILED else logging.INFO,
                "job.transition",
                "%s -> %s%s",
                previous.value,
                step.value,
                f": {detail}" if detail and last else "",
                job_id=job_id,
                previous=previous.value,
                status=step.value,
                at=isoformat(now),
                detail=detail if last else None,
                attempts=job.attempts,
                error_kind=job.error_kind if step == Status.FAILED else None,
            )
            previous = step
        if dependants:
            yield from self._settling_dependants(job, dependants)
        return job

    def _settling_dependants(self, ended: Job, dependants: Iterable[Job]) -> Steps[None]:
        """After ``ended`` ended: the jobs that waited for it were released in its own
        transaction if it completed (tell whoever listens); otherwise each is cancelled,
        with an error naming the job, and so in turn are the jobs that wait for it."""
        completed = ended.status == Status.COMPLETED
        why = None if completed else waited_job_ended(ended.job_id, ended.status.value)
        yield from self._ending_waits([job.job_id for job in dependants], why)

    def _end_waits(self, job_ids: Iterable[str], why: str | None) -> None:
        self._run(self._ending_waits(job_ids, why))

    def _ending_waits(self, job_ids: Iterable[str], why: str | None) -> Steps[None]:
        """Release the jobs ``job_ids`` (``why`` None: what they waited for completed), or cancel
        them for ``why``. A job that changed meanwhile (cancelled by its user) is left alone."""
        for job_id in job_ids:
            self._copy.pop(job_id, None)  # its waiting_for was cleared in SQL
            try:
                if why is None:
                    job = yield from self._reading_job(job_id)
                    if job.waiting_for is not None:  # released by a job ending before the wait began
                        job = yield from self._updating(job_id, None, {"waiting_for": None})
                    self._remember(job)
                    self._tell(Change("job", job_id, job))
                else:
                    cancel = {"error": why}
                    yield from self._transitioning(
                        job_id, Status.CANCELLED, (Status.QUEUED,), why, None, (), None, None, cancel
                    )
            except (Conflict, JobNotFound):
                continue

    def settle_waits(self, job: Job) -> Job:
        """A job just queued to wait for ``job.waiting_for``: if that job ended meanwhile (its
        end came before this job's row and released nothing), release or cancel it now."""
        return self._run(self._settling_waits(job))

    def _settling_waits(self, job: Job) -> Steps[Job]:
        if job.waiting_for is None:
            return job
        waited = yield from self._finding(job.waiting_for)
        if waited is not None and not waited.status.is_final:
            return job
        if waited is not None and waited.status == Status.COMPLETED:
            yield from self._ending_waits([job.job_id], None)
        else:
            status = waited.status.value if waited is not None else "deleted"
            yield from self._ending_waits([job.job_id], waited_job_ended(job.waiting_for, status))
        return (yield from self._getting(job.job_id))

    def settle_stranded(self) -> int:
        """At start-up: jobs still waiting for a job that has ended or is gone (a crash came
        between that job's end and the cancel of its dependants). Each is released or
        cancelled; the ``jobs_waiting`` index reads only the waiting jobs. How many."""
        rows = self._read(self._sql.stranded)
        for job_id, waited, status in rows:
            if status == Status.COMPLETED.value:
                self._end_waits([job_id], None)
            else:
                self._end_waits([job_id], waited_job_ended(waited, status or "deleted"))
        return len(rows)

    @staticmethod
    def _first_estimate(sample: tuple[str, float, float | None] | None) -> float | None:
        """A model's estimate from its first sample (clamped against the prior); None where the
        sample is no time at all and is dropped."""
        if sample is None or not (math.isfinite(sample[1]) and sample[1] > 0):
            return None
        return fold_sample(None, sample[1], sample[2])

    def _plan_transition(
        self,
        before: Job,
        target: Status,
        now: datetime,
        detail: str | None,
        seconds: float | None,
        fields: dict[str, Any],
    ) -> tuple[JobChange, Job]:
        """The row, the event and the aggregates of one move, from the job as it was."""
        previous = before.status
        at = isoformat(now)
        change = JobChange(before.job_id)
        if target == Status.QUEUED and previous.is_final:
            change.counters = ("queue_seq",)
            fields["finished_seq"] = None
        elif target == Status.QUEUED and previous.is_active:
            # Back to the front (restart recovery), on a key no queued job holds.
            change.front_of_queue = True
        if target in ACTIVE_STATUSES or target == Status.QUEUED:
            fields.setdefault("stage_started_at", now)
        if target.is_final:
            change.counters = ("finished_seq",)
            fields.setdefault("finished_at", now)
            fields.setdefault("submitting", False)
            if before.waiting_for is not None:
                fields["waiting_for"] = None
        if target == Status.COMPLETED:
            change.release = before.job_id
        after = before.replace(status=target, **as_job_fields(fields))
        change.sets = {"status": target.value, **column_values(after, fields)}
        if target == Status.QUEUED or target.is_final:
            change.owner = True  # no server runs it any more
        elif target == Status.STARTING and previous == Status.QUEUED and self.server_id:
            change.owner = self.server_id
        change.expect_status = previous.value
        change.expect_owner = self._owner_expected(before, target)
        change.events.append(
            _event(
                after,
                at,
                target,
                detail,
                error_kind=after.error_kind if target == Status.FAILED else None,
                seconds=seconds,
            )
        )
        self._aggregate(change, before, after, now, seconds)
        change.notify = self._payloads("job", before.job_id)
        running = target.is_active - previous.is_active
        # The user's queued jobs in the fair queue's table: those that may start (not waiting).
        waiting = _ready(after) - _ready(before)
        if running or waiting:
            started = at if target == Status.STARTING else None
            change.load = (before.request.user, running, waiting, started)
        change.deliveries = self._deliveries(after, target, now)
        change.durable = target not in REDOABLE
        return change, after

    def _aggregate(self, change: JobChange, before: Job, after: Job, now: datetime, seconds: float | None) -> None:
        """Fold one move into the aggregates. Stage times come from the monotonic clock when
        the stage began in this process."""
        previous, target = before.status, after.status
        change.add(JOBS_NOW, previous.value, -1)
        change.add(JOBS_NOW, target.value)
        change.queued_delta = (target == Status.QUEUED) - (previous == Status.QUEUED)
        in_stage = self.stage_elapsed(before)
        if in_stage is None:
            since = before.stage_started_at or (before.created_at if previous == Status.QUEUED else None)
            in_stage = (now - since).total_seconds() if since is not None else None
        if previous in ACTIVE_STATUSES and in_stage is not None:
            _observe(change, "stage_duration_seconds", in_stage, previous.value)
        if previous == Status.QUEUED and target == Status.STARTING and in_stage is not None:
            _observe(change, "queue_wait_seconds", in_stage)
        hour = hour_of(isoformat(now) or "")
        if target == Status.QUEUED:
            change.queue_max_hour = hour
        if not target.is_final:
            return
        change.add("jobs_total", target.value)
        change.add_hour(hour, "finished", target.value)
        if target == Status.FAILED:
            change.add("errors_total", after.error_kind or "unknown")
        elif target == Status.COMPLETED:
            if seconds is None and after.started_at is not None:
                seconds = (now - after.started_at).total_seconds()
            if seconds is not None:
                _observe(change, "job_duration_seconds", seconds)

    def _owner_expected(self, before: Job, target: Status | None) -> str | None:
        """In a fleet, a write to a processing job holds only for the server that runs it
        (a cancel holds from anyone)."""
        if self.server_id and before.status.is_active and target != Status.CANCELLED:
            return self.server_id
        return None

    def update(self, job_id: str, *, note: str | None = None, **fields: Any) -> Job:
        """Change fields without a transition; ``note`` adds a line to the timeline."""
        return self._run(self._updating(job_id, note, fields))

    async def aupdate(self, job_id: str, *, note: str | None = None, **fields: Any) -> Job:
        """:meth:`update`, awaited."""
        return await self._arun(self._updating(job_id, note, fields))

    def _updating(self, job_id: str, note: str | None, fields: dict[str, Any]) -> Steps[Job]:
        now = utcnow()

        def plan(before: Job) -> tuple[JobChange, Job]:
            after = before.replace(**as_job_fields(fields))
            change = JobChange(
                job_id,
                sets=column_values(after, fields),
                expect_status=before.status.value,
                expect_owner=self._owner_expected(before, None),
                notify=self._payloads("job", job_id),
            )
            if note:
                change.events.append(_event(before, isoformat(now), before.status, note, kind="note"))
            if _ready(after) != _ready(before):  # released from a wait
                change.load = (before.request.user, 0, _ready(after) - _ready(before), None)
            return change, after

        _, job, sent = yield from self._changing(job_id, plan, f"record a change to job {job_id}")
        if note:
            event(log, logging.INFO, "job.note", "%s", note, job_id=job_id, status=job.status.value)
        self._tell(Change("job", job_id, job), sent)
        return job

    def record_operation(self, job_id: str, operation: str, *, note: str | None = None) -> Job:
        """The submit created ``operation``: record it on the job and count the job's
        estimate in today's spend, in one transaction (an operation counts once)."""
        return self._run(self._recording_operation(job_id, operation, note))

    async def arecord_operation(self, job_id: str, operation: str, *, note: str | None = None) -> Job:
        """:meth:`record_operation`, awaited."""
        return await self._arun(self._recording_operation(job_id, operation, note))

    def _recording_operation(self, job_id: str, operation: str, note: str | None) -> Steps[Job]:
        now = utcnow()
        fields = {"operation": operation, "submitting": False, "operation_done": False, "result": None}

        def plan(before: Job) -> tuple[JobChange, Job]:
            after = before.replace(**fields)
            change = JobChange(
                job_id,
                sets=column_values(after, fields),
                expect_status=before.status.value,
                expect_owner=self._owner_expected(before, None),
                spend=(operation, now.date().isoformat(), isoformat(now) or "", before.estimated_cost_usd),
                # Today's spend changed: the other servers read the queue's state again too.
                notify=[*self._payloads("job", job_id), *self._payloads("queue", "")],
            )
            if note:
                change.events.append(_event(before, isoformat(now), before.status, note, kind="note"))
            return change, after

        _, job, sent = yield from self._changing(job_id, plan, f"record the operation of job {job_id}")
        self._tell(Change("job", job_id, job), sent)
        # Today's spend changed: whoever shows it (the header) hears it with the queue's state.
        self._tell(Change("queue", "", queue=(yield from self._queue_state())))
        return job

    def _changing(
        self, job_id: str, plan: Callable[[Job], tuple[JobChange, Job]], doing: str
    ) -> Steps[tuple[Job, Job, int | None]]:
        """Write the change ``plan`` makes of the job as this process knows it; the job
        before and after, and when the write was sent (:meth:`_stamp`). Where the compare-and-set finds that the job changed meanwhile (on
        a shared database, another server changed it), it is read again and the change
        planned and tried once more."""
        before = self._copy.get(job_id) or (yield from self._reading_job(job_id))
        for attempt in (1, 2):
            change, after = plan(before)
            if not self.fleet:  # alone: the row is what this process wrote; only numbers come back
                change.returning = ("job_id", *change.counters, *(("queue_seq",) if change.front_of_queue else ()))
            sent = self._stamp()
            rows = yield Write(self.dialect.change(change), doing, change.durable)
            if rows:
                break
            self._copy.pop(job_id, None)
            self._owned.discard(job_id)
            fresh = yield from self._reading_job(job_id)
            owner = change.expect_owner
            holder = (yield from self._owning(job_id)) if owner is not None and fresh.status.is_active else owner
            if holder != owner:
                raise LeaseLost(
                    f"job {job_id} is run by server {holder or 'none'} now: this server "
                    f"({owner}) lost its lease on it, so it leaves the job alone"
                )
            if attempt == 2 or fresh == before:
                raise Conflict(f"job {job_id} changed under veotui's feet; try again")
            before = fresh
        assert rows
        if self.fleet:
            after = job_from_row(rows[0])
        else:
            numbers = {name: _key(rows[0][name]) for name in rows[0].keys() if name != "job_id"}  # noqa: SIM118 - sqlite3.Row
            after = after.replace(**numbers)
        self._remember(after, sent=sent)
        return before, after, sent

    def _read_job(self, job_id: str) -> Job:
        return self._run(self._reading_job(job_id))

    def _reading_job(self, job_id: str) -> Steps[Job]:
        rows = yield Read.of(self._sql.job_by_id, job_id=job_id)
        if not rows:
            raise JobNotFound(job_id)
        return job_from_row(rows[0])

    def _payloads(self, kind: str, job_id: str) -> list[str]:
        """What the other processes on a shared database are told of a change."""
        origin = self.db.origin
        return [f"{origin} {kind} {job_id}"] if origin else []

    def _clock(self, job: Job) -> None:
        if job.status.is_final:
            self._stage_clock.pop(job.job_id, None)
            self._run_clock.pop(job.job_id, None)
            return
        now = time.monotonic()
        self._stage_clock[job.job_id] = (job.status, now)
        if job.status == Status.STARTING:
            self._run_clock[job.job_id] = now
        elif job.status == Status.QUEUED:
            self._run_clock.pop(job.job_id, None)

    def stage_elapsed(self, job: Job) -> float | None:
        """Seconds the job has been in its current stage, by the monotonic clock, if that
        stage began in this process; else None (the caller falls back to the wall clock)."""
        clock = self._stage_clock.get(job.job_id)
        if clock is None or clock[0] != job.status:
            return None
        return time.monotonic() - clock[1]

    def run_elapsed(self, job_id: str) -> float | None:
        """Seconds since the job last started in this process, by the monotonic clock."""
        began = self._run_clock.get(job_id)
        return None if began is None else time.monotonic() - began

    def spend_on(self, day: date) -> float:
        """The estimated cost of the operations created on ``day`` (UTC), in US dollars."""
        return self._run(self._spend_on(day))

    def _spend_on(self, day: date) -> Steps[float]:
        rows = yield Read.of(self._sql.spend_on, day=day.isoformat())
        return round(float(rows[0][0]) if rows else 0.0, 2)

    def spend_today(self, user: str | None = None) -> float:
        """The estimated cost of the operations created today (UTC): what was bought today
        (by ``user``'s jobs, when given)."""
        if user is None:
            return self.spend_on(utcnow().date())
        row = self._one(self._sql.spend_by, day=utcnow().date().isoformat(), user=user)
        return round(float(row[0]) if row else 0.0, 2)

    def delete(self, job_id: str, reason: str | None = None, *, audit: AuditEntry | None = None) -> Job:
        """Remove the job's row and remember its remote files until they are cleaned up.
        With a ``reason`` (the engine removed it by itself), a lookup of the job answers it
        for a while. On a full disk the guard's reserve is dropped to make room for the delete."""
        job = self.get(job_id)
        try:
            self._delete_row(job, reason, audit)
        except StorageUnavailable:
            if not self.guard.release_reserve():
                raise
            self._delete_row(job, reason, audit)
        self._tell(Change("deleted", job_id))
        dependants = self.waiting_on(job_id)
        if dependants:
            self._end_waits([d.job_id for d in dependants], waited_job_ended(job_id, "deleted"))
        return job

    def _delete_row(self, job: Job, reason: str | None = None, audit: AuditEntry | None = None) -> None:
        job_id = job.job_id
        now = utcnow()
        at = isoformat(now)
        statements = []
        if reason is not None:
            statements += [
                Statement(
                    self._sql.forget_tombstones,
                    {"job_id": job_id, "before": isoformat(now - timedelta(days=TOMBSTONE_DAYS))},
                ),
                Statement(self._sql.add_tombstone, {"job_id": job_id, "at": at, "reason": reason}),
                Statement(self._sql.trim_tombstones, {"keep": TOMBSTONE_ROWS}),
            ]
        statements += [
            Statement(self._sql.delete_job, {"job_id": job_id}, guard=True),
            self.dialect.add_metrics([(JOBS_NOW, job.status.value, 0, -1)]),
            Statement(self._sql.remember_cleanup, {"job_id": job_id, "job": json.dumps(job_to_row(job)), "since": at}),
            Statement(self._sql.insert_event, _event(job, at, job.status, "deleted", kind="deleted")),
            *self._notification("deleted", job_id),
        ]
        if not job.status.is_final:
            running, waiting = (1, 0) if job.status.is_active else (0, _ready(job))
            statements.append(
                Statement(self._sql.add_load, {"lu": job.request.user, "lr": -running, "lq": -waiting, "ls": None})
            )
        if audit is not None:
            statements.append(Statement(self._sql.insert_audit, _audit_values(audit, now)))
        if self.db.write(statements, f"delete job {job_id}") is None:
            raise JobNotFound(job_id)
        self._copy.pop(job_id, None)
        self._owned.discard(job_id)
        self._stage_clock.pop(job_id, None)
        self._run_clock.pop(job_id, None)
        self._count(job.status.value, -1)
        event(
            log,
            logging.INFO,
            "job.deleted",
            "deleted (was %s)",
            job.status.value,
            job_id=job_id,
            status=job.status.value,
        )

    def _notification(self, kind: str, job_id: str = "") -> list[Statement]:
        told = (self.db.notify(payload) for payload in self._payloads(kind, job_id))
        return [statement for statement in told if statement is not None]

    # -- the queue: pause and order ---------------------------------------------------------

    def _pause_row(self) -> tuple[bool, bool, str | None, str | None]:
        return self._run(self._reading_pause())

    def _reading_pause(self) -> Steps[tuple[bool, bool, str | None, str | None]]:
        if self._pause is not None and self._pause_trusted:
            return self._pause
        (row,) = yield Read.of(self._sql.pause)
        self._pause = (bool(row[0]), bool(row[1]), row[2], row[3])
        return self._pause

    def pause_changed(self) -> None:
        """Another server changed the pause: the kept row is read again when next needed."""
        self._pause = None

    def trust_pause(self, trusted: bool) -> None:
        """Whether the kept pause row is current (a fleet's store hears the others' changes)."""
        self._pause_trusted = trusted or not self.fleet
        self._pause = None

    def is_paused(self) -> bool:
        return self._pause_row()[0]

    def pause_flags(self) -> tuple[bool, bool, str | None]:
        """Paused, paused by the budget, and the reason: the dispatch loop's cheap read."""
        paused, by_budget, reason, _ = self._pause_row()
        return paused, by_budget, reason

    def queue_state(self) -> QueueState:
        return self._run(self._queue_state())

    def _queue_state(self) -> Steps[QueueState]:
        paused, by_budget, reason, _ = yield from self._reading_pause()
        if self._counts is not None:
            length = yield from self._queue_length()
            spent = yield from self._spend_on(utcnow().date())
        else:  # both in one read
            rows = yield Read.of(self._sql.queue_figures, day=utcnow().date().isoformat())
            length, spent = (int(rows[0][0] or 0), round(float(rows[0][1] or 0), 2)) if rows else (0, 0.0)
        return QueueState(paused=paused, reason=reason, length=length, by_budget=by_budget, spent_today_usd=spent)

    def set_paused(
        self, paused: bool, reason: str | None = None, *, by_budget: bool = False, audit: AuditEntry | None = None
    ) -> QueueState:
        """Pause or resume the queue (persisted); listeners get a ``queue`` change."""
        reason = reason if paused else None
        by_budget = paused and by_budget
        self._pause = None
        now = utcnow()
        params = {"paused": int(paused), "reason": reason, "by_budget": int(by_budget), "since": isoformat(now)}
        statements = [Statement(self._sql.set_pause, params), *self._notification("queue")]
        if audit is not None:
            statements.append(Statement(self._sql.insert_audit, _audit_values(audit, now)))
        self.db.write(statements, "record the pause")
        state = self.queue_state()
        self._tell(Change("queue", "", queue=state))
        return state

    def budget_override_day(self) -> str | None:
        """The UTC day (YYYY-MM-DD) for which a resume overrode the daily budget."""
        return self._pause_row()[3]

    def set_budget_override_day(self, day: str | None) -> None:
        self._pause = None
        self.db.write(
            [Statement(self._sql.set_override, {"day": day}), *self._notification("queue")],
            "record the budget's override",
        )

    def move(
        self,
        job_id: str,
        *,
        to: str | None = None,
        position: int | None = None,
        among: str | None = None,
        audit: AuditEntry | None = None,
    ) -> Job:
        """Put a queued job at the top, the bottom, one place up or down, or at a 1-based
        ``position`` (past the end means the bottom).

        Only the moved job's key changes: it takes a key between its new neighbours' keys
        (their midpoint; one below the first; the next whole number at the back). The
        neighbours are found by seeks on the (status, queue_seq) index. When two keys have
        no room left between them (after ~40 moves into the same gap), a small window of
        following jobs is spread out again (see ``_respace``); nobody else is renumbered.
        Listeners hear of the moved job only; positions of the others follow from it.

        ``among`` (a user): the job moves among that user's queued jobs alone, which trade
        their keys, so no other user's job changes place (top: ahead of the user's other
        jobs, never ahead of another user's)."""
        if (to is None) == (position is None):
            raise InvalidRequest("give either to (top, bottom, up, down) or a position")
        if to is not None and to not in ("top", "bottom", "up", "down"):
            raise InvalidRequest(f"to must be top, bottom, up or down, got {clipped(to)}")
        if position is not None and (isinstance(position, bool) or not isinstance(position, int) or position < 1):
            raise InvalidRequest(f"position must be a whole number of at least 1, got {clipped(position)}")
        with self.db.transaction(f"move job {job_id}") as tx:
            rows = tx.read(Statement(self._sql.job_locked, {"job_id": job_id}))
            if not rows:
                raise JobNotFound(job_id)
            job = job_from_row(rows[0])
            if job.status != Status.QUEUED:
                raise Conflict(f"job {job_id} is {job.status.value}; only queued jobs can be moved")
            traded: list[str] = []
            gap: tuple[float | None, float | None] | None
            if among is not None:
                seq, traded = self._trade_keys(tx, job, among, to, position)
                gap = None if seq == job.queue_seq else (seq, seq)
            else:
                gap = self._gap_for(tx, job, to, position)
                seq = job.queue_seq if gap is None else self._key_between(tx, job, *gap)
            if gap is None:
                moved = job  # already there
            else:
                tx.write(
                    [Statement(self._sql.set_key, {"seq": seq, "job_id": job_id}), *self._notification("job", job_id)]
                )
                moved = job.replace(queue_seq=seq)
            if audit is not None:
                tx.write([Statement(self._sql.insert_audit, _audit_values(audit, utcnow()))])
        self._remember(moved)
        moved = moved.replace(queue_position=self.queue_position(moved))
        if gap is not None:
            self._tell(Change("job", job_id, moved))
        for other in traded:
            found = self.find(other)
            if found is not None:
                self._tell(Change("job", other, found))
        return moved

    def _trade_keys(
        self, tx: Transaction, job: Job, user: str, to: str | None, position: int | None
    ) -> tuple[float, list[str]]:
        """Reorder ``user``'s queued jobs on the keys they hold: the moved job's new key, and
        the other jobs whose key changed (written here)."""
        rows = tx.read(Statement(self._sql.users_queue, {"user": user}))
        order = [str(row[0]) for row in rows]
        keys = [_key(row[1]) for row in rows]
        held = dict(zip(order, keys, strict=True))
        place = order.index(job.job_id)
        order.pop(place)
        if to == "top":
            place = 0
        elif to == "bottom":
            place = len(order)
        elif to == "up":
            place = max(0, place - 1)
        elif to == "down":
            place = min(len(order), place + 1)
        else:
            assert position is not None
            place = min(len(order), position - 1)
        order.insert(place, job.job_id)
        changed = []
        for other, key in zip(order, keys, strict=True):
            if other == job.job_id or held[other] == key:
                continue
            tx.write([Statement(self._sql.set_key, {"seq": key, "job_id": other}), *self._notification("job", other)])
            cached = self._copy.get(other)
            if cached is not None:
                self._copy[other] = cached.replace(queue_seq=key)
            changed.append(other)
        return keys[place], changed

    def _gap_for(
        self, tx: Transaction, job: Job, to: str | None, position: int | None
    ) -> tuple[float | None, float | None] | None:
        """The keys the job must go between (None: an open end), or None to stay put."""
        seq = job.queue_seq
        sql = self._sql

        def seqs(statement: str, **params: Any) -> list[float]:
            return [row[0] for row in tx.read(Statement(statement, params))]

        if to == "top" or position == 1:
            first = seqs(sql.first_other, job_id=job.job_id)[0]
            return None if first is None or seq < first else (None, first)
        if to == "bottom":
            last = seqs(sql.last_other, job_id=job.job_id)[0]
            return None if last is None or seq > last else (last, None)
        if to == "up":
            before = seqs(sql.two_before, seq=seq)
            if not before:
                return None
            return (before[1] if len(before) > 1 else None, before[0])
        if to == "down":
            after = seqs(sql.two_after, seq=seq)
            if not after:
                return None
            return (after[0], after[1] if len(after) > 1 else None)
        assert position is not None
        # The others in order; the job goes after the (position - 1)-th of them. An index
        # walk of ``position`` entries, as counting a queue position is.
        pair = seqs(sql.pair_at, job_id=job.job_id, offset=position - 2)
        if not pair:  # past the end: the bottom
            return self._gap_for(tx, job, "bottom", None)
        lower, upper = pair[0], pair[1] if len(pair) > 1 else None
        if lower < seq and (upper is None or seq < upper):
            return None
        return (lower, upper)

    def _key_between(self, tx: Transaction, job: Job, before: float | None, after: float | None) -> float:
        if before is None and after is None:
            return job.queue_seq
        if before is None:
            assert after is not None
            return after - 1
        if after is None:
            return self._advance(tx, "queue_seq", 1)
        middle = (before + after) / 2
        if before < middle < after:
            return int(middle) if middle.is_integer() else middle
        return self._respace(tx, job, before, after)

    def _respace(self, tx: Transaction, job: Job, before: float, after: float) -> float:
        """No key fits between ``before`` and ``after``: spread the job and the next few
        queued jobs evenly up to a key further on (a window that doubles until it has
        room; at the queue's end, up to a new whole number). Returns the job's key."""
        window = RESPACE_WINDOW
        while True:
            rows = tx.read(Statement(self._sql.window, {"after": after, "job_id": job.job_id, "count": window + 1}))
            shifted = [row[0] for row in rows[:window]]
            limit = rows[window][1] if len(rows) > window else self._advance(tx, "queue_seq", 1)
            step = (limit - before) / (len(shifted) + 2)
            # Enough room that the next ~20 moves into any of these gaps need no respacing.
            if step >= max(1.0, abs(before)) * ROOM_AFTER_RESPACE:
                break
            window *= 2
        keys = [before + step * n for n in range(1, len(shifted) + 2)]
        for other, key in zip(shifted, keys[1:], strict=True):
            tx.write([Statement(self._sql.set_key, {"seq": key, "job_id": other})])
            cached = self._copy.get(other)
            if cached is not None:
                self._copy[other] = cached.replace(queue_seq=key)
        return keys[0]

    # -- a team: each user's load, the fair queue, the audit log ----------------------------

    def loads(self) -> dict[str, tuple[int, int]]:
        """Each user with unfinished jobs: (processing, queued), counted across the fleet."""
        return {str(row[0]): (int(row[1]), int(row[2])) for row in self._read(self._sql.loads)}

    def next_to_start(self, policy: str = "fifo", waiting: Iterable[str] = ()) -> Job | None:
        """The queued job to start next, passing over the jobs of the users in ``waiting``
        (over their budget or at their limit) without reading them.

        ``fifo``: the first in the queue's order. ``fair``: the oldest job of the user with
        the fewest jobs processing (ties: the user whose last start is oldest). Either way a
        user is picked from ``user_load`` first, then that user's first job by the index on
        (user, queue_seq): the cost does not grow with the queue."""
        return self._run(self._next_to_start(policy, waiting))

    async def anext_to_start(self, policy: str = "fifo", waiting: Iterable[str] = ()) -> Job | None:
        """:meth:`next_to_start`, awaited."""
        return await self._arun(self._next_to_start(policy, waiting))

    def _next_to_start(self, policy: str, waiting: Iterable[str]) -> Steps[Job | None]:
        waiting = sorted(set(waiting))
        if policy == "fifo" and not waiting:
            return (yield from self._next_queued())
        marks = {f"w{n}": user for n, user in enumerate(waiting)}
        skip = (
            f" AND {self.dialect.quote('user')} NOT IN ({', '.join(self.dialect.param(m) for m in marks)})"
            if marks
            else ""
        )
        pick = self._sql.fair_user if policy == "fair" else self._sql.first_user
        rows = yield Read.of(pick.format(skip=skip), **marks)
        if not rows:
            return None
        first = yield Read.of(self._sql.users_first, user=rows[0][0])
        return job_from_row(first[0]) if first else None

    def audit(self, entry: AuditEntry) -> None:
        """An entry of the audit log on its own (a refusal, a download: nothing else changes)."""
        row = _audit_values(entry, utcnow())
        self.db.write([Statement(self._sql.insert_audit, row)], "record an audit entry")

    def audit_page(
        self, *, user: str | None = None, job_id: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AuditEntry]:
        """The audit log newest first, one page, of one user or one job if given: read by
        the index on (ts), (user, ts) or (job_id, ts), so a page costs the same at a million."""
        where: list[str] = []
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if user is not None:
            where.append(f"{self.dialect.quote('user')} = {self.dialect.param('user')}")
            params["user"] = user
        if job_id is not None:
            where.append(f"job_id = {self.dialect.param('job_id')}")
            params["job_id"] = job_id
        p = self.dialect.param
        sql = (
            f"SELECT {self._sql.audit_columns} FROM audit"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY ts DESC, id DESC LIMIT {p('limit')} OFFSET {p('offset')}"
        )
        names = ("id", "ts", "user", "role", "action", "job_id", "detail", "remote_addr")
        return [AuditEntry.from_dict(dict(zip(names, tuple(row), strict=True))) for row in self._read(sql, **params)]

    def prune_audit(self, days: int) -> None:
        """Forget audit entries older than ``days`` days."""
        before = isoformat(utcnow() - timedelta(days=days))
        self.db.write([Statement(self._sql.prune_audit, {"before": before})], "prune the audit log")

    # -- clean-ups and estimates -----------------------------------------------------------

    def pending_cleanups(self) -> list[Job]:
        return [cleanup_job(json.loads(row[0])) for row in self._read(self._sql.cleanups)]

    def cleanup_done(self, job_id: str) -> None:
        self.db.write([Statement(self._sql.cleanup_done, {"job_id": job_id})], "record a finished clean-up")

    def record_duration(self, model: str, seconds: float, prior: float | None = None) -> float | None:
        """Fold one generation time into the model's moving estimate (clamped against it, or
        against ``prior`` before the first sample); return the estimate.

        The estimate this process last wrote is written over with a compare-and-set on its
        sample count (one statement); where another server wrote one meanwhile, or none is
        known, it is read and written in one transaction."""
        if not (math.isfinite(seconds) and seconds > 0):
            return self.estimate(model)
        known = self._estimates.get(model)
        if known is not None:
            current, samples = known
            estimate = fold_sample(current, seconds, prior)
            if estimate is None:
                return current
            params = {"model": model, "seconds": estimate, "samples": samples + 1, "counted": samples}
            if self.db.write([Statement(self._sql.swap_estimate, params, guard=True)], "record a generation time"):
                self._estimates[model] = (estimate, samples + 1)
                return estimate
        with self.db.transaction("record a generation time") as tx:
            rows = tx.read(Statement(self.dialect.locked(self._sql.estimate_row), {"model": model}))
            stored: float | None = float(rows[0][0]) if rows else None
            samples = int(rows[0][1]) if rows else 0
            estimate = fold_sample(stored, seconds, prior)
            if estimate is None:
                return stored  # dropped
            params = {"model": model, "seconds": estimate, "samples": samples + 1}
            tx.write([Statement(self.dialect.upsert_estimate(), params)], last=True)
        self._estimates[model] = (estimate, samples + 1)
        return estimate

    # -- hearing the other servers of a fleet -------------------------------------------------

    def listen(self, heard: Callable[[Change], object]) -> Callable[[], None]:
        """Call ``heard`` (in a thread of its own) with every change another process makes
        to the database, as read back after its commit; returns a function that stops it.
        While it listens, the pause row is kept in memory: the others' changes of it are
        heard. A lost connection is made again; what changed meanwhile is heard afresh (the
        processing jobs and the queue's state)."""

        def one(reader: Any, kind: str, job_id: str) -> None:
            if kind == "queue":
                self.pause_changed()
            heard(self._read_change(reader, kind, job_id))

        def resync(reader: Any) -> None:
            self.pause_changed()
            for row in reader.read(Statement(self._sql.active)):
                job = job_from_row(row)
                heard(Change("job", job.job_id, job))
            heard(self._read_change(reader, "queue", ""))

        stop = self._shared().listen(one, resync)
        self.trust_pause(True)

        def close() -> None:
            self.trust_pause(False)
            stop()

        return close

    def _read_change(self, reader: Any, kind: str, job_id: str) -> Change:
        """A change another process announced, read back on the listener's connection."""
        if kind == "queue":
            rows = reader.read(Statement(self._sql.pause))
            paused, by_budget, reason = (
                (bool(rows[0][0]), bool(rows[0][1]), rows[0][2]) if rows else (False, False, None)
            )
            figures = reader.read(Statement(self._sql.queue_figures, {"day": utcnow().date().isoformat()}))
            length, spent = (int(figures[0][0] or 0), round(float(figures[0][1] or 0), 2)) if figures else (0, 0.0)
            state = QueueState(paused=paused, reason=reason, length=length, by_budget=by_budget, spent_today_usd=spent)
            return Change("queue", "", queue=state)
        rows = reader.read(Statement(self._sql.job_by_id, {"job_id": job_id}))
        if not rows:
            return Change("deleted", job_id)
        return Change("job", job_id, job_from_row(rows[0]))

    # -- a fleet: servers, leases and the slot claim ------------------------------------------

    @property
    def heartbeat_seconds(self) -> float:
        return min(HEARTBEAT_SECONDS, self.lease_seconds / 3)

    def _shared(self) -> FleetConnection:
        if not self.fleet:
            raise NotImplementedError("a store on SQLite serves one server; a fleet needs PostgreSQL")
        return cast(FleetConnection, self.db)

    def _fleet_sql(self) -> Any:
        fleet = getattr(self.dialect, "fleet", None)
        if fleet is None:
            raise NotImplementedError("a store on SQLite serves one server; a fleet needs PostgreSQL")
        return fleet

    def join(self, url: str | None, lease_seconds: float = LEASE_SECONDS) -> str:
        """Record this server with a first heartbeat; returns its id. From now on the jobs
        it claims are its own, for as long as its heartbeat is younger than ``lease_seconds``."""
        self._fleet_sql()
        self.lease_seconds = lease_seconds
        self._shared().limit_waits(lease_seconds)
        self.url_served = url
        server_id = uuid.uuid4().hex[:12]
        self.db.write([self._beat(server_id, record=True)], "record this server")
        self.server_id = server_id
        return server_id

    def _beat(self, server_id: str, *, record: bool) -> Statement:
        fleet = self._fleet_sql()
        params = {
            "server_id": server_id,
            "url": self.url_served,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "lease": self.lease_seconds,
        }
        return Statement(fleet.join if record else fleet.heartbeat, params)

    def heartbeat(self) -> set[str]:
        """Renew this server's heartbeat: one row, which is the lease of every job it runs.
        Returns the processing jobs it owns. A row removed meanwhile (by hand) is recorded
        again."""
        rows = self.db.write([self._beat(self.server_id, record=False)], "renew this server's heartbeat")
        if not rows or rows[0][0] is None:
            log.warning("this server's row in PostgreSQL is gone; it is recorded again")
            self.db.write([self._beat(self.server_id, record=True)], "record this server")
            rows = self._read(self._fleet_sql().owned, server_id=self.server_id)
        owned = {row[1] for row in rows if row[1] is not None}
        self._owned &= owned
        return owned

    def leave(self) -> None:
        """A clean stop: this server's row goes, and with it the leases of its jobs, so
        another server of the fleet takes them over at once."""
        self.db.write([Statement(self._fleet_sql().leave, {"server_id": self.server_id})], "remove this server")

    def servers(self, within: float | None = None) -> list[dict[str, Any]]:
        """The live servers (a heartbeat within ``within`` seconds; by default the lease),
        oldest first: the first one does the fleet's once-only work."""
        rows = self._read(self._fleet_sql().servers, within=self.lease_seconds if within is None else within)
        names = ("server_id", "url", "host", "pid", "started_at", "heartbeat_at")
        return [dict(zip(names, row, strict=False)) for row in rows]

    def take_over(self) -> list[Job]:
        """The processing jobs whose server stopped beating (or left), made this server's;
        oldest first. Each resumes where it stands."""
        if not self.server_id:
            return []
        rows = self.db.write([Statement(self._fleet_sql().take_over, {"server_id": self.server_id})], "take over jobs")
        taken = []
        for job_id, previous in rows or ():
            note = f"taken over by server {self.server_id}" + (
                f" from server {previous}, whose lease ran out" if previous else ""
            )
            self._copy.pop(job_id, None)
            self._owned.add(job_id)
            try:
                taken.append(self.update(job_id, note=note))
            except (Conflict, JobNotFound):
                self._owned.discard(job_id)
                continue
        return sorted(taken, key=lambda job: (job.started_at or job.created_at, job.queue_seq))

    def owner_of(self, job_id: str) -> str | None:
        """The server that runs the job (None when none does)."""
        return self._owner(job_id)

    def _owner(self, job_id: str) -> str | None:
        return self._run(self._owning(job_id))

    def _owning(self, job_id: str) -> Steps[str | None]:
        if not self.fleet:
            return None
        rows = yield Read.of(self._fleet_sql().owner, job_id=job_id)
        return rows[0][0] if rows else None

    def claim_next(self, slots: int, chosen: Job | None = None, limit: int | None = None) -> Job | None:
        """Start the next queued job (``starting``, one more attempt) if fewer than ``slots``
        jobs are processing in the whole database; else, or with an empty queue, None.
        ``chosen``: start that job instead (the dispatcher's pick by its policy), if it is
        still queued and its user has fewer than ``limit`` jobs processing.

        The count and the claim are one transaction under a transaction-level advisory lock,
        so two processes can never both take the last slot; ``FOR UPDATE SKIP LOCKED`` passes
        over a job another transaction is changing (a cancel, a move) instead of waiting."""
        return self._run(self._claiming(slots, chosen, limit))

    async def aclaim_next(self, slots: int, chosen: Job | None = None, limit: int | None = None) -> Job | None:
        """:meth:`claim_next`, awaited."""
        return await self._arun(self._claiming(slots, chosen, limit))

    def _claiming(self, slots: int, chosen: Job | None, limit: int | None) -> Steps[Job | None]:
        fleet = self._fleet_sql()
        now = utcnow()
        detail = f"on server {self.server_id}" if self.server_id else None

        def claim() -> Steps[list[Row] | None]:
            pick = (
                Statement(fleet.next_claimable, {"slots": slots})
                if chosen is None
                else Statement(fleet.claim_chosen, {"slots": slots, "job_id": chosen.job_id, "limit": limit})
            )
            rows = yield Read((Statement(fleet.lock, {"lock": SLOTS_LOCK}), pick))
            if not rows:
                return None
            before = job_from_row(rows[0])
            fields = {
                "attempts": before.attempts + 1,
                "started_at": (before.started_at if before.operation else None) or now,
            }
            change, _ = self._plan_transition(before, Status.STARTING, now, detail, None, fields)
            written: list[Row] | None = yield Write(self.dialect.change(change), last=True)
            return written

        # A claim is a start: its commit does not wait for the disk (see REDOABLE).
        sent = self._stamp()
        written = yield Transact(claim(), "claim a processing slot", durable=Status.STARTING not in REDOABLE)
        if not written:
            return None
        job = job_from_row(written[0])
        self._remember(job, owned=True, sent=sent)
        self._clock(job)
        self._tell(Change("job", job.job_id, job), sent)
        event(
            log,
            logging.INFO,
            "job.transition",
            "queued -> starting: %s",
            detail,
            job_id=job.job_id,
            previous="queued",
            status="starting",
            at=isoformat(now),
            detail=detail,
            attempts=job.attempts,
            error_kind=None,
        )
        return job


def _ready(job: Job) -> int:
    """1 for a queued job that may start (it waits for no other job), else 0."""
    return int(job.status == Status.QUEUED and job.waiting_for is None)


def waited_job_ended(job_id: str, status: str) -> str:
    """The error of a job cancelled because the job it waited for will never complete."""
    verb = "was deleted" if status == "deleted" else status
    return f"job {job_id}, which this job waited for, {verb}; it will not complete, so this job was cancelled"


def _audit_row(entry: AuditEntry | None, now: datetime) -> dict[str, Any] | None:
    """An ``audit`` row (None for none)."""
    return None if entry is None else _audit_values(entry, now)


def _audit_values(entry: AuditEntry, now: datetime) -> dict[str, Any]:
    row = entry.to_dict()
    row.pop("id")
    row["ts"] = entry.ts or isoformat(now)
    return row


def _delivery(row: Row) -> Delivery:
    return Delivery(
        delivery_id=row[0],
        url=row[1],
        event=row[2],
        job_id=row[3],
        body=row[4],
        created_at=parse_time(row[5]) or utcnow(),
        state=row[6],
        tries=int(row[7]),
        attempts=tuple(Attempt.from_dict(a) for a in json.loads(row[8] or "[]")),
        next_attempt_at=parse_time(row[9]),
    )


def _key(value: Any) -> Any:
    """A queue key as read: whole keys as ints (PostgreSQL keeps doubles)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _observe(change: JobChange, name: str, seconds: float, labels: str = "") -> None:
    seconds = max(0.0, seconds)
    change.add(name, labels, 1.0, bucket_of(seconds))
    change.add(name, labels, seconds, SUM_BUCKET)


def _event(
    job: Job,
    at: str | None,
    status: Status,
    detail: str | None,
    *,
    kind: str = "transition",
    error_kind: str | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    """An ``events`` row. Notes and deletions carry no user or model (the aggregates'
    backfill counts transitions and submissions only)."""
    labelled = kind in ("transition", "submitted")
    return {
        "job_id": job.job_id,
        "at": at,
        "status": status.value,
        "detail": detail,
        "kind": kind,
        "user": job.request.user if labelled else None,
        "model": job.request.model if labelled else None,
        "error_kind": error_kind,
        "seconds": seconds,
    }


class Statements:
    """The statements every dialect writes alike, but for placeholders and quoting."""

    def __init__(self, d: Any) -> None:
        p, q, cols = d.param, d.quote, d.job_columns
        active = ", ".join(f"'{s}'" for s in _ACTIVE)
        final = ", ".join(f"'{s}'" for s in _FINAL)
        queued = "status = 'queued'"
        self.touch = "UPDATE counters SET value = value WHERE name = 'queue_seq'"
        self.job_by_id = f"SELECT {cols} FROM jobs WHERE job_id = {p('job_id')}"
        self.job_locked = d.locked(self.job_by_id)
        self.tombstone = f"SELECT job_id, at, reason FROM tombstones WHERE job_id = {p('job_id')}"
        self.tombstones_from = (
            f"SELECT job_id, at, reason FROM tombstones WHERE job_id >= {p('low')} AND job_id < {p('high')}"
            " ORDER BY job_id LIMIT 2"
        )
        self.ids_from = (
            f"SELECT job_id FROM jobs WHERE job_id >= {p('low')} AND job_id < {p('high')} ORDER BY job_id LIMIT 2"
        )
        self.active = f"SELECT {cols} FROM jobs WHERE status IN ({active}) ORDER BY started_at, queue_seq"
        self.queued_page = (
            f"SELECT {cols} FROM jobs WHERE {queued} ORDER BY queue_seq LIMIT {p('limit')} OFFSET {p('offset')}"
        )
        # The dispatcher's read: one step on the ``jobs_ready`` index, which holds no waiting job.
        self.next_ready = d.next_ready()
        self.waiting_on = f"SELECT {cols} FROM jobs WHERE waiting_for = {p('job_id')}"
        self.stranded = (
            f"SELECT w.job_id, w.waiting_for, d.status FROM jobs w LEFT JOIN jobs d ON d.job_id = w.waiting_for"
            f" WHERE w.waiting_for IS NOT NULL AND (d.job_id IS NULL OR d.status IN ({final}))"
        )
        self.queue_ends = f"SELECT MIN(queue_seq), MAX(queue_seq) FROM jobs WHERE {queued}"
        self.queued_from = f"SELECT COUNT(*) FROM jobs WHERE {queued} AND queue_seq >= {p('seq')}"
        self.queued_before = f"SELECT COUNT(*) FROM jobs WHERE {queued} AND queue_seq < {p('seq')}"
        self.history_page = d.history_page(final)
        self.search = d.search()
        self.downloaded_completed = d.downloaded_completed()
        self.group = f"SELECT {cols} FROM jobs WHERE group_name = {p('name')} ORDER BY queue_seq LIMIT {p('limit')}"
        self.all_ids = "SELECT job_id FROM jobs"
        self.jobs_now = f"SELECT labels, value FROM metric_values WHERE name = '{JOBS_NOW}' AND bucket = 0"
        self.queued_now = (
            f"SELECT value FROM metric_values WHERE name = '{JOBS_NOW}' AND labels = 'queued' AND bucket = 0"
        )
        self.timeline = f"SELECT job_id, at, status, detail FROM events WHERE job_id = {p('job_id')} ORDER BY id"
        self.estimate = f"SELECT seconds FROM estimates WHERE model = {p('model')}"
        self.swap_estimate = (
            f"UPDATE estimates SET seconds = {p('seconds')}, samples = {p('samples')}"
            f" WHERE model = {p('model')} AND samples = {p('counted')} RETURNING seconds"
        )
        self.estimate_row = f"SELECT seconds, samples FROM estimates WHERE model = {p('model')}"
        self.metric_values = "SELECT name, labels, bucket, value FROM metric_values"
        self.metric_hours = (
            f"SELECT hour, name, labels, value FROM metric_hours WHERE hour >= {p('first')} AND hour <= {p('last')}"
        )
        self.spend_on = f"SELECT COALESCE(SUM(usd), 0) FROM spend WHERE day = {p('day')}"
        self.queue_figures = f"SELECT ({self.queued_now}), ({self.spend_on})"
        self.advance = f"UPDATE counters SET value = value + {p('count')} WHERE name = {p('name')} RETURNING value"
        self.forget_tombstones = f"DELETE FROM tombstones WHERE job_id = {p('job_id')} OR at < {p('before')}"
        self.add_tombstone = (
            f"INSERT INTO tombstones (job_id, at, reason) VALUES ({p('job_id')}, {p('at')}, {p('reason')})"
        )
        self.trim_tombstones = (
            "DELETE FROM tombstones WHERE job_id IN (SELECT job_id FROM tombstones ORDER BY at DESC"
            f" LIMIT {NO_LIMIT} OFFSET {p('keep')})"
        )
        self.delete_job = f"DELETE FROM jobs WHERE job_id = {p('job_id')} RETURNING job_id"
        self.remember_cleanup = d.insert_or_replace("pending_cleanup", ("job_id", "job", "since"))
        event_columns = ("job_id", "at", "status", "detail", "kind", "user", "model", "error_kind", "seconds")
        self.insert_event = (
            f"INSERT INTO events ({', '.join(q(c) for c in event_columns)})"
            f" VALUES ({', '.join(p(c) for c in event_columns)})"
        )
        self.pause = "SELECT paused, by_budget, reason, budget_override_day FROM queue_control WHERE id = 1"
        self.set_pause = (
            f"UPDATE queue_control SET paused = {p('paused')}, reason = {p('reason')},"
            f" by_budget = {p('by_budget')}, since = {p('since')} WHERE id = 1"
        )
        self.set_override = f"UPDATE queue_control SET budget_override_day = {p('day')} WHERE id = 1"
        self.set_key = f"UPDATE jobs SET queue_seq = {p('seq')} WHERE job_id = {p('job_id')} AND {queued}"
        self.first_other = f"SELECT MIN(queue_seq) FROM jobs WHERE {queued} AND job_id != {p('job_id')}"
        self.last_other = f"SELECT MAX(queue_seq) FROM jobs WHERE {queued} AND job_id != {p('job_id')}"
        self.two_before = (
            f"SELECT queue_seq FROM jobs WHERE {queued} AND queue_seq < {p('seq')} ORDER BY queue_seq DESC LIMIT 2"
        )
        self.two_after = (
            f"SELECT queue_seq FROM jobs WHERE {queued} AND queue_seq > {p('seq')} ORDER BY queue_seq LIMIT 2"
        )
        self.pair_at = (
            f"SELECT queue_seq FROM jobs WHERE {queued} AND job_id != {p('job_id')}"
            f" ORDER BY queue_seq LIMIT 2 OFFSET {p('offset')}"
        )
        self.window = (
            f"SELECT job_id, queue_seq FROM jobs WHERE {queued} AND queue_seq >= {p('after')}"
            f" AND job_id != {p('job_id')} ORDER BY queue_seq LIMIT {p('count')}"
        )
        self.spend_by = f"SELECT COALESCE(SUM(usd), 0) FROM spend WHERE {q('user')} = {p('user')} AND day = {p('day')}"
        self.add_load = (
            f"INSERT INTO user_load ({q('user')}, running, queued, last_start) VALUES"
            f" ({p('lu')}, {p('lr')}, {p('lq')}, {p('ls')}) ON CONFLICT ({q('user')}) DO UPDATE SET"
            " running = user_load.running + excluded.running, queued = user_load.queued + excluded.queued,"
            " last_start = COALESCE(excluded.last_start, user_load.last_start)"
        )
        audit_columns = ("ts", "user", "role", "action", "job_id", "detail", "remote_addr")
        self.insert_audit = (
            f"INSERT INTO audit ({', '.join(q(c) for c in audit_columns)})"
            f" VALUES ({', '.join(p(c) for c in audit_columns)})"
        )
        self.audit_columns = f"id, {', '.join(q(c) for c in audit_columns)}"
        self.prune_audit = f"DELETE FROM audit WHERE ts < {p('before')}"
        self.loads = f"SELECT {q('user')}, running, queued FROM user_load WHERE running > 0 OR queued > 0"
        # The fair queue: the user with the fewest jobs processing (the longest since a start
        # on a tie), then that user's oldest queued job; two seeks, whatever the queue's length.
        self.fair_user = (
            f"SELECT {q('user')} FROM user_load WHERE queued > 0{{skip}}"
            f" ORDER BY running, COALESCE(last_start, ''), {q('user')} LIMIT 1"
        )
        # The queue's order, passing over the users who wait: each other user's first job.
        self.first_user = (
            f"SELECT {q('user')}, (SELECT MIN(queue_seq) FROM jobs WHERE {queued} AND waiting_for IS NULL"
            f" AND jobs.{q('user')}"
            f" = user_load.{q('user')}) AS first FROM user_load WHERE queued > 0{{skip}} ORDER BY first LIMIT 1"
        )
        self.users_queue = (
            f"SELECT job_id, queue_seq FROM jobs WHERE {queued} AND {q('user')} = {p('user')} ORDER BY queue_seq"
        )
        self.users_first = (
            f"SELECT {cols} FROM jobs WHERE {queued} AND waiting_for IS NULL AND {q('user')} = {p('user')}"
            " ORDER BY queue_seq LIMIT 1"
        )
        self.claim_key = (
            "INSERT INTO idempotency_keys (scope, idempotency_key, fingerprint, job_id, created_at)"
            f" VALUES ({p('scope')}, {p('idempotency_key')}, {p('fingerprint')}, {p('job_id')}, {p('created_at')})"
            " ON CONFLICT (scope, idempotency_key) DO UPDATE SET fingerprint = excluded.fingerprint,"
            " job_id = excluded.job_id, created_at = excluded.created_at"
            f" WHERE idempotency_keys.created_at < {p('expired')} RETURNING job_id"
        )
        self.keyed_job = (
            "SELECT job_id, fingerprint FROM idempotency_keys"
            f" WHERE scope = {p('scope')} AND idempotency_key = {p('idempotency_key')} AND created_at >= {p('since')}"
        )
        self.forget_keys = f"DELETE FROM idempotency_keys WHERE created_at < {p('before')}"
        outbox = "delivery_id, url, event, job_id, body, created_at, state, tries, attempts, next_attempt_at"
        self.claim_deliveries = (
            f"UPDATE webhook_deliveries SET claimed_by = {p('claimer')}, claimed_until = {p('until')}"
            " WHERE delivery_id IN ("
            + d.claimable(
                "SELECT delivery_id FROM webhook_deliveries WHERE state = 'pending'"
                f" AND next_attempt_at <= {p('now')} AND (claimed_until IS NULL OR claimed_until < {p('now')})"
                f" ORDER BY next_attempt_at LIMIT {p('limit')}"
            )
            + f") RETURNING {outbox}"
        )
        self.record_attempt = (
            f"UPDATE webhook_deliveries SET state = {p('state')}, tries = {p('tries')}, attempts = {p('attempts')},"
            f" next_attempt_at = {p('next_at')}, claimed_by = NULL, claimed_until = NULL"
            f" WHERE delivery_id = {p('delivery_id')} AND claimed_by = {p('claimer')}"
        )
        self.next_delivery = (
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE state = 'pending' AND claimed_by IS NULL"
        )
        self.release_deliveries = (
            "UPDATE webhook_deliveries SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by IS NOT NULL"
        )
        self.forget_deliveries = (
            f"DELETE FROM webhook_deliveries WHERE state != 'pending' AND created_at < {p('before')}"
        )
        self.deliveries = f"SELECT {outbox} FROM webhook_deliveries ORDER BY created_at DESC LIMIT {p('limit')}"
        self.job_deliveries = (
            f"SELECT {outbox} FROM webhook_deliveries WHERE job_id = {p('job_id')}"
            f" ORDER BY created_at DESC LIMIT {p('limit')}"
        )
        self.cleanups = "SELECT job FROM pending_cleanup ORDER BY since"
        self.cleanup_done = f"DELETE FROM pending_cleanup WHERE job_id = {p('job_id')}"
        self._dialect = d

    def insert_jobs(self, rows: list[dict[str, Any]]) -> Statement:
        """One statement inserting whole ``jobs`` rows."""
        d = self._dialect
        columns = list(rows[0])
        values = []
        params: dict[str, Any] = {}
        for n, row in enumerate(rows):
            values.append("(" + ", ".join(d.param(f"{c}_{n}") for c in columns) + ")")
            params.update({f"{c}_{n}": row[c] for c in columns})
        return Statement(
            f"INSERT INTO jobs ({', '.join(d.quote(c) for c in columns)}) VALUES {', '.join(values)}", params
        )
