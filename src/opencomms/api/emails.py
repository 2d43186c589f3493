"""The Emails resource: send, list, fetch, delete, and their operations."""

from typing import Any

from fastapi import APIRouter, Request

from opencomms import ids
from opencomms.api import body_check, email_presenters, email_wire, filters, pagination, wire
from opencomms.api.deps import Account, BaseUrl, State
from opencomms.api.idempotency import record_in
from opencomms.api.messages import accepted, is_costly, off_loop, read_json_object
from opencomms.api.responses import JSONResponse
from opencomms.api.wire import _refused_parts
from opencomms.clock import now_ms
from opencomms.domain.emails import (
    EmailRecipient,
    SendEmailsCommand,
    prepare_emails,
    recipient,
    stored_content,
)
from opencomms.domain.errors import NotFound, Problem, ValidationFailed
from opencomms.domain.records import MessageRecord, OperationFilter, OperationKind
from opencomms.domain.send import MAX_PROBLEMS
from opencomms.services import operations
from opencomms.store import emails, reads, sends

router = APIRouter(tags=["Emails"])


def _sender(given: Any, refused: bool) -> tuple[str | None, str | None, str | None]:
    """`from` as given: its address and name, or the declared sender's id it names."""
    if refused or not isinstance(given, dict):
        return None, None, None
    if "senderId" in given:
        return None, None, given["senderId"]
    return given["address"], given.get("name"), None


def _command(body: dict[str, Any], refused: frozenset[str]) -> SendEmailsCommand:
    """The body as a command, leaving out what the schema check already refused."""
    fields, skipped = _refused_parts(refused)
    address, name, sender_id = _sender(body.get("from"), "from" in fields)
    to = body.get("to")
    schedule = None if "schedule" in fields else body.get("schedule")
    return SendEmailsCommand(
        recipients=[
            EmailRecipient([], skip=True) if i in skipped else recipient(item)
            for i, item in enumerate(to if isinstance(to, list) else [])
        ],
        content={} if "content" in fields else body["content"],
        sender_address=address,
        sender_name=name,
        sender_id=sender_id,
        tags={} if "tags" in fields else body.get("tags") or {},
        send_at=schedule.get("sendAt") if schedule else None,
        ip_pool_name=None if "ipPoolName" in fields else body.get("ipPoolName"),
    )


def _schema_problems(body: dict[str, Any]) -> list[Problem]:
    return body_check.check_request("/Emails", "post", body) + body_check.nul_problems(body)


@router.post("/Emails", status_code=202)
async def send_emails(request: Request, account: Account, app: State, base: BaseUrl) -> Any:
    """Send Emails: up to 10,000 recipients; every one is stored before the 202."""
    body = await read_json_object(request)
    # A large body is checked on a thread, as a send of Messages is: one validator call for
    # 10,000 recipients would hold the event loop.
    costly = is_costly(await request.body())
    problems = await off_loop(costly, _schema_problems, body)
    refused = frozenset(p.context for p in problems if p.context)
    command = _command(body, refused)
    async with app.db.read() as conn:
        available = await sends.account_senders(conn, account, None)
    try:
        prepared = await off_loop(costly, prepare_emails, command, available)
    except ValidationFailed as failed:
        # A field the schema refused already is not reported twice.
        problems += [p for p in failed.problems if p.context not in refused]
    if problems:
        raise ValidationFailed(problems[:MAX_PROBLEMS])
    if any(s.mps for s in available.senders):
        async with app.db.read() as conn:
            validity = app.settings.worker.validity_seconds
            full = await sends.full_senders(conn, prepared, available, validity, "$.from")
        if full:
            raise ValidationFailed(full)
    operation_id = ids.operation_id()
    response = accepted(
        operation_id,
        base,
        f"{base}/Emails?operationId={operation_id}",
        email_presenters.operation_uri(base, operation_id),
    )
    async with app.db.write() as conn:
        await emails.insert_emails(
            conn,
            account_sid=account,
            operation_id=operation_id,
            prepared=prepared,
            content=stored_content(command),
            sender=body["from"],
            now=now_ms(),
        )
        await record_in(conn, request, response)  # an Idempotency-Key's 202 commits with it
    if app.stats is not None:
        app.stats.inserted("messages", len(prepared.recipients))
    return response


