"""What an SMTP route is configured with (`[[routes]] type = "smtp"` in the config file)."""

import ssl
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from opencomms.channels.options import RouteOptions


class DkimKey(BaseModel):
    """The key a domain's mail is signed with; the public half is published in DNS at
    `{selector}._domainkey.{domain}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    selector: str = Field(min_length=1, max_length=63)
    private_key_path: Path


class SmtpRouteConfig(RouteOptions):
    """One relay. Every option but `host` has the default a local relay on port 25 needs."""

    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    # STARTTLS upgrades a plain connection (submission, port 587); `tls` is implicit TLS
    # from the first byte (port 465). A relay that offers STARTTLS is upgraded whenever
    # `starttls` is set; set it false only for a relay that must never be upgraded.
    starttls: bool = False
    tls: bool = False
    verify: bool = True  # check the relay's certificate and host name
    ca_file: Path | None = None  # trust these CAs instead of the system's
    pool_size: int = Field(default=4, ge=1, le=256)  # connections kept open and reused
    mps: float = Field(default=0.0, ge=0.0)  # emails per second through this route; 0: no cap
    timeout: float = Field(default=30.0, gt=0.0)  # seconds for each reply of the relay
    # Sender domains this route may carry; empty: any. A `from` outside them is refused.
    from_domains: tuple[str, ...] = ()
    dkim: dict[str, DkimKey] = Field(default_factory=dict)  # sender domain -> key
    # `List-Unsubscribe` for every email: a mailto: or https: URL, Liquid-free. With an
    # https URL, `List-Unsubscribe-Post: List-Unsubscribe=One-Click` is added (RFC 8058).
    list_unsubscribe: str | None = None
    local_hostname: str | None = None  # the name we give in EHLO; default: this machine's
    # The domain of the Message-IDs we make; default: the sender's domain.
    message_id_domain: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.tls and self.starttls:
            raise ValueError("choose one of `tls` (implicit TLS) and `starttls`")
        if (self.username is None) != (self.password is None):
            raise ValueError("`username` and `password` go together")
        if self.list_unsubscribe is not None and not self.list_unsubscribe.startswith(
            ("mailto:", "https://")
        ):
            raise ValueError("`list_unsubscribe` must be a mailto: or https:// URL")
        return self

    def allows_sender(self, address: str) -> bool:
        if not self.from_domains:
            return True
        domain = address.rpartition("@")[2].lower()
        return domain in {d.lower() for d in self.from_domains}

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for implicit TLS or STARTTLS; None for a plain route."""
        if not (self.tls or self.starttls):
            return None
        context = ssl.create_default_context(
            cafile=str(self.ca_file) if self.ca_file is not None else None
        )
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
