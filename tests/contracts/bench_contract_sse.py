"""Micro-benchmark of the SSE codec on 100k token events (not collected by pytest).

Run: `uv run python tests/contracts/bench_contract_sse.py`. Prints µs per event for encoding, and
for decoding a stream cut into 4 KiB chunks (a busy stream) or one event per chunk (an idle one),
and for turning a token event's data into a `TokenEvent` two ways (the client uses the first).
"""

from __future__ import annotations

import json
import time

from contracts.agent_api import AGENT_EVENT_ADAPTER, CHANNELS, TokenEvent
from contracts.sse import SSEDecoder, encode_event

N = 100_000


def main() -> None:
    """Print encode and decode cost per token event."""
    payloads = [
        json.dumps({"event": "token", "channel": "final", "content": f" tok{i % 97}"})
        for i in range(N)
    ]
    start = time.perf_counter()
    frames = [encode_event("token", p, id=i) for i, p in enumerate(payloads)]
    encode_us = (time.perf_counter() - start) / N * 1e6
    print(f"encode_event:                {encode_us:6.2f} µs/event")  # noqa: T201

    wire = b"".join(frames)
    for label, chunks in [
        ("decode, 4 KiB chunks", [wire[i : i + 4096] for i in range(0, len(wire), 4096)]),
        ("decode, one event per chunk", frames),
    ]:
        decoder = SSEDecoder()
        count = 0
        start = time.perf_counter()
        for chunk in chunks:
            count += len(decoder.feed(chunk))
        elapsed = time.perf_counter() - start
        assert count == N, count
        print(f"{label + ':':28} {elapsed / N * 1e6:6.2f} µs/event")  # noqa: T201

    start = time.perf_counter()
    for p in payloads:
        AGENT_EVENT_ADAPTER.validate_json(p)
    validate_us = (time.perf_counter() - start) / N * 1e6
    print(f"adapter.validate_json:       {validate_us:6.2f} µs/event")  # noqa: T201
    start = time.perf_counter()
    for p in payloads:
        obj = json.loads(p)
        channel, content = obj.get("channel"), obj.get("content")
        if obj.get("event") == "token" and channel in CHANNELS and type(content) is str:
            TokenEvent.model_construct(channel=channel, content=content)
    construct_us = (time.perf_counter() - start) / N * 1e6
    print(f"json.loads+model_construct:  {construct_us:6.2f} µs/event")  # noqa: T201


if __name__ == "__main__":
    main()
