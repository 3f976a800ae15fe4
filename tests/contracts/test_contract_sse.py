"""The SSE codec against the WHATWG event-stream rules, at every chunk boundary."""

from __future__ import annotations

import json
import random
import re

import pytest

from contracts.sse import (
    SSEDecoder,
    SSEMessage,
    SSEProtocolError,
    encode_comment,
    encode_event,
    encode_retry,
)

Expected = tuple[str, str, str, int | None]  # (event, data, id, retry)


def _tuples(messages: list[SSEMessage]) -> list[Expected]:
    return [(m.event, m.data, m.id, m.retry) for m in messages]


def _decode(chunks: list[bytes], max_event_bytes: int = 1 << 20) -> tuple[list[Expected], bool]:
    decoder = SSEDecoder(max_event_bytes)
    out: list[SSEMessage] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    out += decoder.close()
    return _tuples(out), decoder.truncated


def _reference(stream: bytes) -> list[Expected]:
    """The spec's algorithm, written as literally as possible (whole stream, one char at a time)."""
    text = stream.decode("utf-8", "replace")
    text = text.removeprefix("\ufeff")
    parts = re.split(r"\r\n|\r|\n", text)
    lines = parts[:-1]  # the last part is unterminated (or empty): discarded at EOF
    out: list[Expected] = []
    data, event, last_id, retry = "", "", "", None
    for line in lines:
        if line == "":
            if data == "":
                event = ""
                continue
            out.append((event or "message", data.removesuffix("\n"), last_id, retry))
            data, event = "", ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, value = line.split(":", 1)
            value = value.removeprefix(" ")
        else:
            field, value = line, ""
        if field == "event":
            event = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\0" not in value:
                last_id = value
        elif field == "retry" and 0 < len(value) <= 10 and all(c in "0123456789" for c in value):
            # The length cap is ours (docs/sse-codec.md): the spec sets no upper bound.
            retry = int(value)
    return out


