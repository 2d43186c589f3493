"""Sending messages: the command a POST /Messages carries, and every check it must pass.

`prepare` reports every problem it finds (decision 2), each with the JSON path of the field.
It runs on up to 10,000 recipients inside the request, so the per-recipient loop stays cheap:
templates are parsed once, phone checks are cached, and missing variables are found with one
trial render per distinct set of variable names rather than one per recipient.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from opencomms.clock import to_ms
from opencomms.domain import errors, phone, schedule
from opencomms.domain.channels import AddressChannel
from opencomms.domain.routing import (
    AccountSenders,
    Address,
    Plan,
    Planner,
    Sender,
    SenderSpec,
    candidates,
)
from opencomms.templating import CompiledTemplate, TemplateError, compile_template

MAX_TEXT = 1600
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_PROBLEMS = 1000
_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-")
_PHONE_CHANNELS = frozenset({AddressChannel.PHONE, AddressChannel.WHATSAPP})


@dataclass(slots=True)
class Recipient:
    addresses: list[Address]
    profile_id: str | None = None
    memory_store_id: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    connected: bool = False  # given as `addresses`, not `address` + `channel`
    skip: bool = False  # refused by the schema check already: no further checks

    def as_json(self) -> dict[str, Any]:
        """The recipient as the request gave it, without its variables."""
        if self.connected:
            return {"addresses": [{"address": a, "channel": c} for a, c in self.addresses]}
        if self.addresses:
            address, channel = self.addresses[0]
            return {"address": address, "channel": channel}
        return {"profileId": self.profile_id, "memoryStoreId": self.memory_store_id}


@dataclass
class SendCommand:
    recipients: list[Recipient]
    content: dict[str, Any]
    sender: SenderSpec | None = None
    tags: dict[str, str] = field(default_factory=dict)
    send_at: list[str] | None = None


@dataclass
class PreparedSend:
    """A checked send, one entry per recipient in each list (columns, not 10,000 objects)."""

    recipients: list[Recipient]
    tags: list[dict[str, str]]  # the very same dict for every recipient when tags are static
    send_at: list[int | None]
    plans: list[Plan | None]  # the routes each recipient is tried on; None: unaddressable
    requested_sender: Sender  # what to show as `from` where no route exists
    send_at_ms: int | None  # the operation's: the earliest of them

    @property
    def all_unaddressable(self) -> bool:
        return all(plan is None for plan in self.plans)


class _Problems:
    def __init__(self) -> None:
        self.items: list[errors.Problem] = []

    def add(self, code: int, message: str, context: str | None) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(errors.Problem(code, message, context))

    def raise_if_any(self) -> None:
        if self.items:
            raise errors.ValidationFailed(self.items)


def string_leaves(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a JSON value with its path: the text fields Liquid may personalize."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_leaves(item, f"{path}[{index}]")


def _compile_all(
    leaves: list[tuple[str, str]], problems: _Problems
) -> list[tuple[str, CompiledTemplate]]:
    compiled = []
    for path, source in leaves:
        try:
            compiled.append((path, compile_template(source)))
        except TemplateError as error:
            problems.add(errors.INVALID_PARAMETER, f"Invalid Liquid template: {error}", path)
    return compiled


def _check_static_content(content: dict[str, Any], problems: _Problems) -> None:
    for path, text in string_leaves(content, "$.content"):
        is_text = path.endswith(".text") and "suggestions" not in path
        if is_text and "{" not in text and len(text) > MAX_TEXT:
            problems.add(
                errors.BODY_TOO_LONG,
                f"The text exceeds the {MAX_TEXT} character limit ({len(text)} characters)",
                path,
            )
        if path.endswith((".url", ".fileUrl")) and "{" not in text and not _is_http_url(text):
            problems.add(errors.INVALID_MEDIA_URL, f"'{text}' is not an http(s) URL", path)


def _is_http_url(text: str) -> bool:
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_addresses(recipients: list[Recipient], problems: _Problems) -> None:
    for index, recipient in enumerate(recipients):
        if recipient.skip:
            continue
        connected = recipient.connected
        for number, address in enumerate(recipient.addresses):
            if address.channel in _PHONE_CHANNELS and not phone.is_possible(address.address):
                where = f"$.to[{index}].addresses[{number}]" if connected else f"$.to[{index}]"
                problems.add(
                    errors.NOT_A_MOBILE_NUMBER,
                    f"'{address.address}' is not a valid E.164 phone number",
                    f"{where}.address",
                )


def _tag_problem(key: str, value: str) -> str | None:
    if not key or len(key) > MAX_TAG_KEY or not set(key) <= _TAG_CHARS:
        return f"tag key '{key}' must be 1-{MAX_TAG_KEY} characters of [a-zA-Z0-9._~-]"
    if not value or len(value) > MAX_TAG_VALUE or not set(value) <= _TAG_CHARS:
        return f"tag '{key}' value must be 1-{MAX_TAG_VALUE} characters of [a-zA-Z0-9._~-]"
    return None


class _Personalizer:
    """Renders the templates of one request for its recipients, cheaply."""

    def __init__(self, command: SendCommand, problems: _Problems) -> None:
        leaves = list(string_leaves(command.content, "$.content"))
        self.content = [(p, t) for p, t in _compile_all(leaves, problems) if not t.is_static]
        tag_leaves = [(f"$.tags.{k}", k) for k in command.tags]
        tag_leaves += [(f"$.tags.{k}", v) for k, v in command.tags.items()]
        tag_templates = _compile_all(tag_leaves, problems)
        self.tags_static = all(t.is_static for _, t in tag_templates)
        self.tag_pairs = [
            (compile_template(k), compile_template(v))
            for k, v in command.tags.items()
            if len(tag_templates) == 2 * len(command.tags)
        ]
        self.checked_keysets: dict[frozenset[str], tuple[str, TemplateError] | None] = {}
        self.reported: set[str] = set()  # template paths whose failure is already reported

    def trial_failure(self, variables: dict[str, str]) -> tuple[str, TemplateError] | None:
        """Where and why a recipient's render fails, found once per distinct set of names."""
        keyset = frozenset(variables)
        if keyset not in self.checked_keysets:
            self.checked_keysets[keyset] = self._trial_render(variables)
        return self.checked_keysets[keyset]

    def _trial_render(self, variables: dict[str, str]) -> tuple[str, TemplateError] | None:
        templates = self.content + [
            (f"$.tags.{k.source}", t) for k, v in self.tag_pairs for t in (k, v)
        ]
        for path, template in templates:
            try:
                template.render(variables)
            except TemplateError as error:
                return path, error
        return None

    def tags(self, variables: dict[str, str]) -> dict[str, str]:
        return {k.render(variables): v.render(variables) for k, v in self.tag_pairs}


