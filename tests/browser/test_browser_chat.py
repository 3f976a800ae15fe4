"""The chat page in Chromium: sign-in, streamed answers with status, tools, SQL and sources,
company switching, stop, conversations (new, switch, delete, reload), keyboard and phone layout."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

DATA_QUESTION = "Top 5 technicians by revenue this year"
POLICY_QUESTION = "What is the overtime policy?"


# Records the answer's length (in characters) and the status line at every change of the page
# while the turn runs: every step the user saw, however fast the tokens come.
RECORD_TURN = """() => {
  const app = document.getElementById('app');
  const samples = window.__turnSamples = [];
  const sample = () => {
    if (app.dataset.running !== 'true') { observer.disconnect(); return; }
    const a = [...document.querySelectorAll('#messages .answer')].pop();
    const s = document.querySelector('#messages .live .turn-status');
    samples.push([a ? [...a.textContent].length : 0, s && !s.hidden ? s.textContent : '']);
  };
  const observer = new MutationObserver(sample);
  observer.observe(document.body, {subtree: true, childList: true, characterData: true,
                                   attributes: true});
  sample();
}"""


async def sample_until_idle(chat: Any) -> tuple[list[int], list[str]]:
    """The answer's length and the status line at each change of the page while the turn runs."""
    await chat.page.evaluate(RECORD_TURN)
    await chat.wait_idle()
    samples = await chat.page.evaluate("() => window.__turnSamples")
    return [n for n, _ in samples], [status for _, status in samples]


