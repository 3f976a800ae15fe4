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
        gateway_ms = per_request.get("gateway")
        gateway_stream = (sse_rows[-1].get("cpu_ms_per_stream") or {}).get("gateway")
        agent_top = (sse_rows[-1].get("cpu_ms_per_stream") or {}).get("agent")
        both_top = (agent_top or 0) + (gateway_stream or 0)
        lines += [
            f"- **S2.** The stack is CPU-bound at {top} streams. Each stream costs the agent a "
            f"fixed {agent_ms:.0f} ms of CPU per request (S1's short answers: the question written "
            "to memory before the run, the LangGraph run with its checkpoint read and write, the "
            "routing call and the answer's request, Starlette and uvicorn) and the gateway "
            f"{gateway_ms or 0:.0f} ms, plus every paced token: at N={sse_rows[0]['n']} the agent "
            f"spent {per_stream:.0f} ms per stream, about {paced_us:.0f} µs per token beyond the "
            f"fixed cost, against {unpaced:.0f} µs per token in S1, because each token arrives "
            "alone and pays a model-socket read, a wake-up of the response's task and a socket "
            "write of its own (at high N a loop turn serves several streams, so the cost per "
            "token falls). A profile under paced load (`python -m benchmarks.profile --paced "
            "100`: [agent](img/profile-paced-agent.svg), [gateway](img/profile-paced-gateway."
            "svg)) puts 17 % of the agent's samples and 22 % of the gateway's in the send system "
            "call (on loopback the sender's call also runs the receiver's TCP path), 9 % of the "
            "agent's in uvloop's own loop and 17 % in reading and parsing the model's chunks "
            "(orjson's parse itself 4 %); "
            "the rest is spread over Starlette, LangGraph and this project's frames, none above "
            f"3 %. With {top} streams in flight, {starts:.0f} start per second: at "
            f"{both_top:.0f} ms of agent and gateway CPU per stream (this run, N={top}) that "
            f"asks {starts * both_top / 1000:.1f} cores of a 2-core machine that also runs the "
            f"fake model and the load client{client_note}, and the agent's one process "
            f"{starts * (agent_top or 0) / 1000:.1f} of its one core. Requests then queue on "
            "the event loops: every await on a request's way to its first token (about twenty: "
            "the question's write, the checkpoint, the routing call, the answer's first bytes) "
            "waits a turn of a loop that is serving hundreds of streams' tokens, so time to "
            "first token grows with N, and the gaps with it (before the last rows below, the "
            "gap target at 400 was met only because streams waited seconds for their first "
            "token, so fewer of them were in their token phase at once). What was found and "
            "removed on "
            "the way (rows below): LangGraph's stream writer woke the loop through its self-pipe "
            "and a task per token; the SQLite memory serialized every run's writes behind an "
            "asyncio lock held across round trips to its thread (at 400 streams the question's "
            "write alone took 1.6 s at the median); the collector's full passes over a few "
            "hundred thousand start-up objects stopped both loops for tens to hundreds of ms. "
            "Meeting the S2 "
            f"targets at {top} on this machine needs that demand well under its two cores, so "
            "less CPU per stream again in both tiers; most of what remains per token is the "
            "kernel's write and the frameworks' per-wake-up code.",
        ]
        lines += _capacity_lines(results, top, answer_s)
    lines += [
        "- **S3, memory per open stream.** `tracemalloc` in both tiers (an investigation run "
        "with 150 open streams, after all the changes below) traced 84 KiB of Python objects "
        "per open stream in the agent and 40 KiB in the gateway, none large. Agent: LangGraph's "
        "run (its loop, config dicts, channels, tasks, the loaded checkpoint, the output queue "
        "`ainvoke` makes) 27 KiB with 5 KiB more of LangChain's callback managers; this "
        "project's frames 14 KiB; aiohttp's connection and response to the model 12 KiB; "
        "asyncio's tasks, futures and events 8.5 KiB; uvicorn's request cycle 6 KiB (13 KiB "
        "with Starlette's layers before the streaming route skipped them). Gateway: aiohttp's "
        "request and its upstream response 24.5 KiB, this project's relay and sink 7 KiB. "
        "There is no single large buffer to remove; what is left is the per-object cost of "
        "the frameworks on each hop, LangGraph's run first. The after-S2 row shows the same "
        "streams on processes that already grew: memory freed by earlier streams is reused.",
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
        "| the gateway on uvloop (its CLI) | gateway 17 µs/token, "
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
        "| this session's first changes together: the nodes emit to the run's list and wake the "
        "response's task (`runs/inline.py`, `InlineSteps`) instead of LangGraph's custom stream "
        "writer (a write to the loop's self-pipe, a waiter task and an `asyncio.wait` per "
        "token); the routing call posted with aiohttp (`stream.post_json`) instead of the SDK's "
        "request path; the model pool reads the proxy from the environment once (aiohttp's "
        "`trust_env` read it and `~/.netrc` in a worker thread per request); no tracing "
        "middleware when tracing is off. Two interleaved pairs against the commit before, S1 "
        "with 200 short requests and S2 at N=50 and 400 (this machine ran about twice as slow "
        "as for the full run above) | S1 agent 15.1–16.5 ms per short request, 15.3–20.0 "
        "µs/token (SSE), 24.7–31.3 (WS); S2 at 400: agent 50.9–52.9 ms CPU per stream, gateway "
        "24.6–25.0; added TTFT p99 15.3–16.7 s (SSE), 13.7–15.2 s (WS) | 8.6–12.1 ms, 7.3–10.7 "
        "µs/token, 7.3–10.0; agent 27.9–28.0 ms, gateway 18.5–18.7; 7.4–8.0 s, 5.7–6.3 s. Gap "
        "p99 at 400 rose from 62–72 to 72–88 ms: more streams are in their token phase at once |",
        "| the SQLite memory on one thread, each checkpoint or conversation operation one unit "
        "there (LangGraph's sync `SqliteSaver`), instead of `AsyncSqliteSaver` holding an "
        "asyncio lock across several round trips to aiosqlite's thread. S2 at N=400 (SSE), one "
        "run each, and an instrumented run timing the question's write | question's write p50 "
        "1,557 ms, p99 3,677 ms; added TTFT p50 3.4 s, p99 7.3 s; gap p99 88 ms; agent 26.8 "
        "ms CPU per stream | (with the next row) 328 ms, 992 ms; 1.8 s, 3.4 s; 151 ms: the "
        "streams now reach their token phase and share the CPU there; 21.5 ms |",
        "| both tiers' serving processes freeze their start-up heap (`gc.freeze`, "
        "`contracts/heap.py`): the collector's full passes stop walking a few hundred "
        "thousand permanent objects. S2, one run each | N=100: added TTFT p99 163 ms; N=400: "
        "p50 1.8 "
        "s, p99 3.4 s, gap p99 151 ms, agent 21.5 and gateway 13.4 ms CPU per stream | 42 ms; "
        "0.9 s, 2.1 s, 101 ms, 18.3 and 12.4 ms |",
        "| the gateway without its tracing middleware when tracing is off (an idle socket kept "
        "its no-op span's context objects for its whole life). S4, 5,000 sockets | 20.8–20.9 "
        "KiB per idle socket | 19.0–19.1 KiB |",
        "| S5 (2 workers per tier on PostgreSQL and Redis) after all of the above | held 0 "
        "streams (200: added TTFT p99 268 ms) | held 150 (200: 198 ms) |",
        "| the question (and a stopped answer) added to memory by the graph's sync "
        "`update_state` as one unit on the SQLite thread, instead of `aupdate_state`'s read and "
        "write each awaited from the loop; a stored checkpoint drops the ones it replaces in its "
        "own unit (no prune of its own after every run); the internal token parsed once before "
        "its signature check. In-process, 300 question writes twice over, and three "
        "interleaved pairs of S1 (200 short requests) | 1.24–1.49 ms CPU per question write; "
        "agent 9.5–9.6 ms per short request (SSE) | 0.85–1.00 ms, none of it on the loop; "
        "7.2–8.5 ms |",
        "| the gateway's WebSocket writes a batch of events in one socket write "
        "(`ws/frames.send_texts`; aiohttp made one `send` per message), falling back to "
        "aiohttp frame by frame on a compressed socket or one with a backlog. Same three pairs "
        "| gateway 14.0–16.7 µs/token (WS) | 6.0–9.3 µs/token |",
        "| permessage-deflate declined on `/ws/chat` unless `GATEWAY_WS_COMPRESS=true` "
        "(browsers offer it, and aiohttp accepted it; the harness's client never offered it, "
        "so the figures above are of plain frames). S1 WebSocket turns with a client offering "
        "it, three pairs; 300 sockets after one turn each, two pairs | compressed: gateway "
        "17.5–21.0 µs/token; 71–103 KiB per socket | plain: 9.0–10.0 µs/token; 2.4–39.7 KiB |",
        "| a verified user token remembered per gateway process "
        "(`GATEWAY_JWT_VERIFIED_CACHE_SIZE`: its times, and in JWKS mode its key, still checked "
        "on every request); log lines below the level dropped before structlog's processors; "
        "the agent's streaming route without Starlette's router and middleware "
        "(`app.AgentApp`). cProfile of 1,000 short requests, and three interleaved pairs of S1 "
        "| gateway: token check 525 ms of 3.6 s profiled; agent 8.1–8.8 ms, gateway 2.9–3.3 ms "
        "per short request | 63 ms; 8.0–9.6 ms, 3.0–3.5 ms: not visible in CPU per request at "
        "this noise |",
        "| this session's changes together, a full `make bench` each (the commit before, then "
        "after; load average 0.5 → 3.9 and 2.2 → 4.7) | S1 per short request 10.75 ms (SSE), "
        "14.25 (WS); WS 2.30× floor; S2 at 400 added TTFT p99 5.5 s (SSE), 2.2 s (WS), gap p99 "
        "146 and 173 ms; S3 111.5 KiB | 10.0, 9.5; 1.69×; 6.4 s, 3.0 s, 130 and 160 ms; 104.4 "
        "KiB. At 400 both runs are past the machine's capacity (next paragraph), where TTFT "
        "swings by seconds from run to run |",
        "| the SQLite memory's commits: the question's checkpoint and its conversation's count "
        "one transaction, a checkpoint and the prune of the ones it replaces one commit, WAL at "
        "`synchronous=NORMAL` (`AGENT_SQLITE_SYNCHRONOUS`; five commits per request became "
        "two, each without an fsync: 55 against 164 µs of CPU per commit on this disk). Four "
        "interleaved pairs of S1 (200 short requests) | agent 8.65–11.8 ms per short request, "
        "wall 14.0–18.9 ms | 8.45–10.1 ms, wall 12.9–15.0 ms |",
        "| the gateway ends an HTTP stream in the same write as its terminal event and closing "
        "(`ResponseSink.end`): a client that stops reading at the last event (this harness, "
        "SDKs that stop at `[DONE]`) had left the body's end unread and lost its connection, "
        "so every request opened a new one (strace: an accept, a close, three setsockopt and "
        "four getsockname per request; none after). Four interleaved pairs of S1 | gateway "
        "1.78–1.88× the fake's CPU per short request | 1.68–1.76× |",
        "| the answer's chunks and the routing reply parsed with orjson instead of "
        "`json.loads` (a typical chunk); a turn added outside a run written as `finalize`, not "
        "`classify` (LangGraph no longer plans a routing step the next run discards; "
        "in-process, per question); classify names its next step with a LangGraph `Command` "
        "instead of a conditional edge, whose plain function LangGraph ran in a "
        "default-executor thread (a toy graph of the same shape, per run) | 5.3 µs per chunk; "
        "1.27–1.38 ms per question; 1.89–2.39 ms per run | 1.0 µs; 0.82–0.89 ms; 1.62–1.67 ms |",
        "| this session's changes together (the rows above and the harness's: S1's fixed cost "
        "the median of 5 rounds of 100 per path, WebSocket turns on one open socket). Three "
        "interleaved pairs of S1 and S2 at N=50 against the commit before, both measured by "
        "this harness. The machine ran 1.5–2× slower that day than for the previous day's full "
        "run (the raw floor's client: 18.8–24.3 µs per token against 11.0), and so does the "
        "full run above: compare its figures with the floors of the same run, and S5 held "
        "nothing at 100 streams (added TTFT p99 159–530 ms) where it had held 100 | S1 per "
        "short request: agent 13.4–14.2 ms, gateway 4.7–4.8 (SSE); agent 14.0–19.3 µs per "
        "token (SSE); S2 at 50: agent 49.3–53.3 ms CPU per stream (SSE), 51.1–55.9 (WS), "
        "gateway 42.2–45.5 (SSE); added TTFT p99 57–68 ms (SSE) | 10.1–11.1 ms, 3.7–4.3; "
        "10.7–12.0 µs; 42.3–44.7 ms, 43.9–44.7, 41.0–43.4; 32–61 ms |",
        "",
        "Profile of short requests (`python -m benchmarks.profile --py-spy PATH`, samples of the "
        "thread holding the GIL while 300 short answers stream one after another, after the "
        "changes above): [agent](img/profile-agent.svg), [gateway](img/profile-gateway.svg). "
        "In the agent no single part dominates: the LangGraph run (its loop, the checkpoint's "
        "serialization) about a fifth, the two model calls' requests and replies through "
        "aiohttp about a tenth, the question's write before the run (a LangGraph state update, "
        "now on the memory's thread), the internal token's check 3 %, uvicorn's request cycle "
        "and the socket writes the rest. In the gateway a third of the samples are socket "
        "writes. Both samplers count a thread that holds the GIL while the kernel runs another "
        "process: a loopback write that wakes the reader can show as long as the reader's "
        "work, so the send call's share is an upper bound.",
        "",
    ]
    return lines


