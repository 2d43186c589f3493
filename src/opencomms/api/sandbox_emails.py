"""The sandbox mailbox's extensions (`/Sandbox/Emails`): what it delivered, and the raw MIME.

Nothing is stored for the mailbox: an entry is the sandbox's attempt row plus the email's
rendered content (store/sandbox.py), and the raw message is written again from them by the
SMTP route's own writer (channels/smtp), so it is byte for byte what a route with no DKIM
key and no `List-Unsubscribe` would have sent at that second: same headers, same encodings,
same boundaries (derived from the Message-ID), Date the attempt's time.
"""

from email.utils import formatdate
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from opencomms import ids
from opencomms.api import filters, pagination
from opencomms.api.deps import Account, BaseUrl, State
from opencomms.api.responses import JSONResponse
from opencomms.api.sandbox import page_position
from opencomms.channels import OutboundMessage
from opencomms.channels.smtp import SmtpRouteConfig
from opencomms.channels.smtp.envelope import email_of
from opencomms.channels.smtp.mime import Email, Mailbox, clean, render
from opencomms.clock import now_ms, rfc3339
from opencomms.domain.emails import SANDBOX_EMAIL_DOMAIN
from opencomms.domain.errors import NotFound
from opencomms.services import sandbox
from opencomms.services.sandbox import Delivery, SandboxFilter

router = APIRouter(tags=["OpenComms extensions"])

ENTRY_PREFIX = "sbx_"
# The route the sandbox plays: Message-IDs `<emailId>@sandbox.opencomms.local`, as its
# hand-off identifiers are; no DKIM key, no List-Unsubscribe.
SANDBOX_ROUTE = SmtpRouteConfig(host=SANDBOX_EMAIL_DOMAIN, message_id_domain=SANDBOX_EMAIL_DOMAIN)


def email_date(at_ms: int) -> str:
    """The Date header of an email handed off at `at_ms`, as the SMTP route writes it."""
    return formatdate(at_ms // 1000, localtime=False)


def written(delivery: Delivery) -> Email:
    """The email as the SMTP route's writer has it: names, text part, attachments decoded."""
    message = OutboundMessage(
        delivery.message_id,
        delivery.attempt,
        delivery.channel,
        delivery.sender,
        delivery.to,
        delivery.content,
    )
    return email_of(message, email_date(delivery.delivered_at), SANDBOX_ROUTE)


def _mailbox(mailbox: Mailbox) -> dict[str, str]:
    name = clean(mailbox.name).strip() if mailbox.name else ""
    return {"address": mailbox.address, **({"name": name} if name else {})}


def entry(delivery: Delivery, base: str) -> dict[str, Any]:
    """One mailbox entry on the wire (the extensions' SandboxEmail)."""
    email = written(delivery)
    return {
        "id": f"{ENTRY_PREFIX}{delivery.position}",
        "emailId": delivery.message_id,
        "operationId": delivery.operation_id,
        "attempt": delivery.attempt,
        "from": _mailbox(email.sender),
        "to": _mailbox(email.to),
        # Header values as they went out: a line break from a variable is a space there.
        "subject": clean(email.subject),
        "html": email.html,
        "text": email.text,
        "headers": {name: clean(value) for name, value in email.headers},
        "attachments": [
            {
                "filename": a.filename,
                "contentType": a.content_type,
                "contentId": a.content_id,
                "size": len(a.data),
            }
            for a in email.attachments
        ],
        "identifier": delivery.identifier,
        "deliveredAt": rfc3339(delivery.delivered_at),
        "rawUrl": f"{base}/Sandbox/Emails/{delivery.message_id}/Raw",
    }


@router.get("/Sandbox/Emails")
async def list_sandbox_emails(
    account: Account,
    app: State,
    base: BaseUrl,
    to: str | None = None,
    operationId: str | None = None,
    pageToken: str | None = None,
    pageSize: str | None = None,
) -> Any:
    """List what the sandbox mailbox received, newest first (an OpenComms extension)."""
    wanted = filters.sandbox_filter(to=to, operation_id=operationId, channel=None)
    size = pagination.page_size(pageSize)
    before = page_position(pageToken)
    async with app.db.read() as conn:
        found = await sandbox.list_deliveries(
            conn, account, wanted, before=before, limit=size + 1, kind=sandbox.EMAILS
        )
    positions = [str(d.position) for d in found]
    self_token, next_token = pagination.page(
        None if before is None else str(before), positions, size
    )
    body = {
        "emails": [entry(d, base) for d in found[:size]],
        "pagination": {"next": next_token, "self": self_token},
    }
    return JSONResponse(body)


@router.delete("/Sandbox/Emails", status_code=204, response_class=Response)
async def clear_sandbox_emails(
    account: Account, app: State, to: str | None = None, operationId: str | None = None
) -> Response:
    """Clear the mailbox, or only what went to `to` or came from `operationId`."""
    wanted = filters.sandbox_filter(to=to, operation_id=operationId, channel=None)
    async with app.db.write() as conn:
        await sandbox.clear(
            conn,
            account,
            to=wanted.to,
            operation_id=wanted.operation_id,
            now=now_ms(),
            kind=sandbox.EMAILS,
        )
    return Response(status_code=204)


@router.get("/Sandbox/Emails/{emailId}/Raw")
async def raw_sandbox_email(emailId: str, account: Account, app: State) -> Response:
    """The email as the recipient's server would have received it (message/rfc822)."""
    found: list[Delivery] = []
    if emailId.startswith(ids.EMAIL_PREFIX) and len(emailId) <= 64:
        async with app.db.read() as conn:
            found = await sandbox.list_deliveries(
                conn,
                account,
                SandboxFilter(email_id=emailId),
                before=None,
                limit=1,
                kind=sandbox.EMAILS,
            )
    if not found:
        raise NotFound(f"Sandbox email {emailId}")
    return Response(
        render(written(found[0])),
        media_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="{emailId}.eml"'},
    )
