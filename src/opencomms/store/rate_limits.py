"""Rate limits every API process shares on PostgreSQL: one GCRA row per account and limiter.

GCRA keeps one number, the theoretical arrival time (TAT): a request of cost `c` is allowed
when `max(TAT, now) + c*T - now <= burst*T` (T: the interval between requests at the
sustained rate), and then moves the TAT there. On PostgreSQL the check and the move are one
atomic upsert, so two processes never both spend the same allowance.
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_SPEND = text(
    """
    INSERT INTO rate_limits AS r (account_sid, name, tat)
    VALUES (:account, :name, CAST(:now AS BIGINT) + CAST(:cost AS BIGINT))
    ON CONFLICT (account_sid, name) DO UPDATE
        SET tat = GREATEST(r.tat, CAST(:now AS BIGINT)) + CAST(:cost AS BIGINT)
        WHERE GREATEST(r.tat, CAST(:now AS BIGINT)) + CAST(:cost AS BIGINT)
            - CAST(:now AS BIGINT) <= CAST(:window AS BIGINT)
    RETURNING tat
    """
)
_READ = text("SELECT tat FROM rate_limits WHERE account_sid = :account AND name = :name")


async def spend(
    conn: AsyncConnection, account: str, name: str, now_us: int, cost_us: int, window_us: int
) -> tuple[bool, int]:
    """Spends `cost_us` of the account's allowance; returns (allowed, TAT after)."""
    params = {"account": account, "name": name, "now": now_us, "cost": cost_us}
    tat = await conn.scalar(_SPEND, {**params, "window": window_us})
    if tat is not None:
        return True, int(tat)
    current = await conn.scalar(_READ, {"account": account, "name": name})
    return False, int(current or now_us)
