"""Event Streams: Sinks (with Test and Validate) and Subscriptions with their SubscribedEvents.

Served like Twilio's `events.twilio.com/v1`: form-encoded writes, snake_case answers, so
Twilio's SDKs work against it. Extensions, beside the spec's fields: a sink's `delivery` state
(last success, last failure and its reason, events waiting), its `signing_secret` in the
create answer only, and `POST /v1/Sinks/{Sid}/SigningSecret` to rotate it.
"""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from opencomms.api import twilio_style
from opencomms.api.deps import Account, BaseUrl, State
from opencomms.api.responses import JSONResponse
from opencomms.api.twilio_style import invalid, one, required
from opencomms.clock import now_ms
from opencomms.domain.errors import NotFound
from opencomms.events import sinks, types
from opencomms.events.sinks import Sink, SubscribedType, Subscription

router = APIRouter(tags=["Events"])

Page = Annotated[int | None, Query(alias="Page")]
PageSize = Annotated[int | None, Query(alias="PageSize")]
PageToken = Annotated[str | None, Query(alias="PageToken")]
DEFAULT_OVERLAP_SECONDS = 24 * 3600
# Paths whose writes are form-encoded, as at Twilio (the body guard lets them through).
FORM_PREFIXES = ("/v1/Sinks", "/v1/Subscriptions")


def sink_body(sink: Sink, base: str, waiting: int) -> dict[str, Any]:
    url = f"{base}/Sinks/{sink.sid}"
    return {
        "date_created": twilio_style.iso(sink.created_at),
        "date_updated": twilio_style.iso(sink.updated_at),
        "description": sink.description,
        "sid": sink.sid,
        "sink_configuration": sink.configuration,
        "sink_type": sink.sink_type,
        "status": sink.status,
        "url": url,
        "links": {"sink_test": f"{url}/Test", "sink_validate": f"{url}/Validate"},
        "delivery": {
            "last_success": twilio_style.iso(sink.last_success_at),
            "last_failure": twilio_style.iso(sink.last_failure_at),
            "last_failure_reason": sink.last_failure_reason,
            "events_waiting": waiting,
        },
    }


def subscription_body(sub: Subscription, base: str) -> dict[str, Any]:
    url = f"{base}/Subscriptions/{sub.sid}"
    return {
        "account_sid": sub.account_sid,
        "sid": sub.sid,
        "date_created": twilio_style.iso(sub.created_at),
        "date_updated": twilio_style.iso(sub.updated_at),
        "description": sub.description,
        "sink_sid": sub.sink_sid,
        "url": url,
        "links": {"subscribed_events": f"{url}/SubscribedEvents"},
    }


def subscribed_body(item: SubscribedType, base: str) -> dict[str, Any]:
    return {
        "account_sid": item.account_sid,
        "type": item.type,
        "schema_version": item.schema_version,
        "subscription_sid": item.subscription_sid,
        "url": f"{base}/Subscriptions/{item.subscription_sid}/SubscribedEvents/{item.type}",
    }


async def _sink(conn: AsyncConnection, account: str, sid: str) -> Sink:
    sink = await sinks.get_sink(conn, account, sid)
    if sink is None:
        raise NotFound(f"Sink {sid}")
    return sink


async def _subscription(conn: AsyncConnection, account: str, sid: str) -> Subscription:
    sub = await sinks.get_subscription(conn, account, sid)
    if sub is None:
        raise NotFound(f"Subscription {sid}")
    return sub


def _description(value: str) -> str:
    if not value.strip() or len(value) > 256:
        raise invalid("Description must be 1 to 256 characters", "Description")
    return value


def _configuration(sink_type: str, raw: str) -> dict[str, Any]:
    if sink_type not in sinks.SINK_TYPES:
        raise invalid(f"SinkType must be one of {', '.join(sinks.SINK_TYPES)}", "SinkType")
    if sink_type != "webhook":
        raise invalid("OpenComms delivers to webhook sinks only", "SinkType")
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise invalid("SinkConfiguration must be JSON", "SinkConfiguration") from error
    return sinks.webhook_configuration(parsed)


