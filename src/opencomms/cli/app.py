"""The `opencomms` command: serve, worker, migrate, accounts, keys, pools, and the client
commands (send, messages, operations, sandbox)."""

import asyncio
import json
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from opencomms import logs
from opencomms.cli import admin, client_commands, render, runtime
from opencomms.cli import events as events_cli
from opencomms.cli import smpp as smpp_cli
from opencomms.cli.connection import AsJson, ConfigFile, DatabaseUrl, quiet_logs
from opencomms.clock import now_ms, rfc3339
from opencomms.config import Settings, load_settings
from opencomms.configfile import ConfigError, load_file
from opencomms.domain.errors import ValidationFailed
from opencomms.domain.records import SenderFilter
from opencomms.domain.sender_pools import PoolFilter
from opencomms.services import sender_pools as pool_service
from opencomms.services import senders as sender_service
from opencomms.services.sender_pools import PoolDraft
from opencomms.store.db import Database, DatabaseUrlError
from opencomms.store.inventory import NoBootstrapAccount

app = typer.Typer(
    help="OpenComms: Twilio's Communications API v1, self-hosted.", no_args_is_help=True
)
accounts_app = typer.Typer(help="Accounts (Account SID + auth token).", no_args_is_help=True)
keys_app = typer.Typer(help="API keys (SK... + secret).", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
config_app = typer.Typer(help="The TOML config file.", no_args_is_help=True)
app.add_typer(config_app, name="config")
senders_app = typer.Typer(help="The sender inventory (declared in the config file).")
app.add_typer(senders_app, name="senders", no_args_is_help=True)
app.add_typer(smpp_cli.app, name="smpp")
app.add_typer(events_cli.sinks_app, name="sinks")  # events: webhook sinks and replay
app.add_typer(events_cli.events_app, name="events")
console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(envvar="OPENCOMMS_HOST", help="[default: 127.0.0.1]")
    ] = None,
    port: Annotated[
        int | None, typer.Option(envvar="OPENCOMMS_PORT", help="[default: 8080]")
    ] = None,
    database_url: DatabaseUrl = None,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the dispatch worker in this process.")
    ] = True,
    public_url: Annotated[str | None, typer.Option(envvar="OPENCOMMS_PUBLIC_URL")] = None,
    config: ConfigFile = None,
) -> None:
    """Start the HTTP API (and, by default, the dispatch worker)."""
    settings = _settings(
        config, database_url=database_url, host=host, port=port, public_url=public_url
    )
    run_loop(runtime.serve(settings, console, worker=worker))


@app.command()
def worker(database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Run only the dispatch worker."""
    settings = _settings(config, database_url=database_url)
    run_loop(_until_signal(lambda stop: runtime.work(settings, stop)))


@app.command()
def migrate(database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Bring the database schema to the newest version."""
    asyncio.run(runtime.migrate(_settings(config, database_url=database_url)))
    console.print("schema is up to date")


@config_app.command("check")
def config_check(file: Annotated[str, typer.Argument(help="The TOML file to check.")]) -> None:
    """Validate a config file without starting anything."""
    parsed = load_file(file)
    counts = f"{len(parsed.routes)} routes, {len(parsed.senders)} senders"
    console.print(f"{file}: ok ({counts})", soft_wrap=True, highlight=False)


@accounts_app.command("create")
def accounts_create(
    database_url: DatabaseUrl = None,
    friendly_name: Annotated[str, typer.Option()] = "",
    as_json: AsJson = False,
    config: ConfigFile = None,
) -> None:
    """Create an account and print its SID and auth token (shown once)."""
    settings = _settings(config, database_url=database_url)
    quiet_logs()
    credential = asyncio.run(runtime.create_account(settings, friendly_name))
    _print({"accountSid": credential.sid, "authToken": credential.secret}, as_json)


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option("--account", help="The Account SID (AC...).")],
    database_url: DatabaseUrl = None,
    friendly_name: Annotated[str, typer.Option()] = "",
    as_json: AsJson = False,
    config: ConfigFile = None,
) -> None:
    """Create an API key for an account and print its secret (shown once)."""
    settings = _settings(config, database_url=database_url)
    quiet_logs()
    credential = asyncio.run(runtime.create_key(settings, account, friendly_name))
    if credential is None:
        console.print(f"[red]no account {account}[/red]")
        raise typer.Exit(1)
    _print({"sid": credential.sid, "secret": credential.secret, "accountSid": account}, as_json)


@accounts_app.command("list")
def accounts_list(
    database_url: DatabaseUrl = None, as_json: AsJson = False, config: ConfigFile = None
) -> None:
    """List the accounts (auth tokens are never shown again)."""
    found = asyncio.run(admin.list_accounts(_settings(config, database_url=database_url)))
    if as_json:
        print(json.dumps([admin.account_json(a) for a in found]))
        return
    table = Table(render.id_column("account sid"), "friendly name", "created", "api keys", box=None)
    for a in found:
        table.add_row(a.sid, render.plain(a.friendly_name), rfc3339(a.created_at), str(a.api_keys))
    render.Stdout().print(table)


