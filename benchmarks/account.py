"""The report's account of what stands between the figures and the targets, and what changed."""

from __future__ import annotations

from typing import Any


def account_lines(results: dict[str, Any]) -> list[str]:
    """What stands between the figures and the targets, from this run's own numbers."""
    cfg = results["meta"]["config"]
    answer_s = cfg["s2_ttft_ms"] / 1000 + cfg["s2_tokens"] / cfg["s2_tps"]
    per_request = results["s1"].get("per_request", {}).get("sse", {}).get("cpu_ms", {})
    agent_ms = per_request.get("agent")
    top = max(r["n"] for r in results["s2"])
    met = sorted({t["target"].split()[0].rstrip(":") for t in results.get("targets", [])})
    missed = sorted(
        {t["target"].split()[0].rstrip(":") for t in results.get("targets", []) if not t["met"]}
    )
    lines = [
        "",
        "## Where the time and memory go",
        "",
        f"Targets missed in this run: {', '.join(missed) or 'none'}; met: "
        f"{', '.join(x for x in met if x not in missed) or 'none'}.",
        "",
    ]
    sse_rows = sorted((r for r in results["s2"] if r["path"] == "sse"), key=lambda r: r["n"])
    per_stream = (sse_rows[0].get("cpu_ms_per_stream") or {}).get("agent") if sse_rows else None
    unpaced = results["s1"]["sse"]["us_per_token"]["agent"]
    if agent_ms is not None and per_stream is not None:
        starts = top / answer_s
        paced_us = max(per_stream - agent_ms, 0) / cfg["s2_tokens"] * 1000
        floor_top = next((r for r in results["s2"] if r["path"] == "floor" and r["n"] == top), None)
        model_gap_ms = 1000 / cfg["s2_tps"]
        client_note = (
            " (which itself falls behind at this N: see the floor's own gap)"
            if floor_top and (floor_top["gap_p99_ms"] or 0) > 1.5 * model_gap_ms
            else ""
        )
        lines += [
            f"- **S2.** Two costs set the agent's capacity. (1) A fixed {agent_ms:.0f} ms of CPU "
            "per request (S1's short answers: the routing call through the OpenAI SDK "
            "(`routing_call.ToolCallParse`), the LangGraph run and its checkpoint, opening the "
            "answer stream, Starlette and uvicorn). (2) A paced token "
            f"costs far more than an unpaced one: at N={sse_rows[0]['n']} the agent spent "
            f"{per_stream:.0f} ms per stream, about {paced_us:.0f} µs per token beyond the fixed "
            f"cost, against {unpaced:.0f} µs per token in S1 — each token arrives alone and "
            "wakes every hop on its own (the model socket's read, LangGraph's stream writer and "
            "loop, Starlette's send through the middleware, uvicorn's write) instead of sharing "
            "them with its neighbours. Most of it is now the socket write itself: a profile "
            "under paced load (`python -m benchmarks.profile --paced 50`: [agent]"
            "(img/profile-paced-agent.svg), [gateway](img/profile-paced-gateway.svg)) puts "
            "30 % of the agent's samples and 38 % of the gateway's in the send system call "
            "(uvicorn's and aiohttp's socket writes; on loopback the "
            "sender's call also runs the receiver's TCP path), one per token per hop, which no "
            "batching can share when each stream's tokens are 33 ms apart. With "
            f"{top} streams in flight, {starts:.0f} start per second: that asks "
            f"{starts * per_stream / 1000:.1f} cores of one agent process, which can use one, on "
            "a 2-core machine that also runs the gateway, the fake model and the client"
            f"{client_note}. Requests queue on the "
            "agent's event loop, so time to first token grows with N long before the gaps do. "
            "Meeting the S2 targets at 400 on this machine needs several times less CPU per "
            "request and per paced token in the agent, or more agent processes than cores allow; "
            "most of what remains is library code per call (the OpenAI SDK's request building "
            "for the routing call, LangGraph's loop and checkpoint) and the kernel's per-write "
            "cost, not this project's.",
        ]
    lines += [
        "- **S3, memory per open stream.** `tracemalloc` in both tiers (an investigation run "
        "with 300 open streams) traced about 39 KiB of Python objects per stream in the agent "
        "(LangGraph's run loop, tasks and locks, uvicorn's request cycle, the model "
        "connection) and about 34 KiB in the gateway (aiohttp's request and upstream response "
        "objects), before the producer task and queue (agent) and the pump task and queue "
        "(gateway) were removed and the model stream moved from httpx to aiohttp. The "
        "agent's RSS grows by more than it traces: the "
        f"{results['s3']['streams']} runs start together, and the memory their routing calls "
        "and graph set-up used at that moment stays with the process (allocator high-water "
        "mark). There is no single large buffer to remove; what is left is the per-object cost "
        "of the frameworks on each hop.",
        "",
        "## Changes measured",
        "",
        "Before and after, on this machine, with this harness (other work on the machine makes "
        "single figures drift by ±20 %):",
        "",
        "| change | before | after |",
        "|---|---|---|",
        "| the agent reads the streamed answer as JSON chunks (`stream.stream_text`) "
        "instead of `ChatOpenAI.astream` (a pydantic model, a dict dump, a message chunk and a "
        "chunk addition per token) | agent 300–339 µs/token; agent + gateway 17–20× floor "
        "| agent 20–27 µs/token; 2.5–3.3× floor |",
        '| one checkpoint write per run (LangGraph `durability="exit"`) instead of one per step '
        "| agent 30.7 ms CPU and 60–114 ms wall per short request | 22.6 ms CPU, 32–40 ms wall |",
        "| not applied (the gateway's CLI): run the gateway on uvloop | gateway 17 µs/token, "
        "5.3 ms/request | 12.5 µs/token, 4.3 ms/request |",
        "| the run path as typed events: `run_events()` yields `Token` tuples and contract models, "
        "one pure `encode_frame`, `collect()` folds events (byte-identical frames); one heartbeat "
        "deadline per stream instead of a timer per read; the SSE route without Starlette's anyio "
        "task group (`EventStreamResponse`). Four interleaved S1 runs of 300 short requests each, "
        "S2 at N=100, load average 5–7 from other work | agent 11.0–12.4 ms CPU per short request, "
        "11.3–12.7 µs/token; S2 agent 44.7–47.8 ms CPU per stream | 11.5–11.7 ms, "
        "10.7–12.7 µs/token; 43.8–47.4 ms: unchanged within noise. The profile's anyio "
        "cancel-scope delivery (4.5 % of the agent's samples) is gone |",
        "| the agent sends the terminal event in the same write as the body's end, so the "
        "gateway's `EventStream` pools the upstream connection instead of closing it (before, "
        "every request opened a new connection). Two interleaved pairs of S1 runs, 300 short "
        "requests each, load average 7–9 | agent 10.9–11.8 ms, gateway 2.4–2.7 ms CPU per short "
        "request; profile: 7.8 % of the gateway's samples in connect, 752 gateway samples for "
        "500 requests | agent 11.0–12.9 ms, gateway 2.4–3.0 ms: not visible in CPU per request "
        "at this noise; profile: connect gone, 467 gateway samples for the same 500 requests |",
        "| the routing call by function calling (the default) parsed from the SDK's reply "
        "(`routing_call.ToolCallParse`) instead of `with_structured_output(include_raw=True)`'s "
        "runnable map, assign, fallback, parser and their callback runs; same request. Two "
        "interleaved pairs of S1 runs, 300 short requests each | agent 10.2–13.1 ms CPU per "
        "short request (mean 11.5) | 7.4–9.8 ms (mean 8.5): 3 ms less |",
        "| the answer stream sent and read with aiohttp (`providers/openai/stream.py`: same "
        "payload, headers and SDK errors; C parser, no httpx/h11/anyio per chunk) under one "
        "stall timer per stream instead of a read timeout per read; the gateway's `EventStream` "
        "keeps one read deadline per stream instead of aiohttp's timer per read. Two interleaved "
        "pairs of S2 at N=50 (SSE and WebSocket) | agent 52.1–55.4 ms CPU per stream (about "
        "220 µs per paced token beyond the fixed cost), gateway 21.4–21.8 ms; profile: the "
        "answer's reading 21 % of the agent's samples | agent 35.5–40.1 ms (about 140 µs per "
        "token), gateway 17.2–22.8 ms (within noise); profile: 8 % |",
        "| the run in the agent's response task: no producer task and queue per stream; what "
        "the graph has ready at once still goes out in one write (`contracts.batches."
        "in_batches`), one timer per stream for heartbeats and the write deadline. Two "
        "interleaved pairs of S1 (100 short requests) and S2 at N=50 | S1 agent 10.7–11.3 "
        "µs/token (SSE), 9.5–9.7 ms per short request; S2 agent 32.7–40.4 ms per stream | "
        "10.7–11.3 µs/token (bursts still batched), 9.4–11.5 ms; 34.1–41.0 ms: CPU unchanged "
        "within noise (the gain is memory, next rows) |",
        "| the gateway's relay reads the agent in the handler's task (no pump task and queue per "
        "stream; `in_batches` again). Two interleaved pairs of S2 at N=50 | gateway 20.9–22.5 "
        "ms CPU per stream | 20.4–21.2 ms: about 4 % less, within noise |",
        "| the three rows above together, S3 on fresh processes (500 open streams), two runs "
        "each | 127.5–129.5 KiB per open stream (agent 90.6–91.6, gateway 37.0–37.9) | "
        "103.6–105.4 KiB (agent 72.3–73.2, gateway 31.4–32.3); every hang-up still closed its "
        "model call (550 of 550) |",
        "",
        "Profile of short requests (`python -m benchmarks.profile --py-spy PATH`, samples of the "
        "thread holding the GIL while 500 short answers stream one after another, after the "
        "changes above): [agent](img/profile-agent.svg), [gateway](img/profile-gateway.svg). In "
        "the agent the OpenAI SDK's request path (`AsyncCompletions.create`: request building, "
        "httpx/anyio send, response processing) is 36 % of samples over the two model calls "
        "(routing 22 %, answer 14 %), LangGraph's loop 19 %, the checkpoint (aiosqlite) 13 %, "
        "uvicorn's and Starlette's request cycle the rest. Before these changes the routing "
        "call's LangChain layers added 15 % more and the gateway spent 7.8 % opening a new "
        "connection to the agent per request. In the gateway a third of the samples are socket "
        "writes.",
        "",
    ]
    return lines
