"""`opencomms send`: recipients from arguments or a CSV file, then follow to the end."""

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from opencomms.cli import render
from opencomms.cli.connection import (
    EXIT_INTERRUPTED,
    EXIT_STILL_RUNNING,
    AsJson,
    Interval,
    Sid,
    Timeout,
    Token,
    Url,
    connected,
    err,
    out,
    usage,
)
from opencomms.cli.follow import StillRunning, follow
from opencomms.cli.recipients import RecipientsError, from_arguments, from_csv, parse_pairs
from opencomms.client import DEFAULT_BASE_URL, Client, MessageOperation, Recipient

MAX_RECIPIENTS_PER_REQUEST = 10_000  # the API's limit; larger sends become several operations


def _recipients(
    numbers: Sequence[str], csv_file: Path | None, channel: str, variables: dict[str, str]
) -> list[Recipient]:
    if bool(numbers) == (csv_file is not None):
        raise usage("give recipients as arguments or with --csv, not both or neither")
    try:
        if csv_file is not None:
            return from_csv(csv_file, channel, variables)
        return from_arguments(numbers, channel, variables)
    except RecipientsError as error:
        raise usage(str(error)) from error


def _text(text: str | None, template: Path | None) -> str:
    if (text is None) == (template is None):
        raise usage("give the message with --text or --template, not both or neither")
    if template is None:
        assert text is not None
        return text
    try:
        return template.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise usage(f"{template}: {error}") from error


def pairs(values: Sequence[str] | None, option: str) -> dict[str, str]:
    try:
        return parse_pairs(values or [], option)
    except RecipientsError as error:
        raise usage(str(error)) from error


def finish(
    client: Client,
    operation_ids: list[str],
    *,
    interval: float,
    timeout: float | None,
    as_json: bool,
) -> list[MessageOperation]:
    """Follows to the end and prints the summary; exits 3 if the wait ran out first."""
    try:
        operations = follow(client, operation_ids, err, interval=interval, timeout=timeout)
    except StillRunning as running:
        err.print(f"[yellow]{running}[/yellow]: follow with `opencomms operations watch`")
        _print_summary(running.operations, as_json)
        raise typer.Exit(EXIT_STILL_RUNNING) from running
    except KeyboardInterrupt as interrupted:
        # Only the watching stops: the messages were accepted and go on being delivered.
        for operation_id in operation_ids:
            err.print(f"stopped watching; follow with `opencomms operations watch {operation_id}`")
        raise typer.Exit(EXIT_INTERRUPTED) from interrupted
    _print_summary(operations, as_json)
    return operations


def _print_summary(operations: list[MessageOperation], as_json: bool) -> None:
    counts = render.summary_counts(o.stats for o in operations)
    if as_json:
        render.print_json(
            {
                "operationIds": [o.id for o in operations],
                "operations": [o.to_dict() for o in operations],
                "summary": counts,
            }
        )
    else:
        out.print(render.summary_table(counts))


def send(
    numbers: Annotated[
        list[str] | None, typer.Argument(help="Recipients' phone numbers (E.164).")
    ] = None,
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="A CSV file: a column address (or to, phone, number), an optional channel "
            "column, and a column per template variable.",
        ),
    ] = None,
    text: Annotated[str | None, typer.Option("--text", "-t", help="The text (Liquid).")] = None,
    template: Annotated[
        Path | None, typer.Option("--template", help="A file holding the text (Liquid).")
    ] = None,
    variable: Annotated[
        list[str] | None, typer.Option("--var", help="name=value, for every recipient.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="key=value tag.")] = None,
    sender: Annotated[
        str | None, typer.Option("--from", help="A sender address, sender id or sender pool id.")
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule", help="RFC 3339 send time; without an offset, each recipient's local time."
        ),
    ] = None,
    channel: Annotated[
        str, typer.Option("--channel", help="The recipients' channel: PHONE or WHATSAPP.")
    ] = "PHONE",
    wait: Annotated[
        bool | None,
        typer.Option(
            "--wait/--no-wait",
            help="Follow until every message is final.",
            show_default="wait unless scheduled",
        ),
    ] = None,
    interval: Interval = 0.5,
    timeout: Timeout = None,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Send a message to recipients, then follow it until every message is final."""
    recipients = _recipients(numbers or [], csv_file, channel, pairs(variable, "--var"))
    body_text = _text(text, template)
    tags = pairs(tag, "--tag")
    with connected(url, account_sid, auth_token) as client:
        operation_ids = []
        for start in range(0, len(recipients), MAX_RECIPIENTS_PER_REQUEST):
            accepted = client.send_messages(
                recipients[start : start + MAX_RECIPIENTS_PER_REQUEST],
                text=body_text,
                from_=sender,
                send_at=schedule,
                tags=tags or None,
            )
            operation_ids.append(accepted.operation_id)
            if not as_json:
                out.print(accepted.operation_id, highlight=False)
        if wait if wait is not None else schedule is None:
            finish(client, operation_ids, interval=interval, timeout=timeout, as_json=as_json)
        elif as_json:
            render.print_json({"operationIds": operation_ids})
