"""Sending emails: the command a POST /Emails carries, and every check it must pass.

The Messages checks are reused where they mean the same (Liquid parsing, missing variables
found once per set of variable names, tags rendered per recipient, the schedule window); the
email rules add addresses (email-validator), custom headers and attachments. Every problem is
reported at once with its JSON path, as for messages.
"""

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opencomms.domain import errors
from opencomms.domain.channels import AddressChannel, ChannelType
from opencomms.domain.email_rules import check_address, header_problem
from opencomms.domain.routing import Address, Sender, implicit_sender_id
from opencomms.domain.send import (
    PreparedSend,
    Recipient,
    SendCommand,
    _check_recipients,
    _compile_all,
    _Personalizer,
    _Problems,
    _schedule,
)

MAX_RECIPIENTS = 10_000
EMAIL = ChannelType.EMAIL.value
EMAIL_ADDRESS = AddressChannel.EMAIL.value

# OpenComms' own codes for what only emails can get wrong (documented in docs/email.md).
INVALID_EMAIL_ADDRESS = 23001
HEADER_REFUSED = 23002
INVALID_ATTACHMENT = 23003
_CONTENT_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+$")
# What of the content is stored and rendered; anything else the schema lets through is not
# part of an email.
CONTENT_KEYS = ("subject", "html", "text", "attachments", "headers")


