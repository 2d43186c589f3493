"""Following operations to the end with a progress bar, as `send` and `operations watch` do."""

import time
from collections.abc import Sequence

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
from opencomms.client import Client, MessageOperation


class StillRunning(Exception):
    """The wait ended before every message was final."""

    def __init__(self, operations: list[MessageOperation]) -> None:
        self.operations = operations
        super().__init__("still running: " + ", ".join(o.id for o in operations if not o.is_final))


def describe(operations: Sequence[MessageOperation]) -> str:
    counts = summary_counts(o.stats for o in operations)
    return " · ".join(f"{n} {status.lower()}" for status, n in counts.items()) or "waiting"


def follow(
    client: Client,
    operation_ids: Sequence[str],
    console: Console,
    *,
    interval: float = 0.5,
    timeout: float | None = None,
) -> list[MessageOperation]:
    """Polls the operations until each is final; the bar counts messages in a final status."""
    deadline = None if timeout is None else time.monotonic() + timeout
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
                    latest[operation_id] = client.get_operation(operation_id)
            current = [latest[i] for i in operation_ids]
            progress.update(
                task,
                total=sum(o.stats.total for o in current),
                completed=sum(o.stats.final for o in current),
                description=describe(current),
            )
            if all(o.is_final for o in current):
                return current
            if deadline is not None and time.monotonic() + interval > deadline:
                raise StillRunning(current)
            time.sleep(interval)
