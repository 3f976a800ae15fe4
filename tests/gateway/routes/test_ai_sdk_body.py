"""`useChat` re-sends the whole conversation each turn: /api/chat has its own, larger body limit."""

from __future__ import annotations

from typing import Any

import aiohttp
from support.gateway_harness import FakeUpstream, gateway_settings, running_gateway, sql_answer


def long_history(turns: int, words: int = 200) -> dict[str, Any]:
    """What `useChat` posts after `turns` question/answer pairs (about 1 KiB of answer each)."""
    messages: list[dict[str, Any]] = []
    for turn in range(turns):
        messages.append(
            {"id": f"u{turn}", "role": "user", "parts": [{"type": "text", "text": f"Q{turn}?"}]}
        )
        answer = " ".join(["technicians"] * words)
        messages.append(
            {"id": f"a{turn}", "role": "assistant", "parts": [{"type": "text", "text": answer}]}
        )
    messages.append({"id": "last", "role": "user", "parts": [{"type": "text", "text": "And?"}]})
    return {"id": "chat-long", "messages": messages, "trigger": "submit-message"}


async def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        return r.status, await r.text()


async def test_a_100_kib_use_chat_history_is_accepted(upstream: FakeUpstream) -> None:
    upstream.script = sql_answer("chat-long")
    body = long_history(40)  # ~100 KiB: past the 64 KiB limit of the other JSON routes
    async with running_gateway(gateway_settings(upstream.url)) as gw:
        status, text = await post(f"{gw.url}/api/chat", body, gw.auth())
        other, _ = await post(f"{gw.url}/api/chat/stream", body, gw.auth())
    assert status == 200, text
    assert '"type":"finish"' in text
    (seen,) = upstream.streams()
    assert seen.body["input"]["message"] == "And?"
    assert other == 413  # the other routes keep GATEWAY_CLIENT_MAX_SIZE


async def test_the_use_chat_limit_is_still_a_limit(upstream: FakeUpstream) -> None:
    settings = gateway_settings(upstream.url, ai_sdk_max_body_bytes=80 * 1024)
    async with running_gateway(settings) as gw:
        status, text = await post(f"{gw.url}/api/chat", long_history(40), gw.auth())
    assert status == 413, text
    assert "81920" in text and "PAYLOAD_TOO_LARGE" in text
    assert not upstream.requests
