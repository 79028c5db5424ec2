"""The domain, pure: the job and its statuses, requests and their validation, what each model
accepts, prices, progress, the errors that cross the backend interface, the metrics'
arithmetic, and how job fields read on a terminal. No I/O, no drivers; imports nothing of
veotui outside this package."""