@router.post("/Sinks", status_code=201)
async def create_sink(request: Request, account: Account, app: State, base: BaseUrl) -> Any:
    """Create a sink; the answer carries its signing secret, shown only this once."""
    values = await twilio_style.form(request)
    description = _description(required(values, "Description"))
    sink_type = required(values, "SinkType")
    configuration = _configuration(sink_type, required(values, "SinkConfiguration"))
    async with app.db.write() as conn:
        sink, secret = await sinks.create_sink(
            conn,
            app.box,
            account_sid=account,
            description=description,
            sink_type=sink_type,
            configuration=configuration,
            now=now_ms(),
        )
    body = sink_body(sink, base, 0)
    body["signing_secret"] = secret
    return JSONResponse(body, status_code=201)


@router.get("/Sinks")
async def list_sinks(
    account: Account,
    app: State,
    base: BaseUrl,
    in_use: Annotated[bool | None, Query(alias="InUse")] = None,
    status: Annotated[str | None, Query(alias="Status")] = None,
    page: Page = None,
    page_size: PageSize = None,
    _token: PageToken = None,
) -> Any:
    """List the account's sinks, oldest first."""
    number, size = twilio_style.page_window(page, page_size)
    async with app.db.read() as conn:
        found = await sinks.list_sinks(
            conn, account, in_use=in_use, status=status, offset=number * size, limit=size + 1
        )
        items = [sink_body(s, base, await sinks.waiting(conn, s.sid)) for s in found]
    query = {"Status": status} if status is not None else {}
    if in_use is not None:
        query["InUse"] = str(in_use).lower()
    return JSONResponse(twilio_style.listing("sinks", items, f"{base}/Sinks", number, size, query))


