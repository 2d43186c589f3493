"""Route states as workers report them (dispatch/routes.py), for any API process to show."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from opencomms.store.tables import route_states


@dataclass(frozen=True, slots=True)
class RouteState:
    worker_id: str
    route: str
    up: bool
    reason: str  # fixed words (channels.base.ROUTE_DOWN_REASONS), "" when up
    since: int  # epoch ms of the last change
    reported_at: int


async def report(conn: AsyncConnection, states: Sequence[RouteState]) -> None:
    """Upserts one worker's view of its routes."""
    if not states:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(route_states).values(
        [
            {
                "worker_id": s.worker_id,
                "route": s.route,
                "up": s.up,
                "reason": s.reason,
                "since": s.since,
                "reported_at": s.reported_at,
            }
            for s in states
        ]
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["worker_id", "route"],
        set_={
            "up": stmt.excluded.up,
            "reason": stmt.excluded.reason,
            "since": stmt.excluded.since,
            "reported_at": stmt.excluded.reported_at,
        },
    )
    await conn.execute(stmt)


async def forget(conn: AsyncConnection, worker_id: str, older_than: int) -> None:
    """A stopping worker's rows, and any worker's that stopped reporting long ago."""
    await conn.execute(
        delete(route_states).where(
            (route_states.c.worker_id == worker_id) | (route_states.c.reported_at < older_than)
        )
    )


async def fresh(conn: AsyncConnection, since: int) -> list[RouteState]:
    """What workers reported from `since` on (a worker that stopped reporting is left out)."""
    query = (
        select(route_states)
        .where(route_states.c.reported_at >= since)
        .order_by(route_states.c.route, route_states.c.worker_id)
    )
    return [
        RouteState(r.worker_id, r.route, r.up, r.reason, r.since, r.reported_at)
        for r in await conn.execute(query)
    ]
