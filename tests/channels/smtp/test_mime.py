"""The MIME writer, read back by the standard library's parser."""

import email
import email.policy
from email.message import EmailMessage

import pytest

from opencomms.channels.smtp.client import dot_stuff
from opencomms.channels.smtp.mime import Email, Mailbox, encoded_words, render, text_header


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def an_email(**changes: object) -> Email:
    fields: dict[str, object] = {
        "sender": Mailbox("shop@example.com", "The Shop"),
        "to": Mailbox("ada@example.com", "Ada"),
        "subject": "Hello",
        "html": "<p>Hi</p>",
        "text": "Hi",
        "message_id": "id1@example.com",
        "date": "Thu, 03 Dec 2026 11:00:00 +0000",
    }
    fields.update(changes)
    return Email(**fields)  # type: ignore[arg-type]


def test_encoded_words_never_split_a_character() -> None:
    words = encoded_words("é" * 60 + "😀" * 20, first=10)
    assert len(words[0]) <= len("=?utf-8?b??=") + 16  # 10 bytes: 16 base64 characters
    assert all(len(word) <= 75 for word in words)
    decoded = str(email.header.make_header(email.header.decode_header(" ".join(words))))
    assert decoded == "é" * 60 + "😀" * 20


@pytest.mark.parametrize(
    "subject",
    ["x" * 300, "word " * 80, "Ünïcödé " * 30, "tab\tand\r\nnewline injected: Bcc: x@y.io"],
)
def test_subjects_fold_under_78_and_read_back(subject: str) -> None:
    header = text_header("Subject", subject)
    lines = header.removesuffix("\r\n").split("\r\n")
    # 78 at most (RFC 5322), 76 with encoded words (RFC 2047); only a single word longer
    # than a line may make one longer (up to 998).
    for line in lines:
        assert len(line) <= (76 if "=?" in line else 78) or len(line.split()) <= 2, line
    assert all(line.startswith(" ") for line in lines[1:])
    expected = " ".join(subject.replace("\t", " ").replace("\r", " ").replace("\n", " ").split())
    assert " ".join(parse(render(an_email(subject=subject)))["Subject"].split()) == expected


@pytest.mark.parametrize(
    "name", ['Smith, Bob "The Builder"', "Zoë Ñandú", "plain name", "a\\b", "x" * 200]
)
def test_display_names_read_back(name: str) -> None:
    message = parse(render(an_email(to=Mailbox("ada@example.com", name))))
    assert message["To"].addresses[0].display_name == name
    assert message["To"].addresses[0].addr_spec == "ada@example.com"


def test_custom_headers_and_no_line_over_998() -> None:
    long_html = "<p>" + "x" * 5000 + "</p>"
    data = render(an_email(html=long_html, headers=(("X-Tier", "Gold ✓"),)))
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    message = parse(data)
    assert message["X-Tier"] == "Gold ✓"
    html = message.get_body(("html",))
    assert html is not None and html.get_content() == long_html


def test_dot_stuffing_doubles_leading_dots_only() -> None:
    assert dot_stuff(b".a\r\nb.\r\n..c") == b"..a\r\nb.\r\n...c\r\n.\r\n"
