"""Once up, the server takes what it built to start out of the collector's full passes."""

from __future__ import annotations

import gc

from veotui.server.memory import FULL_COLLECTION_THRESHOLD, freeze_heap


def test_freezing_the_heap_keeps_the_young_collections_and_makes_full_ones_rarer():
    before = gc.get_threshold()
    try:
        freeze_heap()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (*before[:2], FULL_COLLECTION_THRESHOLD)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
