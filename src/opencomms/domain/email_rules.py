"""The rules an email's addresses and headers follow, shared by the API and the SMTP route.

Addresses are checked by email-validator (syntax only: no DNS lookups, which would make
accepting 10,000 recipients depend on the network). Local parts must be ASCII: a relay
without SMTPUTF8 cannot carry anything else, and hardly any offers it.
"""

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

# Headers a send may not set: the spec's list, and those OpenComms writes itself.
RESERVED_HEADERS = frozenset(
    {
        "x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
        "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc",
        "message-id", "date", "mime-version", "sender", "return-path", "content-id",
        "content-disposition", "list-unsubscribe-post",
    }
)  # fmt: skip
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 field-name: printable, no colon
MAX_HEADER_VALUE = 998 - 78  # what still folds under the hard line limit


def is_header_name(name: str) -> bool:
    return _HEADER_NAME.match(name) is not None


@lru_cache(maxsize=65536)
def check_address(address: str) -> tuple[str | None, str | None]:
    """(normalized address, None) when valid, else (None, why)."""
    try:
        valid = validate_email(
            address, check_deliverability=False, allow_smtputf8=False, test_environment=True
        )
    except EmailNotValidError as error:
        return None, str(error)
    return valid.normalized, None


def header_problem(name: str, value: str) -> str | None:
    """Why a custom header cannot be sent as given, or None."""
    if not is_header_name(name):
        return f"'{name}' is not a header name (printable ASCII without ':')"
    if name.lower() in RESERVED_HEADERS:
        return f"the header '{name}' is set by OpenComms and may not be given"
    if "\r" in value or "\n" in value:
        return f"the header '{name}' may not contain line breaks"
    if len(value) > MAX_HEADER_VALUE:
        return f"the header '{name}' is longer than {MAX_HEADER_VALUE} characters"
    return None
