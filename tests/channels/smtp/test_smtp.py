"""The SMTP route against a real SMTP server process (aiosmtpd with the tests' own handler)."""

import base64
import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest

from opencomms.channels import (
    OutboundMessage,
    PermanentDeliveryError,
    Receipt,
    RouteConfig,
    SendResult,
    TransientDeliveryError,
    create,
)
from opencomms.channels.smtp import SmtpChannel, SmtpRouteConfig
from tests.channels.smtp.conftest import Certificate, DkimPair, SmtpServer, smtp_server

CONTENT = {
    "subject": "Your cake",
    "html": "<html><body><p>Hi Bob, your <b>cake</b> is ready.</p></body></html>",
    "text": "Hi Bob, your cake is ready.",
}


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path_factory.mktemp("plain") / "spool.jsonl") as server:
        yield server


@pytest.fixture(scope="module")
def secure(
    tmp_path_factory: pytest.TempPathFactory, certificate: Certificate
) -> Iterator[SmtpServer]:
    spool = tmp_path_factory.mktemp("secure") / "spool.jsonl"
    args = ("--cert", str(certificate.cert), "--key", str(certificate.key), "--auth", "ada:s3cret")
    with smtp_server(spool, *args) as server:
        yield server


def outbound(to: str, content: dict[str, Any] | None = None, number: int = 1) -> OutboundMessage:
    message_id = "comms_email_01jd" + to.partition("@")[0].replace(".", "").ljust(22, "0")[:22]
    return OutboundMessage(
        message_id, number, "EMAIL", "support@example.com", to, content or CONTENT
    )


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def mine(server: SmtpServer, to: str) -> list[dict[str, Any]]:
    return [r for r in server.received() if r["to"] == [to]]


async def open_channel(**options: Any) -> tuple[SmtpChannel, list[Receipt]]:
    """A route of type smtp, built by the registry from options as the config file has them."""
    channel = create(RouteConfig("relay", "smtp", SmtpRouteConfig.model_validate(options)))
    assert isinstance(channel, SmtpChannel)
    pushed: list[Receipt] = []
    await channel.open(pushed.append)
    return channel, pushed


async def test_a_plain_relay_takes_a_proper_email_and_the_2xx_is_final(
    plain: SmtpServer,
) -> None:
    channel, pushed = await open_channel(host="127.0.0.1", port=plain.port)
    try:
        result = await channel.send(outbound("bob@example.com"))
    finally:
        await channel.aclose()
    assert isinstance(result, SendResult)
    assert result.receipt_expected is False  # the 2xx is final
    assert pushed == []
    [record] = mine(plain, "bob@example.com")
    assert record["from"] == "support@example.com"
    message = parse(record["data"])
    assert message["Message-ID"] == f"<{result.external_id}>"
    assert result.external_id.endswith("@example.com")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content() == CONTENT["text"]
    assert html.get_content() == CONTENT["html"]
    assert message["Subject"] == "Your cake"


async def test_starttls_with_a_self_signed_certificate_and_auth(
    secure: SmtpServer, certificate: Certificate
) -> None:
    channel, _ = await open_channel(
        host="127.0.0.1",
        port=secure.port,
        starttls=True,
        ca_file=str(certificate.cert),
        username="ada",
        password="s3cret",
    )
    try:
        await channel.send(outbound("tls@example.com"))
    finally:
        await channel.aclose()
    [record] = mine(secure, "tls@example.com")
    assert record["tls"] is True
    assert record["auth"] is True


async def test_implicit_tls_and_an_unverified_relay(
    tmp_path: Path, certificate: Certificate
) -> None:
    args = ("--cert", str(certificate.cert), "--key", str(certificate.key), "--implicit")
    with smtp_server(tmp_path / "spool.jsonl", *args) as server:
        pinned, _ = await open_channel(
            host="127.0.0.1", port=server.port, tls=True, ca_file=str(certificate.cert)
        )
        unverified, _ = await open_channel(
            host="127.0.0.1", port=server.port, tls=True, verify=False
        )
        try:
            await pinned.send(outbound("pinned@example.com"))
            await unverified.send(outbound("unverified@example.com"))
        finally:
            await pinned.aclose()
            await unverified.aclose()
        assert [(r["to"], r["tls"]) for r in server.received()] == [
            (["pinned@example.com"], True),
            (["unverified@example.com"], True),
        ]


