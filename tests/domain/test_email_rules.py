"""Email addresses and custom headers."""

import pytest

from opencomms.domain.email_rules import check_address, header_problem


@pytest.mark.parametrize(
    ("address", "normalized"),
    [
        ("bob@example.com", "bob@example.com"),
        ("Bob.Smith+tag@Example.COM", "Bob.Smith+tag@example.com"),
        ("x@exämple.com", "x@exämple.com"),
        ("ada@example.test", "ada@example.test"),
    ],
)
def test_valid_addresses_are_normalized(address: str, normalized: str) -> None:
    assert check_address(address) == (normalized, None)


@pytest.mark.parametrize(
    "address", ["a@b", "bad@@x.com", "jöhn@example.com", "a b@c.com", "@x.com", "x@localhost"]
)
def test_invalid_addresses_say_why(address: str) -> None:
    normalized, why = check_address(address)
    assert normalized is None and why


@pytest.mark.parametrize(
    ("name", "value", "refused"),
    [
        ("X-Campaign-ID", "Q1", False),
        ("List-Unsubscribe", "<https://x.io/u>", False),
        ("Subject", "x", True),
        ("reply-to", "x@y.io", True),
        ("DKIM-Signature", "x", True),
        ("Message-ID", "<a@b>", True),
        ("Bad Name", "x", True),
        ("X-Colon:", "x", True),
        ("X-Inject", "a\r\nBcc: victim@x.io", True),
        ("X-Long", "x" * 921, True),
    ],
)
def test_custom_headers(name: str, value: str, refused: bool) -> None:
    assert (header_problem(name, value) is not None) is refused