@keys_app.command("list")
def keys_list(
    account: Annotated[str | None, typer.Option("--account", help="Only this account's.")] = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
    config: ConfigFile = None,
) -> None:
    """List API keys (secrets are never shown again)."""
    settings = _settings(config, database_url=database_url)
    found = asyncio.run(admin.list_keys(settings, account))
    if as_json:
        print(json.dumps([admin.key_json(k) for k in found]))
        return
    table = Table(
        render.id_column("key sid"),
        render.id_column("account sid"),
        "friendly name",
        "created",
        box=None,
    )
    for k in found:
        table.add_row(k.sid, k.account_sid, render.plain(k.friendly_name), rfc3339(k.created_at))
    render.Stdout().print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The API key SID (SK...).")],
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
    config: ConfigFile = None,
) -> None:
    """Revoke an API key: requests signed with it fail from now on."""
    settings = _settings(config, database_url=database_url)
    if not asyncio.run(admin.revoke_key(settings, key)):
        console.print(f"[red]no API key {key}[/red]")
        raise typer.Exit(1)
    _print({"sid": key, "revoked": True}, as_json)


client_commands.register(app)


@app.command()
def status(
    database_url: DatabaseUrl = None, as_json: AsJson = False, config: ConfigFile = None
) -> None:
    """Show each route's state as the running workers report it (as /readyz does)."""
    from opencomms.services import route_status

    url = _settings(config, database_url=database_url).database_url
    found = asyncio.run(_with_db(url, lambda db: route_status.delivery(db, now_ms())))
    if as_json:
        print(json.dumps(found))
        return
    print(f"workers: {found['workers']}" + (f" ({found['note']})" if "note" in found else ""))
    for route in found["routes"]:
        reason = f" ({route['reason']})" if "reason" in route else ""
        print(f"{route['name']}: {route['state']}{reason} since {route['since']}")


@senders_app.command("list")
def senders_list(
    database_url: DatabaseUrl = None, as_json: AsJson = False, config: ConfigFile = None
) -> None:
    """Show every sender in the database, with its id, route and rate."""
    found = asyncio.run(runtime.list_senders(_settings(config, database_url=database_url)))
    rows = [
        {
            "id": s.id,
            "accountSid": s.account_sid,
            "channel": s.channel.value,
            "address": s.address,
            "route": s.route,
            "mps": s.mps,
            "status": s.status.value,
            "displayName": s.display_name,
            "tags": s.tags,
        }
        for s in found
    ]
    if as_json:
        print(json.dumps(rows))
        return
    for row in rows:
        mps = f"{row['mps']:g} mps" if row["mps"] else "unlimited"
        print(
            f"{row['id']}  {row['accountSid']}  {row['channel']:<8} {row['address']:<24}"
            f" route={row['route']}  {mps}  {row['status']}"
        )


def _settings(config: str | None, **options: Any) -> Settings:
    return load_settings(config_file=config, **options)


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


pools_app = typer.Typer(
    help="Sender pools of an account (the same as /v1/SenderPools).", no_args_is_help=True
)
app.add_typer(pools_app, name="pools")
AccountSid = Annotated[str, typer.Option("--account", help="The Account SID (AC...).")]
_T = TypeVar("_T")


@pools_app.command("list")
def pools_list(
    account: AccountSid,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
    config: ConfigFile = None,
) -> None:
    """List an account's sender pools with their members, newest first."""
    url = _settings(config, database_url=database_url).database_url
    pools = asyncio.run(_with_db(url, lambda db: _pools_with_members(db, account)))
    if as_json:
        print(json.dumps(pools))
        return
    for pool in pools:
        print(f"{pool['id']}  {pool['name']!r}  {len(pool['senders'])} senders")


async def _pools_with_members(db: Database, account: str) -> list[dict[str, Any]]:
    pools = await pool_service.list_pools(db, account, PoolFilter(), before_id=None, limit=1000)
    return [
        {
            "id": pool.id,
            "name": pool.name,
            "tags": pool.tags,
            "senders": [
                s.id
                for s in await sender_service.list_senders(
                    db, account, SenderFilter(), before_id=None, limit=10_000, pool_id=pool.id
                )
            ],
        }
        for pool in pools
    ]


@pools_app.command("create")
def pools_create(
    account: AccountSid,
    name: Annotated[str, typer.Option("--name")] = "",
    sender: Annotated[
        list[str] | None, typer.Option(metavar="SENDER_ID", help="Repeat it.")
    ] = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
    config: ConfigFile = None,
) -> None:
    """Create a sender pool of the account's senders (see `GET /v1/Senders` for their ids)."""
    url = _settings(config, database_url=database_url).database_url
    draft = PoolDraft(name=name, sender_ids=sender or [])

    async def create(db: Database) -> dict[str, Any]:
        operation = await pool_service.create_pool(db, account, draft, now_ms())
        return {"senderPoolId": operation.pool_id, "operationId": operation.id}

    try:
        _print(asyncio.run(_with_db(url, create)), as_json)
    except ValidationFailed as failed:
        for problem in failed.problems:
            console.print(f"[red]{problem.context or 'error'}:[/red] {problem.message}")
        raise typer.Exit(1) from failed


async def _with_db(database_url: str, use: Callable[[Database], Awaitable[_T]]) -> _T:
    db = await runtime.open_ready(database_url)
    try:
        return await use(db)
    finally:
        await db.dispose()


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    logs.configure()
    try:
        app()
    except (runtime.SchemaOutOfDate, DatabaseUrlError, NoBootstrapAccount) as error:
        console.print(f"[red]error:[/red] {escape(logs.mask(str(error)))}")
        raise SystemExit(2) from error
    except ConfigError as error:
        for problem in error.problems:
            console.print("[red]error:[/red]", escape(problem), highlight=False, soft_wrap=True)
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
