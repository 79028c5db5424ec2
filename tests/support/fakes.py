"""A generator the test controls step by step: each job's operation finishes or fails only
when the test says so, so scheduler tests are deterministic."""

from __future__ import annotations

from pathlib import Path

import anyio

from veotui.core.errors import ErrorKind
from veotui.core.job import Job
from veotui.datadir.files import video_name
from veotui.generators.base import GenerationResult, Generator, JobInputs, PermanentFault, TransientFault


class ControlledGenerator(Generator):
    name = "controlled"
    operations_can_hang = False  # operations end when a test settles them
    default_poll_interval = 0.001
    typical_seconds = 10.0

    def __init__(self) -> None:
        self.submitted: list[str] = []  # job ids, in submit order
        self.operations: dict[str, str] = {}  # operation -> job id
        self.outcomes: dict[str, GenerationResult | Exception] = {}  # operation -> its outcome
        self.waiting: dict[str, anyio.Event] = {}  # operation -> set when an outcome is given
        self.cleaned: dict[str, list[bool]] = {}  # job id -> every cleanup's `everything`
        self.submit_faults: list[Exception] = []  # raised by the next submits, in order

    async def submit(self, job: Job, inputs: JobInputs) -> str:
        if self.submit_faults:
            raise self.submit_faults.pop(0)
        operation = f"ops/{len(self.operations) + 1}"
        self.submitted.append(job.job_id)
        self.operations[operation] = job.job_id
        self.waiting[operation] = anyio.Event()
        return operation

    async def poll(self, job: Job, operation: str) -> GenerationResult | None:
        await self.waiting[operation].wait()
        outcome = self.outcomes[operation]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def fetch(self, job: Job, result: GenerationResult, dest: Path) -> list[Path]:
        paths = []
        for index in result.videos:
            path = dest / video_name(index)
            path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
            paths.append(path)
        return paths

    async def cleanup(self, job: Job, *, everything: bool) -> None:
        self.cleaned.setdefault(job.job_id, []).append(everything)

    # -- what the test does -----------------------------------------------------------------

    def operation_of(self, job_id: str) -> str:
        return next(op for op, owner in reversed(self.operations.items()) if owner == job_id)

    def finish(self, job_id: str, videos: int = 1) -> None:
        self._settle(job_id, GenerationResult(videos=list(range(1, videos + 1))))

    def fail(self, job_id: str, message: str = "3 INVALID_ARGUMENT: bad prompt") -> None:
        self._settle(job_id, PermanentFault(message, kind=ErrorKind.OPERATION_ERROR))

    def _settle(self, job_id: str, outcome: GenerationResult | Exception) -> None:
        operation = self.operation_of(job_id)
        self.outcomes[operation] = outcome
        self.waiting[operation].set()


__all__ = ["ControlledGenerator", "TransientFault"]
