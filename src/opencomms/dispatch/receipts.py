"""Folding receipts into status moves: forward only, and only for the current attempt."""

from collections import defaultdict
from dataclasses import dataclass, field

from opencomms.channels import Receipt
from opencomms.domain.status import MessageStatus, may_move
from opencomms.store.queue import AttemptWrite, ReceiptRow, ReceiptTarget, ReceiptWrite


def as_row(receipt: Receipt) -> ReceiptRow:
    return ReceiptRow(
        receipt.external_id,
        receipt.status,
        receipt.error_code,
        receipt.error_message,
        receipt.final,
    )


@dataclass
class ReceiptPlan:
    attempts: list[AttemptWrite] = field(default_factory=list)
    messages: list[ReceiptWrite] = field(default_factory=list)


def _forward(current: str, new: str) -> bool:
    return may_move(MessageStatus(current), MessageStatus(new))


def fold(
    rows: list[ReceiptRow], targets: dict[str, ReceiptTarget], now: int, recheck_ms: int
) -> ReceiptPlan:
    """The writes that apply `rows` (oldest first) to their attempts and messages.

    Several receipts for one hand-off collapse into one write per row. A receipt about an
    older attempt updates that attempt only: the message follows its latest attempt.
    """
    by_id: dict[str, list[ReceiptRow]] = defaultdict(list)
    for row in rows:
        if row.external_id in targets:
            by_id[row.external_id].append(row)
    plan = ReceiptPlan()
    for external_id, received in by_id.items():
        target = targets[external_id]
        attempt = _fold_attempt(target, received)
        if attempt is not None:
            plan.attempts.append(attempt)
        if target.is_current:
            message = _fold_message(target, received, now, recheck_ms)
            if message is not None:
                plan.messages.append(message)
    return plan


def _fold_attempt(target: ReceiptTarget, received: list[ReceiptRow]) -> AttemptWrite | None:
    status, last = target.attempt_status, None
    for row in received:
        if _forward(status, row.status):
            status, last = row.status, row
    if last is None:
        return None
    return AttemptWrite(
        target.message_id,
        target.number,
        target.attempt_status,
        status,
        None,
        last.error_code,
        last.error_message,
    )


def _fold_message(
    target: ReceiptTarget, received: list[ReceiptRow], now: int, recheck_ms: int
) -> ReceiptWrite | None:
    status, last = target.message_status, None
    for row in received:
        if _forward(status, row.status):
            status, last = row.status, row
    if last is None:
        return None
    # Not final (DELIVERED before READ): keep a due time so a lost READ is asked for later.
    next_at = None if last.final else now + recheck_ms
    return ReceiptWrite(
        target.message_id,
        target.message_status,
        status,
        last.error_code,
        last.error_message,
        next_at,
    )