@router.get("/Emails")
async def list_emails(
    account: Account,
    app: State,
    page: pagination.Paging,
    base: BaseUrl,
    operationId: str | None = None,
    startDate: str | None = None,
    endDate: str | None = None,
    status: str | None = None,
    tags: str | None = None,
) -> Any:
    """List Emails, newest first, with every filter of the spec."""
    email_filter = filters.email_filter(
        operation_id=operationId, start=startDate, end=endDate, status=status, tags=tags
    )
    async with app.db.read() as conn:
        records = await emails.list_emails(
            conn, account, email_filter, before_id=page.before, limit=page.limit
        )
        from_of = await emails.senders_of(conn, {r.operation_id for r in page.shown(records)})

    def item(record: MessageRecord) -> email_wire.EmailMetadata:
        sender = email_presenters.display_sender(from_of.get(record.operation_id))
        return email_presenters.email_metadata(record, sender, base)

    return page.answer(
        records,
        lambda shown, links: email_wire.EmailList(
            emails=[item(r) for r in shown], pagination=links
        ),
    )


@router.get("/Emails/Operations")
async def list_email_operations(
    account: Account,
    app: State,
    page: pagination.Paging,
    startDate: str | None = None,
    endDate: str | None = None,
    status: str | None = None,
) -> Any:
    """List Email Operations, newest first, with stats derived from their emails."""
    operation_filter: OperationFilter = filters.operation_filter(startDate, endDate, status)
    records, stats = await operations.list_operations(
        app.db, account, operation_filter, before_id=page.before, limit=page.limit,
        shown=page.size, kind=OperationKind.EMAILS,
    )  # fmt: skip
    return page.answer(
        records,
        lambda shown, links: email_wire.EmailOperationList(
            operations=[email_presenters.email_operation(r, stats[r.id]) for r in shown],
            pagination=links,
        ),
    )


@router.get("/Emails/Operations/{operationId}")
async def fetch_email_operation(operationId: str, account: Account, app: State) -> Any:
    """Fetch an Email Operation with its stats."""
    record, stats = await operations.get_operation(
        app.db, account, operationId, OperationKind.EMAILS
    )
    return JSONResponse(wire.dump(email_presenters.email_operation(record, stats)))


@router.post("/Emails/Operations/{operationId}/Cancel", status_code=202)
async def cancel_emails(operationId: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Cancel an Email Operation (an extension, as for Messages): emails not yet handed to
    a route become CANCELED."""
    async with app.db.write() as conn:
        await operations.cancel(conn, account, operationId, now_ms(), OperationKind.EMAILS)
    return accepted(
        operationId,
        base,
        f"{base}/Emails?operationId={operationId}",
        email_presenters.operation_uri(base, operationId),
    )


@router.get("/Emails/{emailId}")
async def fetch_email(emailId: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Fetch an Email with its content resolved for its recipient."""
    async with app.db.read() as conn:
        record = await emails.get_email(conn, account, emailId)
        operation = None
        if record is not None:
            operation = await reads.get_operation(conn, account, record.operation_id)
    if record is None or operation is None:
        raise NotFound(f"Email {emailId}")
    return JSONResponse(wire.dump(email_presenters.email(record, operation, base)))


@router.delete("/Emails/{emailId}", status_code=202)
async def delete_email(emailId: str, account: Account, app: State, base: BaseUrl) -> Any:
    """Delete an Email: one not yet handed to a route is canceled, and it is gone from
    lists and fetches from then on (its row keeps `deletedAt`)."""
    async with app.db.write() as conn:
        if not await emails.delete_email(conn, account, emailId, now_ms()):
            raise NotFound(f"Email {emailId}")
    location = email_presenters.email_uri(base, emailId)
    body = email_wire.AcceptedResource(resource_id=emailId, resource_location=location)
    return JSONResponse(wire.dump(body), status_code=202, headers={"Location": location})
