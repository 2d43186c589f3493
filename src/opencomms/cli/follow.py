"""Following operations to the end with a progress bar, as `send` and `operations watch` do."""

import time
from collections.abc import Sequence
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from opencomms.cli.render import summary_counts
from opencomms.client import MessageOperation, OperationStatus

# Past this long with nothing handed to a channel, no worker is likely to be running.
IDLE_NOTICE_SECONDS = 5.0


class OperationSource(Protocol):
    """Where operations are read from: a server (the SDK's Client) or the local database."""

    def get_operation(self, operation_id: str) -> MessageOperation: ...


class StillRunning(Exception):
    """The wait ended before every message was final."""

    def __init__(self, operations: list[MessageOperation]) -> None:
        self.operations = operations
        super().__init__("still running: " + ", ".join(o.id for o in operations if not o.is_final))


def describe(operations: Sequence[MessageOperation]) -> str:
    counts = summary_counts(o.stats for o in operations)
    return " · ".join(f"{n} {status.lower()}" for status, n in counts.items()) or "waiting"


def idle(operations: Sequence[MessageOperation]) -> bool:
    """Due to be sent, yet not one message attempted: nothing is taking them."""
    return all(o.status == OperationStatus.PROCESSING and o.stats.attempts == 0 for o in operations)


def follow(
    source: OperationSource,
    operation_ids: Sequence[str],
    console: Console,
    *,
    interval: float = 0.5,
    timeout: float | None = None,
    idle_hint: str = "",
) -> list[MessageOperation]:
    """Polls the operations until each is final; the bar counts messages in a final status.
    `idle_hint` is printed once if nothing is attempted for IDLE_NOTICE_SECONDS."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    hinted = not idle_hint
    latest: dict[str, MessageOperation] = {}
    columns = (
        SpinnerColumn(),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("waiting", total=None)
        while True:
            for operation_id in operation_ids:
                if operation_id not in latest or not latest[operation_id].is_final:
                    latest[operation_id] = source.get_operation(operation_id)
            current = [latest[i] for i in operation_ids]
            progress.update(
                task,
                total=sum(o.stats.total for o in current),
                completed=sum(o.stats.final for o in current),
                description=describe(current),
            )
            if all(o.is_final for o in current):
                return current
            if not hinted and time.monotonic() - started >= IDLE_NOTICE_SECONDS and idle(current):
                hinted = True
                progress.console.print(idle_hint, style="yellow", highlight=False, soft_wrap=True)
            if deadline is not None and time.monotonic() + interval > deadline:
                raise StillRunning(current)
            time.sleep(interval)