async def test_data_answer_streams_with_status_tools_and_sql(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-bob")
    page = chat.page
    assert await page.inner_text("#identity-company") == "Bluepeak Plumbing"
    assert "Bob" in await chat.signed_in_user()

    await chat.ask(DATA_QUESTION)
    lengths, statuses = await sample_until_idle(chat)
    final = await chat.answer_text()

    assert final.startswith("Top 5 technicians by revenue")
    growing = sorted({n for n in lengths if 0 < n < len(final)})
    assert len(growing) >= 3, f"the answer arrived in too few steps: {growing}"
    assert lengths == sorted(lengths), "the answer never shrinks while streaming"
    assert "Writing the answer…" in statuses
    turn = chat.last_turn
    assert "company's data" in await turn.locator(".route-chip").inner_text()
    tool = turn.locator(".activity-item.tool")
    assert await tool.get_attribute("class") == "activity-item tool ok"
    assert re.search(r"5 rows · [\d.]+ (ms|s)", await tool.locator(".tool-result").inner_text())
    assert "Adding up revenue" in await turn.locator(".note").inner_text()
    assert await turn.locator(".stats").inner_text() != ""

    sql = turn.locator("details.sql")
    assert await sql.count() == 1, "the SQL is shown once"
    assert await tool.locator("details.sql").count() == 1, "under the tool call that ran it"
    assert not await sql.locator("pre").is_visible()
    await sql.locator("summary").click()
    assert (await sql.locator("pre").inner_text()).startswith("SELECT")
    await chat.screenshot("data-answer")

    # A second question in the same conversation: a policy answer, with its sources.
    assert "Overtime at Bluepeak Plumbing" in await chat.ask_and_wait(POLICY_QUESTION)
    assert await chat.page.locator("#messages .message.assistant").count() == 2
    turn = chat.last_turn
    assert "documents" in await turn.locator(".route-chip").inner_text()
    assert "Searching documents" in await turn.locator(".tool-label").inner_text()
    titles = await turn.locator(".source-title").all_inner_texts()
    assert titles == ["Bluepeak Plumbing: Overtime Policy"], "each document once"
    assert await turn.locator(".sources-title").inner_text() == "Sources (1)"
    assert "counted by the day" in await turn.locator(".source-snippet").inner_text()
    assert await turn.locator(".answer .cite").count() >= 1, "citations stand out"
    await chat.screenshot("conversation")


async def test_switching_company_switches_the_data(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-alice")
    acme_answer = await chat.ask_and_wait(DATA_QUESTION)
    alice_conversation = await chat.page.get_attribute(
        "#conversation-list .conversation.current", "data-id"
    )
    assert alice_conversation
    acme_hue = await chat.page.evaluate(
        "() => document.documentElement.style.getPropertyValue('--company-hue')"
    )

    await chat.switch_user("u-bob", "bluepeak-plumbing")
    assert "Bob" in await chat.signed_in_user()
    assert await chat.page.is_visible("#empty-state"), "Alice's transcript is gone"
    await chat.page.wait_for_selector(
        f"#conversation-list [data-id='{alice_conversation}']", state="detached"
    )
    bob_hue = await chat.page.evaluate(
        "() => document.documentElement.style.getPropertyValue('--company-hue')"
    )
    bob_answer = await chat.ask_and_wait(DATA_QUESTION)

    assert bob_hue != acme_hue, "the accent colour follows the company"
    assert bob_answer.startswith("Top 5 technicians by revenue")
    assert bob_answer != acme_answer
    assert "Victor Chen" in acme_answer and "Victor Chen" not in bob_answer
    await chat.screenshot("switched-company")


async def test_stop_ends_the_run_mid_answer(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-carol")
    await chat.ask(POLICY_QUESTION)
    await chat.page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('#messages .answer')].pop();"
        " return (a ? a.textContent.length : 0) >= 20"
        " || document.getElementById('app').dataset.running !== 'true'; }"
    )
    assert await chat.running(), "the answer finished before it could be stopped"

    current = chat.page.locator("#conversation-list .conversation.current .conversation-title")
    assert await current.inner_text() == "Overtime policy", "listed while it answers"
    assert await current.get_attribute("title") == POLICY_QUESTION
    await chat.screenshot("streaming")
    await chat.page.click("#stop")
    await chat.wait_idle()
    turn = chat.last_turn
    assert await turn.locator(".badge.stopped").inner_text() == "Stopped"
    stopped_at = await chat.answer_text()
    answers = chat.page.locator("#messages .answer")
    stopped_answer = answers.nth(await answers.count() - 1)

    assert "Sources:" not in stopped_at, "the whole answer was not sent"
    assert await chat.page.is_visible("#send")
    assert not await chat.page.is_visible("#stop")
    await chat.screenshot("stopped")
    # The conversation goes on after a stop.
    assert (await chat.ask_and_wait("How many technicians are active?")).startswith("You have")
    # The next turn was accepted, so the stopped run is over: nothing of it arrived after the stop.
    assert await stopped_answer.text_content() == stopped_at


async def test_a_stopped_answer_survives_a_reload_marked_stopped(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-carol")
    await chat.ask(POLICY_QUESTION)
    await chat.page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('#messages .answer')].pop();"
        " return (a ? a.textContent.length : 0) >= 20"
        " || document.getElementById('app').dataset.running !== 'true'; }"
    )
    assert await chat.running(), "the answer finished before it could be stopped"
    await chat.page.click("#stop")
    await chat.wait_idle()
    stopped_at = await chat.answer_text()

    await chat.page.reload()
    await chat.wait_connected()
    # The conversation comes back from its history: the partial answer, saved and marked.
    await chat.page.wait_for_selector(f"#messages .bubble:text-is('{POLICY_QUESTION}')")
    turn = chat.last_turn
    await turn.locator(".badge.stopped").wait_for(state="visible")
    assert await turn.locator(".badge.stopped").inner_text() == "Stopped"
    saved = await chat.answer_text()
    # What was saved is what the agent had written when the stop reached it: at least what the
    # page showed, never the whole answer.
    assert saved.startswith(stopped_at.strip()[:20]), (saved, stopped_at)
    assert "Sources:" not in saved
    await chat.screenshot("stopped-after-reload")
    chat.assert_clean()


