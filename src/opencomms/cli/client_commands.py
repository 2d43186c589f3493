"""Client commands on a running server through the SDK: messages, operations, sandbox."""

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from opencomms.cli import render
from opencomms.cli.connection import (
    AsJson,
    Interval,
    Limit,
    Sid,
    Timeout,
    Token,
    Url,
    connected,
    err,
    out,
)
from opencomms.cli.send_command import finish, pairs, send
from opencomms.client import DEFAULT_BASE_URL

if TYPE_CHECKING:  # the SDK's client and models load when a command runs
    from opencomms.client import Client
    from opencomms.client._models import Model

messages_app = typer.Typer(help="Messages on a running server.", no_args_is_help=True)
operations_app = typer.Typer(help="Message operations on a running server.", no_args_is_help=True)
sandbox_app = typer.Typer(
    help="The sandbox: what its phones received, and replies from them.", no_args_is_help=True
)


Since = Annotated[str | None, typer.Option("--since", help="RFC 3339 start date.")]
Until = Annotated[str | None, typer.Option("--until", help="RFC 3339 end date.")]
ChannelFilter = Annotated[str | None, typer.Option("--channel", help="SMS, RCS or WHATSAPP.")]
OperationFilter = Annotated[str | None, typer.Option("--operation", help="An operation id.")]
M = TypeVar("M", bound="Model")
MAX_PAGE_SIZE = 1000  # the API's


def _listed(
    remote: tuple[str, str | None, str | None],
    as_json: bool,
    fetch: "Callable[[Client], Iterable[M]]",
    table: Callable[[list[M]], Table],
) -> None:
    """What every list command does: fetch through the SDK, then JSON or a table."""
    with connected(*remote) as client:
        found = list(fetch(client))
    if as_json:
        render.print_json([item.to_dict() for item in found])
    else:
        out.print(table(found))


def _pages(limit: int) -> dict[str, int]:
    """Pages as large as the limit needs (at most the API's page size)."""
    return {"limit": limit, "page_size": min(limit, MAX_PAGE_SIZE)}


def _tags(values: Sequence[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    return pairs([v.replace(":", "=", 1) if "=" not in v else v for v in values], "--tag")


@messages_app.command("list")
def messages_list(
    operation: OperationFilter = None,
    status: Annotated[str | None, typer.Option("--status", help="e.g. DELIVERED, INBOUND.")] = None,
    channel: ChannelFilter = None,
    session: Annotated[str | None, typer.Option("--session", help="A session id.")] = None,
    profile: Annotated[str | None, typer.Option("--profile", help="A profile id.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="key=value; all must match.")
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List messages, newest first, with the API's filters."""
    _listed(
        (url, account_sid, auth_token), as_json,
        lambda client: client.iter_messages(
            **_pages(limit), operation_id=operation, status=status, channel=channel,
            session_id=session, profile=profile, start_date=since, end_date=until,
            tags=_tags(tag),
        ),
        render.messages_table,
    )  # fmt: skip


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
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """List operations, newest first, with their counts."""
    _listed(
        (url, account_sid, auth_token), as_json,
        lambda client: client.iter_operations(
            **_pages(limit), status=status, start_date=since, end_date=until
        ),
        render.operations_table,
    )  # fmt: skip


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
        finish(client, [operation_id], interval=interval, timeout=timeout, as_json=as_json)


@sandbox_app.command("inbox")
def sandbox_inbox(
    to: Annotated[str | None, typer.Option("--to", help="A recipient's address.")] = None,
    operation: OperationFilter = None,
    channel: ChannelFilter = None,
    limit: Limit = 50,
    url: Url = DEFAULT_BASE_URL,
    account_sid: Sid = None,
    auth_token: Token = None,
    as_json: AsJson = False,
) -> None:
    """What the sandbox delivered, newest first: the text each phone received."""
    _listed(
        (url, account_sid, auth_token), as_json,
        lambda client: client.iter_sandbox_messages(
            **_pages(limit), to=to, operation_id=operation, channel=channel
        ),
        render.sandbox_table,
    )  # fmt: skip


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
