"""`opencomms send`: recipients from arguments or a CSV file, then follow to the end."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from opencomms.cli import render
from opencomms.cli.connection import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_STILL_RUNNING,
    AsJson,
    ConfigFile,
    DatabaseUrl,
    Interval,
    Sid,
    Timeout,
    Token,
    connected,
    err,
    fail,
    out,
    quiet_logs,
    usage,
)
from opencomms.cli.recipients import RecipientsError, from_arguments, from_csv, parse_pairs
from opencomms.client import Recipient
from opencomms.client._inputs import send_body
from opencomms.config import Settings, load_settings
from opencomms.domain.errors import NotFound, ValidationFailed

if TYPE_CHECKING:  # loaded where used, when the command runs
    from opencomms.cli.follow import OperationSource
    from opencomms.client import Client, MessageOperation

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


REMOTE_IDLE_HINT = (
    "nothing has been handed to a channel yet: is the server's worker running? "
    "(`opencomms serve` runs one unless --no-worker; `opencomms worker` runs one alone)"
)
LOCAL_IDLE_HINT = (
    "nothing has been handed to a channel yet: no worker seems to be running on this "
    "database. Start `opencomms worker` (or `opencomms serve`) to deliver these; "
    "`opencomms send --deliver` runs one inside the command"
)


def finish(
    source: "OperationSource",
    operation_ids: list[str],
    *,
    interval: float,
    timeout: float | None,
    as_json: bool,
    idle_hint: str = REMOTE_IDLE_HINT,
) -> "list[MessageOperation]":
    """Follows to the end and prints the summary; exits 3 if the wait ran out first."""
    from opencomms.cli.follow import StillRunning, follow  # rich.progress, the SDK's models

    try:
        operations = follow(
            source, operation_ids, err, interval=interval, timeout=timeout, idle_hint=idle_hint
        )
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


def _print_summary(operations: "list[MessageOperation]", as_json: bool) -> None:
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


@dataclass(frozen=True)
class SendRequest:
    """What is sent to every recipient, however it is sent."""

    text: str
    sender: str | None
    schedule: str | None
    tags: dict[str, str]

    def body(self, recipients: list[Recipient]) -> dict[str, Any]:
        """The `POST /Messages` body, as the SDK writes it."""
        return send_body(
            recipients, text=self.text, content=None, media=None, from_=self.sender,
            send_at=self.schedule, tags=self.tags or None,
        )  # fmt: skip

    def through(self, client: "Client", recipients: list[Recipient]) -> str:
        accepted = client.send_messages(
            recipients, text=self.text, from_=self.sender, send_at=self.schedule,
            tags=self.tags or None,
        )  # fmt: skip
        return accepted.operation_id


def _submit(
    recipients: list[Recipient], submit: Callable[[list[Recipient]], str], as_json: bool
) -> list[str]:
    """Sends in requests of at most the API's limit; each operation id printed as it comes."""
    operation_ids = []
    for start in range(0, len(recipients), MAX_RECIPIENTS_PER_REQUEST):
        operation_ids.append(submit(recipients[start : start + MAX_RECIPIENTS_PER_REQUEST]))
        if not as_json:
            out.print(operation_ids[-1], highlight=False)
    return operation_ids


@dataclass(frozen=True)
class Watching:
    """Whether and how the command follows what it sent."""

    wait: bool
    interval: float
    timeout: float | None
    as_json: bool

    def conclude(
        self, source: "OperationSource", operation_ids: list[str], idle_hint: str = REMOTE_IDLE_HINT
    ) -> None:
        if self.wait:
            finish(
                source, operation_ids, interval=self.interval, timeout=self.timeout,
                as_json=self.as_json, idle_hint=idle_hint,
            )  # fmt: skip
        elif self.as_json:
            render.print_json({"operationIds": operation_ids})


def send_locally(
    recipients: list[Recipient],
    request: SendRequest,
    settings: Settings,
    account_sid: str | None,
    watching: Watching,
    *,
    deliver: bool,
) -> None:
    """The send written to the configured database as `POST /Messages` writes it."""
    # The local send's database plumbing is for this path only.
    from opencomms.cli.local import AccountNotFound, LocalDatabase, WorkerStopped

    quiet_logs()
    try:
        with LocalDatabase(settings) as local:
            local.use_account(account_sid)
            operation_ids = _submit(
                recipients, lambda chunk: local.send(request.body(chunk)), watching.as_json
            )
            if deliver:
                local.deliver()
            watching.conclude(local, operation_ids, "" if deliver else LOCAL_IDLE_HINT)
    except AccountNotFound as missing:
        raise usage(str(missing)) from missing
    except ValidationFailed as failed:
        fail("\n".join(["refused:", *render.problem_lines(failed.problems)]))
        raise typer.Exit(EXIT_ERROR) from failed
    except (NotFound, WorkerStopped) as error:
        fail(str(error))
        raise typer.Exit(EXIT_ERROR) from error


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
    deliver: Annotated[
        bool,
        typer.Option(
            "--deliver",
            help="Without --url: run a dispatch worker inside this command until every "
            "message is final (when no `opencomms serve` or `worker` runs on the database).",
        ),
    ] = False,
    interval: Interval = 0.5,
    timeout: Timeout = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            envvar="OPENCOMMS_URL",
            help="Send through this server; without it, on the local database (--database-url).",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Send a message to recipients, then follow it until every message is final.

    With --url (or OPENCOMMS_URL) it goes through that server; without, straight into the
    configured database, checked exactly as the API checks it."""
    recipients = _recipients(numbers or [], csv_file, channel, pairs(variable, "--var"))
    request = SendRequest(
        text=_text(text, template), sender=sender, schedule=schedule, tags=pairs(tag, "--tag")
    )
    waiting = deliver or (wait if wait is not None else schedule is None)
    watching = Watching(waiting, interval, timeout, as_json)
    if url is None:
        settings = load_settings(config_file=config, database_url=database_url)
        send_locally(recipients, request, settings, account_sid, watching, deliver=deliver)
        return
    if deliver:
        raise usage("--deliver is for sends on the local database: leave out --url")
    with connected(url, account_sid, auth_token) as client:
        operation_ids = _submit(recipients, lambda chunk: request.through(client, chunk), as_json)
        watching.conclude(client, operation_ids)
