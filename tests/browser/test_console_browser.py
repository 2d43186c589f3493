"""The console in a real browser: Debian's Chromium, driven by Playwright, against a real
`opencomms serve` (API and worker). Screenshots of every page land in tests/artifacts/.

Run alone with `scripts/test -m browser`; scripts/setup-browser installs Chromium.
"""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    async_playwright,
    expect,
)

from opencomms.store.db import open_database
from tests.acceptance.server import ServerProcess, start_server
from tests.sandbox.helpers import SMS_SENDER, declare_senders

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = "+14155550142"


@pytest.fixture
async def server(db_url: str, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    # A second between SENT and DELIVERED, so the page is seen changing without a reload.
    process = start_server(db_url, tmp_path, env={"OPENCOMMS_SANDBOX_DELAY": "1"})
    db = open_database(db_url)
    try:
        await declare_senders(db, process.account_sid)
    finally:
        await db.dispose()
    yield process
    process.stop()


# A loaded CI machine may take a while to render a page; assertions wait up to this long.
expect.set_options(timeout=15_000)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail("Chromium is missing: run scripts/setup-browser")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield launched
        await launched.close()


async def shot(page: Page, name: str, dialect: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"console-{dialect}-{name}.png"), full_page=True)


def watch_console(page: Page) -> list[str]:
    """Collects the browser's errors: a CSP violation or a failed script shows here."""
    problems: list[str] = []

    def on_message(message: ConsoleMessage) -> None:
        # Failed loads are reported with their URL by on_response below.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def on_response(response: Response) -> None:
        if response.status >= 400 and not response.url.endswith("/console/login"):
            problems.append(f"{response.status} {response.url}")

    page.on("console", on_message)
    page.on("response", on_response)
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


async def sign_in(page: Page, server: ServerProcess) -> None:
    await page.goto(server.base_url + "/console/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_label("Account SID or API key SID").fill(server.account_sid)
    await page.get_by_label("Auth token or API key secret").fill(server.auth_token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Operations")).to_be_visible()


async def api(server: ServerProcess, method: str, path: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, auth=server.auth) as http:
        return await http.request(method, path, **kwargs)  # type: ignore[arg-type]


async def send(server: ServerProcess, *numbers: str) -> str:
    body = {
        "to": [
            {"address": n, "channel": "PHONE", "variables": {"n": str(i)}}
            for i, n in enumerate(numbers)
        ],
        "content": {"text": "Your code is {{ n }}"},
    }
    response = await api(server, "POST", "/v1/Messages", json=body)
    assert response.status_code == 202, response.text
    operation_id: str = response.json()["operationId"]
    return operation_id


async def watch_operation(page: Page, server: ServerProcess, dialect: str) -> str:
    """Sends, then sees the operation complete on the page without reloading it."""
    operation_id = await send(server, PHONE, "+14155550143", "+15005550002")
    await page.reload()
    status = page.locator(f'[data-op-status="{operation_id}"]')
    await expect(status).to_be_visible()
    await page.evaluate("window.notReloaded = true")
    await expect(status).to_have_text("COMPLETED", timeout=30_000)
    assert await page.evaluate("window.notReloaded") is True
    progress = page.locator(f'.progress[data-op="{operation_id}"]')
    await expect(progress.locator('[data-field="delivered"]')).to_have_text("2")
    await expect(progress.locator('[data-field="failed"]')).to_have_text("1")
    await shot(page, "2-operations-completed", dialect)
    return operation_id


async def open_message(page: Page, server: ServerProcess, dialect: str, operation_id: str) -> None:
    """From the operation to a message: rendered content, attempt, identifier, seek."""
    await page.get_by_role("link", name=operation_id).click()
    await expect(page.get_by_role("heading", name=operation_id)).to_be_visible()
    await shot(page, "3-operation", dialect)
    await page.get_by_role("link", name=PHONE).click()
    await expect(page.get_by_text("Your code is 0", exact=True)).to_be_visible()
    identifier = page.locator(".attempts .facts a.mono").first
    await expect(identifier).to_have_text(re.compile(r"^SM[0-9a-f]{32}$"))
    await shot(page, "4-message", dialect)
    text = await identifier.text_content() or ""
    seek = await api(server, "GET", f"/v1/Messages/Seek/{text}")
    assert seek.status_code == 301
    message_url = page.url
    await identifier.click()
    await expect(page).to_have_url(message_url)


async def filter_messages(page: Page, dialect: str) -> None:
    await page.get_by_role("link", name="Messages", exact=True).click()
    await page.get_by_label("Status").select_option("FAILED")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator(".rows li")).to_have_count(1)
    await expect(page.locator(".rows li")).to_contain_text("+15005550002")
    await shot(page, "5-messages-filtered", dialect)


async def reply_from_the_inbox(page: Page, server: ServerProcess, dialect: str) -> None:
    await page.get_by_role("link", name="Sandbox inbox").click()
    await page.locator(".threads a", has_text=PHONE).click()
    await expect(page.locator(".bubble.out")).to_contain_text("Your code is 0")
    await page.get_by_placeholder(f"Reply as {PHONE} (STOP opts out)").fill("Got it, thanks!")
    await page.get_by_label("Reply to sender").select_option(label=f"{SMS_SENDER} (SMS)")
    await page.get_by_role("button", name="Send").click()
    await expect(page.locator(".bubble.in")).to_contain_text("Got it, thanks!")
    # A message sent to the phone meanwhile shows up in the open thread by itself.
    await send(server, PHONE)
    await expect(page.locator(".bubble.out")).to_have_count(2, timeout=30_000)
    await shot(page, "6-thread", dialect)
    listed = await api(server, "GET", "/v1/Messages", params={"status": "INBOUND"})
    assert [m["from"]["address"] for m in listed.json()["messages"]] == [PHONE]


async def test_console_end_to_end(browser: Browser, server: ServerProcess, dialect: str) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    problems = watch_console(page)
    await sign_in(page, server)
    await shot(page, "1-operations-empty", dialect)
    operation_id = await watch_operation(page, server, dialect)
    await open_message(page, server, dialect, operation_id)
    await filter_messages(page, dialect)
    await reply_from_the_inbox(page, server, dialect)
    await page.goto(server.base_url + "/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Twilio", timeout=20_000)
    await expect(page.get_by_text("OpenComms extensions").first).to_be_visible()
    await shot(page, "7-docs", dialect)
    assert problems == []
    await context.close()


async def test_console_at_phone_width(
    browser: Browser, server: ServerProcess, dialect: str
) -> None:
    await send(server, PHONE)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await context.new_page()
    problems = watch_console(page)
    await sign_in(page, server)
    for path, name in (
        ("/console/operations", "phone-operations"),
        ("/console/messages", "phone-messages"),
        ("/console/inbox", "phone-inbox"),
        (f"/console/inbox/%2B{PHONE[1:]}", "phone-thread"),
    ):
        await page.goto(server.base_url + path)
        # Nothing wider than the screen: no sideways scrolling on a phone.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        await shot(page, name, dialect)
    reply = page.get_by_role("button", name="Send")
    await expect(reply).to_be_visible()
    box = await reply.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    assert problems == []
    await context.close()
