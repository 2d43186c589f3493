"""Commands that talk to a running server through the SDK: send, messages, operations, sandbox.

Credentials come from --account-sid/--auth-token or OPENCOMMS_ACCOUNT_SID/OPENCOMMS_AUTH_TOKEN
(an API key SID and secret work too), the server from --url or OPENCOMMS_URL.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from opencomms.cli import render
from opencomms.cli.follow import StillRunning, follow
from opencomms.cli.recipients import RecipientsError, from_arguments, from_csv, parse_pairs
from opencomms.client import (
    DEFAULT_BASE_URL,
    Client,
    ConfigurationError,
    MessageOperation,
    OpenCommsError,
    Recipient,
)

MAX_RECIPIENTS_PER_REQUEST = 10_000  # the API's limit; larger sends become several operations
EXIT_ERROR, EXIT_USAGE, EXIT_STILL_RUNNING, EXIT_INTERRUPTED = 1, 2, 3, 130

messages_app = typer.Typer(help="Messages on a running server.", no_args_is_help=True)
operations_app = typer.Typer(help="Message operations on a running server.", no_args_is_help=True)
sandbox_app = typer.Typer(
    help="The sandbox: what its phones received, and replies from them.", no_args_is_help=True
)
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
Limit = Annotated[int, typer.Option("--limit", min=1, help="At most this many, following pages.")]
Interval = Annotated[float, typer.Option("--interval", min=0.05, help="Seconds between polls.")]
Timeout = Annotated[
    float | None, typer.Option("--timeout", min=0, help="Stop waiting after this many seconds.")
]


@contextmanager
def connected(url: str, sid: str | None, token: str | None) -> Iterator[Client]:
    """A client, with every SDK error turned into a message on stderr and an exit code."""
    try:
        with Client(sid, token, base_url=url) as client:
            yield client
    except ConfigurationError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(EXIT_USAGE) from error
    except OpenCommsError as error:
        err.print("[red]error:[/red] " + "\n".join(render.error_lines(error)), highlight=False)
        raise typer.Exit(EXIT_ERROR) from error


def _usage(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(EXIT_USAGE)


def _recipients(
    numbers: Sequence[str], csv_file: Path | None, channel: str, variables: dict[str, str]
) -> list[Recipient]:
    if bool(numbers) == (csv_file is not None):
        raise _usage("give recipients as arguments or with --csv, not both or neither")
    try:
        if csv_file is not None:
            return from_csv(csv_file, channel, variables)
        return from_arguments(numbers, channel, variables)
    except RecipientsError as error:
        raise _usage(str(error)) from error


def _text(text: str | None, template: Path | None) -> str:
    if (text is None) == (template is None):
        raise _usage("give the message with --text or --template, not both or neither")
    if template is None:
        assert text is not None
        return text
    try:
        return template.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise _usage(f"{template}: {error}") from error


def _pairs(values: Sequence[str] | None, option: str) -> dict[str, str]:
    try:
        return parse_pairs(values or [], option)
    except RecipientsError as error:
        raise _usage(str(error)) from error


def _finish(
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
    recipients = _recipients(numbers or [], csv_file, channel, _pairs(variable, "--var"))
    body_text = _text(text, template)
    tags = _pairs(tag, "--tag")
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
            _finish(client, operation_ids, interval=interval, timeout=timeout, as_json=as_json)
        elif as_json:
            render.print_json({"operationIds": operation_ids})


def _tags(values: Sequence[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    return _pairs([v.replace(":", "=", 1) if "=" not in v else v for v in values], "--tag")


@messages_app.command("list")
def messages_list(
    operation: Annotated[str | None, typer.Option("--operation", help="An operation id.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="e.g. DELIVERED, INBOUND.")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="SMS, RCS or WHATSAPP.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="A session id.")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="A profile id.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="key=value; all must match.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 start date.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 end date.")] = None,
    limit: Limit = 50,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List messages, newest first, with the API's filters."""
    with connected(url, account_sid, auth_token) as client:
        found = list(
            client.iter_messages(
                limit=limit,
                page_size=min(limit, 1000),
                operation_id=operation,
                status=status,
                channel=channel,
                session_id=session,
                profile=profile,
                start_date=since,
                end_date=until,
                tags=_tags(tag),
            )
        )
    if as_json:
        render.print_json([m.to_dict() for m in found])
    else:
        out.print(render.messages_table(found))


