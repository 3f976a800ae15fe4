"""A raw SSE reader for the service tests: frames with their ids, plus comments counted."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from contracts.sse import SSEDecoder


@dataclass
class StreamResult:
    status: int
    headers: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    chunks: int = 0
    raw: bytes = b""

    @property
    def answer(self) -> str:
        return "".join(
            e["content"] for e in self.events if e["event"] == "token" and e["channel"] == "final"
        )

    @property
    def terminal(self) -> dict[str, Any]:
        return self.events[-1]

    def of(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]


async def stream_chat(
    base_url: str,
    token: str | None,
    message: str,
    *,
    conversation: str = "conv-1",
    user: str = "u-alice",
    company: str = "acme-hvac",
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> StreamResult:
    payload = (
        body
        if body is not None
        else {
            "input": {"message": message},
            "conversation": {"id": conversation, "user_id": user, "company_id": company},
        }
    )
    hdrs = {"Authorization": f"Bearer {token}"} if token else {}
    hdrs.update(headers or {})
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base_url}/internal/chat/stream", json=payload, headers=hdrs) as resp,
    ):
        result = StreamResult(
            status=resp.status, headers={k.lower(): v for k, v in resp.headers.items()}
        )
        if resp.status != 200:
            result.events.append(await resp.json())
            return result
        decoder = SSEDecoder()
        async for chunk in resp.content.iter_any():
            result.chunks += 1
            result.raw += chunk
            for msg in decoder.feed(chunk):
                result.ids.append(msg.id)
                result.names.append(msg.event)
                result.events.append(json.loads(msg.data))
        return result
