"""Several text messages in one socket write.

aiohttp sends each WebSocket message with its own `transport.write`, which with an empty buffer
is its own `send` system call: a batch of 20 tokens read from the agent in one go cost 20 calls
on the WebSocket path where the SSE path makes one. `send_texts` frames the batch itself
(RFC 6455 §5.2: server frames are unmasked) and writes it once, when that is safe:

- the socket is uncompressed (a permessage-deflate socket keeps compressor state in aiohttp's
  writer, so its frames go through aiohttp one by one);
- the transport's buffer is empty: a client that is not keeping up gets each frame through
  aiohttp, whose flow control waits for the buffer to drain (and the relay's write deadline
  bounds that wait), so at most one batch goes past it.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence

from aiohttp import web

_FIN_TEXT = 0x81
_SHORT = struct.Struct("!BB")
_MEDIUM = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying `payload` (already UTF-8)."""
    size = len(payload)
    if size < 126:
        header = _SHORT.pack(_FIN_TEXT, size)
    elif size < 1 << 16:
        header = _MEDIUM.pack(_FIN_TEXT, 126, size)
    else:
        header = _LONG.pack(_FIN_TEXT, 127, size)
    return header + payload


async def send_texts(
    ws: web.WebSocketResponse, transport: asyncio.Transport | None, texts: Sequence[str]
) -> None:
    """Send `texts` as one text message each, in order; one write when the socket allows it.
    `transport` is the request's (`web.Request.transport`), the one `ws` writes to."""
    if (
        len(texts) < 2
        or ws.compress
        or ws.closed
        or transport is None
        or transport.is_closing()
        or transport.get_write_buffer_size()
    ):
        for text in texts:
            await ws.send_str(text)
        return
    transport.write(b"".join([text_frame(text.encode()) for text in texts]))
