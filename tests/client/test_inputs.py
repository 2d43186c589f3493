"""What callers pass to the SDK, as the API receives it; configuration from the environment."""

import base64
from datetime import UTC, datetime

import httpx
import pytest

from opencomms.client import Client, ConfigurationError, Recipient
from opencomms.client._calls import tags_filter
from opencomms.client._config import api_url
from opencomms.client._inputs import send_body


def body(**kwargs: object) -> dict[str, object]:
    defaults: dict[str, object] = {
        "to": ["+14155550100"],
        "text": "Hi",
        "content": None,
        "media": None,
        "from_": None,
        "send_at": None,
        "tags": None,
    }
    defaults.update(kwargs)
    to = defaults.pop("to")
    return send_body(to, **defaults)  # type: ignore[arg-type]


def test_recipients_in_every_form() -> None:
    sent = body(
        to=[
            "+14155550100",
            Recipient("+14155550101", variables={"name": "Ada"}),
            Recipient("+14155550102", channel="WHATSAPP"),
            {"addresses": [{"address": "+14155550103", "channel": "PHONE"}]},
        ]
    )
    assert sent["to"] == [
        {"address": "+14155550100", "channel": "PHONE"},
        {"address": "+14155550101", "channel": "PHONE", "variables": {"name": "Ada"}},
        {"address": "+14155550102", "channel": "WHATSAPP"},
        {"addresses": [{"address": "+14155550103", "channel": "PHONE"}]},
    ]
    assert sent["content"] == {"text": "Hi"}
    assert "from" not in sent and "schedule" not in sent and "tags" not in sent


def test_senders_schedules_media_and_tags() -> None:
    assert body(from_="+15005550006")["from"] == {"address": "+15005550006", "channel": "SMS"}
    pool = "comms_senderpool_01h9krwprkeee8fzqspvwy6nq8"
    assert body(from_=pool)["from"] == {"senderPoolId": pool}
    sender = "comms_sender_01h9krwprkeee8fzqspvwy6nq8"
    assert body(from_=sender)["from"] == {"senderId": sender}
    assert body(from_={"address": "x", "channel": "RCS"})["from"] == {
        "address": "x",
        "channel": "RCS",
    }
    aware = datetime(2030, 1, 2, 9, 30, tzinfo=UTC)
    assert body(send_at=aware)["schedule"] == {"sendAt": ["2030-01-02T09:30:00+00:00"]}
    # Naive means the recipient's local time, which the API reads from a time without offset.
    assert body(send_at=datetime(2030, 1, 2, 9, 30))["schedule"] == {
        "sendAt": ["2030-01-02T09:30:00"]
    }
    assert body(media=["https://x/a.png"])["content"] == {
        "text": "Hi",
        "media": [{"url": "https://x/a.png"}],
    }
    assert body(tags={"k": "v"})["tags"] == {"k": "v"}
    assert body(text=None, content={"contentId": "HX1"})["content"] == {"contentId": "HX1"}


def test_content_is_given_exactly_once() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        body(text=None)
    with pytest.raises(ValueError, match="exactly one"):
        body(content={"text": "x"})
    with pytest.raises(ValueError, match="media"):
        body(text=None, content={"text": "x"}, media=["https://x"])


def test_tags_filter() -> None:
    assert tags_filter({"a": "1", "b": "2"}) == "a:1;b:2;"
    assert tags_filter("a:1;") == "a:1;"
    assert tags_filter(None) is None


def test_base_urls() -> None:
    assert api_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/v1"
    assert api_url("https://comms.example.com/") == "https://comms.example.com/v1"
    assert api_url("http://h/v1/") == "http://h/v1"
    assert api_url("http://h/preview") == "http://h/preview"
    with pytest.raises(ConfigurationError):
        api_url("127.0.0.1:8080")


def test_credentials_and_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"operations": [], "pagination": {"next": None, "self": "x"}}
        )

    monkeypatch.setenv("OPENCOMMS_ACCOUNT_SID", "SK" + "2" * 32)
    monkeypatch.setenv("OPENCOMMS_AUTH_TOKEN", "key-secret")
    monkeypatch.setenv("OPENCOMMS_URL", "http://env.test:9000")
    with Client(transport=httpx.MockTransport(answer)) as client:
        assert client.list_operations(status="completed", page_size=5).items == []
    [request] = seen
    assert (
        str(request.url)
        == "http://env.test:9000/v1/Messages/Operations?status=completed&pageSize=5"
    )
    expected = base64.b64encode(("SK" + "2" * 32 + ":key-secret").encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["user-agent"].startswith("opencomms-python/")
    monkeypatch.delenv("OPENCOMMS_AUTH_TOKEN")
    with pytest.raises(ConfigurationError, match="credentials are needed"):
        Client()