@messages_app.command("get")
def messages_get(
    message_id: Annotated[str, typer.Argument(help="A message id (comms_message_...).")],
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Show a message: its rendered content and every attempt."""
    with connected(url, account_sid, auth_token) as client:
        message = client.get_message(message_id)
    if as_json:
        render.print_json(message.to_dict())
    else:
        render.message_detail(message, out.print)


@operations_app.command("list")
def operations_list(
    status: Annotated[
        str | None, typer.Option("--status", help="SCHEDULED, PROCESSING, COMPLETED, CANCELED.")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="RFC 3339 start date.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="RFC 3339 end date.")] = None,
    limit: Limit = 20,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List operations, newest first, with their counts."""
    with connected(url, account_sid, auth_token) as client:
        found = list(
            client.iter_operations(
                limit=limit,
                page_size=min(limit, 1000),
                status=status,
                start_date=since,
                end_date=until,
            )
        )
    if as_json:
        render.print_json([o.to_dict() for o in found])
    else:
        out.print(render.operations_table(found))


OperationId = Annotated[str, typer.Argument(help="An operation id (comms_operation_...).")]


@operations_app.command("get")
def operations_get(
    operation_id: OperationId,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Show an operation's status and its messages by status."""
    with connected(url, account_sid, auth_token) as client:
        operation = client.get_operation(operation_id)
    if as_json:
        render.print_json(operation.to_dict())
    else:
        out.print(render.operations_table([operation]))
        out.print(render.summary_table(render.summary_counts([operation.stats])))


@operations_app.command("watch")
def operations_watch(
    operation_id: OperationId,
    interval: Interval = 0.5,
    timeout: Timeout = None,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Follow an operation with a progress bar until every message is final."""
    with connected(url, account_sid, auth_token) as client:
        _finish(client, [operation_id], interval=interval, timeout=timeout, as_json=as_json)


@sandbox_app.command("inbox")
def sandbox_inbox(
    to: Annotated[str | None, typer.Option("--to", help="A recipient's address.")] = None,
    operation: Annotated[str | None, typer.Option("--operation", help="An operation id.")] = None,
    channel: Annotated[str | None, typer.Option("--channel", help="SMS, RCS or WHATSAPP.")] = None,
    limit: Limit = 50,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """What the sandbox delivered, newest first: the text each phone received."""
    with connected(url, account_sid, auth_token) as client:
        found = list(
            client.iter_sandbox_messages(
                limit=limit,
                page_size=min(limit, 1000),
                to=to,
                operation_id=operation,
                channel=channel,
            )
        )
    if as_json:
        render.print_json([m.to_dict() for m in found])
    else:
        out.print(render.sandbox_table(found))


@sandbox_app.command("reply")
def sandbox_reply(
    text: Annotated[str, typer.Argument(help="What the phone says.")],
    sender: Annotated[str, typer.Option("--from", help="The phone's number (E.164).")],
    to: Annotated[str, typer.Option("--to", help="One of the account's sender addresses.")],
    channel: Annotated[str, typer.Option("--channel", help="SMS, RCS or WHATSAPP.")] = "SMS",
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Make a sandbox phone send a message to one of your senders (stored as INBOUND)."""
    with connected(url, account_sid, auth_token) as client:
        message = client.send_inbound(from_=sender, to=to, text=text, channel=channel)
    if as_json:
        render.print_json(message.to_dict())
    else:
        render.message_detail(message, out.print)


@sandbox_app.command("clear")
def sandbox_clear(
    to: Annotated[str | None, typer.Option("--to", help="Only this recipient's messages.")] = None,
    operation: Annotated[
        str | None, typer.Option("--operation", help="Only this operation's messages.")
    ] = None,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Empty the sandbox inbox (all of it, or one recipient's or operation's part)."""
    with connected(url, account_sid, auth_token) as client:
        client.clear_sandbox_messages(to=to, operation_id=operation)
    if as_json:
        render.print_json({"cleared": True, "to": to, "operationId": operation})
    else:
        err.print("sandbox inbox cleared")


def register(app: typer.Typer) -> None:
    """Adds these commands to the `opencomms` command."""
    app.command("send")(send)
    app.add_typer(messages_app, name="messages")
    app.add_typer(operations_app, name="operations")
    app.add_typer(sandbox_app, name="sandbox")
