"""How the client commands show resources: rich tables for people, the API's JSON for tools."""

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from opencomms.client import ApiError, OpenCommsError

if TYPE_CHECKING:  # the models load with the commands that fetch them, not with `serve`
    from opencomms.client import (
        Address,
        Message,
        MessageOperation,
        MessageSummary,
        OperationStats,
        SandboxMessage,
    )

STATUS_STYLES = {
    "DELIVERED": "green",
    "READ": "green",
    "INBOUND": "cyan",
    "SENT": "blue",
    "QUEUED": "blue",
    "SCHEDULED": "magenta",
    "PROCESSING": "blue",
    "COMPLETED": "green",
    "UNDELIVERED": "yellow",
    "FAILED": "red",
    "CANCELED": "dim",
    "UNADDRESSABLE": "red",
}


PIPED_WIDTH = 160


class Stdout:
    """stdout as rich sees it at each print: wide when piped, so ids are never cut."""

    def print(self, *objects: Any, **options: Any) -> None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=PIPED_WIDTH)
        console.print(*objects, **options)


def print_json(value: Any) -> None:
    """One JSON document on stdout, whatever else went to stderr."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def plain(value: str) -> Text:
    """Text from users or the server (message text, names, errors): never read as markup."""
    return Text(value)


def status(value: str) -> Text:
    return Text(value, style=STATUS_STYLES.get(value, ""), no_wrap=True)


def when(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


def party(address: "Address | None") -> str:
    if address is None:
        return ""
    if address.address:
        return f"{address.address} ({address.channel})" if address.channel else address.address
    return address.sender_pool_id or address.sender_id or address.profile_id or ""


def parties(addresses: "Sequence[Address]") -> str:
    return ", ".join(party(a) for a in addresses)


class ProblemLike(Protocol):
    """An entry of the API's error list: the SDK's ErrorDetail, or the server's Problem."""

    @property
    def code(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def context(self) -> str | None: ...


def problem_lines(problems: Iterable[ProblemLike]) -> list[str]:
    """Every entry of an error list with its field, one indented line each."""
    lines = []
    for item in problems:
        where = f" at {item.context}" if item.context else ""
        lines.append(f"  {item.code}{where}: {item.message}")
    return lines


def error_lines(error: OpenCommsError) -> list[str]:
    """An SDK error as lines for stderr, every entry of the API's list with its field."""
    if not isinstance(error, ApiError):
        return [str(error)]
    return [f"HTTP {error.status_code}", *problem_lines(error.errors)]


def id_column(name: str) -> Column:
    return Column(name, no_wrap=True, overflow="ignore")


def messages_table(messages: "Iterable[MessageSummary]") -> Table:
    table = Table(
        id_column("id"), "to", "from", "channel", "status", "created", "scheduled for", box=None
    )
    for m in messages:
        table.add_row(
            m.id, ", ".join(a.address or party(a) for a in m.to), m.from_.address or party(m.from_),
            m.from_.channel or "", status(m.status), when(m.created_at), when(m.scheduled_for),
        )  # fmt: skip
    return table


def message_detail(message: "Message", show: Callable[..., None]) -> None:
    rows = Table.grid(padding=(0, 2))
    rows.add_row("id", message.id)
    rows.add_row("status", status(message.status))
    rows.add_row("from", party(message.from_))
    rows.add_row("to", parties(message.to))
    for related in message.related:
        rows.add_row(related.name.lower(), related.id)
    rows.add_row("created", when(message.created_at))
    if message.scheduled_for:
        rows.add_row("scheduled for", when(message.scheduled_for))
    if message.tags:
        rows.add_row("tags", plain(", ".join(f"{k}={v}" for k, v in message.tags.items())))
    content = message.content
    shown = content.text or content.content_id or json.dumps(content.to_dict())
    rows.add_row("content", plain(shown))
    show(rows)
    if message.attempts:
        show(attempts_table(message))


def attempts_table(message: "Message") -> Table:
    table = Table("#", "attempted", "from", "status", "error", "identifier", title="attempts")
    for number, attempt in enumerate(message.attempts, 1):
        error = f"{attempt.error.code} {attempt.error.message}" if attempt.error else ""
        identifier = attempt.identifier or ""
        table.add_row(
            str(number), when(attempt.attempted_at), party(attempt.from_),
            status(attempt.status), plain(error), identifier,
        )  # fmt: skip
    return table


def operations_table(operations: "Iterable[MessageOperation]") -> Table:
    table = Table(
        id_column("id"), "status", "total", "final", "delivered", "failed", "created", box=None
    )
    for o in operations:
        s = o.stats
        table.add_row(
            o.id, status(o.status), str(s.total), str(s.final), str(s.delivered + s.read),
            str(s.failed + s.undelivered + s.unaddressable), when(o.created_at),
        )  # fmt: skip
    return table


def summary_counts(stats: "Iterable[OperationStats]") -> dict[str, int]:
    """Messages by status over one or more operations, leaving out the statuses nobody has."""
    totals: dict[str, int] = {}
    for s in stats:
        counts = s.by_status()
        # Unaddressable recipients are stored FAILED but counted apart, as the API does.
        counts["UNADDRESSABLE"] = s.unaddressable
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
    return {key: value for key, value in totals.items() if value}


def summary_table(counts: dict[str, int]) -> Table:
    table = Table("status", "messages", title="summary")
    for key, value in counts.items():
        table.add_row(status(key), str(value))
    table.add_section()
    table.add_row("total", str(sum(counts.values())))
    return table


def sandbox_table(messages: "Iterable[SandboxMessage]") -> Table:
    table = Table("delivered", "to", "from", "channel", "text", id_column("message"), box=None)
    for m in messages:
        table.add_row(
            when(m.delivered_at), m.to, m.from_, m.channel,
            plain(m.content.text or ""), m.message_id,
        )  # fmt: skip
    return table
