"""The options of a `type = "smpp"` route, as written under `[[routes]]` in the config file."""

from typing import Literal

from pydantic import Field

from opencomms.channels.options import RouteOptions


class SmppRouteConfig(RouteOptions):
    """Every key is documented in docs/smpp.md; unknown keys are refused (typos fail loudly)."""

    host: str
    port: int = Field(2775, ge=1, le=65535)
    system_id: str = Field(max_length=15)
    password: str = Field("", max_length=8)
    system_type: str = Field("", max_length=12)
    bind: Literal["transceiver", "transmitter+receiver"] = "transceiver"
    window: int = Field(64, ge=1, le=10_000)  # outstanding requests per connection
    binds: int = Field(1, ge=1, le=64)  # parallel connections (pairs for transmitter+receiver)
    mps: float = Field(0, ge=0)  # submit_sm per second for the whole route; 0 = unlimited
    source_ton: int = Field(1, ge=0, le=255)
    source_npi: int = Field(1, ge=0, le=255)
    dest_ton: int = Field(1, ge=0, le=255)
    dest_npi: int = Field(1, ge=0, le=255)
    enquire_link_interval: float = Field(30, gt=0)
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str = ""  # a PEM bundle to trust instead of the system's (a private CA)
    default_encoding: Literal["gsm7", "ucs2"] = "gsm7"
    gsm7_packed: bool = False  # pack GSM text 8 septets into 7 octets (few SMSCs want it)
    concatenation: Literal["udh", "sar"] = "udh"
    service_type: str = Field("", max_length=5)
    registered_delivery: bool = True
    response_timeout: float = Field(30, gt=0)  # for any request's answer
    connect_timeout: float = Field(10, gt=0)
    reconnect_min: float = Field(1, gt=0)
    reconnect_max: float = Field(60, gt=0)
    throttle_pause: float = Field(1, ge=0)  # the route's pause after ESME_RTHROTTLED/RMSGQFUL
    resubmits: int = Field(5, ge=0)  # a part is submitted again this often (throttle, drop)
    reassembly_timeout: float = Field(60, gt=0)  # held inbound parts are refused after this
    # An inbound message identical to one stored this recently is a redelivery (seconds).
    inbound_repeat_window: float = Field(600, ge=0)