async def test_an_untrusted_certificate_is_refused(secure: SmtpServer) -> None:
    channel, _ = await open_channel(
        host="127.0.0.1", port=secure.port, starttls=True, username="ada", password="s3cret"
    )
    try:
        with pytest.raises(TransientDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            await channel.send(outbound("untrusted@example.com"))
    finally:
        await channel.aclose()
    assert mine(secure, "untrusted@example.com") == []


async def test_wrong_credentials_are_a_route_problem_not_the_emails(
    secure: SmtpServer, certificate: Certificate
) -> None:
    channel, _ = await open_channel(
        host="127.0.0.1",
        port=secure.port,
        starttls=True,
        ca_file=str(certificate.cert),
        username="ada",
        password="wrong",
    )
    try:
        with pytest.raises(TransientDeliveryError, match="AUTH: SMTP 535"):
            await channel.send(outbound("denied@example.com"))
    finally:
        await channel.aclose()


async def test_a_relay_that_requires_starttls_refuses_plain_mail(secure: SmtpServer) -> None:
    channel, _ = await open_channel(host="127.0.0.1", port=secure.port)
    try:
        with pytest.raises((TransientDeliveryError, PermanentDeliveryError), match="SMTP 530"):
            await channel.send(outbound("cleartext@example.com"))
    finally:
        await channel.aclose()


async def test_4xx_is_transient_and_5xx_permanent_with_the_smtp_code(plain: SmtpServer) -> None:
    channel, pushed = await open_channel(host="127.0.0.1", port=plain.port, pool_size=1)
    try:
        with pytest.raises(TransientDeliveryError, match=r"SMTP 451 4\.3\.0") as transient:
            await channel.send(outbound("tempfail@example.com"))
        with pytest.raises(PermanentDeliveryError, match=r"SMTP 550 5\.1\.1") as unknown:
            await channel.send(outbound("reject@example.com"))
        with pytest.raises(PermanentDeliveryError, match=r"SMTP 554 5\.7\.1") as refused:
            await channel.send(outbound("spam@example.com"))
        # The session survived every refusal (each transaction starts with RSET).
        await channel.send(outbound("after.refusals@example.com"))
        assert len(channel._idle) == 1
    finally:
        await channel.aclose()
    assert transient.value.code == 30017
    assert unknown.value.code == 30005
    assert refused.value.code == 30007
    assert pushed == []
    assert len(mine(plain, "after.refusals@example.com")) == 1
    assert mine(plain, "spam@example.com") == mine(plain, "reject@example.com") == []


async def test_a_connection_dropped_mid_transaction_is_retried_once_delivered(
    plain: SmtpServer,
) -> None:
    channel, _ = await open_channel(host="127.0.0.1", port=plain.port, pool_size=1)
    try:
        await channel.send(outbound("warmup@example.com"))  # a session in the pool
        with pytest.raises(TransientDeliveryError, match="dropped"):
            await channel.send(outbound("drop@example.com"))
        result = await channel.send(outbound("drop@example.com", number=2))  # dispatch's retry
    finally:
        await channel.aclose()
    [record] = mine(plain, "drop@example.com")
    assert parse(record["data"])["Message-ID"] == f"<{result.external_id}>"


async def test_an_idle_session_the_relay_closed_is_replaced_without_an_error(
    plain: SmtpServer,
) -> None:
    channel, _ = await open_channel(host="127.0.0.1", port=plain.port, pool_size=1)
    try:
        await channel.send(outbound("first@example.com"))
        channel._idle[0].writer.transport.abort()  # as a relay's idle timeout would
        await channel.send(outbound("second@example.com"))
    finally:
        await channel.aclose()
    assert len(mine(plain, "second@example.com")) == 1


async def test_a_sender_outside_the_routes_domains_is_refused(plain: SmtpServer) -> None:
    channel, _ = await open_channel(
        host="127.0.0.1", port=plain.port, from_domains=["other.example"]
    )
    try:
        with pytest.raises(PermanentDeliveryError, match="may not send from"):
            await channel.send(outbound("nobody@example.com"))
    finally:
        await channel.aclose()


async def test_attachments_inline_and_attached_arrive_whole(plain: SmtpServer) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: the body is drained to the socket
    logo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    content = {
        **CONTENT,
        "html": '<p>Logo: <img src="cid:logo-1"></p>',
        "attachments": [
            {"filename": "données.bin", "contentType": "application/octet-stream",
             "content": base64.b64encode(big).decode()},
            {"filename": "logo.png", "contentType": "image/png", "cid": "logo-1",
             "content": base64.b64encode(logo).decode()},
        ],
    }  # fmt: skip
    channel, _ = await open_channel(host="127.0.0.1", port=plain.port)
    try:
        await channel.send(outbound("attached@example.com", content))
    finally:
        await channel.aclose()
    [record] = mine(plain, "attached@example.com")
    message = parse(record["data"])
    assert message.get_content_type() == "multipart/mixed"
    related, attached = message.iter_parts()
    assert related.get_content_type() == "multipart/related"
    alternative, inline = related.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    assert (inline["Content-ID"], inline.get_content()) == ("<logo-1>", logo)
    assert attached.get_filename() == "données.bin"
    assert attached.get_content() == big


async def test_an_address_that_would_inject_commands_is_refused(plain: SmtpServer) -> None:
    channel, _ = await open_channel(host="127.0.0.1", port=plain.port)
    try:
        with pytest.raises(PermanentDeliveryError, match="not an address"):
            await channel.send(outbound("a@example.com>\r\nRCPT TO:<b@example.com"))
    finally:
        await channel.aclose()
    assert mine(plain, "b@example.com") == []


def test_route_options_are_checked() -> None:
    with pytest.raises(ValueError, match="choose one"):
        SmtpRouteConfig(host="x", tls=True, starttls=True)
    with pytest.raises(ValueError, match="go together"):
        SmtpRouteConfig(host="x", username="a")
    with pytest.raises(ValueError, match="mailto"):
        SmtpRouteConfig(host="x", list_unsubscribe="http://plain.example")


def dkim_verifies(data: bytes, pair: DkimPair) -> bool:
    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"mail2026._domainkey.example.com."
        return pair.dns_record

    return bool(dkim.verify(data, dnsfunc=dns))


def personalized(index: int) -> tuple[str, str, dict[str, Any]]:
    """The address, display name and rendered content of recipient `index`."""
    name = f"Zoë Ñandú {index}" if index % 2 else f"Bob Smith {index}"
    content = {
        "subject": f"Gâteau n°{index} — ready" if index % 3 else f"Cake {index} is ready",
        "html": f"<html><body><p>Hi {name},</p><p>cake <b>#{index}</b> ✓</p></body></html>",
        "headers": {"X-Campaign-ID": f"CAMPAIGN-{index}"},
        "to": {"address": f"user{index}@example.net", "name": name},
        "from": {"address": "support@example.com", "name": "Cool Co Süpport"},
    }
    if index % 4:
        content["text"] = f"Hi {name},\n.\ncake #{index} ✓\n"  # a lone dot: stuffed on the wire
    return f"user{index}@example.net", name, content


async def test_a_thousand_personalized_emails_arrive_exactly_once_and_signed(
    tmp_path: Path, dkim_pair: DkimPair
) -> None:
    count = 1000
    with smtp_server(tmp_path / "spool.jsonl") as server:
        channel, pushed = await open_channel(
            host="127.0.0.1",
            port=server.port,
            pool_size=4,
            dkim={
                "example.com": {
                    "selector": "mail2026",
                    "private_key_path": str(dkim_pair.private_key_path),
                }
            },
            list_unsubscribe="https://example.com/unsubscribe",
        )
        try:
            import asyncio

            messages = [outbound(personalized(i)[0], personalized(i)[2]) for i in range(count)]
            messages = [
                OutboundMessage(f"comms_email_{i:026d}", 1, m.channel, m.sender, m.to, m.content)
                for i, m in enumerate(messages)
            ]
            results = await asyncio.gather(*(channel.send(m) for m in messages))
        finally:
            await channel.aclose()
        received = server.received()
    assert len(received) == count
    assert len({r["to"][0] for r in received}) == count  # no duplicates, no losses
    assert pushed == [] and not any(r.receipt_expected for r in results)
    by_to = {r["to"][0]: r for r in received}
    for index, result in enumerate(results):
        address, name, content = personalized(index)
        data = by_to[address]["data"]
        assert_well_formed(data)
        assert dkim_verifies(data, dkim_pair), f"DKIM fails for {address}"
        message = parse(data)
        assert message["Message-ID"] == f"<{result.external_id}>"
        assert result.external_id == f"comms_email_{index:026d}@example.com"
        assert str(message["From"]) == "Cool Co Süpport <support@example.com>"
        assert message["To"].addresses[0].display_name == name
        assert message["To"].addresses[0].addr_spec == address
        assert message["Subject"] == content["subject"]
        assert message["X-Campaign-ID"] == f"CAMPAIGN-{index}"
        assert message["List-Unsubscribe"] == "<https://example.com/unsubscribe>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text, html = message.get_body(("plain",)), message.get_body(("html",))
        assert text is not None and html is not None
        assert html.get_content() == content["html"]
        expected_text = content.get("text", f"Hi {name},\n\ncake #{index} ✓")
        assert text.get_content().replace("\r\n", "\n") == expected_text


def assert_well_formed(data: bytes) -> None:
    """7-bit, CRLF line ends only, no line over 998 octets (RFC 5322 2.1.1)."""
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
