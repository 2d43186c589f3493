"""Server-side request forgery guard for webhook destinations.

A destination's name is resolved once per connection, every address it resolves to is
checked, and the socket is opened to the address that was checked (the TLS handshake still
names the original host). Numeric forms an attacker may write instead of a dotted quad
(`2130706433`, `0177.0.0.1`, `0x7f.1`, `::ffff:127.0.0.1`) are read the way the C library
would read them, so they are checked as the address they really are. Redirects are never
followed (the HTTP client is built with follow_redirects=False).
"""

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Protocol
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges refused even where `is_global` would not catch them (cloud metadata endpoints).
_METADATA = (
    ipaddress.ip_network("169.254.169.254/32"),
    ipaddress.ip_network("fd00:ec2::254/128"),
    ipaddress.ip_network("100.100.100.200/32"),
)


class DestinationRefused(Exception):
    """The destination resolves to an address webhooks may not reach."""


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """getaddrinfo, off the event loop."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def literal(host: str) -> IPAddress | None:
    """The address a host names by itself, in any numeric form, or None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if bare.replace(".", "").replace("x", "").replace("X", "").isalnum() and all(
        part.lower().startswith("0x") or part.isdigit() for part in bare.split(".") if part
    ):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def refused(address: IPAddress, allowed: Sequence[Network]) -> str | None:
    """Why an address may not be reached, or None when it may."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    if any(c in net for c in candidates for net in allowed if c.version == net.version):
        return None
    for candidate in candidates:
        if any(candidate in net for net in _METADATA if candidate.version == net.version):
            return f"{address} is a cloud metadata address"
        if candidate.is_multicast or not candidate.is_global:
            return f"{address} is not a public address"
    return None


class Guard:
    """Checks destinations and hands out the address to connect to."""

    def __init__(self, allowed: Sequence[Network] = (), resolver: Resolver | None = None):
        self.allowed = tuple(allowed)
        self.resolver = resolver or SystemResolver()

    def check_url(self, url: str) -> None:
        """Refuses a URL whose scheme or literal address is not allowed, with no lookup."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DestinationRefused(f"{url!r} is not an http(s) URL")
        address = literal(parts.hostname)
        if address is not None and (reason := refused(address, self.allowed)):
            raise DestinationRefused(reason)

    async def address_for(self, host: str, port: int) -> str:
        """Resolves `host` once and returns an address to connect to, every one checked."""
        address = literal(host)
        if address is not None:
            found = [address]
        else:
            try:
                found = [ipaddress.ip_address(a) for a in await self.resolver.resolve(host, port)]
            except (OSError, ValueError) as error:
                raise DestinationRefused(f"{host} does not resolve: {error}") from error
        if not found:
            raise DestinationRefused(f"{host} does not resolve")
        for candidate in found:
            if reason := refused(candidate, self.allowed):
                raise DestinationRefused(reason)
        return str(found[0])


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens each connection to the address the guard checked, never to a second lookup."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()
        self.connected: list[str] = []  # addresses dialed, for tests and logs

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self.guard.address_for(host, port)
        self.connected.append(address)
        return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx transport whose connections all go through the guard; no proxies from the
    environment (a proxy would make the connection for us, unchecked)."""

    def __init__(
        self, guard: Guard, ssl_context: ssl.SSLContext | None = None, max_connections: int = 100
    ) -> None:
        super().__init__(trust_env=False)
        self.backend = _PinnedBackend(guard)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
            http1=True,
            http2=False,
            network_backend=self.backend,
        )