def _capacity_lines(results: dict[str, Any], top: int, answer_s: float) -> list[str]:
    """How far the tiers are from fitting the machine at the top S2 level, from this run."""
    row = next((r for r in results["s2"] if r["path"] == "sse" and r["n"] == top), None)
    if row is None or "processes" not in row:
        return []
    streams = row["streams"]
    cpu = {name: p["cpu_s"] * 1000 / streams for name, p in row["processes"].items()}
    rest = cpu.get("fake", 0.0) + cpu.get("client", 0.0)
    tiers = cpu.get("agent", 0.0) + cpu.get("gateway", 0.0)
    cores = results["meta"]["cpus"]
    rounds = results["meta"]["config"]["s2_rounds"]
    span = (rounds + 1) * answer_s  # starts spread over one answer, then `rounds` answers each
    budget = 0.7 * cores * span * 1000 / streams - rest
    if budget <= 0 or tiers <= 0:
        return []
    tokens = results["meta"]["config"]["s2_tokens"]
    fixed = results["s1"].get("per_request", {}).get("sse", {}).get("cpu_ms", {})
    tier_fixed = fixed.get("agent", 0.0) + fixed.get("gateway", 0.0)
    tier_token_us = max(tiers - tier_fixed, 0.0) / tokens * 1000
    fake_token_us = max(cpu.get("fake", 0.0) - fixed.get("fake", 0.0), 0.0) / tokens * 1000
    return [
        f"- **What {top} streams leave for the tiers.** The {streams} streams of this level "
        f"take {span:.0f} s when nothing queues. In this run the fake model and the load "
        f"client used {rest:.0f} ms of CPU per stream and the two tiers {tiers:.0f} ms. Kept "
        f"70 % busy (past that, queues on the loops grow and time to first token with them), "
        f"{cores} cores give {budget:.0f} ms per stream to the tiers: {tiers / budget:.1f}× "
        f"less than they use now. Beyond S1's fixed cost per request ({tier_fixed:.1f} ms), "
        f"a paced token costs both tiers together about {tier_token_us:.0f} µs at this N (the "
        "issue's target is 60 µs); the fake itself, a bare uvicorn server writing one chunk per "
        f"token, spends about {fake_token_us:.0f} µs on one: on this virtual machine the "
        "kernel's share of a write and of the reader's wake-up is a large part of every hop.",
    ]
