"""Iterators that follow pagination, the same in both clients: each page asked for once, in
order, and no page past the limit or the last one."""

from typing import Any

from opencomms.client import AsyncClient, Client
from tests.client.scripted import Answer, scripted_server

SID, TOKEN = "AC" + "0" * 32, "token"


def page(items: list[str], next_token: str | None) -> Answer:
    body: dict[str, Any] = {
        "operations": [
            {"id": item, "status": "COMPLETED", "stats": {"total": 1},
             "createdAt": "2025-06-18T12:00:00Z", "updatedAt": "2025-06-18T12:00:01Z"}
            for item in items
        ],
        "pagination": {"next": next_token, "self": "s"},
    }  # fmt: skip
    return Answer(200, body)


def test_pages_are_followed_until_the_last() -> None:
    answers = (page(["a", "b"], "t2"), page(["c", "d"], "t3"), page(["e"], None))
    with scripted_server(*answers) as (url, script), Client(SID, TOKEN, base_url=url) as client:
        found = [o.id for o in client.iter_operations(page_size=2)]
    assert found == ["a", "b", "c", "d", "e"]
    assert [s.path for s in script.seen] == [
        "/v1/Messages/Operations?pageSize=2",
        "/v1/Messages/Operations?pageSize=2&pageToken=t2",
        "/v1/Messages/Operations?pageSize=2&pageToken=t3",
    ]


def test_no_page_is_fetched_past_the_limit() -> None:
    answers = (page(["a", "b"], "t2"), page(["c", "d"], "t3"))
    with scripted_server(*answers) as (url, script), Client(SID, TOKEN, base_url=url) as client:
        assert [o.id for o in client.iter_operations(page_size=2, limit=2)] == ["a", "b"]
        assert len(script.seen) == 1
        assert [o.id for o in client.iter_operations(page_size=2, limit=1)] == ["c"]


def test_an_empty_page_ends_the_walk() -> None:
    with scripted_server(page([], "t2")) as (url, script), Client(SID, TOKEN, base_url=url) as c:
        assert list(c.iter_operations()) == []
    assert len(script.seen) == 1


async def test_the_async_client_walks_the_same_pages() -> None:
    answers = (page(["a", "b"], "t2"), page(["c"], None))
    with scripted_server(*answers) as (url, script):
        async with AsyncClient(SID, TOKEN, base_url=url) as client:
            found = [o.id async for o in client.iter_operations(page_size=2, limit=3)]
    assert found == ["a", "b", "c"]
    assert script.seen[1].path == "/v1/Messages/Operations?pageSize=2&pageToken=t2"