@router.get("/Sinks/{sid}")
async def fetch_sink(sid: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Fetch a sink, with its delivery state."""
    async with app.db.read() as conn:
        sink = await _sink(conn, account, sid)
        return JSONResponse(sink_body(sink, base, await sinks.waiting(conn, sid)))


@router.post("/Sinks/{sid}")
async def update_sink(
    sid: str, request: Request, account: Account, app: State, base: BaseUrl
) -> Any:
    """Update a sink's description."""
    values = await twilio_style.form(request)
    description = _description(required(values, "Description"))
    async with app.db.write() as conn:
        await sinks.update_sink(conn, await _sink(conn, account, sid), description, now_ms())
        sink = await _sink(conn, account, sid)
        return JSONResponse(sink_body(sink, base, await sinks.waiting(conn, sid)))


@router.delete("/Sinks/{sid}", status_code=204)
async def delete_sink(sid: str, account: Account, app: State) -> Response:
    """Delete a sink, its subscriptions and the events it was still owed."""
    async with app.db.write() as conn:
        await sinks.delete_sink(conn, await _sink(conn, account, sid))
    return Response(status_code=204)


@router.post("/Sinks/{sid}/Test", status_code=201)
async def test_sink(sid: str, account: Account, app: State) -> Any:
    """Send the sink a test event; pass its id to Validate to activate the sink."""
    async with app.db.write() as conn:
        await sinks.start_test(conn, await _sink(conn, account, sid), now_ms())
    return JSONResponse({"result": "submitted"}, status_code=201)


@router.post("/Sinks/{sid}/Validate", status_code=201)
async def validate_sink(sid: str, request: Request, account: Account, app: State) -> Any:
    """Activate the sink with the id of the test event it received."""
    values = await twilio_style.form(request)
    test_id = required(values, "TestId")
    async with app.db.write() as conn:
        sink = await _sink(conn, account, sid)
        if not await sinks.validate(conn, sink, test_id, now_ms()):
            raise invalid("TestId is not the id of this sink's latest test event", "TestId")
    return JSONResponse({"result": "valid"}, status_code=201)


@router.post("/Sinks/{sid}/SigningSecret", status_code=201)
async def rotate_signing_secret(sid: str, request: Request, account: Account, app: State) -> Any:
    """Extension: a new signing secret; the previous ones keep signing for OverlapSeconds."""
    values = await twilio_style.form(request)
    overlap = _int(one(values, "OverlapSeconds"), "OverlapSeconds", DEFAULT_OVERLAP_SECONDS)
    now = now_ms()
    async with app.db.write() as conn:
        sink = await _sink(conn, account, sid)
        secret = await sinks.rotate_secret(conn, app.box, sink, now, overlap * 1000)
    return JSONResponse(
        {"signing_secret": secret, "previous_valid_until": twilio_style.iso(now + overlap * 1000)},
        status_code=201,
    )


def _int(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise invalid(f"{name} must be a whole number", name)
    return int(value)


def _subscribed(raw: list[str]) -> list[tuple[str, int]]:
    """Types given as JSON objects {type, schema_version} (the SDK's shape) or bare names."""
    found: dict[str, int] = {}
    for index, item in enumerate(raw):
        try:
            parsed = orjson.loads(item) if item.lstrip().startswith("{") else {"type": item}
        except orjson.JSONDecodeError as error:
            raise invalid("each of Types must be JSON", f"Types[{index}]") from error
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if kind not in types.ALL_TYPES:
            raise invalid(f"unknown event type {kind!r}", f"Types[{index}]")
        found[kind] = _version_of(parsed.get("schema_version"), f"Types[{index}]")
    if not found:
        raise invalid("Types must name at least one event type", "Types")
    return list(found.items())


def _version_of(value: Any, where: str) -> int:
    if value is None:
        return types.SCHEMA_VERSION
    if str(value) != str(types.SCHEMA_VERSION):
        raise invalid(f"schema_version must be {types.SCHEMA_VERSION}", where)
    return types.SCHEMA_VERSION


@router.post("/Subscriptions", status_code=201)
async def create_subscription(request: Request, account: Account, app: State, base: BaseUrl) -> Any:
    """Subscribe an active sink to event types."""
    values = await twilio_style.form(request)
    description = _description(required(values, "Description"))
    sink_sid = required(values, "SinkSid")
    subscribed = _subscribed(values.get("Types", []))
    async with app.db.write() as conn:
        sink = await sinks.get_sink(conn, account, sink_sid)
        if sink is None:
            raise invalid(f"no sink {sink_sid}", "SinkSid")
        if sink.status != sinks.ACTIVE:
            raise invalid("the sink must be active: Test and Validate it first", "SinkSid")
        sub = await sinks.create_subscription(
            conn,
            account_sid=account,
            sink_sid=sink_sid,
            description=description,
            subscribed=subscribed,
            now=now_ms(),
        )
    return JSONResponse(subscription_body(sub, base), status_code=201)


@router.get("/Subscriptions")
async def list_subscriptions(
    account: Account,
    app: State,
    base: BaseUrl,
    sink_sid: Annotated[str | None, Query(alias="SinkSid")] = None,
    page: Page = None,
    page_size: PageSize = None,
    _token: PageToken = None,
) -> Any:
    """List the account's subscriptions, oldest first."""
    number, size = twilio_style.page_window(page, page_size)
    async with app.db.read() as conn:
        found = await sinks.list_subscriptions(
            conn, account, sink_sid=sink_sid, offset=number * size, limit=size + 1
        )
    items = [subscription_body(s, base) for s in found]
    query = {"SinkSid": sink_sid} if sink_sid else {}
    url = f"{base}/Subscriptions"
    return JSONResponse(twilio_style.listing("subscriptions", items, url, number, size, query))


@router.get("/Subscriptions/{sid}")
async def fetch_subscription(sid: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Fetch a subscription."""
    async with app.db.read() as conn:
        return JSONResponse(subscription_body(await _subscription(conn, account, sid), base))


@router.post("/Subscriptions/{sid}")
async def update_subscription(
    sid: str, request: Request, account: Account, app: State, base: BaseUrl
) -> Any:
    """Update a subscription's description."""
    values = await twilio_style.form(request)
    description = one(values, "Description")
    async with app.db.write() as conn:
        sub = await _subscription(conn, account, sid)
        if description is not None:
            await sinks.update_subscription(conn, sub, _description(description), now_ms())
        return JSONResponse(subscription_body(await _subscription(conn, account, sid), base))


@router.delete("/Subscriptions/{sid}", status_code=204)
async def delete_subscription(sid: str, account: Account, app: State) -> Response:
    """Delete a subscription; events already queued for its sink are still delivered."""
    async with app.db.write() as conn:
        await sinks.delete_subscription(conn, await _subscription(conn, account, sid))
    return Response(status_code=204)


@router.get("/Subscriptions/{sid}/SubscribedEvents")
async def list_subscribed_events(
    sid: str,
    account: Account,
    app: State,
    base: BaseUrl,
    page: Page = None,
    page_size: PageSize = None,
    _token: PageToken = None,
) -> Any:
    """List the event types a subscription selects."""
    number, size = twilio_style.page_window(page, page_size)
    async with app.db.read() as conn:
        await _subscription(conn, account, sid)
        found = await sinks.subscribed_types(conn, sid, offset=number * size, limit=size + 1)
    items = [subscribed_body(t, base) for t in found]
    url = f"{base}/Subscriptions/{sid}/SubscribedEvents"
    return JSONResponse(twilio_style.listing("types", items, url, number, size))


@router.post("/Subscriptions/{sid}/SubscribedEvents", status_code=201)
async def create_subscribed_event(
    sid: str, request: Request, account: Account, app: State, base: BaseUrl
) -> Any:
    """Add an event type to a subscription (200 when it was already there)."""
    values = await twilio_style.form(request)
    kind = required(values, "Type")
    if kind not in types.ALL_TYPES:
        raise invalid(f"unknown event type {kind!r}", "Type")
    version = _version_of(one(values, "SchemaVersion"), "SchemaVersion")
    async with app.db.write() as conn:
        sub = await _subscription(conn, account, sid)
        created = await sinks.put_subscribed_type(
            conn, sid, account, sub.sink_sid, kind, version, now_ms()
        )
    item = SubscribedType(sid, account, kind, version)
    return JSONResponse(subscribed_body(item, base), status_code=201 if created else 200)


async def _subscribed_type(
    conn: AsyncConnection, account: str, sid: str, kind: str
) -> SubscribedType:
    await _subscription(conn, account, sid)
    for item in await sinks.subscribed_types(conn, sid):
        if item.type == kind:
            return item
    raise NotFound(f"SubscribedEvent {kind}")


@router.get("/Subscriptions/{sid}/SubscribedEvents/{kind}")
async def fetch_subscribed_event(
    sid: str, kind: str, account: Account, app: State, base: BaseUrl
) -> Any:
    """Fetch one subscribed event type."""
    async with app.db.read() as conn:
        return JSONResponse(subscribed_body(await _subscribed_type(conn, account, sid, kind), base))


@router.post("/Subscriptions/{sid}/SubscribedEvents/{kind}")
async def update_subscribed_event(
    sid: str, kind: str, request: Request, account: Account, app: State, base: BaseUrl
) -> Any:
    """Set the schema version of a subscribed event type."""
    values = await twilio_style.form(request)
    version = _version_of(one(values, "SchemaVersion"), "SchemaVersion")
    async with app.db.write() as conn:
        item = await _subscribed_type(conn, account, sid, kind)
        sub = await _subscription(conn, account, sid)
        await sinks.put_subscribed_type(conn, sid, account, sub.sink_sid, kind, version, now_ms())
    updated = SubscribedType(item.subscription_sid, item.account_sid, item.type, version)
    return JSONResponse(subscribed_body(updated, base))


@router.delete("/Subscriptions/{sid}/SubscribedEvents/{kind}", status_code=204)
async def delete_subscribed_event(sid: str, kind: str, account: Account, app: State) -> Response:
    """Remove an event type from a subscription."""
    async with app.db.write() as conn:
        await _subscribed_type(conn, account, sid, kind)
        await sinks.delete_subscribed_type(conn, sid, kind)
    return Response(status_code=204)
