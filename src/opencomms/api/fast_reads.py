"""The hot GETs without the framework: the message list, one message, one operation.

api/fast_path.py hands these three routes here; everything else goes to FastAPI. The answers
are the routers' (api/messages.py, api/operations.py), byte for byte (tests/api/
test_fast_reads.py compares them): the same query parsing (api/filters.py, api/pagination.py)
and errors, the same rows, but read with constant SQL through the driver
(store/fast_reads.py) and rendered to plain dicts for orjson instead of through pydantic.
"""

from typing import Any

from starlette.requests import Request

from opencomms import ids
from opencomms.api import filters, pagination
from opencomms.api.presenters import _to, operation_uri, seek_uri, session_uri
from opencomms.api.responses import JSONResponse
from opencomms.clock import rfc3339
from opencomms.domain import errors
from opencomms.domain.errors import NotFound
from opencomms.domain.records import OperationStats
from opencomms.domain.send import render_content
from opencomms.store import fast_reads
from opencomms.store.db import Database
from opencomms.store.fast_reads import AttemptRow, MessageRow

# The stats' counters, in the order wire.OperationStats lists them.
_STATUSES = (
    "QUEUED",
    "SENT",
    "SCHEDULED",
    "DELIVERED",
    "READ",
    "UNDELIVERED",
    "FAILED",
    "CANCELED",
)


def message_metadata(row: MessageRow, base: str) -> dict[str, Any]:
    """As presenters.message_metadata dumps it."""
    related = []
    if row.operation_id:
        uri = operation_uri(base, row.operation_id)
        related.append({"name": "OPERATION", "id": row.operation_id, "uri": uri})
    if row.session_id:
        uri = session_uri(base, row.session_id)
        related.append({"name": "SESSION", "id": row.session_id, "uri": uri})
    return {
        "id": row.id,
        "from": row.sender or {},
        "to": _to(row.recipient),
        "status": row.status,
        "related": related,
        "tags": row.tags,
        "scheduledFor": rfc3339(row.send_at),
        "createdAt": rfc3339(row.created_at) or "",
        "updatedAt": rfc3339(row.updated_at) or "",
        "deletedAt": rfc3339(row.deleted_at),
    }


def _attempt(attempt: AttemptRow, message_url: str, base: str) -> dict[str, Any]:
    error = None
    if attempt.error_code is not None:
        error = {
            "code": attempt.error_code,
            "message": attempt.error_message or "",
            "infoUrl": errors.info_url(attempt.error_code),
        }
    identifier = attempt.external_id
    return {
        "from": attempt.sender,
        "to": attempt.recipient,
        "status": attempt.status,
        "attemptedAt": rfc3339(attempt.attempted_at) or "",
        "infoUrl": seek_uri(base, identifier) if identifier else message_url,
        "error": error,
        "identifier": identifier,
    }


def operation_stats(stats: OperationStats) -> dict[str, int]:
    body = {
        "total": stats.total,
        "recipients": stats.recipients,
        "attempts": stats.attempts,
        "unaddressable": stats.unaddressable,
    }
    for status in _STATUSES:
        body[status.lower()] = stats.count(status)
    return body


async def list_messages(request: Request, db: Database, account: str, base: str) -> JSONResponse:
    """GET /Messages, as api/messages.list_messages answers it."""
    query = request.query_params
    message_filter = filters.message_filter(
        operation_id=query.get("operationId"),
        session_id=query.get("sessionId"),
        start=query.get("startDate"),
        end=query.get("endDate"),
        profile=query.get("profile"),
        channel=query.get("channel"),
        status=query.get("status"),
        tags=query.get("tags"),
    )
    size = filters.page_size(query.get("pageSize"))
    before = pagination.decode(query.get("pageToken"))
    assert db.direct is not None
    rows = await fast_reads.list_messages(
        db.direct, db.dialect, account, message_filter, before_id=before, limit=size + 1
    )
    self_token, next_token = pagination.page(before, [r.id for r in rows], size)
    body = {
        "messages": [message_metadata(row, base) for row in rows[:size]],
        "pagination": {"next": next_token, "self": self_token},
    }
    return JSONResponse(body)


async def fetch_message(db: Database, account: str, base: str, message_id: str) -> JSONResponse:
    """GET /Messages/{messageId}, as api/messages.fetch_message answers it."""
    if not message_id.startswith(ids.MESSAGE_PREFIX):
        raise NotFound(f"Message {message_id}")  # an email is not a message
    assert db.direct is not None
    detail = await fast_reads.message_detail(db.direct, account, message_id)
    if detail is None:
        raise NotFound(f"Message {message_id}")
    content = detail.content
    if content is None:
        if detail.operation_content is None:
            raise NotFound(f"Message {message_id}")
        # Not dispatched yet: the operation's content rendered for this recipient.
        content = render_content(detail.operation_content, detail.variables)
    body = message_metadata(detail.message, base)
    body["content"] = content
    message_url = f"{base}/Messages/{message_id}"
    body["attempts"] = [_attempt(a, message_url, base) for a in detail.attempts]
    return JSONResponse(body)


async def fetch_operation(db: Database, account: str, operation_id: str) -> JSONResponse:
    """GET /Messages/Operations/{operationId}, as api/operations.fetch_operation answers it."""
    assert db.direct is not None
    found = await fast_reads.operation_with_stats(db.direct, account, operation_id)
    if found is None:
        raise NotFound(f"Operation {operation_id}")
    body = {
        "id": found.id,
        "status": found.status,
        "stats": operation_stats(found.stats),
        "createdAt": rfc3339(found.created_at) or "",
        "updatedAt": rfc3339(found.updated_at) or "",
    }
    return JSONResponse(body)
