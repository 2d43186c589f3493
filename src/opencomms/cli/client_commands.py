"""Client commands on a running server through the SDK: messages, operations, sandbox."""

from collections.abc import Sequence
from typing import Annotated

import typer

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

messages_app = typer.Typer(help="Messages on a running server.", no_args_is_help=True)
operations_app = typer.Typer(help="Message operations on a running server.", no_args_is_help=True)
sandbox_app = typer.Typer(
    help="The sandbox: what its phones received, and replies from them.", no_args_is_help=True
)


def _tags(values: Sequence[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    return pairs([v.replace(":", "=", 1) if "=" not in v else v for v in values], "--tag")


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
        finish(client, [operation_id], interval=interval, timeout=timeout, as_json=as_json)


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
