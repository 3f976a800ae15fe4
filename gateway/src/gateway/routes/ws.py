"""`/ws/chat`: the UI events over WebSocket, a superset of the seed WebSocket protocol.

The handshake checks the origin and finds any token (`gateway.ws.handshake`); `ChatSocket`
(`gateway.ws.session`) serves the socket. Close codes are listed in docs/public-api.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from aiohttp import web

from gateway.app_state import OPEN_STREAMS, SETTINGS
from gateway.errors import Forbidden, RateLimited
from gateway.runs import refuse_if_closing
from gateway.ws.handshake import Handshake, origin_allowed, read_handshake
from gateway.ws.session import (
    CLOSE_FORBIDDEN,
    CLOSE_POLICY,
    CLOSE_UNAUTHENTICATED,
    ChatSocket,
    TooManySockets,
)


async def chat_ws(request: web.Request) -> web.StreamResponse:
    """Upgrade to a WebSocket after the origin check, authenticate, then serve turns."""
    app = request.app
    settings = app[SETTINGS]
    refuse_if_closing(app)
    if not origin_allowed(request, settings):
        raise Forbidden("This origin may not open a WebSocket here.")
    handshake = read_handshake(request, settings)
    with _unauthenticated_slot(request, waiting=handshake.token is None) as release_slot:
        return await _serve(request, handshake, release_slot)


@contextlib.contextmanager
def _unauthenticated_slot(request: web.Request, *, waiting: bool) -> Iterator[Callable[[], None]]:
    """Count a socket against its peer address until it authenticates (or ends); refuse the
    upgrade with 429 over `ws_max_unauthenticated_per_ip`, so idle sockets cannot pile up for the
    whole auth deadline."""
    if not waiting:
        yield lambda: None
        return
    app = request.app
    counts = app[OPEN_STREAMS].unauthenticated_per_ip
    peer = request.remote or "unknown"
    if counts.get(peer, 0) >= app[SETTINGS].ws_max_unauthenticated_per_ip:
        raise RateLimited(
            "Too many WebSockets waiting to authenticate from this address.",
            headers={"Retry-After": "1"},
        )
    counts[peer] = counts.get(peer, 0) + 1
    held = True

    def release() -> None:
        nonlocal held
        if held:
            held = False
            left = counts[peer] - 1
            if left:
                counts[peer] = left
            else:
                del counts[peer]

    try:
        yield release
    finally:
        release()


async def _serve(
    request: web.Request, handshake: Handshake, release_slot: Callable[[], None]
) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS]
    ws = web.WebSocketResponse(
        protocols=(handshake.protocol,) if handshake.protocol else (),
        heartbeat=settings.ws_protocol_heartbeat_s,
        max_msg_size=settings.ws_max_msg_size,
        compress=settings.ws_compress,
    )
    await ws.prepare(request)
    sockets = app[OPEN_STREAMS].sockets
    sockets.add(ws)
    socket = ChatSocket(request, ws)
    try:
        if handshake.token is not None:
            authenticated = await socket.authenticate(handshake.token)
        else:
            authenticated = await socket.wait_for_auth()
        release_slot()
        if not authenticated:
            await ws.close(code=CLOSE_UNAUTHENTICATED, message=b"not authenticated")
            return ws
        await socket.serve()
    except Forbidden as exc:
        with contextlib.suppress(TimeoutError, ConnectionError):
            await socket.send_error(exc.code, exc.message)
        await ws.close(code=CLOSE_FORBIDDEN, message=b"forbidden")
    except TooManySockets as exc:
        with contextlib.suppress(TimeoutError, ConnectionError):
            await socket.send_error(exc.code, exc.message, retryable=True)
        await ws.close(code=CLOSE_POLICY, message=b"too many connections")
    except (TimeoutError, ConnectionError):
        socket.abort()
    finally:
        sockets.discard(ws)
        await socket.finish()
        if not ws.closed:
            await ws.close()
    return ws
