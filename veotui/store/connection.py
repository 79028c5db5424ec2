"""What the job logic needs of a database: a small interface each driver implements.

The job logic (:mod:`veotui.store.jobs`) decides *what* to read and write; a driver
(:mod:`veotui.store.sqlite`, :mod:`veotui.store.postgres`) runs statements and supplies the
SQL dialect they are written in. Nothing else crosses: a driver holds no job logic, and the
job logic imports no driver.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

#: A row read by column name (``row["status"]``) or by position (``row[0]``).
Row = Any


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement in the connection's dialect, with named parameters.

    ``guard`` marks a change's compare-and-set: when it returns no row, the change does not
    hold, and nothing of it is written."""

    sql: str
    params: Mapping[str, Any] = field(default_factory=dict)
    guard: bool = False


@dataclass
class JobChange:
    """One change of one job, as the job logic decides it and a dialect writes it, in one
    transaction (on PostgreSQL one statement, so one round trip).

    The row is updated with ``sets`` (or inserted whole with ``insert``); ``counters`` name
    columns that take the next number of a counter of the same name; ``front_of_queue`` puts
    the job before every queued one. An update holds only where the job still has
    ``expect_status`` (and ``expect_owner``): the compare-and-set. Everything else (events,
    aggregates, spend, the notification) is written only when it holds."""

    job_id: str
    sets: dict[str, Any] = field(default_factory=dict)
    insert: dict[str, Any] | None = None
    counters: tuple[str, ...] = ()
    front_of_queue: bool = False
    #: Fleet: the server that now runs the job (a claim), or True to clear the owner.
    owner: str | bool | None = None
    expect_status: str | None = None
    expect_owner: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Aggregate deltas by (name, labels, bucket) and by (hour, name, labels).
    metrics: dict[tuple[str, str, int], float] = field(default_factory=dict)
    hours: dict[tuple[str, str, str], float] = field(default_factory=dict)
    #: The hour whose longest queue is raised to the queue's length after this change.
    queue_max_hour: str | None = None
    #: How this change moves the number of queued jobs (the ``jobs_now`` aggregate).
    queued_delta: int = 0
    #: An operation's spend, recorded once: (operation, UTC day, time, usd).
    spend: tuple[str, str, str, float | None] | None = None
    #: The columns the change returns: every column (None) or these.
    returning: tuple[str, ...] | None = None
    #: What other processes on the database are told (PostgreSQL's NOTIFY payloads).
    notify: list[str] = field(default_factory=list)
    #: How the change moves its user's counts in ``user_load``: (user, processing delta,
    #: queued delta, time of a start or None).
    load: tuple[str, int, int, str | None] | None = None
    #: The audit log's entry for the request that made this change (``audit`` columns).
    audit: dict[str, Any] | None = None
    #: The webhook deliveries the change makes (``webhook_deliveries`` rows).
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    #: A generation time folded into its model's moving estimate: (model, seconds, the
    #: estimate to start from where the model has none yet).
    sample: tuple[str, float, float] | None = None
    #: A job that completed with this change: the jobs waiting for it are released (their
    #: ``waiting_for`` cleared) in the same transaction.
    release: str | None = None
    #: Whether the commit waits until the disk holds it. A change that a power cut may undo
    #: without harm is committed without waiting: the job steps back to its last durable
    #: state and does the step again, buying nothing twice. The next durable commit (the
    #: database's log is written in order) makes it durable with everything before it.
    durable: bool = True

    def then(self, later: JobChange) -> JobChange:
        """This change followed by ``later`` of the same job, as one: ``later``'s columns win,
        events and aggregates add up, and the compare-and-set stays this change's."""
        self.sets.update(later.sets)
        self.counters += tuple(name for name in later.counters if name not in self.counters)
        self.front_of_queue = self.front_of_queue or later.front_of_queue
        if later.owner is not None:
            self.owner = later.owner
        self.events.extend(later.events)
        for key, amount in later.metrics.items():
            self.add(*key[:2], amount, key[2])
        for (hour, name, labels), amount in later.hours.items():
            self.add_hour(hour, name, labels, amount)
        self.queue_max_hour = later.queue_max_hour or self.queue_max_hour
        self.queued_delta += later.queued_delta
        self.spend = later.spend or self.spend
        self.notify += [payload for payload in later.notify if payload not in self.notify]
        self.sample = later.sample or self.sample
        self.release = later.release or self.release
        self.deliveries.extend(later.deliveries)
        if later.load is not None:
            if self.load is None:
                self.load = later.load
            else:
                user, running, queued, started = self.load
                _, more_running, more_queued, later_start = later.load
                self.load = (user, running + more_running, queued + more_queued, later_start or started)
        self.audit = later.audit or self.audit
        self.durable = self.durable or later.durable
        return self

    def add(self, name: str, labels: str = "", amount: float = 1.0, bucket: int = 0) -> None:
        key = (name, labels, bucket)
        self.metrics[key] = self.metrics.get(key, 0.0) + amount

    def add_hour(self, hour: str, name: str, labels: str = "", amount: float = 1.0) -> None:
        key = (hour, name, labels)
        self.hours[key] = self.hours.get(key, 0.0) + amount