M = "message"
CASES: list[tuple[str, bytes, list[Expected]]] = [
    ("plain data", b"data: hello\n\n", [(M, "hello", "", None)]),
    (
        "id, event and JSON data",
        b'id: 1\nevent: token\ndata: {"a": 1}\n\n',
        [("token", '{"a": 1}', "1", None)],
    ),
    ("no space after colon", b"data:hello\n\n", [(M, "hello", "", None)]),
    ("only one space is removed", b"data:  hello\n\n", [(M, " hello", "", None)]),
    ("colon inside the value", b"data: a: b\n\n", [(M, "a: b", "", None)]),
    ("multi-line data joined with LF", b"data: a\ndata: b\n\n", [(M, "a\nb", "", None)]),
    ("CRLF line ends", b"data: a\r\ndata: b\r\n\r\n", [(M, "a\nb", "", None)]),
    ("CR line ends", b"event: e\rdata: a\r\r", [("e", "a", "", None)]),
    (
        "mixed line ends",
        b"data: a\rdata: b\r\n\ndata: c\n\r",
        [(M, "a\nb", "", None), (M, "c", "", None)],
    ),
    ("BOM at stream start is stripped", b"\xef\xbb\xbfdata: a\n\n", [(M, "a", "", None)]),
    ("only one BOM is stripped", b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n", []),
    (
        "comments are ignored",
        b": ping\n\n:\n\ndata: a\n: mid-event\ndata: b\n\n",
        [(M, "a\nb", "", None)],
    ),
    ("field with no colon has empty value", b"data\n\n", [(M, "", "", None)]),
    ("two empty data lines", b"data\ndata:\n\n", [(M, "\n", "", None)]),
    ("unknown fields are ignored", b"foo: bar\ndata: a\nbaz\n\n", [(M, "a", "", None)]),
    ("field names are case-sensitive", b"Data: a\n\n", []),
    ("a leading space makes another field", b" data: a\n\n", []),
    ("no data: not dispatched", b"event: x\nid: 3\n\n", []),
    ("empty event then data", b"event: x\n\ndata: a\n\n", [(M, "a", "", None)]),
    (
        "event type resets after dispatch",
        b"event: x\ndata: a\n\ndata: b\n\n",
        [("x", "a", "", None), (M, "b", "", None)],
    ),
    ("empty event name means message", b"event:\ndata: a\n\n", [(M, "a", "", None)]),
    (
        "id persists across events",
        b"id: 1\ndata: a\n\ndata: b\n\n",
        [(M, "a", "1", None), (M, "b", "1", None)],
    ),
    ("id set by an undispatched event", b"id: 3\n\ndata: a\n\n", [(M, "a", "3", None)]),
    (
        "empty id resets",
        b"id: 1\ndata: a\n\nid\ndata: b\n\n",
        [(M, "a", "1", None), (M, "b", "", None)],
    ),
    (
        "id containing NUL is ignored",
        b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n",
        [(M, "a", "1", None), (M, "b", "1", None)],
    ),
    ("id after data still applies", b"data: a\nid: 4\n\n", [(M, "a", "4", None)]),
    ("id after event", b"event: x\nid: 9\ndata: a\n\n", [("x", "a", "9", None)]),
    ("retry of digits", b"retry: 1500\ndata: a\n\n", [(M, "a", "", 1500)]),
    ("retry persists, even from a bare block", b"retry: 10\n\ndata: a\n\n", [(M, "a", "", 10)]),
    (
        "retry with a non-digit is ignored",
        b"retry: 15x\ndata: a\n\nretry: -1\ndata: b\n\n",
        [(M, "a", "", None), (M, "b", "", None)],
    ),
    (
        "retry with non-ASCII digits is ignored",
        "retry: ١٢\ndata: a\n\n".encode(),
        [(M, "a", "", None)],
    ),
    ("empty retry is ignored", b"retry\ndata: a\n\n", [(M, "a", "", None)]),
    (
        "absurdly long retry is ignored",
        b"retry: " + b"9" * 11 + b"\ndata: a\n\n",
        [(M, "a", "", None)],
    ),
    ("UTF-8 text", "event: é\ndata: héllo 🙂\n\n".encode(), [("é", "héllo 🙂", "", None)]),
    ("invalid UTF-8 is replaced", b"data: \xff\xc3\n\n", [(M, "\ufffd\ufffd", "", None)]),
    ("blank lines before the first event", b"\n\r\n\rdata: a\n\n\n\n", [(M, "a", "", None)]),
    ("unterminated event is discarded", b"data: a\n\ndata: b\n", [(M, "a", "", None)]),
    ("unterminated line is discarded", b"data: a\n\ndata: b", [(M, "a", "", None)]),
    ("NUL in data is kept", b"data: a\x00b\n\n", [(M, "a\x00b", "", None)]),
]


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decoder_follows_the_spec(stream: bytes, expected: list[Expected]) -> None:
    assert _decode([stream])[0] == expected
    assert _reference(stream) == expected


@pytest.mark.parametrize(("stream", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_split_gives_the_same_events(stream: bytes, expected: list[Expected]) -> None:
    for cut in range(len(stream) + 1):
        assert _decode([stream[:cut], stream[cut:]])[0] == expected, f"split at byte {cut}"
    for a in range(1, len(stream)):
        for b in range(a + 1, min(len(stream), a + 4)):
            parts = [stream[:a], stream[a:b], stream[b:]]
            assert _decode(parts)[0] == expected, f"split at bytes {a}, {b}"
    assert _decode([stream[i : i + 1] for i in range(len(stream))])[0] == expected


def test_random_streams_match_the_reference_parser() -> None:
    rng = random.Random(20261121)
    atoms = [
        b"data", b"data: ", b"data:", b"id: ", b"id", b"event: ", b"retry: ", b":", b" ",
        b"\r", b"\n", b"\r\n", b"\n\n", b"x", b"7", b"\x00", "é".encode(), b"\xef\xbb\xbf",
        b'{"event":"token"}', b"token",
    ]  # fmt: skip
    for _ in range(400):
        stream = b"".join(rng.choice(atoms) for _ in range(rng.randint(0, 30)))
        cuts = sorted(rng.sample(range(len(stream) + 1), k=min(3, len(stream) + 1)))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert _decode(chunks)[0] == _reference(stream), stream


def test_clean_end_and_truncated_end_are_distinguishable() -> None:
    for stream, truncated in [
        (b"data: a\n\n", False),
        (b"data: a\n\n: ping\n", False),
        (b"data: a\n\r", False),
        (b"", False),
        (b"data: a\n\ndata: b\n", True),
        (b"data: a\n\ndata: b", True),
        (b"data: a\n\nid: 5\n", True),
        (b"data: a\n\n: pi", True),
    ]:
        for cut in range(len(stream) + 1):
            assert _decode([stream[:cut], stream[cut:]])[1] is truncated, (stream, cut)


def test_pending_bytes_is_zero_only_between_events() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.pending_bytes > 0
    assert _tuples(decoder.feed(b"\n")) == [(M, "a", "", None)]
    assert decoder.pending_bytes == 0


def test_comments_are_counted_and_reported() -> None:
    seen: list[str] = []
    decoder = SSEDecoder(on_comment=seen.append)
    out = decoder.feed(b": ping\n\n:\n\n:keepalive\ndata: a\n\n")
    assert _tuples(out) == [(M, "a", "", None)]
    assert decoder.comment_count == 3
    assert seen == ["ping", "", "keepalive"]


def test_last_event_id_and_retry_are_exposed() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 41\nretry: 2000\ndata: a\n\nid: 42\n\n")
    assert decoder.last_event_id == "42"
    assert decoder.retry == 2000


def _event_of_size(n: int) -> bytes:
    """A `data:` event whose line, LF included, is exactly `n` bytes."""
    return b"data: " + b"x" * (n - 7) + b"\n\n"


def test_an_event_at_the_limit_passes_and_one_byte_more_fails_at_any_split() -> None:
    limit = 64
    ok, big = _event_of_size(limit), _event_of_size(limit + 1)
    for cut in range(len(big) + 1):
        assert _decode([ok[:cut], ok[cut:]], limit)[0] == [(M, "x" * (limit - 7), "", None)]
        with pytest.raises(SSEProtocolError, match="max_event_bytes=64"):
            _decode([big[:cut], big[cut:]], limit)


def test_many_data_lines_cannot_exceed_the_limit() -> None:
    decoder = SSEDecoder(1000)
    for _ in range(58):  # 58 lines of 17 bytes = 986 bytes: still fine
        decoder.feed(b"data: 0123456789\n")
    with pytest.raises(SSEProtocolError, match="event's lines exceed 1000 bytes"):
        decoder.feed(b"data: 0123456789\n")


def test_an_endless_line_is_refused_without_buffering_it() -> None:
    decoder = SSEDecoder(1000)
    decoder.feed(b"data: ")
    for _ in range(99):  # 6 + 990 bytes: still fine
        decoder.feed(b"0123456789")
    with pytest.raises(SSEProtocolError, match="unterminated line exceeds 1000 bytes"):
        decoder.feed(b"0123456789")
    assert decoder.pending_bytes == 0  # the buffer was released
    with pytest.raises(RuntimeError):
        decoder.feed(b"\n\n")


def test_bad_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        SSEDecoder(0)


# --- encoder ------------------------------------------------------------------------------------


def test_encode_event_frames_id_event_and_data() -> None:
    data = json.dumps({"event": "token", "channel": "final", "content": "hi"})
    assert encode_event("token", data, id=7) == f"id: 7\nevent: token\ndata: {data}\n\n".encode()
    assert encode_event("token", "x") == b"event: token\ndata: x\n\n"
    assert encode_event("token", "x", id="a-1") == b"id: a-1\nevent: token\ndata: x\n\n"


def test_encode_event_splits_multi_line_data() -> None:
    assert encode_event("e", "a\nb\r\nc\rd", id=1) == (
        b"id: 1\nevent: e\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\r\n"])
def test_encode_event_refuses_line_breaks_in_event_and_id(bad: str) -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        encode_event(bad, "x")
    with pytest.raises(ValueError, match="CR or LF"):
        encode_event("e", "x", id=bad)


def test_encode_event_refuses_nul_in_id() -> None:
    with pytest.raises(ValueError, match="NUL"):
        encode_event("e", "x", id="a\x00")


@pytest.mark.parametrize(
    "data", ["", " leading space", "héllo 🙂", "a\nb", "\n", "x" * 10_000, '{"k": "v: w"}']
)
def test_encode_then_decode_round_trips(data: str) -> None:
    wire = encode_event("token", data, id=3) + encode_comment("ping") + encode_retry(500)
    for cut in range(0, len(wire) + 1, max(1, len(wire) // 50)):
        assert _decode([wire[:cut], wire[cut:]]) == ([("token", data, "3", None)], False)


def test_comments_and_retry_encode_as_non_events() -> None:
    assert encode_comment() == b":\n\n"
    assert encode_comment("ping") == b": ping\n\n"
    assert encode_comment("a\nb") == b": a\n: b\n\n"
    assert encode_retry(1500) == b"retry: 1500\n\n"
    decoder = SSEDecoder()
    assert decoder.feed(encode_comment("a\nb") + encode_retry(1500)) == []
    assert decoder.comment_count == 2
    assert decoder.retry == 1500


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_encode_retry_refuses_non_integers(bad: object) -> None:
    with pytest.raises(ValueError, match="retry"):
        encode_retry(bad)  # type: ignore[arg-type]


def test_events_before_an_oversized_one_travel_on_the_error() -> None:
    decoder = SSEDecoder(100)
    with pytest.raises(SSEProtocolError) as info:
        decoder.feed(b"data: a\n\ndata: b\n\n" + _event_of_size(101))
    assert _tuples(info.value.events) == [(M, "a", "", None), (M, "b", "", None)]
