"""Run the Hub app under uvicorn with limits: header size and count, timeouts and a cap on connections.

uvicorn has no timeout for reading a request's headers (its keep-alive timer starts only after a response), nor for
its body, so a client sending one byte at a time, or declaring a body it never sends, would hold a connection (one of
the capped few) for ever; the h11 protocol here closes such connections.
"""

import asyncio

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_BODY_TIMEOUT_S = 10.0
DEFAULT_KEEP_ALIVE_S = 5
DEFAULT_MAX_CONNECTIONS = 64


class HeaderTimeoutH11Protocol(H11Protocol):
    """h11 as uvicorn runs it, plus a deadline for each request's headers, counted from their first byte, and one for
    each piece of its body: a body that stops arriving for `body_timeout` seconds closes the connection."""

    header_timeout = DEFAULT_HEADER_TIMEOUT_S
    body_timeout = DEFAULT_BODY_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._body_timer = None
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        waiting_for_headers = self.conn.their_state is h11.IDLE
        if waiting_for_headers and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)
        elif not waiting_for_headers:
            self._cancel_header_timer()
        self._cancel_body_timer()
        if self.conn.their_state is h11.SEND_BODY:
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        super().connection_lost(exc)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_too_slow(self) -> None:
        self._body_timer = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            return
        if self.flow.read_paused:  # the app has not taken what arrived yet: the client is not the slow one
            self._body_timer = self.loop.call_later(self.body_timeout, self._body_too_slow)
            return
        self.transport.close()

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def serve(
    app,
    host: str,
    port: int,
    log_level: str,
    max_header_bytes: int,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    body_timeout: float = DEFAULT_BODY_TIMEOUT_S,
) -> None:
    timeouts = {"header_timeout": header_timeout, "body_timeout": body_timeout}
    protocol = type("HubH11Protocol", (HeaderTimeoutH11Protocol,), timeouts)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=protocol,
        h11_max_incomplete_event_size=max_header_bytes,
        limit_concurrency=max_connections,
        timeout_keep_alive=DEFAULT_KEEP_ALIVE_S,
        timeout_graceful_shutdown=5,
    )
