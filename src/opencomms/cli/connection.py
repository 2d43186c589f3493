"""What every client command shares: the server and credentials options, errors, output.

Credentials come from --account-sid/--auth-token or OPENCOMMS_ACCOUNT_SID/OPENCOMMS_AUTH_TOKEN
(an API key SID and secret work too), the server from --url or OPENCOMMS_URL.
"""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from opencomms import logs
from opencomms.cli import render
from opencomms.client import ConfigurationError, OpenCommsError

if TYPE_CHECKING:
    from opencomms.client import Client

EXIT_ERROR, EXIT_USAGE, EXIT_STILL_RUNNING, EXIT_INTERRUPTED = 1, 2, 3, 130

err = Console(stderr=True)
out = render.Stdout()

Url = Annotated[str, typer.Option("--url", envvar="OPENCOMMS_URL", help="The server's URL.")]
Sid = Annotated[
    str | None,
    typer.Option(
        "--account-sid",
        envvar="OPENCOMMS_ACCOUNT_SID",
        help="Account SID (AC...) or API key (SK...).",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--auth-token", envvar="OPENCOMMS_AUTH_TOKEN", help="Auth token, or the API key's secret."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="OPENCOMMS_DATABASE_URL",
        help="sqlite:///file or postgresql://... [default: sqlite:///opencomms.db]",
    ),
]
ConfigFile = Annotated[
    str | None,
    typer.Option("--config", envvar="OPENCOMMS_CONFIG", help="The TOML config file."),
]
Limit = Annotated[int, typer.Option("--limit", min=1, help="At most this many, following pages.")]
Interval = Annotated[float, typer.Option("--interval", min=0.05, help="Seconds between polls.")]
Timeout = Annotated[
    float | None, typer.Option("--timeout", min=0, help="Stop waiting after this many seconds.")
]


def _results_worth_showing(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.startswith("opencomms.client")


def quiet_logs() -> None:
    """A command that prints its own results shows warnings of the log only: the routine
    lines (each HTTP request, each migration, a worker starting) would bury them. The SDK's
    retry notices still show; OPENCOMMS_LOG_LEVEL, when set, decides instead.

    Only the process's own log handler (logs.configure) is narrowed, not the loggers, so
    whatever else listens (a test's log capture) still hears everything."""
    if os.environ.get("OPENCOMMS_LOG_LEVEL"):
        return
    for handler in logging.getLogger().handlers:
        if isinstance(handler.formatter, logs.PlainFormatter | logs.JsonFormatter):
            handler.addFilter(_results_worth_showing)


def fail(message: str) -> None:
    """An error line on stderr; the message is shown as is, never read as rich markup."""
    err.print("[red]error:[/red]", end=" ")
    err.print(message, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def connected(url: str, sid: str | None, token: str | None) -> "Iterator[Client]":
    """A client, with every SDK error turned into a message on stderr and an exit code."""
    from opencomms.client import Client  # httpx: only for the commands that talk HTTP

    quiet_logs()
    try:
        with Client(sid, token, base_url=url) as client:
            yield client
    except ConfigurationError as error:
        fail(str(error))
        raise typer.Exit(EXIT_USAGE) from error
    except OpenCommsError as error:
        fail("\n".join(render.error_lines(error)))
        raise typer.Exit(EXIT_ERROR) from error


def usage(message: str) -> typer.Exit:
    fail(message)
    return typer.Exit(EXIT_USAGE)
