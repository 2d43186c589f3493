"""The `opencomms` command: serve, worker, migrate, accounts, keys."""

import asyncio
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from opencomms import logs
from opencomms.cli import runtime
from opencomms.config import DEFAULT_DATABASE_URL
from opencomms.store.db import DatabaseUrlError

app = typer.Typer(
    help="OpenComms: Twilio's Communications API v1, self-hosted.", no_args_is_help=True
)
accounts_app = typer.Typer(help="Accounts (Account SID + auth token).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (SK... + secret).", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
console = Console(stderr=True)

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url", envvar="OPENCOMMS_DATABASE_URL", help="sqlite:///file or postgresql://..."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="OPENCOMMS_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="OPENCOMMS_PORT")] = 8080,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the dispatch worker in this process.")
    ] = True,
    public_url: Annotated[str | None, typer.Option(envvar="OPENCOMMS_PUBLIC_URL")] = None,
) -> None:
    """Start the HTTP API (and, by default, the dispatch worker)."""
    options = runtime.ServeOptions(host, port, database_url, worker, public_url)
    run_loop(runtime.serve(options, console))


@app.command()
def worker(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """Run only the dispatch worker."""
    run_loop(_until_signal(lambda stop: runtime.work(database_url, stop)))


@app.command()
def migrate(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """Bring the database schema to the newest version."""
    asyncio.run(runtime.migrate(database_url))
    console.print("schema is up to date")


@accounts_app.command("create")
def accounts_create(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    friendly_name: Annotated[str, typer.Option()] = "",
    as_json: AsJson = False,
) -> None:
    """Create an account and print its SID and auth token (shown once)."""
    credential = asyncio.run(runtime.create_account(database_url, friendly_name))
    _print({"accountSid": credential.sid, "authToken": credential.secret}, as_json)


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option("--account", help="The Account SID (AC...).")],
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    friendly_name: Annotated[str, typer.Option()] = "",
    as_json: AsJson = False,
) -> None:
    """Create an API key for an account and print its secret (shown once)."""
    credential = asyncio.run(runtime.create_key(database_url, account, friendly_name))
    if credential is None:
        console.print(f"[red]no account {account}[/red]")
        raise typer.Exit(1)
    _print({"sid": credential.sid, "secret": credential.secret, "accountSid": account}, as_json)


def _print(values: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(values))
    else:
        for key, value in values.items():
            print(f"{key}: {value}")


async def _until_signal(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(stop)


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Runs a long-lived command on uvloop where it is installed: the event loop is a fifth
    of the CPU a request costs, and uvloop's is several times cheaper than asyncio's own."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # Windows: no uvloop
        pass
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    logs.configure()
    try:
        app()
    except (runtime.SchemaOutOfDate, DatabaseUrlError) as error:
        console.print(f"[red]error:[/red] {logs.mask(str(error))}")
        raise SystemExit(2) from error
    except Exception as error:
        _failed(error)


def _failed(error: Exception) -> NoReturn:
    """A start that fails says why in one masked line: a traceback would show the values
    in play (database URLs with passwords, sealed auth tokens, SQL parameters)."""
    first = logs.mask(str(error).splitlines()[0] if str(error) else "")
    console.print(f"[red]error:[/red] {escape(f'{type(error).__name__}: {first}')}")
    logging.getLogger("opencomms").debug("failed", exc_info=error)
    raise SystemExit(1) from None
