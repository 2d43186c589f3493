"""Sender pools: named sets of an account's senders, and the operations that change them.

Pool changes are done at once, inside the request's transaction, so every operation is
COMPLETED when its 202 is sent and its stats say what it did.
"""

from dataclasses import dataclass, field

from opencomms.domain import errors
from opencomms.domain.errors import Problem

NAME_MAX = 256  # the column's width


@dataclass(frozen=True, slots=True)
class SenderPoolRecord:
    id: str
    account_sid: str
    name: str
    tags: dict[str, str] = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0


@dataclass(frozen=True, slots=True)
class PoolOperationRecord:
    """What one create or add-senders request did (the spec's SenderPoolOperation)."""

    id: str
    pool_id: str
    status: str
    total: int
    queued: int
    created: int
    failed: int
    created_at: int
    updated_at: int


@dataclass(frozen=True)
class PoolFilter:
    start: int | None = None
    end: int | None = None
    operation_id: str | None = None


def name_problems(name: object, where: str) -> list[Problem]:
    """A pool name is stored as given; it must fit its column."""
    if isinstance(name, str) and len(name) > NAME_MAX:
        return [Problem(errors.INVALID_PARAMETER, f"name is over {NAME_MAX} characters", where)]
    return []
