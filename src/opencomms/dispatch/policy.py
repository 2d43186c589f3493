"""When to try a message again, and when to give up: a small value object."""

from dataclasses import dataclass

from opencomms.domain import errors


@dataclass(frozen=True, slots=True)
class GiveUp:
    code: int
    message: str


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    validity_ms: int = 4 * 3600 * 1000
    backoff_base_ms: int = 1000
    backoff_max_ms: int = 300_000

    def backoff_ms(self, attempts_made: int, rand: float) -> int:
        """Exponential backoff with jitter in [half, full] of the step, so retries of one
        failing batch spread out instead of hitting the channel again all at once."""
        step = self.backoff_base_ms * 2 ** min(max(attempts_made - 1, 0), 30)
        ceiling = min(self.backoff_max_ms, step)
        return int(ceiling * (0.5 + rand / 2))

    def refuse(self, attempts_made: int, valid_from: int, now: int) -> GiveUp | None:
        """Why no further attempt may start now, if one may not."""
        if now >= valid_from + self.validity_ms:
            return GiveUp(
                errors.VALIDITY_EXPIRED,
                "Message validity period expired before it could be delivered",
            )
        if attempts_made >= self.max_attempts:
            return GiveUp(
                errors.QUEUE_OVERFLOW,
                f"Delivery failed after {attempts_made} attempts",
            )
        return None

    def retry_at(self, attempts_made: int, valid_from: int, now: int, rand: float) -> int | GiveUp:
        """After a transient failure: when to try again, or why not."""
        refused = self.refuse(attempts_made, valid_from, now)
        if refused is not None:
            return refused
        at = now + self.backoff_ms(attempts_made, rand)
        if at >= valid_from + self.validity_ms:
            return GiveUp(
                errors.VALIDITY_EXPIRED,
                "Message validity period expires before the next attempt could start",
            )
        return at
