"""The job logic's reads and writes as steps, so that it is written once and run two ways.

A method of the job logic that touches the database is a generator: it yields each
:class:`Read`, :class:`Write` or :class:`Transact` it needs and is sent the answer. :func:`run`
answers from a :class:`~veotui.store.connection.Connection`, the caller waiting; :func:`arun`
answers from an :class:`~veotui.store.connection.AsyncConnection`, so the event loop goes on
with other work while the database answers. An error of the database is thrown into the
generator where it yielded, as a call would raise it there.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from veotui.store.connection import AsyncConnection, AsyncTransaction, Connection, Statement, Transaction

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Read:
    """The rows of a statement (inside a transaction: of the last of ``statements``)."""

    statements: tuple[Statement, ...]

    @classmethod
    def of(cls, sql: str, **params: Any) -> Read:
        return cls((Statement(sql, params),))


@dataclass(frozen=True, slots=True)
class Write:
    """As :meth:`Connection.write` (inside a transaction: :meth:`Transaction.write`, where
    ``last`` says nothing follows)."""

    statements: Sequence[Statement]
    doing: str = ""
    durable: bool = True
    last: bool = False


@dataclass(frozen=True, slots=True)
class Transact:
    """Run ``steps`` in one transaction: their reads and writes go to it, and it commits
    when they return (or rolls back when they raise). Answers what ``steps`` return."""

    steps: Steps[Any]
    doing: str
    durable: bool = True


Step = Read | Write | Transact
#: Job logic that yields the steps it needs and returns its result.
Steps = Generator[Step, Any, T]


def run(steps: Steps[T], db: Connection, tx: Transaction | None = None) -> T:
    """Run ``steps`` on ``db``, waiting for each answer."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(answer) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        answer, error = None, None
        try:
            answer = _answer(step, db, tx)
        except Exception as exc:  # noqa: BLE001 - handed to the job logic where it asked
            error = exc


def _answer(step: Step, db: Connection, tx: Transaction | None) -> Any:
    if isinstance(step, Read):
        if tx is not None:
            return tx.read(*step.statements)
        (statement,) = step.statements
        return db.read(statement)
    if isinstance(step, Write):
        if tx is not None:
            return tx.write(step.statements, step.last)
        return db.write(step.statements, step.doing, step.durable)
    with db.transaction(step.doing, step.durable) as inner:
        return run(step.steps, db, inner)


async def arun(steps: Steps[T], db: AsyncConnection, tx: AsyncTransaction | None = None) -> T:
    """Run ``steps`` on ``db``; the event loop goes on while the database answers."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.send(answer) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        answer, error = None, None
        try:
            answer = await _aanswer(step, db, tx)
        except Exception as exc:  # noqa: BLE001 - handed to the job logic where it asked
            error = exc


async def _aanswer(step: Step, db: AsyncConnection, tx: AsyncTransaction | None) -> Any:
    if isinstance(step, Read):
        if tx is not None:
            return await tx.read(*step.statements)
        (statement,) = step.statements
        return await db.read(statement)
    if isinstance(step, Write):
        if tx is not None:
            return await tx.write(step.statements, step.last)
        return await db.write(step.statements, step.doing, step.durable)
    async with db.transaction(step.doing, step.durable) as inner:
        return await arun(step.steps, db, inner)
