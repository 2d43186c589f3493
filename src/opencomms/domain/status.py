"""Message and operation statuses, and the order a message moves through them."""

from enum import StrEnum


class MessageStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    QUEUED = "QUEUED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    READ = "READ"
    UNDELIVERED = "UNDELIVERED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    INBOUND = "INBOUND"  # received from a recipient, never sent: no operation, no attempts


class OperationStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


# A message in one of these has reached its fate; its operation may complete.
FINAL = frozenset(
    {
        MessageStatus.DELIVERED,
        MessageStatus.READ,
        MessageStatus.UNDELIVERED,
        MessageStatus.FAILED,
        MessageStatus.CANCELED,
        MessageStatus.INBOUND,
    }
)

# Messages that no channel has taken yet: the only ones a cancel may still stop.
NOT_HANDED_OFF = frozenset({MessageStatus.SCHEDULED, MessageStatus.QUEUED})

# Rank of each status along the lifecycle: a status only ever moves to a higher rank, so a
# late SENT never overwrites DELIVERED. Final failures rank with DELIVERED.
RANK: dict[MessageStatus, int] = {
    MessageStatus.SCHEDULED: 0,
    MessageStatus.QUEUED: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.UNDELIVERED: 3,
    MessageStatus.FAILED: 3,
    MessageStatus.CANCELED: 3,
    MessageStatus.READ: 4,
    MessageStatus.INBOUND: 4,
}


def may_move(current: MessageStatus, new: MessageStatus) -> bool:
    """True when `new` is a forward step from `current`."""
    if current in FINAL and current != MessageStatus.DELIVERED:
        return False
    return RANK[new] > RANK[current]
