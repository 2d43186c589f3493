"""What each outcome of a hand-off does to its message and attempt rows (no I/O here)."""

from dataclasses import dataclass

from opencomms.channels import (
    DeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    SendResult,
)
from opencomms.dispatch.plans import OperationPlan
from opencomms.dispatch.policy import GiveUp, RetryPolicy
from opencomms.domain.routing import Address, Step
from opencomms.domain.sessions import session_id
from opencomms.domain.status import MessageStatus
from opencomms.store.codec import dumps
from opencomms.store.queue import AttemptWrite, Claim, Handoff, MessageWrite, NewAttempt

# Twilio's "Unknown error": a worker died between starting a hand-off and recording its result,
# so nobody knows whether the channel took the message.
OUTCOME_UNKNOWN = 30008
OUTCOME_UNKNOWN_MESSAGE = "Outcome unknown: the worker handing this attempt off stopped"


@dataclass(frozen=True, slots=True)
class NotHandedOff:
    """The channel was never called (the worker is stopping, the route is down): the message
    goes back to the queue due at `next_at`, its attempt not used."""

    next_at: int


@dataclass(frozen=True, slots=True)
class Pending:
    """A claimed message with everything its next hand-off needs."""

    claim: Claim
    plan: OperationPlan
    steps: tuple[Step, ...]  # the message's stored plan
    to: Address  # the address the current step tries
    number: int  # the attempt about to start
    content: str  # rendered, JSON
    outbound: OutboundMessage

    @property
    def step(self) -> Step:
        return self.steps[self.claim.route_index]

    @property
    def sender(self) -> str:
        return self.plan.sender_json(self.step.sender)

    def handoff(self) -> Handoff:
        c = self.claim
        sender = self.step.sender
        # The same id an inbound reply from this address to this sender gets: they thread.
        session = session_id(c.account_sid, sender.channel, sender.address, self.to.address)
        return Handoff(
            c.id,
            c.lease_token,
            self.number,
            c.route_index,
            sender.channel,
            self.sender,
            self.content,
            session,
        )

    def attempt(self, attempted_at: int) -> NewAttempt:
        c = self.claim
        recipient = dumps([{"address": self.to.address, "channel": self.to.channel}])
        sender = self.step.sender
        return NewAttempt(
            c.id,
            c.operation_id,
            c.account_sid,
            self.number,
            sender.channel,
            self.sender,
            recipient,
            sender.route,
            attempted_at,
        )


def refused(claim: Claim, why: GiveUp) -> MessageWrite:
    """A claimed message that fails before any hand-off (render error, validity, attempts)."""
    return MessageWrite(
        claim.id,
        claim.lease_token,
        claim.status,
        MessageStatus.FAILED,
        None,
        why.code,
        why.message,
        claim.route_index,
        claim.channel,
        claim.sender,
    )


@dataclass(frozen=True)
class Decider:
    """Turns a hand-off's result into the writes that record it."""

    policy: RetryPolicy
    receipt_wait_ms: int

    def after_send(
        self, item: Pending, result: SendResult | DeliveryError, now: int, rand: float
    ) -> tuple[MessageWrite, AttemptWrite]:
        if isinstance(result, SendResult) and not result.receipt_expected:
            # Taking it was all the route will ever say (SMTP's 2xx): delivered.
            attempt = self._attempt(item, MessageStatus.DELIVERED, result.external_id, None)
            return self._message(item, MessageStatus.DELIVERED, None), attempt
        if isinstance(result, SendResult):
            attempt = self._attempt(item, MessageStatus.SENT, result.external_id, None)
            return self._message(item, MessageStatus.SENT, now + self.receipt_wait_ms), attempt
        attempt = self._attempt(item, MessageStatus.FAILED, None, result)
        if isinstance(result, PermanentDeliveryError):
            return self._after_permanent(item, result, now), attempt
        decision = self.policy.retry_at(item.number, item.claim.valid_from, now, rand)
        if isinstance(decision, GiveUp):
            why = f"{decision.message} (last error {result.code}: {result.message})"
            return self._message(item, MessageStatus.FAILED, None, decision.code, why), attempt
        return self._message(item, MessageStatus.QUEUED, decision), attempt

    def _after_permanent(self, item: Pending, error: DeliveryError, now: int) -> MessageWrite:
        """Fallback: the next planned route is tried at once; after the last one, FAILED."""
        following = item.claim.route_index + 1
        if following >= len(item.steps):
            return self._message(item, MessageStatus.FAILED, None, error.code, error.message)
        step = item.steps[following]
        c = item.claim
        return MessageWrite(
            c.id,
            c.lease_token,
            MessageStatus.QUEUED,
            MessageStatus.QUEUED,
            now,
            None,
            None,
            following,
            step.sender.channel,
            item.plan.sender_json(step.sender),
            step.sender.sender_id,
        )

    @staticmethod
    def _message(
        item: Pending,
        status: str,
        next_at: int | None,
        code: int | None = None,
        why: str | None = None,
    ) -> MessageWrite:
        c = item.claim
        sender = item.sender
        return MessageWrite(
            c.id,
            c.lease_token,
            MessageStatus.QUEUED,
            status,
            next_at,
            code,
            why,
            c.route_index,
            item.step.sender.channel,
            sender,
        )

    @staticmethod
    def _attempt(
        item: Pending, status: str, external_id: str | None, error: DeliveryError | None
    ) -> AttemptWrite:
        return AttemptWrite(
            item.claim.id,
            item.number,
            MessageStatus.QUEUED,
            status,
            external_id,
            error.code if error else None,
            error.message if error else None,
        )
