"""One `/ws/chat` socket after the handshake: authentication, then turns, one at a time.

Client messages: `auth`, `message`, `ping`, `stop` (`gateway.ws.messages`). Close codes: 1000
normal, 1001 shutdown, 1008 too many sockets for the user, 1009 too big, 1011 internal, 4401 not
authenticated (no/invalid token, auth deadline), 4403 re-auth as someone else
(docs/public-api.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Final

import structlog
from aiohttp import WSMsgType, web

from contracts.errors import ErrorCode
from contracts.ui_events import (
    AuthErrorMessage,
    AuthSuccessMessage,
    AuthUser,
    TokenUiEvent,
    UiEvent,
    WsAuthMessage,
    WsChatMessage,
    WsErrorCode,
    WsPingMessage,
    WsResumeMessage,
    WsStopMessage,
)
from gateway.admission import admit, retry_after_s, stream_lease, verify_token
from gateway.app_state import OPEN_STREAMS, REQUEST_ID, RUN_STORE, SETTINGS
from gateway.auth import Principal
from gateway.errors import Forbidden, GatewayError, RateLimited
from gateway.rate_limit import Lease
from gateway.relay import Relay
from gateway.resume import find_run, resumable, start_buffered_run, stop_run
from gateway.run_buffer import RunMeta
from gateway.runs import (
    STOPPED_EVENT,
    Source,
    chat_request,
    new_conversation_id,
    new_message_id,
    open_upstream,
    refuse_if_closing,
    relay_run,
    run_reservation,
)
from gateway.streaming import MappedSink
from gateway.ui_mapping import MappingState, error_ui_event, opening_events, to_ui_events
from gateway.ui_wire import ui_event_json
from gateway.ws.frames import send_texts
from gateway.ws.messages import Refusal, parse_client_message

log = structlog.get_logger("gateway.ws")

CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_POLICY: Final = 1008
"""Too many sockets for one user."""
PING: Final = '{"type":"ping"}'
PONG: Final = '{"type":"pong"}'


class TooManySockets(RateLimited):
    """The user has `ws_max_per_user` sockets open on this replica already."""


class WsSink(MappedSink[MappingState, UiEvent]):
    """Writes UI events as one JSON text frame each."""

    __slots__ = ("_partial", "_transport", "_ws")

    def __init__(
        self,
        request: web.Request,
        ws: web.WebSocketResponse,
        state: MappingState,
        opening: list[UiEvent],
        *,
        partial: bool,
    ) -> None:
        super().__init__(state, to_ui_events, opening)
        self._ws = ws
        self._transport = request.transport
        self._partial = partial

    async def write(self, items: list[UiEvent]) -> None:
        """Send each event as a text frame; a batch in one socket write (`frames.send_texts`)."""
        if self._partial:
            items = self._with_partial_responses(items)
        await send_texts(self._ws, self._transport, [ui_event_json(event) for event in items])

    def _with_partial_responses(self, items: list[UiEvent]) -> list[UiEvent]:
        """Each token with the answer up to and including it (opt-in, seed compatibility: it
        costs O(answer) per token, hence not the default). The batch's tokens are the last
        parts of the answer mapped so far, in order."""
        parts = self.state.answer_parts
        tokens = sum(1 for event in items if type(event) is TokenUiEvent)
        so_far = "".join(parts[: len(parts) - tokens])
        out: list[UiEvent] = []
        for event in items:
            if type(event) is TokenUiEvent:
                so_far += event.token
                event = TokenUiEvent.model_construct(token=event.token, partial_response=so_far)
            out.append(event)
        return out

    async def heartbeat(self) -> None:
        """An app-level ping (browsers cannot see protocol pings)."""
        await self._ws.send_str(PING)


class ChatSocket:
    """One client's socket: authentication, then turns, one at a time."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.app = request.app
        self.ws = ws
        self.settings = request.app[SETTINGS]
        self.principal: Principal | None = None
        self.counted: tuple[str, str] | None = None
        """The user this socket counts against in `sockets_per_user`, once authenticated."""
        self.turn: asyncio.Task[None] | None = None
        self.relay: Relay | None = None
        self.stop_requested = False
        """A `stop` came while the turn was still being admitted or opened: end it on relay."""
        self.sink: WsSink | None = None
        self.run: RunMeta | None = None
        """The buffered run the current turn follows (None: not resumable)."""
        self.turns = 0

    async def send_json_text(self, text: str) -> None:
        """Send a frame, giving up on a client that does not read within the write deadline."""
        async with asyncio.timeout(self.settings.write_timeout_s):
            await self.ws.send_str(text)

    async def send_error(
        self, code: str, message: str, *, retryable: bool = False, retry_after: float | None = None
    ) -> None:
        """Send an `error` event (the socket stays open)."""
        event = error_ui_event(code, message, retryable=retryable, retry_after=retry_after)
        await self.send_json_text(ui_event_json(event))

    async def authenticate(self, token: str | None) -> bool:
        """Verify a token and answer `auth_success` or `auth_error`; whether it was accepted."""
        try:
            principal = await verify_token(self.app, token)
        except GatewayError as exc:
            reply = AuthErrorMessage(message=exc.message, code=exc.code)
            await self.send_json_text(reply.model_dump_json())
            return False
        if self.principal is not None and (
            (principal.user_id, principal.company_id)
            != (self.principal.user_id, self.principal.company_id)
        ):
            raise Forbidden("A socket stays with the user it was opened for.")
        if self.counted is None:
            self.count_socket(principal)
        self.principal = principal
        user = AuthUser(id=principal.user_id, company_id=principal.company_id)
        await self.send_json_text(AuthSuccessMessage(user=user).model_dump_json())
        return True

    def count_socket(self, principal: Principal) -> None:
        """Count this socket against its user; `TooManySockets` past `ws_max_per_user`."""
        counts = self.app[OPEN_STREAMS].sockets_per_user
        key = (principal.company_id, principal.user_id)
        if counts.get(key, 0) >= self.settings.ws_max_per_user:
            raise TooManySockets(
                f"Too many open connections ({self.settings.ws_max_per_user}); close one first."
            )
        counts[key] = counts.get(key, 0) + 1
        self.counted = key

    async def wait_for_auth(self) -> bool:
        """Before any turn: the first `auth` message, within the deadline."""
        try:
            async with asyncio.timeout(self.settings.ws_auth_timeout_s):
                async for msg in self.ws:
                    if msg.type != WSMsgType.TEXT:
                        return False
                    parsed = parse_client_message(msg.data)
                    if isinstance(parsed, WsAuthMessage):
                        return await self.authenticate(parsed.token)
                    if isinstance(parsed, WsPingMessage):
                        await self.send_json_text(PONG)
                    else:
                        await self.send_error(
                            WsErrorCode.AUTH_REQUIRED, "Authenticate first: send an auth message."
                        )
        except TimeoutError:
            reply = AuthErrorMessage(
                message=f"No auth message within {self.settings.ws_auth_timeout_s:g} s."
            )
            with contextlib.suppress(TimeoutError, ConnectionError):
                await self.send_json_text(reply.model_dump_json())
        return False

    async def serve(self) -> None:
        """Read client messages until the socket closes."""
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                await self.send_error(ErrorCode.INVALID_REQUEST, "Send JSON text messages.")
                continue
            if msg.type != WSMsgType.TEXT:
                break
            parsed = parse_client_message(msg.data)
            if isinstance(parsed, Refusal):
                await self.send_error(parsed.code, parsed.message)
            elif isinstance(parsed, WsPingMessage):
                await self.send_json_text(PONG)
            elif isinstance(parsed, WsStopMessage):
                self.stop()
            elif isinstance(parsed, WsResumeMessage):
                await self.start_turn(parsed)
            elif isinstance(parsed, WsAuthMessage):
                if not await self.authenticate(parsed.token):
                    await self.ws.close(code=CLOSE_UNAUTHENTICATED, message=b"invalid token")
                    break
            else:
                await self.start_turn(parsed)

    async def start_turn(self, message: WsChatMessage | WsResumeMessage) -> None:
        """Start a turn, unless one is running or the message cannot be sent."""
        answered = self.sink is not None and self.sink.state.finished
        if self.turn is not None and not self.turn.done() and answered:
            # The answer is out; only the turn's bookkeeping (lease, token charge) remains.
            await self.turn
        if self.turn is not None and not self.turn.done():
            await self.send_error(
                ErrorCode.CONVERSATION_BUSY,
                "Wait for the current answer to finish (or send stop).",
                retryable=True,
            )
            return
        assert self.principal is not None
        if self.principal.expires_at <= time.time():
            await self.send_error(
                ErrorCode.UNAUTHORIZED, "Your token expired; send a new auth message."
            )
            return
        self.turns += 1
        self.sink = None
        self.run = None
        self.stop_requested = False
        if isinstance(message, WsResumeMessage):
            self.turn = asyncio.create_task(
                self.resume_turn(self.principal, message.run_id, message.after)
            )
            return
        # The model validated both (the contract's `Message` and `Identifier`): stripped, sized.
        text = message.message
        conversation_id = message.session_id or message.conversation_id or new_conversation_id()
        self.turn = asyncio.create_task(
            self.run_turn(self.principal, text, conversation_id, partial=message.partial_response)
        )

    async def run_turn(
        self, principal: Principal, text: str, conversation_id: str, *, partial: bool
    ) -> None:
        """One run: admission, then the relayed events; refusals become `error` events."""
        started = time.monotonic()
        request_id = f"{self.request[REQUEST_ID][:120]}.{self.turns}"
        # The turn runs in its own task (its own context): its log lines carry its own id.
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            refuse_if_closing(self.app)
            chat = chat_request(principal, text, conversation_id)
            await admit(self.app, principal)
            state = MappingState(conversation_id=conversation_id)
            run_id = new_message_id()
            opening = opening_events(state, message_id=run_id, request_id=request_id)
            if resumable(self.app):
                meta, follower = await start_buffered_run(
                    self.app, principal, chat, run_id=run_id, transport="ws", request_id=request_id
                )
                self.run = meta
                sink = self.sink = WsSink(self.request, self.ws, state, opening, partial=partial)
                await self._relay(follower, sink, principal, None, started)
                return
            async with stream_lease(self.app, principal) as lease:
                source = await open_upstream(self.app, chat, request_id)
                sink = self.sink = WsSink(self.request, self.ws, state, opening, partial=partial)
                await self._relay(
                    source, sink, principal, lease, started, run_reservation(self.app, chat)
                )
        except GatewayError as exc:
            await self._refused(exc)
        except (TimeoutError, ConnectionError):
            self.abort()
        except Exception:
            log.exception("ws_turn_failed")
            await self.ws.close(code=1011, message=b"internal error")
        finally:
            self.relay = None

    async def resume_turn(self, principal: Principal, run_id: str, after: int) -> None:
        """Rejoin a buffered run (of this user's, on any replica): its events after `after`."""
        started = time.monotonic()
        try:
            await admit(self.app, principal)
            meta = await find_run(self.app, principal, run_id)
            self.run = meta
            state = MappingState(conversation_id=meta.conversation_id)
            opening = opening_events(state, message_id=meta.run_id, request_id=meta.request_id)
            sink = self.sink = WsSink(self.request, self.ws, state, opening, partial=False)
            sink.skip = after
            follower = self.app[RUN_STORE].follow(meta)
            await self._relay(follower, sink, principal, None, started)
        except GatewayError as exc:
            await self._refused(exc)
        except (TimeoutError, ConnectionError):
            self.abort()
        except Exception:
            log.exception("ws_resume_failed")
            await self.ws.close(code=1011, message=b"internal error")
        finally:
            self.relay = None

    async def _relay(
        self,
        source: Source,
        sink: WsSink,
        principal: Principal,
        lease: Lease | None,
        started: float,
        reserve_tokens: int = 0,
    ) -> None:
        """Relay a run (with its `lease`, charged) or a buffered run's follower (no lease: its
        producer is charged)."""
        result = await relay_run(
            self.app,
            source=source,
            sink=sink,
            principal=principal,
            lease=lease,
            transport="ws",
            started=started,
            reserve_tokens=reserve_tokens,
            on_relay=self._set_relay,
        )
        if result.ending == "stopped" and self.run is not None:
            # `stop` ends the run itself, not only this socket's view of it.
            await stop_run(self.app, self.run)
        if result.ending in ("slow_client", "client_gone"):
            self.abort()

    async def _refused(self, exc: GatewayError) -> None:
        with contextlib.suppress(TimeoutError, ConnectionError):
            await self.send_error(
                exc.code,
                exc.message,
                retryable=exc.retryable,
                retry_after=retry_after_s(exc.headers),
            )

    def stop(self) -> None:
        """End the running turn with CANCELLED: now if it is relaying, else as soon as it is."""
        if self.relay is not None:
            self.relay.interrupt("stopped", STOPPED_EVENT)
        elif self.turn is not None and not self.turn.done():
            # Still in admission or opening the upstream call: there is no relay to stop yet.
            self.stop_requested = True

    def _set_relay(self, relay: Relay) -> None:
        self.relay = relay
        if self.stop_requested:
            relay.interrupt("stopped", STOPPED_EVENT)

    def abort(self) -> None:
        """Drop a client that stopped reading."""
        if self.request.transport is not None:
            self.request.transport.abort()

    async def finish(self) -> None:
        """The socket is gone: stop a running turn (closing its upstream call), uncount it."""
        if self.counted is not None:
            counts = self.app[OPEN_STREAMS].sockets_per_user
            left = counts.get(self.counted, 1) - 1
            if left > 0:
                counts[self.counted] = left
            else:
                counts.pop(self.counted, None)  # memory follows open sockets only
            self.counted = None
        turn = self.turn
        if turn is not None and not turn.done():
            turn.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await turn
