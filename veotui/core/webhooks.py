"""Webhooks: which changes a hook wants, what a delivery carries, how it is signed, and when
a failed one is tried again.

A delivery is a ``POST`` of ``{"event", "delivery_id", "ts", "job"}`` signed with the hook's
secret: ``X-Veotui-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``, where the
timestamp is the ``X-Veotui-Timestamp`` header (Unix seconds of the attempt). A receiver
recomputes it over the raw body and refuses an old timestamp, so a captured delivery cannot
be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from veotui.core.job import FINAL_STATUSES, Status, isoformat, parse_time, utcnow

EVENT_HEADER = "X-Veotui-Event"
DELIVERY_HEADER = "X-Veotui-Delivery"
TIMESTAMP_HEADER = "X-Veotui-Timestamp"
SIGNATURE_HEADER = "X-Veotui-Signature"
#: The statuses a hook may name in ``events``; ``*`` means every status change.
END_EVENTS = tuple(status.value for status in FINAL_STATUSES)
EVERY_CHANGE = "*"
PING = "ping"

#: A receiver that has not answered in this long has failed the attempt.
ATTEMPT_TIMEOUT_SECONDS = 10.0
FIRST_RETRY_SECONDS = 1.0
LONGEST_RETRY_SECONDS = 600.0
#: A delivery is tried for this long after its event, then marked failed.
GIVE_UP_AFTER = timedelta(hours=24)
#: What of a receiver's answer is kept with each attempt.
ANSWER_CHARS = 500

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True)
class Hook:
    """One receiver: where deliveries go, which events it wants (None: every status change),
    and the secret that signs them."""

    url: str
    secret: str
    events: frozenset[str] | None = frozenset(END_EVENTS)

    def wants(self, status: Status) -> bool:
        return self.events is None or status.value in self.events

    def describe(self) -> dict[str, Any]:
        """The hook as shown to an admin: never its secret."""
        return {"url": self.url, "events": sorted(self.events) if self.events is not None else [EVERY_CHANGE]}


def event_name(status: Status) -> str:
    return f"job.{status.value}"


def new_delivery_id() -> str:
    return str(uuid.uuid4())


def body(event: str, delivery_id: str, ts: str, job: Mapping[str, Any] | None) -> str:
    """The JSON a delivery posts, written once when the event happens and sent as is."""
    return json.dumps({"event": event, "delivery_id": delivery_id, "ts": ts, "job": job}, separators=(",", ":"))


def signature(secret: str, timestamp: str, payload: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(hook: Hook, event: str, delivery_id: str, payload: bytes, now: datetime) -> dict[str, str]:
    timestamp = str(int(now.timestamp()))
    return {
        "content-type": "application/json",
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(hook.secret, timestamp, payload),
    }


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 1, 2, 4, … up to 10 min."""
    return min(LONGEST_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2.0 ** max(0, attempts - 1))


def parse_events(where: str, raw: Any) -> frozenset[str] | None:
    """A hook's ``events``: end statuses, or ``"*"`` (alone or in a list) for every change."""
    if raw == EVERY_CHANGE:
        return None
    if isinstance(raw, str) or not isinstance(raw, Iterable):
        raise ValueError(f'{where} must be a list of {", ".join(END_EVENTS)} or "*", got {raw!r}')
    names = list(raw)
    if EVERY_CHANGE in names:
        return None
    unknown = [name for name in names if name not in END_EVENTS]
    if unknown or not names:
        raise ValueError(
            f'{where} names {unknown[0]!r}, which is not an event; use {", ".join(END_EVENTS)} or "*"'
            if unknown
            else f'{where} is empty; name at least one of {", ".join(END_EVENTS)} or "*"'
        )
    return frozenset(names)


@dataclass(frozen=True)
class Attempt:
    """One try of a delivery: when, the receiver's HTTP status (None: no answer), the start
    of its answer or what went wrong, and how long it took."""

    at: datetime
    status: int | None
    answer: str
    seconds: float

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": isoformat(self.at),
            "status": self.status,
            "answer": self.answer,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attempt:
        return cls(
            at=parse_time(data["at"]) or utcnow(),
            status=data.get("status"),
            answer=str(data.get("answer", "")),
            seconds=float(data.get("seconds", 0.0)),
        )


@dataclass(frozen=True)
class Delivery:
    """One event for one hook, kept until it is delivered or given up."""

    delivery_id: str
    url: str
    event: str
    job_id: str | None
    body: str
    created_at: datetime
    state: str = PENDING
    #: Every attempt made; ``attempts`` keeps the latest of them.
    tries: int = 0
    attempts: tuple[Attempt, ...] = ()
    next_attempt_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "url": self.url,
            "event": self.event,
            "job_id": self.job_id,
            "state": self.state,
            "created_at": isoformat(self.created_at),
            "next_attempt_at": isoformat(self.next_attempt_at) if self.state == PENDING else None,
            "tries": self.tries,
            "attempts": [attempt.to_dict() for attempt in self.attempts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        return cls(
            delivery_id=data["delivery_id"],
            url=data["url"],
            event=data["event"],
            job_id=data.get("job_id"),
            body="",
            created_at=parse_time(data["created_at"]) or utcnow(),
            state=data["state"],
            tries=int(data.get("tries") or 0),
            attempts=tuple(Attempt.from_dict(a) for a in data.get("attempts") or ()),
            next_attempt_at=parse_time(data.get("next_attempt_at")),
        )


def after_attempt(delivery: Delivery, attempt: Attempt) -> tuple[str, datetime | None]:
    """The delivery's state after ``attempt``, and when to try next (None: no more tries)."""
    if attempt.delivered:
        return DELIVERED, None
    next_at = attempt.at + timedelta(seconds=retry_delay(delivery.tries + 1))
    if next_at - delivery.created_at > GIVE_UP_AFTER:
        return FAILED, None
    return PENDING, next_at


def job_deliveries(hooks: Iterable[Hook], status: Status, job: Mapping[str, Any], at: datetime) -> list[Delivery]:
    """The deliveries a job's move to ``status`` makes: one per hook that wants it."""
    made = []
    for hook in hooks:
        if not hook.wants(status):
            continue
        delivery_id = new_delivery_id()
        event = event_name(status)
        made.append(
            Delivery(
                delivery_id=delivery_id,
                url=hook.url,
                event=event,
                job_id=str(job["job_id"]),
                body=body(event, delivery_id, isoformat(at) or "", job),
                created_at=at,
                next_attempt_at=at,
            )
        )
    return made
