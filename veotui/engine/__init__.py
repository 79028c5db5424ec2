"""The engine: the scheduler (slots, FIFO dispatch, the queue's actions) and its parts: the
job runner, recovery and fleet leadership, upkeep, the storage watch, and the event bus that
fans changes out to subscribers. It never imports Textual nor a database driver."""
