"""Folding receipts into status moves: forward only, and only for the current attempt."""

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from opencomms.channels import Receipt
from opencomms.domain.status import MessageStatus, may_move
from opencomms.store.queue import AttemptWrite, MessageWrite
from opencomms.store.receipts import ReceiptRow, ReceiptTarget, ReceiptWrite


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


@dataclass(frozen=True, slots=True)
class Folded:
    """Where receipts (oldest first) take a status: the last forward step, the receipt that
    made it, and the statuses passed before it."""

    status: str
    last: ReceiptRow
    via: tuple[str, ...]


def advance(status: str, received: list[ReceiptRow]) -> Folded | None:
    """The one fold of receipts into a status, forward only; None if none moves it."""
    walked: list[str] = []
    last = None
    for row in received:
        if _forward(status, row.status):
            status, last = row.status, row
            walked.append(status)
    if last is None:
        return None
    return Folded(status, last, tuple(walked[:-1]))


def _fold_attempt(target: ReceiptTarget, received: list[ReceiptRow]) -> AttemptWrite | None:
    folded = advance(target.attempt_status, received)
    if folded is None:
        return None
    last = folded.last
    return AttemptWrite(
        target.message_id,
        target.number,
        target.attempt_status,
        folded.status,
        None,
        last.error_code,
        last.error_message,
    )


def _fold_message(
    target: ReceiptTarget, received: list[ReceiptRow], now: int, recheck_ms: int
) -> ReceiptWrite | None:
    folded = advance(target.message_status, received)
    if folded is None:
        return None
    last = folded.last
    # Not final (DELIVERED before READ): keep a due time so a lost READ is asked for later.
    next_at = None if last.final else now + recheck_ms
    return ReceiptWrite(
        target.message_id,
        target.message_status,
        folded.status,
        last.error_code,
        last.error_message,
        next_at,
        folded.via,
    )


def settle(
    message: MessageWrite,
    attempt: AttemptWrite,
    received: list[ReceiptRow],
    now: int,
    recheck_ms: int,
) -> tuple[MessageWrite, AttemptWrite]:
    """A hand-off whose receipts arrived before its result was written (a fast channel, or
    an SMSC whose receipt overtakes its response): one write of the folded outcome. The
    attempt and its message are both SENT here, so they fold alike; the message's write
    says it passed SENT on the way (its events include message.sent)."""
    folded = advance(message.status, received)
    if folded is None:
        return message, attempt
    status, last = folded.status, folded.last
    next_at = None if last.final else now + recheck_ms
    code, why = last.error_code, last.error_message
    via = (message.status, *folded.via)
    return (
        replace(
            message, status=status, next_at=next_at, error_code=code, error_message=why, via=via
        ),
        replace(attempt, status=status, error_code=code, error_message=why),
    )


class ReceiptBuffer:
    """Receipts pushed by channels, waiting to be written.

    Receipts for hand-offs whose result is still being recorded (`unrecorded`) are left for
    the batch recording them, which folds them into its own write; taking them elsewhere
    would only park them in the unmatched table and back. Each pushed receipt comes with a
    future the channel may await: it completes once a write holding the receipt commits.
    """

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.unrecorded: set[str] = set()
        self._by_id: dict[str, list[tuple[Receipt, asyncio.Future[None]]]] = {}

    def push(self, receipt: Receipt) -> asyncio.Future[None]:
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(receipt, stored)
        return stored

    def _put(self, receipt: Receipt, stored: asyncio.Future[None]) -> None:
        self._by_id.setdefault(receipt.external_id, []).append((receipt, stored))
        self.arrived.set()

    def __bool__(self) -> bool:
        return bool(self._by_id)

    @contextmanager
    def take(self, external_ids: Iterable[str] | None = None) -> Iterator[list[ReceiptRow]]:
        """The receipts for these ids (None: every settled one), put back if the block fails.
        The block must commit what it took before it ends: their futures complete then."""
        if external_ids is None:
            self.arrived.clear()
            ids = [i for i in self._by_id if i not in self.unrecorded]
        else:
            ids = [i for i in external_ids if i in self._by_id]
        taken = [item for i in ids for item in self._by_id.pop(i)]
        try:
            yield [as_row(receipt) for receipt, _ in taken]
        except BaseException:
            for receipt, stored in taken:
                self._put(receipt, stored)
            raise
        for _, stored in taken:
            if not stored.done():
                stored.set_result(None)