def _check_recipients(
    command: SendCommand, personalizer: _Personalizer, problems: _Problems
) -> list[dict[str, str]]:
    """Per-recipient checks; returns each recipient's rendered tags."""
    static_tags = dict(command.tags)
    if personalizer.tags_static:
        for key, value in static_tags.items():
            if (why := _tag_problem(key, value)) is not None:
                problems.add(errors.INVALID_PARAMETER, why, f"$.tags.{key}")
    rendered: list[dict[str, str]] = []
    for index, recipient in enumerate(command.recipients):
        if recipient.skip:
            rendered.append(static_tags)
            continue
        failure = personalizer.trial_failure(recipient.variables)
        if failure is not None:
            _report_render_failure(index, *failure, problems, personalizer.reported)
            rendered.append(static_tags)
            continue
        if personalizer.tags_static:
            rendered.append(static_tags)
            continue
        tags = personalizer.tags(recipient.variables)
        for key, value in tags.items():
            if (why := _tag_problem(key, value)) is not None:
                problems.add(errors.INVALID_PARAMETER, f"Recipient {index}: {why}", "$.tags")
        rendered.append(tags)
    return rendered


def _report_render_failure(
    index: int, path: str, error: TemplateError, problems: _Problems, reported: set[str]
) -> None:
    if error.variable is not None:
        problems.add(
            errors.INVALID_PARAMETER,
            f"Recipient {index} has no value for the template variable '{error.variable}'"
            " (give it in `variables` or use a `default` filter)",
            f"$.to[{index}].variables.{error.variable}",
        )
    elif path not in reported:
        # A limit (time, loops, sizes) or a failing filter: the template is at fault, so it
        # is reported once, with the first recipient it failed for.
        reported.add(path)
        problems.add(
            errors.INVALID_PARAMETER,
            f"The template cannot be rendered for recipient {index}: {error}",
            path,
        )


def _first_phone(recipient: Recipient) -> str | None:
    for address in recipient.addresses:
        if address.channel in _PHONE_CHANNELS:
            return address.address
    return None


def _schedule(
    command: SendCommand, now: datetime, problems: _Problems
) -> tuple[int | None, list[int | None]]:
    """The operation's send time and each recipient's (local times differ by number)."""
    count = len(command.recipients)
    if not command.send_at:
        # The spec sets no minItems on sendAt: an empty list schedules nothing (send now).
        return None, [None] * count
    try:
        moment = schedule.parse_send_at(command.send_at[0])
    except schedule.ScheduleError as error:
        problems.add(errors.INVALID_SCHEDULE, str(error), "$.schedule.sendAt[0]")
        return None, [None] * count
    instants = [schedule.resolve(moment, _first_phone(r)) for r in command.recipients]
    for instant in {min(instants), max(instants)}:
        if (why := schedule.check_window(instant, now)) is not None:
            problems.add(errors.INVALID_SCHEDULE, why, "$.schedule.sendAt[0]")
            break
    per_recipient: list[int | None] = [max(to_ms(i), to_ms(now)) for i in instants]
    return min(t for t in per_recipient if t is not None), per_recipient


def prepare(
    command: SendCommand,
    available: AccountSenders = AccountSenders(),
    now: datetime | None = None,
) -> PreparedSend:
    """Checks a send and plans each message's routes among the senders `available`; raises
    ValidationFailed with every problem."""
    now = now or datetime.now(UTC)
    problems = _Problems()
    chosen, sender_problems = candidates(command.sender, available)
    for problem in sender_problems:
        problems.add(problem.code, problem.message, problem.context)
    _check_static_content(command.content, problems)
    personalizer = _Personalizer(command, problems)
    _check_addresses(command.recipients, problems)
    send_at, per_recipient = _schedule(command, now, problems)
    tags = _check_recipients(command, personalizer, problems)
    problems.raise_if_any()
    assert chosen is not None  # no sender problem was found
    planner = Planner(chosen)
    return PreparedSend(
        recipients=command.recipients,
        tags=tags,
        send_at=per_recipient,
        plans=[planner(r.addresses) for r in command.recipients],
        requested_sender=chosen.shown,
        send_at_ms=send_at,
    )


def render_content(content: dict[str, Any], variables: dict[str, str]) -> dict[str, Any]:
    """The content with every text field rendered for one recipient."""
    rendered: Any = _render_value(content, variables)
    return dict(rendered)


def _render_value(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        return compile_template(value).render(variables)
    if isinstance(value, dict):
        return {key: _render_value(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, variables) for item in value]
    return value
