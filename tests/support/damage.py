"""Damage done to a real database file, for the tests of what veotui does with it."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path


def damage_an_index_page(db: Path) -> None:
    """Scramble the page of an index that opening never reads: only a full check finds it."""
    conn = sqlite3.connect(db)
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs_finished'").fetchone()
    (page,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    with open(db, "r+b") as file:
        file.seek((root - 1) * page)
        file.write(random.Random(3).randbytes(page))
