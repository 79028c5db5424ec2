"""Idempotent submits: the key a client sends, and what makes two requests "the same".

A client that retries ``POST /api/generate`` after a lost answer sends the same
``Idempotency-Key``; the server makes one job for it. The key is kept per user for
:data:`KEY_LIFETIME`. A second request under a kept key is a replay when its fingerprint
(:func:`fingerprint`) equals the first one's, and a conflict otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from veotui.core.errors import Conflict, InvalidRequest
from veotui.core.request import JobRequest

KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 200
#: How long a key is kept: a replay within it answers the first job.
KEY_LIFETIME = timedelta(hours=24)


def check_key(raw: str) -> str:
    """The key as given, if it is 1 to 200 printable ASCII characters (a header carries
    nothing else safely); else an error naming what is wrong."""
    if not raw:
        raise InvalidRequest(f"{KEY_HEADER} is empty; give 1 to {KEY_MAX_LENGTH} printable characters")
    if len(raw) > KEY_MAX_LENGTH:
        raise InvalidRequest(f"{KEY_HEADER} is {len(raw)} characters long; at most {KEY_MAX_LENGTH} are kept")
    for position, char in enumerate(raw, start=1):
        if not " " <= char <= "~":
            raise InvalidRequest(
                f"{KEY_HEADER} holds U+{ord(char):04X} at position {position}; only printable ASCII characters are taken"
            )
    return raw


def fingerprint(request: JobRequest, images: Sequence[bytes | None]) -> str:
    """What makes two submits the same request: the SHA-256 of the validated request (every
    field with its default filled in, so leaving a field out equals sending its default; the
    user is not part of it, keys are per user already) and of each input image's bytes as
    sent, in their slots (first frame, last frame, references in order). Image file names,
    the body's encoding (JSON or multipart) and the order of its fields do not count."""
    fields = request.to_dict()
    fields.pop("user", None)
    digest = hashlib.sha256()
    digest.update(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode())
    for slot, data in enumerate(images):
        marker = "-" if data is None else hashlib.sha256(data).hexdigest()
        digest.update(f"|{slot}:{marker}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class KeyClaim:
    """A submit's hold on its key, written with its job in one transaction: ``scope`` is
    the user the key belongs to: the caller the
    request acts for (``admin`` for the server's own token and a server without tokens)."""

    scope: str
    key: str
    fingerprint: str


class KeyTaken(Exception):
    """The store found the key held by another submit, which committed first: this one's
    job was not written."""


class KeyReused(Conflict):
    """A kept key came with a different request (409)."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(
            f"{KEY_HEADER} {key!r} was used within the last 24 hours for a different request (job {job_id}); "
            "send a new key for a new job"
        )
        self.key = key
        self.job_id = job_id


class KeyJobGone(Conflict):
    """A kept key's job was deleted since (409): a replay cannot answer it, and a new job
    under the same key would pay twice for what the key promised once."""

    def __init__(self, key: str, job_id: str) -> None:
        super().__init__(
            f"{KEY_HEADER} {key!r} made job {job_id}, which has since been deleted; send a new key to submit again"
        )
        self.key = key
        self.job_id = job_id