async def test_conversations_start_switch_delete_and_survive_a_reload(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-dave")
    page = chat.page
    first = "How many customers do we have?"
    second = "How many jobs are open?"
    await chat.ask_and_wait(first)
    await page.click("#new-chat")
    assert await page.is_visible("#empty-state")
    await chat.screenshot("empty-state")
    await chat.ask_and_wait(second)
    titles = await chat.conversation_titles()
    assert titles.index("Open jobs") < titles.index("Customers"), "newest first"

    await page.click(f"#conversation-list .conversation-title[title='{first}']")
    await page.wait_for_selector(f"#messages .bubble:text-is('{first}')")
    assert second not in await page.inner_text("#messages")

    await page.reload()
    await chat.wait_connected()
    await page.wait_for_selector(f"#messages .bubble:text-is('{first}')")
    assert "customers" in await chat.answer_text()
    current = page.locator("#conversation-list .conversation.current .conversation-title")
    assert await current.get_attribute("title") == first

    row = page.locator(f"#conversation-list .conversation:has([title='{second}'])")
    delete = row.locator("button.conversation-delete")
    await delete.click()
    assert await delete.inner_text() == "Delete?"
    await delete.click()
    await page.wait_for_selector(
        f"#conversation-list .conversation-title[title='{second}']", state="detached"
    )
    assert "Customers" in await chat.conversation_titles()

    # Deleting the open conversation empties the transcript.
    current = page.locator("#conversation-list .conversation.current")
    assert await current.locator(".conversation-title").get_attribute("title") == first
    await current.locator(".conversation-delete").click()
    await page.click("#conversation-list .conversation-delete.armed")
    await page.wait_for_selector("#empty-state", state="visible")
    assert "Customers" not in await chat.conversation_titles()


async def test_keyboard_enter_sends_shift_enter_breaks_the_line(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-bob")
    page = chat.page
    await page.focus("#composer-input")
    await page.keyboard.type("How many technicians")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("are active?")
    assert await page.input_value("#composer-input") == "How many technicians\nare active?"
    assert await page.locator("#messages .message").count() == 0

    await page.keyboard.press("Enter")
    await chat.wait_idle()
    assert await page.input_value("#composer-input") == ""
    assert (
        await page.inner_text("#messages .message.user .bubble")
        == "How many technicians\nare active?"
    )
    assert (await chat.answer_text()).startswith("You have")


async def test_phone_layout_fits_and_opens_the_conversation_drawer(open_chat: Any) -> None:
    chat = await open_chat(viewport={"width": 390, "height": 844}, color_scheme="dark")
    await chat.sign_in("u-alice")
    page = chat.page
    await chat.ask_and_wait("How many technicians are active?")
    overflow = await page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, "no sideways scrolling on a phone"
    assert await page.is_visible("#composer-input")
    assert await page.is_visible("#identity-company")
    assert await _offscreen(page, "#sidebar"), "the conversation list is a drawer on a phone"
    background = await page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 17, 21)", "dark theme when the system asks for it"
    await chat.screenshot("phone-dark")

    await page.click("#menu-button")
    await page.wait_for_selector("#app.sidebar-open")
    await page.evaluate(  # the drawer has slid in: its transition has finished
        "() => Promise.all(document.getElementById('sidebar').getAnimations()"
        ".map((a) => a.finished))"
    )
    assert not await _offscreen(page, "#sidebar")
    await page.click("#new-chat")
    assert not await page.locator("#app.sidebar-open").count()


async def _offscreen(page: Any, selector: str) -> bool:
    box = await page.locator(selector).bounding_box()
    return box is None or box["x"] + box["width"] <= 0


async def test_the_empty_state_offers_questions_that_ask_themselves(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-carol")
    page = chat.page
    assert "Citywide Electric" in await page.inner_text("#empty-state")
    await page.click("#suggestions button:text-is('How many technicians are active?')")
    await page.wait_for_selector("#messages .message.assistant")
    await chat.wait_idle()
    assert not await page.is_visible("#empty-state")
    assert await page.inner_text("#messages .bubble") == "How many technicians are active?"
    assert (await chat.answer_text()).startswith("You have")
