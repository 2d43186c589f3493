"""The sandbox's extensions (`/Sandbox/...`): its inbox, and replies from its phones."""

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from opencomms.api import body_check, filters, pagination, presenters, wire
from opencomms.api.deps import Account, BaseUrl, State
from opencomms.api.messages import read_json_object
from opencomms.api.responses import JSONResponse
from opencomms.clock import now_ms, rfc3339
from opencomms.domain import errors
from opencomms.domain.errors import Problem, ValidationFailed
from opencomms.services import sandbox
from opencomms.services.sandbox import Delivery, SandboxFilter

router = APIRouter(tags=["OpenComms extensions"])

ENTRY_PREFIX = "sbx_"


def entry(delivery: Delivery) -> dict[str, Any]:
    """One inbox entry on the wire (the extensions' SandboxMessage)."""
    return {
        "id": f"{ENTRY_PREFIX}{delivery.position}",
        "messageId": delivery.message_id,
        "operationId": delivery.operation_id,
        "attempt": delivery.attempt,
        "channel": delivery.channel,
        "from": delivery.sender,
        "to": delivery.to,
        "content": delivery.content,
        "identifier": delivery.identifier,
        "deliveredAt": rfc3339(delivery.delivered_at),
    }


def page_position(token: str | None) -> int | None:
    before = pagination.decode(token)
    if before is None:
        return None
    if not before.isdigit():
        problem = Problem(
            errors.INVALID_PARAMETER, "pageToken is not a token this API issued", "$.pageToken"
        )
        raise ValidationFailed([problem])
    return int(before)


@router.get("/Sandbox/Messages")
async def list_sandbox_messages(
    account: Account,
    app: State,
    to: str | None = None,
    operationId: str | None = None,
    channel: str | None = None,
    pageToken: str | None = None,
    pageSize: str | None = None,
) -> Any:
    """List what the sandbox delivered, newest first (an OpenComms extension)."""
    wanted = filters.sandbox_filter(to=to, operation_id=operationId, channel=channel)
    size = pagination.page_size(pageSize)
    before = page_position(pageToken)
    async with app.db.read() as conn:
        found = await sandbox.list_deliveries(conn, account, wanted, before=before, limit=size + 1)
    positions = [str(d.position) for d in found]
    self_token, next_token = pagination.page(
        None if before is None else str(before), positions, size
    )
    body = {
        "messages": [entry(d) for d in found[:size]],
        "pagination": {"next": next_token, "self": self_token},
    }
    return JSONResponse(body)


@router.delete("/Sandbox/Messages", status_code=204, response_class=Response)
async def clear_sandbox_messages(
    account: Account, app: State, to: str | None = None, operationId: str | None = None
) -> Response:
    """Clear the sandbox inbox, or only what went to `to` or came from `operationId`."""
    wanted = filters.sandbox_filter(to=to, operation_id=operationId, channel=None)
    async with app.db.write() as conn:
        await sandbox.clear(
            conn, account, to=wanted.to, operation_id=wanted.operation_id, now=now_ms()
        )
    return Response(status_code=204)


def reply_command(body: dict[str, Any]) -> sandbox.Reply:
    """A SandboxInboundRequest body (already schema-checked) as a service command."""
    return sandbox.Reply(
        from_address=body["from"]["address"],
        from_channel=body["from"]["channel"],
        to_address=body["to"]["address"],
        to_channel=body["to"]["channel"],
        content=body["content"],
    )


@router.post("/Sandbox/Inbound", status_code=201)
async def sandbox_inbound(request: Request, account: Account, app: State, base: BaseUrl) -> Any:
    """A phone writes to one of the account's senders: stored as an INBOUND Message."""
    body = await read_json_object(request)
    wire.normalize_enums(body)
    to = body.get("to")
    if isinstance(to, dict) and isinstance(to.get("channel"), str):
        to["channel"] = to["channel"].upper()
    problems = body_check.check_extension_request("SandboxInboundRequest", body)
    if problems:
        raise ValidationFailed(problems)
    async with app.db.write() as conn:
        record = await sandbox.reply(conn, account, reply_command(body), now_ms())
    message = presenters.message_from_parts(record, record.content or {}, [], base)
    location = f"{base}/Messages/{record.id}"
    return JSONResponse(wire.dump(message), status_code=201, headers={"Location": location})


__all__ = ["SandboxFilter", "entry", "router"]
