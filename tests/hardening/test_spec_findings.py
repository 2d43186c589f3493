"""What schemathesis found against the spec: formats are checked, valid edge cases pass."""

from typing import Any

import httpx
import pytest

PHONE = {"address": "+14155550100", "channel": "PHONE"}


def calendar_card(start: str, end: str) -> dict[str, Any]:
    action = {
        "createCalendarEventAction": {
            "startTime": start,
            "endTime": end,
            "title": "Visit",
            "description": "Our shop",
        },
        "text": "Add to calendar",
        "postbackData": "calendar",
    }
    card = {"title": "Visit us", "suggestions": [{"action": action}]}
    return {"modules": [{"rcs": {"richCard": {"standaloneCard": {"cardContent": card}}}}]}


async def send(client: httpx.AsyncClient, content: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/Messages", json={"to": [PHONE], "content": content})


@pytest.mark.parametrize("end", ["tomorrow", "2025-06-18", "2025-13-01T00:00:00Z", "12:00"])
async def test_an_rcs_end_time_that_is_no_date_time_is_refused(
    client: httpx.AsyncClient, end: str
) -> None:
    response = await send(client, calendar_card("2025-06-18T12:00:00Z", end))
    assert response.status_code == 400, response.text
    contexts = [e["context"] for e in response.json()["errors"]]
    assert any(c and c.endswith("createCalendarEventAction.endTime") for c in contexts), contexts


@pytest.mark.parametrize("end", ["2025-06-18T13:00:00Z", "2025-06-18T13:00:00.5+02:00", "{{ e }}"])
async def test_date_times_and_templates_are_accepted(client: httpx.AsyncClient, end: str) -> None:
    body = {"to": [{**PHONE, "variables": {"e": "2025-06-18T13:00:00Z"}}]}
    body["content"] = calendar_card("2025-06-18T12:00:00Z", end)
    response = await client.post("/v1/Messages", json=body)
    assert response.status_code == 202, response.text


async def test_an_empty_send_at_list_sends_now(client: httpx.AsyncClient) -> None:
    body = {"to": [PHONE], "content": {"text": "hi"}, "schedule": {"sendAt": []}}
    response = await client.post("/v1/Messages", json=body)
    assert response.status_code == 202, response.text
    location = response.json()["operationLocation"].replace("http://testserver", "")
    assert (await client.get(location)).json()["stats"]["queued"] == 1


@pytest.mark.parametrize("path", ["/v1/Messages", "/v1/Messages/Operations"])
async def test_an_end_date_equal_to_the_start_date_is_an_empty_window(
    client: httpx.AsyncClient, path: str
) -> None:
    when = "2025-06-18T12:00:00Z"
    response = await client.get(path, params={"startDate": when, "endDate": when})
    assert response.status_code == 200, response.text


async def test_operations_take_the_dates_in_either_order(client: httpx.AsyncClient) -> None:
    params = {"startDate": "2025-06-18T12:00:00Z", "endDate": "2025-06-17T12:00:00Z"}
    response = await client.get("/v1/Messages/Operations", params=params)
    assert response.status_code == 200
    assert response.json()["operations"] == []