@dataclass(slots=True)
class EmailRecipient(Recipient):
    name: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The stored recipient: its address with the EMAIL address channel, and its name."""
        if not self.addresses:
            return Recipient.as_json(self)
        out: dict[str, Any] = {"address": self.addresses[0].address, "channel": EMAIL_ADDRESS}
        if self.name:
            out["name"] = self.name
        return out


@dataclass(frozen=True, slots=True)
class EmailSender(Sender):
    name: str | None = None

    def as_json(self) -> dict[str, str]:
        out = Sender.as_json(self)
        if self.name:
            out["name"] = self.name
        return out


def email_sender(address: str, name: str | None, sender_id: str | None = None) -> EmailSender:
    return EmailSender(address, EMAIL, sender_id or implicit_sender_id(EMAIL, address), None, name)


@dataclass
class SendEmailsCommand:
    recipients: list[EmailRecipient]
    content: dict[str, Any]
    # The sender's address, from `from.address` or the declared sender `from.senderId` names;
    # None when the request's `from` was refused already (the caller holds that problem).
    sender_address: str | None
    sender_name: str | None = None
    sender_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    send_at: list[str] | None = None
    ip_pool_name: str | None = None
    sender: EmailSender | None = field(default=None, init=False)  # set by prepare_emails


def recipient(item: dict[str, Any]) -> EmailRecipient:
    variables = item.get("variables") or {}
    if "address" in item:
        address = Address(item["address"], EMAIL_ADDRESS)
        return EmailRecipient([address], variables=variables, name=item.get("name"))
    return EmailRecipient([], item["profileId"], item["memoryStoreId"], variables)


def _check_count(command: SendEmailsCommand, problems: _Problems) -> bool:
    count = len(command.recipients)
    if 1 <= count <= MAX_RECIPIENTS:
        return True
    why = "at least one recipient is needed" if not count else f"at most {MAX_RECIPIENTS:,}"
    problems.add(errors.INVALID_PARAMETER, f"to: {why} ({count} given)", "$.to")
    return False


def _check_addresses(command: SendEmailsCommand, problems: _Problems) -> None:
    for index, item in enumerate(command.recipients):
        if item.skip or not item.addresses:
            continue
        normalized, why = check_address(item.addresses[0].address)
        if why is not None:
            problems.add(
                INVALID_EMAIL_ADDRESS, f"Invalid email address: {why}", f"$.to[{index}].address"
            )
        elif normalized is not None:
            item.addresses[0] = Address(normalized, EMAIL_ADDRESS)


def _check_sender(command: SendEmailsCommand, problems: _Problems) -> None:
    if command.sender_address is None:
        return
    normalized, why = check_address(command.sender_address)
    if normalized is None:
        where = "$.from.senderId" if command.sender_id else "$.from.address"
        problems.add(INVALID_EMAIL_ADDRESS, f"Invalid sender address: {why}", where)
        return
    command.sender = email_sender(normalized, command.sender_name, command.sender_id)


def _check_headers(content: dict[str, Any], problems: _Problems) -> None:
    headers = content.get("headers")
    for name, value in (headers if isinstance(headers, dict) else {}).items():
        if isinstance(value, str) and (why := header_problem(name, value)) is not None:
            problems.add(HEADER_REFUSED, why, f"$.content.headers.{name}")


def _check_attachments(content: dict[str, Any], problems: _Problems) -> None:
    items = content.get("attachments")
    seen: set[str] = set()
    for index, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        where = f"$.content.attachments[{index}]"
        try:
            base64.b64decode(str(item.get("content", "")), validate=True)
        except (binascii.Error, ValueError):
            problems.add(INVALID_ATTACHMENT, "content must be base64", f"{where}.content")
        if not _CONTENT_TYPE.match(str(item.get("contentType", ""))):
            problems.add(
                INVALID_ATTACHMENT, "contentType must be type/subtype", f"{where}.contentType"
            )
        cid = item.get("cid")
        if isinstance(cid, str):
            if cid in seen or not cid.isprintable() or any(c in cid for c in "<> "):
                problems.add(
                    INVALID_ATTACHMENT, f"cid '{cid}' is repeated or malformed", f"{where}.cid"
                )
            seen.add(cid)


def templated(content: dict[str, Any]) -> dict[str, Any]:
    """The parts of the content Liquid personalizes: every text field but attachment data."""
    out = {key: content[key] for key in CONTENT_KEYS if key in content}
    if isinstance(out.get("attachments"), list):
        out["attachments"] = [
            {k: v for k, v in item.items() if k != "content"} if isinstance(item, dict) else item
            for item in out["attachments"]
        ]
    return out


def prepare_emails(command: SendEmailsCommand, now: datetime | None = None) -> PreparedSend:
    """Checks a send of emails; raises ValidationFailed with every problem found."""
    now = now or datetime.now(UTC)
    problems = _Problems()
    if not _check_count(command, problems):
        problems.raise_if_any()
    _check_addresses(command, problems)
    _check_sender(command, problems)
    _check_headers(command.content, problems)
    _check_attachments(command.content, problems)
    # The Messages machinery, fed the email's text fields and tags.
    generic = SendCommand(
        list(command.recipients), templated(command.content), None, command.tags, command.send_at
    )
    personalizer = _Personalizer(generic, problems)
    if command.ip_pool_name is not None:
        pool = _compile_all([("$.ipPoolName", command.ip_pool_name)], problems)
        personalizer.content += [t for _, t in pool if not t.is_static]
    send_at, per_recipient = _schedule(generic, now, problems)
    tags = _check_recipients(generic, personalizer, problems)
    if command.sender is None:
        raise errors.ValidationFailed(problems.items)  # the caller holds why `from` failed
    problems.raise_if_any()
    return PreparedSend(
        recipients=list(command.recipients),
        tags=tags,
        send_at=per_recipient,
        senders=[None if not r.addresses else command.sender for r in command.recipients],
        requested_sender=command.sender,
        send_at_ms=send_at,
    )


def stored_content(command: SendEmailsCommand) -> dict[str, Any]:
    """The operation's content as dispatch renders it per recipient and the EMAIL channel
    reads it: the email's own fields, the sender's display name and the IP pool."""
    content = {key: command.content[key] for key in CONTENT_KEYS if key in command.content}
    if command.sender is not None:
        sender: dict[str, str] = {"address": command.sender.address}
        if command.sender.name:
            sender["name"] = _literal(command.sender.name)
        content["from"] = sender
    if command.ip_pool_name is not None:
        content["ipPoolName"] = command.ip_pool_name
    return content


def _literal(text: str) -> str:
    """Text Liquid renders as is (a display name is not a template)."""
    return "{% raw %}" + text + "{% endraw %}" if "{" in text else text
