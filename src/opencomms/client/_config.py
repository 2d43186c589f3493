"""Credentials and the base URL, from arguments or the environment."""

import os
from dataclasses import dataclass

from opencomms.client._errors import OpenCommsError

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
API_PREFIXES = ("/v1", "/preview")
USER_AGENT = "opencomms-python/0.1"


class ConfigurationError(OpenCommsError, ValueError):
    """The client was not given what it needs (credentials, a usable base URL)."""


@dataclass(frozen=True)
class ClientConfig:
    api_url: str
    username: str
    password: str

    @classmethod
    def resolve(
        cls, account_sid: str | None, auth_token: str | None, base_url: str | None
    ) -> "ClientConfig":
        username = account_sid or os.environ.get("OPENCOMMS_ACCOUNT_SID")
        password = auth_token or os.environ.get("OPENCOMMS_AUTH_TOKEN")
        if not username or not password:
            raise ConfigurationError(
                "credentials are needed: an Account SID and auth token, or an API key SID and "
                "secret (arguments, or OPENCOMMS_ACCOUNT_SID and OPENCOMMS_AUTH_TOKEN)"
            )
        url = base_url or os.environ.get("OPENCOMMS_URL") or DEFAULT_BASE_URL
        return cls(api_url(url), username, password)


def api_url(base_url: str) -> str:
    """The API root: a bare server URL gets `/v1`; one ending in `/v1` or `/preview` is kept."""
    url = base_url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must be an http(s) URL, not {base_url!r}")
    return url if url.endswith(API_PREFIXES) else url + "/v1"
