"""Who may do what to whose job: the one place the roles are decided.

Every face asks the same question here: the engine before it changes anything (so the
server's answer and the local TUI's agree), and the TUI before it offers a key. The answer is
None (allowed) or the sentence that says why not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


#: The role a user gets when the config file names none.
DEFAULT_ROLE = Role.OPERATOR


class Action(StrEnum):
    """What a caller asks to do. The value is the verb of the refusal's sentence."""

    READ = "read"
    DOWNLOAD = "download"
    SUBMIT = "submit"
    CANCEL = "cancel"
    RETRY = "retry"
    DELETE = "delete"
    MOVE = "move"
    EDIT = "edit and resubmit"
    PAUSE = "pause"
    RESUME = "resume"
    AUDIT = "read the audit log of"
    READ_LOG = "read the log of"
    READ_DELIVERIES = "read the webhook deliveries of"
    TEST_HOOKS = "test the webhooks of"


#: Actions on one job: an operator may take them on their own jobs, an admin on every job.
JOB_ACTIONS = frozenset({Action.CANCEL, Action.RETRY, Action.DELETE, Action.MOVE, Action.EDIT})
#: Actions on the whole server: an admin's alone.
ADMIN_ACTIONS = frozenset(
    {Action.PAUSE, Action.RESUME, Action.AUDIT, Action.READ_LOG, Action.READ_DELIVERIES, Action.TEST_HOOKS}
)
#: Actions every role may take.
READ_ACTIONS = frozenset({Action.READ, Action.DOWNLOAD})


@dataclass(frozen=True, slots=True)
class Actor:
    """The caller an action is taken for: a user name and their role."""

    user: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def to_dict(self) -> dict[str, str]:
        return {"user": self.user, "role": self.role.value}


#: The server's own token, and every caller of a server without tokens.
ADMIN = Actor("admin", Role.ADMIN)
#: The person at a local TUI or verb: the engine is theirs.
LOCAL = Actor("local", Role.ADMIN)


def refusal(actor: Actor, action: Action, owner: str | None = None, job_id: str | None = None) -> str | None:
    """Why ``actor`` may not take ``action`` (on the job ``job_id`` of ``owner``), or None
    when they may: "bob may not cancel alice's job <id>", or the action named without a job
    ("bob may not pause the queue")."""
    if actor.role == Role.ADMIN or action in READ_ACTIONS:
        return None
    if action in ADMIN_ACTIONS:
        return f"{actor.user} may not {action.value} {_target(action)}"
    if actor.role == Role.VIEWER:
        if action == Action.SUBMIT:
            return f"{actor.user} may not submit jobs"
        return f"{actor.user} may not {action.value} {owner}'s job {job_id}"
    if action in JOB_ACTIONS and owner is not None and owner != actor.user:
        return f"{actor.user} may not {action.value} {owner}'s job {job_id}"
    return None


def key_refusal(actor: Actor, action: Action, owner: str | None = None) -> str | None:
    """The same decision, said to the person at the keyboard about the selected job
    ("alice's job: only alice or an admin may cancel it")."""
    if refusal(actor, action, owner, job_id="") is None:
        return None
    if action in ADMIN_ACTIONS:
        return f"only an admin may {action.value} {_target(action)} (you are {actor.user}, {_a(actor.role)})"
    if actor.role == Role.VIEWER:
        return f"you are a viewer: you may look and download, not {action.value}"
    return f"{owner}'s job: only {owner} or an admin may {action.value} it"


def may_act_on(actor: Actor, owner: str) -> bool:
    """Whether ``actor`` may cancel, retry, delete or move the jobs of ``owner``."""
    return refusal(actor, Action.CANCEL, owner, job_id="") is None


def _target(action: Action) -> str:
    return "the queue" if action in (Action.PAUSE, Action.RESUME) else "this server"


def _a(role: Role) -> str:
    return f"an {role.value}" if role.value[0] in "aeiou" else f"a {role.value}"


@dataclass(frozen=True, slots=True)
class UserEntry:
    """One user of a server, as the config file's ``[users.NAME]`` table describes them."""

    name: str
    #: Hex SHA-256 of the user's token: the token itself is never stored.
    token_sha256: str
    role: Role = DEFAULT_ROLE
    #: Estimated US dollars this user's jobs may cost per UTC day; None: no limit of their own.
    daily_budget_usd: float | None = None
    #: At most this many of the user's jobs processing at once; None: no limit of their own.
    max_concurrent: int | None = None
    #: The token itself, where the config file still holds it in plain text (the old form
    #: ``NAME = "token"``): kept only to redact it from the log.
    plain_token: str | None = field(default=None, repr=False)

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.role)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log: who did (or was refused) what, to which job, from where."""

    user: str
    role: str
    action: str
    job_id: str | None = None
    detail: str | None = None
    remote_addr: str | None = None
    #: ISO 8601 UTC; set by the store when it writes the entry, unless given.
    ts: str | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "ts": self.ts,
            "user": self.user,
            "role": self.role,
            "action": self.action,
            "job_id": self.job_id,
            "detail": self.detail,
            "remote_addr": self.remote_addr,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> AuditEntry:
        def text(key: str) -> str | None:
            value = data.get(key)
            return None if value is None else str(value)

        raw_id = data.get("id")
        return cls(
            user=str(data.get("user") or ""),
            role=str(data.get("role") or ""),
            action=str(data.get("action") or ""),
            job_id=text("job_id"),
            detail=text("detail"),
            remote_addr=text("remote_addr"),
            ts=text("ts"),
            id=raw_id if isinstance(raw_id, int) else None,
        )
