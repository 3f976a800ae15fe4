"""What the chat page says when things go wrong: rate limits, a lost connection (and coming
back), and tokens that are not accepted."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_a_rate_limit_says_when_to_retry(open_chat: Any, stack: Any) -> None:
    chat = await open_chat(base_url=stack.limited_url)  # one request per user per minute
    await chat.sign_in("u-carol")
    assert (await chat.ask_and_wait("How many technicians are active?")).startswith("You have")
    await chat.ask_and_wait("How many customers do we have?")

    alert = chat.last_turn.locator(".alert.rate-limit")
    assert await alert.is_visible()
    when = await alert.locator(".retry-when").inner_text()
    found = re.search(r"Try again in (\d+) s \(at [0-9:APM ]+\)", when)
    assert found is not None, when
    assert 1 <= int(found.group(1)) <= 60
    assert "RATE_LIMITED" not in await alert.inner_text(), "a person reads this, not a code"
    assert await chat.page.is_visible("#send")
    await chat.screenshot("rate-limited")


async def test_a_lost_connection_is_said_and_the_page_reconnects(
    open_chat: Any, own_gateway: Any
) -> None:
    chat = await open_chat(base_url=own_gateway.url)
    await chat.sign_in("u-bob")
    page = chat.page
    await chat.ask("What is the overtime policy?")
    await page.wait_for_selector("#messages .answer:not(:empty)")

    await own_gateway.stop()  # mid-answer
    await chat.wait_idle()
    alert = chat.last_turn.locator(".alert.error")
    assert await alert.is_visible(), "the cut-off answer says so"
    await page.wait_for_selector("#app[data-connection='reconnecting']", state="attached")
    assert "Connection lost" in await page.inner_text("#connection")
    await chat.screenshot("connection-lost")

    await own_gateway.start()  # same port: the backoff finds it
    await chat.wait_connected()
    assert not await page.is_visible("#connection")
    await alert.locator("button:text-is('Try again')").click()
    await chat.wait_idle()
    assert "Overtime" in await chat.answer_text()
    chat.console_errors.clear()  # Chromium logs each refused reconnection attempt


async def test_a_pasted_token_signs_in_as_its_user(open_chat: Any, stack: Any) -> None:
    chat = await open_chat()
    assert await chat.page.locator("button.demo-user").count() == 4
    await chat.screenshot("sign-in")
    await chat.page.fill("#token-input", stack.token("u-bob", "bluepeak-plumbing"))
    await chat.page.click("#token-form button")
    await chat.wait_connected()
    assert await chat.page.inner_text("#identity-company") == "Bluepeak Plumbing"


async def test_without_dev_sign_in_a_pasted_token_is_the_way_in(
    open_chat: Any, stack: Any, gateway_without_dev_auth: Any
) -> None:
    chat = await open_chat(base_url=gateway_without_dev_auth.url)
    page = chat.page
    await page.wait_for_selector("#signin:not([hidden])")
    assert not await page.is_visible("#demo-users-block")
    await page.fill("#token-input", "Bearer " + stack.token("u-carol", "citywide-electric"))
    await page.click("#token-form button")
    await chat.wait_connected()
    assert await page.inner_text("#identity-company") == "citywide-electric"
    assert await page.inner_text("#identity-user") == "u-carol"
    assert not await page.is_visible("#switcher")
    assert (await chat.ask_and_wait("How many technicians are active?")).startswith("You have")
    chat.console_errors.clear()  # the page's probe of /auth/dev-users is a logged 404


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("not-a-token", "does not look like a JWT"),
        # well formed, wrong signature: the server refuses it on the socket
        (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            "eyJzdWIiOiJ1LWFsaWNlIiwiY29tcGFueV9pZCI6ImFjbWUtaHZhYyJ9."
            "c2lnbmF0dXJlLXRoYXQtaXMtd3Jvbmc",
            "",
        ),
    ],
)
async def test_a_refused_token_returns_to_sign_in_with_the_reason(
    open_chat: Any, token: str, says: str
) -> None:
    chat = await open_chat()
    await chat.page.fill("#token-input", token)
    await chat.page.click("#token-form button")
    await chat.page.wait_for_selector("#signin-error:not([hidden])")
    assert says in await chat.page.inner_text("#signin-error")
    assert await chat.page.is_visible("#signin")
    assert not await chat.page.is_visible("#app")
