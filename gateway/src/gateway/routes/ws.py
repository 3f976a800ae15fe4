"""`/ws/chat`: the UI events over WebSocket, a superset of the seed WebSocket protocol.

The handshake checks the origin and finds any token (`gateway.ws.handshake`); `ChatSocket`
(`gateway.ws.session`) serves the socket. Close codes are listed in docs/public-api.md.
"""

from __future__ import annotations

import contextlib

from aiohttp import web

from gateway.app_state import OPEN_STREAMS, SETTINGS
from gateway.errors import Forbidden
from gateway.runs import refuse_if_closing
from gateway.ws.handshake import origin_allowed, read_handshake
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
    ws = web.WebSocketResponse(
        protocols=(handshake.protocol,) if handshake.protocol else (),
        heartbeat=settings.ws_protocol_heartbeat_s,
        max_msg_size=settings.ws_max_msg_size,
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
