"""Sending emails: the command a POST /Emails carries, and every check it must pass.

The Messages checks are reused where they mean the same (Liquid parsing, missing variables
found once per set of variable names, tags rendered per recipient, the schedule window); the
email rules add addresses (email-validator), custom headers and attachments. Every problem is
reported at once with its JSON path, as for messages.
"""

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opencomms.domain import errors
from opencomms.domain.channels import AddressChannel, ChannelType
from opencomms.domain.email_rules import check_address, header_problem
from opencomms.domain.routing import AccountSenders, Address, Candidates, Planner, Sender
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
from opencomms.domain.senders import SenderRecord, SenderStatus
from opencomms.templating import CompiledTemplate, TemplateError

MAX_RECIPIENTS = 10_000
# The sandbox names its email hand-offs `<emailId>@` this: the Message-ID it would have written.
SANDBOX_EMAIL_DOMAIN = "sandbox.opencomms.local"
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


ANY_ADDRESS = "*"  # a declared EMAIL sender of this address covers every `from` (the sandbox's)


@dataclass(frozen=True, slots=True)
class EmailSender(Sender):
    name: str | None = None

    def as_json(self) -> dict[str, str]:
        out = Sender.as_json(self)
        if self.name:
            out["name"] = self.name
        return out


def covering(address: str, senders: Sequence[SenderRecord]) -> SenderRecord | None:
    """The declared EMAIL sender a `from` address sends as: the address itself, else its
    domain or a parent domain (`example.com` covers `alerts@mail.example.com`), else one
    declared for any address (`*`)."""
    email_senders = [s for s in senders if s.channel == ChannelType.EMAIL]
    by_address = {s.address.lower(): s for s in email_senders}
    domain = address.rpartition("@")[2].lower()
    labels = domain.split(".")
    for key in (address.lower(), *(".".join(labels[i:]) for i in range(len(labels))), "*"):
        if key in by_address:
            return by_address[key]
    return None


@dataclass
class SendEmailsCommand:
    recipients: list[EmailRecipient]
    content: dict[str, Any]
    # `from` as given: an address (with its name) or a declared sender's id; both None when
    # the schema check refused `from` already (the caller holds that problem).
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


def _check_sender(
    command: SendEmailsCommand, available: AccountSenders, problems: _Problems
) -> None:
    """Resolves `from` to the declared sender it sends as, and the route that carries it."""
    if command.sender_id is not None:
        record = next((s for s in available.senders if s.id == command.sender_id), None)
        where, address, name = "$.from.senderId", None, None
        if record is not None and record.channel == ChannelType.EMAIL:
            address, name = record.address, record.display_name
            if "@" not in address:  # a domain (or any address): it sends as noreply@ it
                address = f"noreply@{address if address != ANY_ADDRESS else 'example.com'}"
        else:
            record = None
    elif command.sender_address is not None:
        where, name = "$.from.address", command.sender_name
        address, why = check_address(command.sender_address)
        if address is None:
            problems.add(INVALID_EMAIL_ADDRESS, f"Invalid sender address: {why}", where)
            return
        record = covering(address, available.senders)
    else:
        return
    if record is None or address is None:
        given = command.sender_id or command.sender_address
        problems.add(errors.INVALID_FROM, f"No EMAIL sender of this account covers {given}", where)
        return
    if record.status != SenderStatus.ACTIVATED:
        problems.add(
            errors.INVALID_FROM, f"The EMAIL sender {record.address} is deactivated", where
        )
        return
    command.sender = EmailSender(
        address=address, channel=EMAIL, sender_id=record.id, route=record.route, name=name
    )


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


POOL_NAME_LENGTH = (2, 64)  # the spec's minLength and maxLength of ipPoolName


def _check_rendered_pool(
    recipients: Sequence[EmailRecipient], template: CompiledTemplate, problems: _Problems
) -> None:
    """The spec's length bounds hold for the pool name each recipient's email is sent with,
    not only for the template (which the schema checked): one problem names the first
    recipient whose name is out of bounds and how many are."""
    low, high = POOL_NAME_LENGTH
    bad: list[tuple[int, int]] = []
    for index, item in enumerate(recipients):
        if item.skip:
            continue
        try:
            length = len(template.render(item.variables))
        except TemplateError:
            continue  # a missing variable: reported for this recipient already
        if not low <= length <= high:
            bad.append((index, length))
    if bad:
        index, length = bad[0]
        more = f" ({len(bad)} recipients in all)" if len(bad) > 1 else ""
        problems.add(
            errors.INVALID_PARAMETER,
            f"Recipient {index}: ipPoolName renders to a length of {length}, not {low} to"
            f" {high}{more}",
            "$.ipPoolName",
        )


def templated(content: dict[str, Any]) -> dict[str, Any]:
    """The parts of the content Liquid personalizes: every text field but attachment data."""
    out = {key: content[key] for key in CONTENT_KEYS if key in content}
    if isinstance(out.get("attachments"), list):
        out["attachments"] = [
            {k: v for k, v in item.items() if k != "content"} if isinstance(item, dict) else item
            for item in out["attachments"]
        ]
    return out


def prepare_emails(
    command: SendEmailsCommand,
    available: AccountSenders = AccountSenders(),
    now: datetime | None = None,
) -> PreparedSend:
    """Checks a send of emails and plans each one's route; raises ValidationFailed with every
    problem found."""
    now = now or datetime.now(UTC)
    problems = _Problems()
    if not _check_count(command, problems):
        problems.raise_if_any()
    _check_addresses(command, problems)
    _check_sender(command, available, problems)
    _check_headers(command.content, problems)
    _check_attachments(command.content, problems)
    # The Messages machinery, fed the email's text fields and tags.
    generic = SendCommand(
        list(command.recipients), templated(command.content), None, command.tags, command.send_at
    )
    personalizer = _Personalizer(generic, problems)
    pool: list[tuple[str, CompiledTemplate]] = []
    if command.ip_pool_name is not None:
        pool = _compile_all([("$.ipPoolName", command.ip_pool_name)], problems)
        pool = [(p, t) for p, t in pool if not t.is_static]
        personalizer.content += pool
    send_at, per_recipient = _schedule(generic, now, problems)
    tags = _check_recipients(generic, personalizer, problems)
    if pool:
        _check_rendered_pool(command.recipients, pool[0][1], problems)
    if command.sender is None:
        raise errors.ValidationFailed(problems.items)  # the caller holds why `from` failed
    problems.raise_if_any()
    planner = Planner(Candidates((command.sender,), command.sender))
    return PreparedSend(
        recipients=list(command.recipients),
        tags=tags,
        send_at=per_recipient,
        plans=[planner(r.addresses) for r in command.recipients],
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


def addressed(content: dict[str, Any], recipient: dict[str, Any]) -> dict[str, Any]:
    """An email's rendered content with its recipient's display name as `to`, which the
    EMAIL channels write into the To header. The name is the stored recipient's, not a
    template, so it is added after rendering; content without a named recipient (every
    message, an email to a bare address) is returned as is."""
    name = recipient.get("name")
    if not name or "address" not in recipient:
        return content
    return {**content, "to": {"address": recipient["address"], "name": str(name)}}
