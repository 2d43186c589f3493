"""`opencomms smpp probe`: bind to an SMSC as a route would, print the route's state, unbind.

For operators wiring a new route: it tells a wrong password, a closed port or a TLS problem
apart before any message is sent (exit status 0 when every connection bound, 3 when not).
"""

import asyncio
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from opencomms.channels.smpp import SmppRouteConfig

if TYPE_CHECKING:
    from opencomms.channels.smpp import RouteState

app = typer.Typer(help="SMPP routes.", no_args_is_help=True)
ROUTE_DOWN = 3


@app.command()
def probe(
    host: Annotated[str, typer.Option(help="The SMSC's host.")],
    system_id: Annotated[str, typer.Option("--system-id")],
    password: Annotated[str, typer.Option(envvar="OPENCOMMS_SMPP_PASSWORD")] = "",
    port: Annotated[int, typer.Option()] = 2775,
    system_type: Annotated[str, typer.Option("--system-type")] = "",
    bind: Annotated[str, typer.Option(help="transceiver | transmitter+receiver")] = "transceiver",
    tls: Annotated[bool, typer.Option("--tls/--no-tls")] = False,
    tls_ca_file: Annotated[str, typer.Option("--tls-ca-file")] = "",
    timeout: Annotated[float, typer.Option(help="Seconds to connect and bind.")] = 10.0,
) -> None:
    """Bind once and print the route state as JSON."""
    try:
        config = SmppRouteConfig(
            host=host,
            port=port,
            system_id=system_id,
            password=password,
            system_type=system_type,
            bind=bind,  # a Literal: the model refuses anything else
            tls=tls,
            tls_ca_file=tls_ca_file,
            connect_timeout=timeout,
            response_timeout=timeout,
        )
    except ValidationError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    state = asyncio.run(_probe(config))
    print(json.dumps(asdict(state)))
    if not state.up:
        raise typer.Exit(ROUTE_DOWN)


async def _probe(config: SmppRouteConfig) -> "RouteState":
    # The channel (sessions, PDUs, TLS) loads only to probe: every command imports this file.
    from opencomms.channels.smpp import SmppChannel

    channel = SmppChannel(name=f"{config.host}:{config.port}", config=config)
    await channel.open(lambda receipt: None)
    try:
        return channel.state()
    finally:
        await channel.aclose()
