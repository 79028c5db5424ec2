"""Job ids: UUIDs in their canonical text form."""

from __future__ import annotations


def new_job_id() -> str:
    import uuid  # here: a client verb that only reads jobs never loads it

    return str(uuid.uuid4())


def is_job_id(text: str) -> bool:
    try:
        import uuid

        return str(uuid.UUID(text)) == text
    except (ValueError, TypeError):
        return False
