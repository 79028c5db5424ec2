"""Moving queued jobs at queue lengths 1,000 and 100,000, run on demand:

    .venv/bin/python tests/benchmarks/bench_move.py

For each length it prints the median time of a move (without counting its new position) to the top, the bottom, one place up
and one place down (index seeks: these should barely grow with the queue), of a move to
position 500 (an index walk of 500 entries), and the rows rewritten per move when 1,000
moves in a row land in the same gap (respacing; amortised). Last: `ratio: X`, the median
top/bottom/up/down move at 100,000 over the same at 1,000 (target: below 3).
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.by_hand import sqlite_connection
from veotui.core.ids import new_job_id
from veotui.core.job import Job, Status
from veotui.core.request import JobRequest
from veotui.store.sqlite import SqliteStore


def filled(n: int, folder: Path) -> SqliteStore:
    store = SqliteStore(folder / f"bench-{n}.db")
    request = JobRequest(prompt="bench")
    store.insert_many(Job(job_id=new_job_id(), status=Status.QUEUED, request=request) for _ in range(n))
    return store


def median_ms(store: SqliteStore, ids: list[str], **where) -> float:
    """The move itself: its answer's queue_position (a count over the index, linear in
    the position, as every queue position is) is timed apart and taken off."""
    rng = random.Random(1)
    times = []
    for _ in range(200):
        job_id = rng.choice(ids)
        started = time.perf_counter()
        moved = store.move(job_id, **where)
        middle = time.perf_counter()
        store.queue_position(moved)
        ended = time.perf_counter()
        times.append((middle - started) - (ended - middle))
    return statistics.median(times) * 1000


def rows_per_move_into_one_gap(store: SqliteStore, moves: int = 1000) -> float:
    ids = [j.job_id for j in store.queued(limit=moves + 2)]
    written = 0
    db = sqlite_connection(store)
    connection = db.raw
    # Count UPDATE statements by wrapping the connection's execute.
    counted = {"n": 0}

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(connection, name)

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql.startswith("UPDATE jobs SET queue_seq"):
                counted["n"] += 1
            return connection.execute(sql, *args)

    db.raw = Counting()  # type: ignore[assignment]  # it stands in for the connection
    try:
        for n in range(moves):
            store.move(ids[-1 - n], position=2)
        written = counted["n"]
    finally:
        db.raw = connection
    return written / moves


def main() -> None:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1_000, 100_000):
            store = filled(n, Path(tmp))
            ids = [j.job_id for j in store.queued()]
            figures = {to: median_ms(store, ids, to=to) for to in ("top", "bottom", "up", "down")}
            figures["position 500"] = median_ms(store, ids, position=500)
            rows = rows_per_move_into_one_gap(store)
            results[n] = statistics.median([figures[t] for t in ("top", "bottom", "up", "down")])
            described = ", ".join(f"{name} {ms:.3f} ms" for name, ms in figures.items())
            print(f"{n:>7} queued: {described}; rows written per move into one gap: {rows:.2f}")
            store.close()
    print(f"ratio: {results[100_000] / results[1_000]:.2f}")


if __name__ == "__main__":
    main()