class Dialect(Protocol):
    """The SQL a driver speaks: placeholders, quoting, and the statements whose text differs
    between databases."""

    #: ``jobs``' columns for a SELECT list, quoted as this dialect needs.
    job_columns: str

    def param(self, name: str) -> str:
        """The placeholder of the named parameter ``name``."""

    def quote(self, column: str) -> str:
        """A column name as the dialect needs it written (``user`` is reserved in PostgreSQL)."""

    def change(self, change: JobChange) -> list[Statement]:
        """One change of one job as this dialect writes it (see :class:`JobChange`)."""

    def add_metrics(self, rows: Sequence[tuple[str, str, int, float]]) -> Statement:
        """Add to aggregates in ``metric_values``, each row (name, labels, bucket, amount)."""

    def upsert_estimate(self) -> str:
        """Set a model's estimate (``model``, ``seconds``, ``samples``), inserted or replaced."""

    def search(self) -> str:
        """Jobs whose prompt, id, status or user contains ``pattern`` (a LIKE pattern with
        ``\\`` as escape), case-insensitive, newest first, at most ``limit``."""

    def history_page(self, statuses: str) -> str:
        """Ended jobs (``statuses``: a SQL list) by finish order, newest first, ``limit`` from ``offset``."""

    def next_ready(self) -> str:
        """The first queued job that waits for no other job, read by the ``jobs_ready`` index
        (which holds no waiting job)."""

    def downloaded_completed(self) -> str:
        """Completed jobs whose videos were downloaded."""

    def locked(self, select: str) -> str:
        """``select`` reading rows that stay locked until the transaction ends."""

    def claimable(self, select: str) -> str:
        """``select`` reading rows that stay locked until the transaction ends, passing over
        rows another transaction holds (a work queue's claim)."""


class Transaction(Protocol):
    """Statements inside one open transaction: a read whose answer decides the write."""

    def read(self, *statements: Statement) -> list[Row]:
        """Run ``statements`` (sent at once where the driver can); the rows of the last."""

    def write(self, statements: Sequence[Statement], last: bool = False) -> list[Row] | None:
        """As :meth:`Connection.write`, inside the transaction; ``last``: nothing follows,
        so the driver may send the commit with it."""


class Connection(Protocol):
    """A database as the job logic uses it."""

    @property
    def dialect(self) -> Dialect:
        """The SQL dialect of this connection's statements."""

    @property
    def shared(self) -> bool:
        """Other processes write the same database (a fleet): what this process read earlier
        holds only as far as a compare-and-set confirms it, and counts live in the database."""

    def read(self, statement: Statement) -> list[Row]:
        """The rows of one statement, outside any transaction."""

    def write(self, statements: Sequence[Statement], doing: str, durable: bool = True) -> list[Row] | None:
        """Run ``statements`` in one transaction, sent at once where the driver can. Returns
        the rows of the guarded statement (or of the last one), or None when the guard
        returned no row: then nothing was written. ``doing`` names the change in the error
        that a refused write raises (:class:`~veotui.core.errors.StorageUnavailable`).
        ``durable`` False: the commit does not wait for the disk (see :attr:`JobChange.durable`)."""

    def transaction(self, doing: str, durable: bool = True) -> AbstractContextManager[Transaction]: ...

    def notify(self, payload: str) -> Statement | None:
        """The statement that tells the other processes on the database of a change (None
        where no other process shares it)."""

    @property
    def origin(self) -> str:
        """What names this process in its notifications ('' where nobody else listens)."""

    def schema_version(self) -> int: ...

    def integrity_check(self) -> str: ...

    def deferred_check(self) -> str | None:
        """The check a large database skipped at open (SQLite), run on a connection of its
        own: what is damaged, in a sentence, or None."""

    def asynchronous(self) -> AsyncConnection | None:
        """A connection on which the event loop goes on while the database answers (see
        :mod:`veotui.store.steps`); None where waiting costs the loop nothing worth the
        machinery (SQLite answers from a local file)."""

    def close(self) -> None: ...


class AsyncTransaction(Protocol):
    """:class:`Transaction`, awaited."""

    async def read(self, *statements: Statement) -> list[Row]: ...

    async def write(self, statements: Sequence[Statement], last: bool = False) -> list[Row] | None: ...


class AsyncConnection(Protocol):
    """The writes and reads of :class:`Connection` that the engine's work makes as a job
    moves, awaited: each answer is waited for without holding the event loop."""

    async def read(self, statement: Statement) -> list[Row]: ...

    async def write(self, statements: Sequence[Statement], doing: str, durable: bool = True) -> list[Row] | None: ...

    def transaction(self, doing: str, durable: bool = True) -> AbstractAsyncContextManager[AsyncTransaction]: ...

    async def close(self) -> None: ...


class FleetConnection(Connection, Protocol):
    """A database shared by a fleet of servers (PostgreSQL)."""

    def limit_waits(self, lease_seconds: float) -> None:
        """No session of this server holds locks, or waits for one, longer than its lease allows."""

    def listen(self, heard: Callable[[Any, str, str], None], resync: Callable[[Any], None]) -> Callable[[], None]:
        """Hear the changes other processes announce (``heard(reader, kind, job_id)``, in a
        thread of its own; ``reader`` reads on the listening connection); ``resync(reader)``
        after the listener was away. Returns a function that stops it."""
