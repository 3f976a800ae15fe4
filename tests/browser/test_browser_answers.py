"""What an answer shows beyond its text: its rows as a table and a chart, the SQL once, one numbered
sources list, the same after a reload; timestamps, copying, titles, the header, shortcuts."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

TOP_FIVE = "Top 5 technicians by revenue this year"
POLICY = "What is the overtime policy?"
IN_VIEW = """el => new Promise(resolve => {
  const seen = new IntersectionObserver(entries => {
    if (entries[0].isIntersecting) { seen.disconnect(); resolve(); }
  });
  seen.observe(el);
})"""
TOOL_ROWS = """els => els.map(e => [
  e.className,
  e.querySelector('.tool-label').textContent,
  e.querySelector('.tool-result').textContent,
].join('|'))"""
LINES = """el => Math.round(
  el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight)
)"""


async def with_clipboard(chat: Any) -> None:
    await chat.page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=chat.base_url
    )


async def clipboard(chat: Any) -> str:
    return str(await chat.page.evaluate("() => navigator.clipboard.readText()"))


async def module(chat: Any, name: str) -> str:
    """The versioned URL of one of the page's JS modules (to call its pure functions)."""
    src = await chat.page.get_attribute("script[type=module]", "src")
    return re.sub(r"main\.js$", name, str(src))


