"""Nothing a user, an answer, a document or an error says becomes markup; the CSP backs it up."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

XSS = '<img src=x onerror="window.__xss=1">'


async def assert_inert(chat: Any) -> None:
    """No payload ran and no element was made from one."""
    page = chat.page
    assert await page.evaluate("() => typeof window.__xss") == "undefined"
    assert await page.locator("#messages img, #messages script").count() == 0


async def test_markup_in_a_question_is_shown_as_text(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-alice")
    question = f"{XSS} How many technicians are active?"
    await chat.ask_and_wait(question)

    assert await chat.page.inner_text("#messages .message.user .bubble") == question
    await assert_inert(chat)
    title = chat.page.locator("#conversation-list .conversation-title").first
    assert XSS in await title.inner_text()
    assert await title.get_attribute("title") == question

    await chat.page.reload()  # the same text again, now from the history API
    await chat.wait_connected()
    await chat.page.wait_for_selector("#messages .message.user")
    assert await chat.page.inner_text("#messages .message.user .bubble") == question
    await assert_inert(chat)


async def test_markup_in_a_stored_document_is_shown_as_text(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-alice")
    await chat.ask_and_wait("What is the uniform policy?")

    sources = chat.last_turn.locator(".sources")
    assert XSS in await sources.locator(".source-title").first.inner_text()
    assert "<script>" in await sources.inner_text()
    await assert_inert(chat)
    await chat.screenshot("stored-markup-inert")

    await chat.page.reload()
    await chat.wait_connected()
    await chat.page.wait_for_selector("#messages .sources")
    assert XSS in await chat.page.inner_text("#messages .sources")
    await assert_inert(chat)


async def test_the_page_is_served_with_a_csp_that_blocks_markup_injection(
    open_chat: Any, stack: Any
) -> None:
    chat = await open_chat()
    response = await chat.page.goto(stack.gateway_url + "/")
    assert response is not None
    csp = (await response.all_headers())["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp

    # Even a (hypothetical) innerHTML slip in our code would throw: Trusted Types are required.
    outcome = await chat.page.evaluate(
        """() => {
            try {
                document.body.innerHTML = '<img src=x onerror="window.__xss=1">';
                return "assigned";
            } catch (error) {
                return error.name;
            }
        }"""
    )
    assert outcome == "TypeError"
    assert await chat.page.evaluate("() => typeof window.__xss") == "undefined"
    chat.console_errors.clear()  # the refused assignment is reported; it is the point here
