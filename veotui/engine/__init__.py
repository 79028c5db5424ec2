"""The engine: the scheduler (slots, FIFO dispatch, each job's stages, retries, recovery) and
the event bus that fans its changes out to subscribers. It never imports Textual."""
