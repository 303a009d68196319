"""One HTTP/1.1 exchange with the service hub: asyncio streams for the bytes, h11 for the framing.

The hub adapter (terminal.hub_client) needs little of HTTP: one request with a JSON or multipart
body, one answer of at most a few hundred kB, no keep-alive, no redirects, no proxies, no
compression. h11 is the sans-I/O HTTP/1.1 state machine httpx itself is built on; driving it
directly on the adapter's own event loop gives the same framing rules (chunked bodies, interim
``1xx`` answers, bodies read until close, header size limits) for about 9 MB less resident memory
and 90 ms less import than httpx with httpcore and anyio, which a terminal that is idle most of its
life keeps paying for. Deadlines are not this module's concern: the caller bounds the whole
exchange with ``asyncio.timeout_at``, and every await here is cancellable.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

# The status line and headers of an answer; the hub's are a few hundred bytes.
MAX_HEAD_BYTES = 16 * 1024
_READ_BYTES = 64 * 1024


class WireError(Exception):
    """The far end broke HTTP (bad framing, closed mid-answer); the message names only the kind."""


class AnswerTooLarge(Exception):
    """The answer's body passed the cap; nothing of it is kept."""


@dataclass(frozen=True)
class HubAddress:
    """Where the hub is: scheme, host and port to connect to, and what goes before each path."""

    scheme: str
    host: str  # as resolved and, over TLS, as the certificate must name it (no brackets)
    port: int
    host_header: str  # host[:port] as the URL gave it
    base_path: str  # "" or "/prefix", no trailing slash

    @classmethod
    def from_url(cls, url: str) -> HubAddress:
        """``http(s)://host[:port][/path]``; anything else (a query, user info, a bad port) is a
        ValueError naming the rule, not the URL."""
        rule = "hub base URL must be http(s)://host[:port][/path]"
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise ValueError(rule) from None
        host = parts.hostname
        if (parts.scheme not in {"http", "https"} or not host or parts.query or parts.fragment
                or parts.username is not None or not parts.netloc.isascii()
                or any(c.isspace() for c in url)):
            raise ValueError(rule)
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, host, port or default, parts.netloc, parts.path.rstrip("/"))


class HubWire:
    """Sends requests to one hub, at most ``max_connections`` at a time, one connection each."""

    def __init__(self, address: HubAddress, tls: ssl.SSLContext | None, *,
                 max_connections: int, max_answer_bytes: int) -> None:
        if address.scheme == "https" and tls is None:
            raise ValueError("an https hub needs a TLS context")
        self._address = address
        self._tls = tls if address.scheme == "https" else None
        # Bound to the loop it is first awaited on: the adapter's own.
        self._slots = asyncio.Semaphore(max_connections)
        self._max_answer_bytes = max_answer_bytes

    async def exchange(self, method: str, path: str, body: bytes | None, content_type: str,
                       on_status: Callable[[int], None]) -> tuple[int, bytes]:
        """Send one request and return the final answer's status and body.

        ``on_status`` sees the status as soon as the head has arrived, before the body is read,
        and may raise to give up on the answer there. Connection failures come out as OSError
        (ssl.SSLError and socket.gaierror included), broken HTTP as WireError, a body over the
        cap as AnswerTooLarge.
        """
        async with self._slots:
            address = self._address
            reader, writer = await asyncio.open_connection(
                address.host, address.port, ssl=self._tls,
                server_hostname=address.host if self._tls is not None else None,
                limit=_READ_BYTES,
            )
            try:
                http = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
                request = self._request(http, method, path, body, content_type)
                return await self._exchange(reader, writer, http, request, on_status)
            except h11.ProtocolError:
                # h11's message may quote the answer's bytes; only the kind of failure leaves.
                pass
            finally:
                # No keep-alive and nothing left to say: drop the connection now, whether the
                # answer came, the caller gave up on it or the deadline cancelled the call.
                writer.transport.abort()
        raise WireError("broken HTTP answer")

    def _request(self, http: h11.Connection, method: str, path: str, body: bytes | None,
                 content_type: str) -> bytes:
        headers = [
            ("Host", self._address.host_header),
            ("Accept", "application/json"),
            # identity: a compressed answer could inflate far past the size cap in one read.
            ("Accept-Encoding", "identity"),
            ("Connection", "close"),
        ]
        if body is not None:
            headers += [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        head = http.send(h11.Request(method=method, target=self._address.base_path + path,
                                     headers=headers)) or b""
        data = (http.send(h11.Data(data=body)) or b"") if body else b""
        return head + data + (http.send(h11.EndOfMessage()) or b"")

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        http: h11.Connection, request: bytes,
                        on_status: Callable[[int], None]) -> tuple[int, bytes]:
        writer.write(request)
        await writer.drain()
        status = await self._head(reader, http)
        on_status(status)
        return status, await self._body(reader, http)

    async def _head(self, reader: asyncio.StreamReader, http: h11.Connection) -> int:
        while True:
            event = await _next_event(reader, http)
            if isinstance(event, h11.Response):
                return event.status_code
            if isinstance(event, h11.InformationalResponse):
                # ``100 Continue`` and the like are not the answer; an endless run of them is
                # ended by the caller's deadline. h11 refuses an unasked-for 101 itself.
                continue
            raise WireError("connection closed before the answer")

    async def _body(self, reader: asyncio.StreamReader, http: h11.Connection) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await _next_event(reader, http)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self._max_answer_bytes:
                    raise AnswerTooLarge
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise WireError("connection closed mid-answer")


async def _next_event(reader: asyncio.StreamReader, http: h11.Connection) -> object:
    while True:
        event = http.next_event()
        if event is not h11.NEED_DATA:
            return event
        # b"" at the far end's close: h11 then ends a read-until-close body or refuses a cut one.
        http.receive_data(await reader.read(_READ_BYTES))


def describe(exc: BaseException) -> str:
    """A failure to reach the hub in a few words, without anything the far end sent."""
    if isinstance(exc, WireError):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted"
    if isinstance(exc, ssl.SSLError):
        return "TLS failed"
    return type(exc).__name__
