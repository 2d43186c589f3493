"""`opencomms sinks ...` and `opencomms events ...`: webhook sinks from the command line."""

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from sqlalchemy import select

from opencomms.cli import runtime
from opencomms.clock import now_ms, to_ms
from opencomms.config import Settings, load_settings, with_key
from opencomms.events import queue, sinks, types
from opencomms.store.accounts import SecretBox
from opencomms.store.tables import accounts, event_sinks

sinks_app = typer.Typer(help="Webhook sinks that receive events.", no_args_is_help=True)
events_app = typer.Typer(help="Stored events.", no_args_is_help=True)
console = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url", envvar="OPENCOMMS_DATABASE_URL", help="sqlite:///file or postgresql://..."
    ),
]
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class CliError(Exception):
    """A command that cannot do what was asked; the message says why."""


def type_names(given: list[str]) -> list[str]:
    """Full type names from full or short ones (`message.delivered`); none given means all."""
    names = [part.strip() for item in given for part in item.split(",") if part.strip()]
    if not names:
        return list(types.ALL_TYPES)
    full = [n if n.startswith(types.PREFIX) else f"{types.PREFIX}.{n}" for n in names]
    unknown = [n for n in full if n not in types.ALL_TYPES]
    if unknown:
        raise CliError(f"unknown event types: {', '.join(unknown)}")
    return list(dict.fromkeys(full))


def since_ms(value: str, now: int) -> int:
    """An RFC 3339 time, or a duration back from now (`90m`, `2h`, `7d`)."""
    match = _DURATION.match(value.strip())
    if match:
        delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return now - int(delta.total_seconds() * 1000)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise CliError(f"--since {value!r} is neither a time nor a duration like 2h") from error
    return to_ms(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


async def _account(conn: Any, given: str | None) -> str:
    if given:
        return given
    found = list((await conn.execute(select(accounts.c.sid).limit(2))).scalars())
    if len(found) != 1:
        raise CliError("several accounts (or none): name one with --account")
    return str(found[0])


def _settings(database_url: str | None) -> Settings:
    """Where the database is and the server key, as every command finds them."""
    return with_key(load_settings(database_url=database_url))


async def add_sink(
    database_url: str | None,
    url: str,
    type_list: list[str],
    *,
    account: str | None,
    batch: bool,
    description: str,
) -> dict[str, Any]:
    """An active sink (the operator vouches for it: no Test/Validate round) subscribed to
    the given types; its signing secret is shown only now."""
    configuration = sinks.webhook_configuration(
        {"destination": url, "method": "POST", "batch_events": batch}
    )
    chosen = type_names(type_list)
    settings = _settings(database_url)
    db = await runtime.open_ready(settings.database_url)
    box = SecretBox(settings.secret_key)
    try:
        async with db.write() as conn:
            account_sid = await _account(conn, account)
            now = now_ms()
            sink, secret = await sinks.create_sink(
                conn,
                box,
                account_sid=account_sid,
                description=description,
                sink_type="webhook",
                configuration=configuration,
                now=now,
                status=sinks.ACTIVE,
            )
            sub = await sinks.create_subscription(
                conn,
                account_sid=account_sid,
                sink_sid=sink.sid,
                description=description,
                subscribed=[(t, types.SCHEMA_VERSION) for t in chosen],
                now=now,
            )
    finally:
        await db.dispose()
    return {
        "sinkSid": sink.sid,
        "subscriptionSid": sub.sid,
        "accountSid": account_sid,
        "signingSecret": secret,
        "types": chosen,
    }


async def replay(database_url: str | None, sink_sid: str, since: str) -> int:
    db = await runtime.open_ready(_settings(database_url).database_url)
    try:
        async with db.write() as conn:
            query = select(event_sinks.c.account_sid).where(event_sinks.c.sid == sink_sid)
            account_sid = (await conn.execute(query)).scalar_one_or_none()
            if account_sid is None:
                raise CliError(f"no sink {sink_sid}")
            now = now_ms()
            return await queue.replay(conn, sink_sid, account_sid, since_ms(since, now), now)
    finally:
        await db.dispose()


def _fail(error: Exception) -> None:
    console.print(f"[red]error:[/red] {error}")
    raise typer.Exit(1)


@sinks_app.command("add")
def sinks_add(
    url: Annotated[str, typer.Argument(help="The webhook's http(s) URL.")],
    type_list: Annotated[
        list[str] | None,
        typer.Option(
            "--types", help="Event types, full or short (message.delivered); all if none."
        ),
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="Account SID (AC...).")] = None,
    batch: Annotated[bool, typer.Option("--batch", help="JSON arrays of events.")] = False,
    description: Annotated[str, typer.Option()] = "added by opencomms sinks add",
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Add an active webhook sink subscribed to event types; prints its signing secret once."""
    from opencomms.domain.errors import ValidationFailed

    try:
        created = asyncio.run(
            add_sink(
                database_url,
                url,
                type_list or [],
                account=account,
                batch=batch,
                description=description,
            )
        )
    except (CliError, ValidationFailed) as error:
        _fail(error)
        return
    if as_json:
        print(json.dumps(created))
        return
    for key, value in created.items():
        print(f"{key}: {', '.join(value) if isinstance(value, list) else value}")


@events_app.command("replay")
def events_replay(
    sink: Annotated[str, typer.Option("--sink", help="The sink's SID (DG...).")],
    since: Annotated[str, typer.Option("--since", help="RFC 3339 time, or 30m, 2h, 7d back.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Deliver a sink's stored events again (same ids) from a point in time."""
    try:
        count = asyncio.run(replay(database_url, sink, since))
    except CliError as error:
        _fail(error)
        return
    print(f"{count} events queued for {sink}")