async def test_rows_show_as_a_sortable_table_with_a_bar_chart(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-bob")
    await chat.ask_and_wait(TOP_FIVE)
    turn = chat.last_turn
    table = turn.locator(".result-table")
    assert await table.locator("tbody tr").count() == 5
    assert await table.locator("th").all_inner_texts() == ["technician_id", "technician", "revenue"]
    revenue = table.locator("tbody td:nth-child(3)")
    align = await revenue.first.evaluate("td => getComputedStyle(td).textAlign")
    assert align == "right", "numbers are right-aligned"
    name_align = await table.locator("tbody td:nth-child(2)").first.evaluate(
        "td => getComputedStyle(td).textAlign"
    )
    assert name_align in ("left", "start")
    first_by_revenue = await table.locator("tbody td:nth-child(2)").first.inner_text()
    assert first_by_revenue in await chat.answer_text()

    await table.locator("th button:text-is('revenue')").click()  # numbers sort largest first
    assert await table.locator("th:nth-child(3)").get_attribute("aria-sort") == "descending"
    await table.locator("th button:text-is('revenue')").click()
    assert await table.locator("th:nth-child(3)").get_attribute("aria-sort") == "ascending"
    values = [float(v.replace(",", "")) for v in await revenue.all_inner_texts()]
    assert values == sorted(values)
    await table.locator("th button:text-is('technician')").click()
    names = await table.locator("tbody td:nth-child(2)").all_inner_texts()
    assert names == sorted(names)

    chart = turn.locator("figure.chart-figure[data-chart='bar']")
    assert await chart.locator("rect.chart-bar").count() == 5
    assert await chart.locator("figcaption").inner_text() == "revenue by technician"
    assert first_by_revenue in str(await chart.locator("svg").text_content())
    assert await turn.locator(".result-count").inner_text() == "5 rows"


async def test_long_results_show_the_first_rows_then_all(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-carol")
    await chat.ask_and_wait("List all technicians")
    turn = chat.last_turn
    rows = turn.locator(".result-table tbody tr")
    assert await rows.count() == 8
    more = turn.locator("button.show-all")
    assert await more.inner_text() == "Show all 15 rows"
    await more.click()
    assert await rows.count() == 15
    assert not await more.is_visible()


async def test_a_series_over_time_is_drawn_as_a_line(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-alice")
    await chat.ask_and_wait("Revenue by month")
    chart = chat.last_turn.locator("figure.chart-figure")
    assert await chart.get_attribute("data-chart") == "line"
    points = await chart.locator("circle.chart-dot").count()
    assert points == await chat.last_turn.locator(".result-table tbody tr").count() or points > 8


async def test_the_sql_is_shown_once_formatted_and_copyable(open_chat: Any) -> None:
    chat = await open_chat()
    await with_clipboard(chat)
    await chat.sign_in("u-bob")
    await chat.ask_and_wait(TOP_FIVE)
    turn = chat.last_turn
    assert await turn.locator("details.sql").count() == 1
    assert await turn.locator(".tool-input").count() == 0, "not again in the tool row"
    await turn.locator("details.sql summary").click()
    sql = await turn.locator("details.sql pre").inner_text()
    lines = sql.splitlines()
    assert lines[0].startswith("SELECT") and any(line.startswith("FROM ") for line in lines)
    assert any(line.startswith("GROUP BY") for line in lines)
    assert any(line.strip().startswith("AND ") for line in lines), "conditions one per line"
    assert "BETWEEN '2026-01-01' AND '2026-11-15'" in sql, "BETWEEN … AND … stays whole"
    pre = turn.locator("details.sql pre")
    assert await pre.evaluate("p => p.scrollHeight <= p.clientHeight + 1"), "no line cut off"
    await turn.locator("details.sql .copy-button").click()
    assert await clipboard(chat) == sql
    assert await turn.locator("details.sql .copy-button").inner_text() == "Copied"


async def test_one_sources_list_numbered_like_the_chips(open_chat: Any) -> None:
    chat = await open_chat(viewport={"width": 1280, "height": 500})
    await chat.sign_in("u-bob")
    await chat.ask_and_wait(POLICY)
    turn = chat.last_turn
    assert await turn.locator(".sources").count() == 1
    assert not await turn.locator(".line.sources-line").is_visible(), (
        "the inline list is not repeated"
    )
    assert "Sources:" in await chat.answer_text(), "though the answer's text keeps it"
    chips = set(await turn.locator(".answer .cite").all_inner_texts())
    numbers = set(await turn.locator(".source .source-numbers .cite").all_inner_texts())
    assert chips == numbers == {"[1]"}
    # several sections of one policy (section chunks): plural passages, singular document
    summary = await turn.locator(".tool-result").inner_text()
    assert re.search(r"\b[2-9] passages from 1 document ·", summary), summary

    snippet = await turn.locator(".source-snippet").inner_text()
    assert snippet.endswith("…")
    passage = " ".join(
        line for line in await history_snippet(chat) if not line.lstrip().startswith("#")
    )
    passage = " ".join(passage.split())
    shown = snippet.removesuffix("…")
    assert passage.startswith(shown)
    assert not passage[len(shown)].isalnum(), f"cut mid-word: {shown[-12:]!r}"

    await turn.locator(".answer .line:not(.sources-line) .cite").last.click()
    source = turn.locator(".source[data-cites~='1']")
    assert "highlight" in str(await source.get_attribute("class"))
    await source.evaluate(IN_VIEW)


async def history_snippet(chat: Any) -> list[str]:
    raw = await chat.page.evaluate(
        """async () => {
          const id = document.querySelector('#conversation-list .conversation.current').dataset.id;
          const r = await fetch('/api/conversations/' + id,
            {headers: {Authorization: 'Bearer ' + sessionStorage.getItem('fsa.token')}});
          const body = await r.json();
          return body.messages[1].sources[0].snippet;
        }"""
    )
    return str(raw).splitlines()


async def test_cited_sources_come_first_and_uncited_say_so(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-bob")
    url = await module(chat, "sources.js")
    entries = await chat.page.evaluate(
        """async (url) => {
          const { sourceEntries } = await import(url);
          const sources = [
            {doc_id: 'a', title: 'Safety', snippet: 'Wear gloves.'},
            {doc_id: 'b', title: 'Overtime', snippet: 'Overtime is paid.'},
            {doc_id: 'b', title: 'Overtime', snippet: 'Weekends count.'},
          ];
          return sourceEntries(sources, 'Paid [2]. Weekends [3]. Sources: [2] Overtime.');
        }""",
        url,
    )
    assert [(e["title"], e["numbers"], e["cited"]) for e in entries] == [
        ("Overtime", [2, 3], True),
        ("Safety", [], False),
    ]


async def test_a_reloaded_conversation_looks_like_the_live_one(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-alice")
    await chat.ask_and_wait(TOP_FIVE)
    await chat.ask_and_wait(POLICY)

    async def snapshot() -> dict[str, Any]:
        turns = chat.page.locator("#messages > li.assistant")
        return {
            "tools": await chat.page.locator("#messages .activity-item.tool").evaluate_all(
                TOOL_ROWS
            ),
            "rows": await turns.nth(0).locator(".result-table tbody tr").count(),
            "chart": await turns.nth(0).locator("figure.chart-figure").count(),
            "sql": await chat.page.locator("#messages details.sql").count(),
            "sources": await turns.nth(1).locator(".source").count(),
            "stamps": await chat.page.locator("#messages time.stamp").evaluate_all(
                "els => els.map(e => e.getAttribute('datetime').slice(0, 16))"
            ),
            "answers": await chat.page.locator("#messages .answer").all_inner_texts(),
        }

    live = await snapshot()
    await chat.page.reload()
    await chat.wait_connected()
    await chat.page.wait_for_selector("#messages .result-table")
    reloaded = await snapshot()
    assert reloaded == live
    assert live["rows"] == 5 and live["chart"] == 1 and live["sql"] == 1
    assert len(live["stamps"]) == 4, "every message has its time"
    assert all("rows" in t or "passages" in t for t in live["tools"])


async def test_messages_appear_at_full_strength_with_their_time(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-dave")
    await chat.ask("How many technicians are active?")
    fresh = await chat.page.evaluate(
        "() => [...document.querySelectorAll('#messages > li')].map(li =>"
        " [getComputedStyle(li).opacity, getComputedStyle(li).animationName])"
    )
    assert fresh and all(item == ["1", "none"] for item in fresh), fresh
    await chat.wait_idle()
    stamp = chat.page.locator("#messages .message.user time.stamp")
    assert re.fullmatch(r"\d{1,2}:\d{2}( [AP]M)?", await stamp.inner_text())
    assert await stamp.get_attribute("title")
    assert await chat.last_turn.locator(".turn-footer time.stamp").count() == 1
    assert re.search(r"\d+ tokens", await chat.last_turn.locator(".stats").inner_text())


async def test_copy_answer_copies_the_whole_answer(open_chat: Any) -> None:
    chat = await open_chat()
    await with_clipboard(chat)
    await chat.sign_in("u-bob")
    answer = await chat.ask_and_wait(POLICY)
    await chat.last_turn.locator(".turn-footer .copy-button").click()
    copied = await clipboard(chat)
    assert copied.replace("\n", "") == answer, "the answer as it was written"
    assert "\n- Overtime at Bluepeak" in copied, "line breaks included"


async def test_sidebar_titles_are_short_whole_and_complete_on_hover(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-alice")
    long_question = "Which technicians had no jobs last month and were not on leave at the time?"
    for question in ("How many technicians are active?", long_question):
        await chat.page.click("#new-chat")
        await chat.ask_and_wait(question)
    titles = chat.page.locator("#conversation-list .conversation-title")
    assert (await titles.all_inner_texts())[:2] == [
        "Technicians had no jobs last month and were not…",
        "Active technicians",
    ]
    assert await titles.first.get_attribute("title") == long_question
    lines = await titles.first.evaluate(LINES)
    assert lines == 2, "long titles wrap to two lines"
    assert await titles.first.evaluate("el => el.scrollHeight <= el.clientHeight + 1")


async def test_the_header_has_one_identity_and_an_uncut_user_picker(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-bob")
    header = await chat.page.inner_text("header.topbar")
    assert header.count("Bluepeak Plumbing") == 1, "the company once"
    assert await chat.page.locator("header .identity").count() == 1
    assert not await chat.page.is_visible("#identity-user"), "the picker takes the name's place"
    assert await chat.signed_in_user() == "Bob Lindqvist (owner)"
    select = chat.page.locator("#user-select")
    assert await select.evaluate("s => s.scrollWidth <= s.clientWidth"), "the name is not cut"
    groups = await select.locator("optgroup").evaluate_all("gs => gs.map(g => g.label)")
    assert "Acme Heating & Cooling" in groups


async def test_keyboard_shortcuts_are_listed_in_a_popover(open_chat: Any) -> None:
    chat = await open_chat()
    await chat.sign_in("u-bob")
    page = chat.page
    await chat.ask_and_wait("How many technicians are active?")
    await page.locator("#composer-input").blur()
    help_box = page.locator("#shortcuts")
    assert not await help_box.is_visible()
    await page.keyboard.press("?")
    assert await help_box.is_visible()
    listed = await help_box.inner_text()
    for key in ("Enter", "Shift", "Esc", "/", "?"):
        assert key in listed
    await page.keyboard.press("Escape")
    assert not await help_box.is_visible()
    await page.click("#shortcuts-button")
    assert await help_box.is_visible()
    await page.keyboard.press("/")
    assert not await help_box.is_visible()
    assert await page.evaluate("() => document.activeElement.id") == "composer-input"
    await page.locator("#composer-input").blur()
    await page.keyboard.press("n")
    assert await page.is_visible("#empty-state"), "n starts a new conversation"
