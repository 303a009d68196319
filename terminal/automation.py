"""Automation API (DESIGN 8): HTTP on 127.0.0.1 for the simulator and tests; off in production.

The server knows nothing of Kivy: it is handed plain callables that do the work on the UI's
main thread and block until it answered. Each call is also bounded here, so a stuck main thread
gives the client a 503 instead of a hung request.

Anyone who reaches the API drives the terminal, so besides listening on loopback only it answers
only what a local tool sends and a web page cannot:

- ``Host`` must be ``127.0.0.1:<port>`` or ``localhost:<port>``: a page on a name an attacker
  re-points at 127.0.0.1 (DNS rebinding) sends its own name there.
- A request from a browser page of another origin is refused: a foreign ``Origin``, and a
  ``Sec-Fetch-Site`` other than ``same-origin`` or ``none``.
- A POST must be ``Content-Type: application/json``, which a page cannot send to another origin
  without a CORS preflight, and the API never answers one.

It is bounded in threads and time whatever clients do. One thread (``automation-api``) accepts
connections and collects each request without blocking: a connection has ``request_timeout_s``
to send its whole request, at most ``MAX_PENDING_CONNECTIONS`` may be collecting at once (a new
one pushes out the oldest), and a stalled one costs a socket, never a thread. Complete requests
go to ``WORKERS`` threads through a queue of ``MAX_QUEUED_REQUESTS``; beyond that the answer is
an immediate 503, as it is while ``MAX_UI_CALLS`` calls into the UI are still running. Every
answer closes its connection.

Whether the API runs at all is decided outside, from the config and the development marker
(``DEVELOPMENT_MARKER``, see ``development_marker``).
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import queue
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.errors import InvalidHeaderDefect
from email.message import Message
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 64 * 1024
MAX_HEAD_BYTES = 8 * 1024  # request line and headers; a real client sends a few hundred bytes
REQUEST_TIMEOUT_S = 2.0  # from connect to the request's last byte; loopback clients take < 1 ms
SEND_TIMEOUT_S = 10.0  # to hand over a whole answer (a screenshot is a few hundred kB)
MAX_PENDING_CONNECTIONS = 64  # still sending their request
WORKERS = 4  # requests answered at once; each mostly waits for the UI's main thread
MAX_QUEUED_REQUESTS = 16  # complete requests waiting for a worker
# UI calls still running, those a worker gave up on included (each holds a thread until the
# UI's own timeout ends it); beyond this, 503 without starting another.
MAX_UI_CALLS = 2 * WORKERS
LISTEN_BACKLOG = 128

# Set in the terminal's environment by a development rig (the simulator, the benchmarks, the
# end-to-end tests) that starts it; its value says which. Without it, ``[automation] enabled``
# is refused: a production config that asks for the API does not get it.
DEVELOPMENT_MARKER = "KIOSK_DEVELOPMENT"
_NOT_SET = ("", "0", "false", "no", "off")

T = TypeVar("T")


def development_marker(environ: Mapping[str, str]) -> str | None:
    """Who marked this process as running on a development rig (the marker's value), or None.

    An environment variable, not a file: nothing on a kiosk's disk can turn the API on, and a
    marker cannot be left behind in a device image; only the process that starts the terminal
    can set it, and the production systemd unit does not.
    """
    value = environ.get(DEVELOPMENT_MARKER, "").strip()
    return None if value.lower() in _NOT_SET else value


@dataclass(frozen=True)
class AutomationEndpoints:
    """What the API drives. Each callable blocks until the UI answered or raises TimeoutError.

    ``tap`` returns False for an unknown or disabled target. ``touch`` takes window pixels with
    the origin top-left (as in the screenshot) and raises ValueError outside the window.
    ``text`` returns False when no such text field exists (None: the UI has no text fields).
    ``layout`` lists layout defects (clipped labels, overlapping targets) for GUI tests.
    """

    describe: Callable[[], Mapping[str, Any]]
    tap: Callable[[str], bool]
    screenshot: Callable[[], bytes]
    touch: Callable[[float, float], None]
    text: Callable[[str, str], bool] | None = None
    layout: Callable[[], Sequence[str]] | None = None


class _ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Request:
    """One complete request, read before any worker sees it."""

    method: str
    target: str
    headers: Message
    body: bytes


@dataclass
class _Pending:
    """A connection still sending its request."""

    deadline: float
    received: bytearray = field(default_factory=bytearray)


_CONTENT_LENGTH = re.compile(r"[0-9]{1,9}")
_METHOD = re.compile(r"[A-Z]{1,16}")


def _parse_request(data: bytes | bytearray) -> _Request | None:
    """The request in ``data``, None while it is incomplete; _ApiError when it is malformed."""
    end = data.find(b"\r\n\r\n")
    if end < 0 or end + 4 > MAX_HEAD_BYTES:
        if len(data) > MAX_HEAD_BYTES:
            raise _ApiError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
        return None
    line, _, header_block = bytes(data[: end + 2]).partition(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1"):
        raise _ApiError(HTTPStatus.BAD_REQUEST, "bad request line")
    method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
    if not _METHOD.fullmatch(method) or not target.startswith("/") or not target.isascii():
        raise _ApiError(HTTPStatus.BAD_REQUEST, "bad request line")
    try:
        headers = http.client.parse_headers(io.BytesIO(header_block + b"\r\n"))
    except http.client.HTTPException as exc:  # more than 100 headers
        raise _ApiError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many headers") from exc
    if headers.get_payload() or any(isinstance(d, InvalidHeaderDefect) for d in headers.defects):
        # A line that is no header ("Host : x", ": x", junk): the parser would silently skip it
        # and everything after it. (A multipart Content-Type also leaves defects: about a body
        # the parser never saw, so those do not count.)
        raise _ApiError(HTTPStatus.BAD_REQUEST, "malformed header")
    if "Transfer-Encoding" in headers:
        raise _ApiError(HTTPStatus.NOT_IMPLEMENTED, "send a Content-Length, not chunks")
    lengths = headers.get_all("Content-Length") or []
    if len(lengths) > 1 or (lengths and not _CONTENT_LENGTH.fullmatch(lengths[0].strip())):
        raise _ApiError(HTTPStatus.BAD_REQUEST, "bad Content-Length")
    length = int(lengths[0]) if lengths else 0
    if length > MAX_BODY_BYTES:
        raise _ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
    start = end + 4
    if len(data) - start < length:
        return None
    return _Request(method, target, headers, bytes(data[start : start + length]))


def _bounded(call: Callable[[], T], timeout_s: float, finished: Callable[[], object]) -> T:
    """Run ``call`` on a daemon thread and wait at most ``timeout_s`` for it; ``finished`` runs
    on that thread when the call is over, however late."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed back to the request thread below
            box["error"] = exc
        finally:
            done.set()
            finished()

    # A daemon thread: if the main thread never answers, this one must not keep the process alive.
    # The UI's own calls give up after their timeout, so such a thread does not live for long.
    threading.Thread(target=run, name="automation-call", daemon=True).start()
    if not done.wait(timeout_s):
        raise TimeoutError("the UI did not answer in time")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


class AutomationServer:
    """HTTP on loopback, served by bounded threads; ``port=0`` picks a free port."""

    def __init__(
        self,
        endpoints: AutomationEndpoints,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        timeout_s: float = 5.0,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        if host != LOOPBACK:
            # DESIGN 8/10: the API lets anyone drive the terminal, so it never leaves the box.
            raise ValueError("the automation API only listens on 127.0.0.1")
        self._endpoints = endpoints
        self._timeout_s = timeout_s
        self._request_timeout_s = request_timeout_s
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # As http.server does: a restarted terminal gets its port back at once.
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(LISTEN_BACKLOG)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self._port = int(self._listener.getsockname()[1])
        hosts = [f"{LOOPBACK}:{self._port}", f"localhost:{self._port}"]
        if self._port == 80:  # a client leaves the default port out of Host
            hosts += [LOOPBACK, "localhost"]
        self._hosts = frozenset(hosts)
        self._origins = frozenset(f"http://{h}" for h in hosts)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._requests: queue.Queue[tuple[socket.socket, _Request]] = queue.Queue(
            MAX_QUEUED_REQUESTS
        )
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ui_calls = threading.BoundedSemaphore(MAX_UI_CALLS)
        self._closed = False

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._serve, name="automation-api", daemon=True)]
        self._threads += [
            threading.Thread(target=self._work, name=f"automation-request-{n}", daemon=True)
            for n in range(WORKERS)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake_writer.send(b"\0")
        deadline = time.monotonic() + 5.0
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._threads = []
        self._listener.close()
        self._wake_reader.close()
        self._wake_writer.close()
        # Requests that never reached a worker: close their connections.
        while True:
            try:
                item = self._requests.get_nowait()
            except queue.Empty:
                break
            item[0].close()

    def __enter__(self) -> AutomationServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the accepting thread: connections collect their requests without a thread each -------

    def _serve(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._listener, selectors.EVENT_READ)
        selector.register(self._wake_reader, selectors.EVENT_READ)
        pending: dict[socket.socket, _Pending] = {}  # oldest first (insertion order)
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                wait = min((p.deadline for p in pending.values()), default=now + 1.0) - now
                for key, _ in selector.select(max(0.0, wait)):
                    if key.fileobj is self._listener:
                        self._accept(selector, pending)
                    elif key.fileobj is self._wake_reader:
                        self._wake_reader.recv(64)
                    else:
                        conn = key.fileobj
                        assert isinstance(conn, socket.socket)
                        try:
                            self._receive(selector, pending, conn)
                        except Exception:  # one odd connection must not end the API
                            log.exception("automation API: dropping a connection")
                            if conn in pending:
                                self._drop(selector, pending, conn)
                            conn.close()
                # Data that arrived is read above before the clock is checked, so a busy
                # process never times out a request it simply had not looked at yet.
                now = time.monotonic()
                for conn in [c for c, p in pending.items() if p.deadline <= now]:
                    self._drop(selector, pending, conn)
                    _answer_now(conn, HTTPStatus.REQUEST_TIMEOUT,
                                "the request did not arrive in time")
        except Exception:
            log.exception("automation API stopped serving")
        finally:
            for conn in pending:
                conn.close()
            selector.close()

    def _accept(self, selector: selectors.BaseSelector, pending: dict[socket.socket, _Pending]
                ) -> None:
        for _ in range(LISTEN_BACKLOG):
            try:
                conn, _address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and the like: the listener stays; try again next round
                log.warning("automation API cannot accept a connection", exc_info=True)
                return
            conn.setblocking(False)
            if len(pending) >= MAX_PENDING_CONNECTIONS:
                # The oldest has had the longest to send its request: it makes room.
                oldest = next(iter(pending))
                self._drop(selector, pending, oldest)
                oldest.close()
            pending[conn] = _Pending(time.monotonic() + self._request_timeout_s)
            selector.register(conn, selectors.EVENT_READ)

    def _receive(self, selector: selectors.BaseSelector, pending: dict[socket.socket, _Pending],
                 conn: socket.socket) -> None:
        try:
            chunk = conn.recv(MAX_HEAD_BYTES + MAX_BODY_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:  # the client went away
            self._drop(selector, pending, conn)
            conn.close()
            return
        state = pending[conn]
        state.received += chunk
        try:
            request = _parse_request(state.received)
        except _ApiError as exc:
            self._drop(selector, pending, conn)
            _answer_now(conn, exc.status, exc.message)
            return
        if request is None:
            return
        self._drop(selector, pending, conn)
        try:
            self._requests.put_nowait((conn, request))
        except queue.Full:
            _answer_now(conn, HTTPStatus.SERVICE_UNAVAILABLE, "too many requests; try again")

    @staticmethod
    def _drop(selector: selectors.BaseSelector, pending: dict[socket.socket, _Pending],
              conn: socket.socket) -> None:
        del pending[conn]
        selector.unregister(conn)

    # --- the workers: one complete request at a time each ----------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, request = self._requests.get(timeout=0.25)
            except queue.Empty:
                continue
            if self._stopping.is_set():  # do not start on a UI that is going away
                _answer_now(conn, HTTPStatus.SERVICE_UNAVAILABLE, "the terminal is stopping")
                break
            try:
                status, content_type, payload = self._answer(request)
                conn.setblocking(True)
                conn.settimeout(SEND_TIMEOUT_S)  # the total for sendall, since Python 3.5
                conn.sendall(_response(status, content_type, payload))
            except OSError:
                pass  # the client went away or did not read its answer in time
            finally:
                conn.close()

    def _answer(self, request: _Request) -> tuple[HTTPStatus, str, bytes]:
        try:
            self._check_caller(request)
            path = _route(request.target, request.method)
            if request.method == "GET":
                return self.get(path)
            return self.post(path, _json_body(request))
        except _ApiError as exc:
            return _json(exc.status, {"error": exc.message})
        except Exception:
            log.exception("automation API request failed")
            return _json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"})

    def _check_caller(self, request: _Request) -> None:
        """Refuse what a web page could send: another Host, another origin, a form POST."""
        hosts = request.headers.get_all("Host") or []
        if len(hosts) != 1 or hosts[0].strip().lower() not in self._hosts:
            raise _ApiError(HTTPStatus.MISDIRECTED_REQUEST,
                            f"Host must be {LOOPBACK}:{self.port} or localhost:{self.port}")
        origins = request.headers.get_all("Origin") or []
        if origins and (len(origins) != 1 or origins[0].strip().lower() not in self._origins):
            raise _ApiError(HTTPStatus.FORBIDDEN, "cross-origin requests are refused")
        # Browsers send this on every request; "none" is an address typed by hand.
        for site in request.headers.get_all("Sec-Fetch-Site") or []:
            if site.strip().lower() not in ("same-origin", "none"):
                raise _ApiError(HTTPStatus.FORBIDDEN, "cross-site requests are refused")
        if request.method == "POST":
            types = request.headers.get_all("Content-Type") or []
            charset = request.headers.get_param("charset")
            if (len(types) != 1 or request.headers.get_content_type() != "application/json"
                    or (charset is not None and str(charset).lower() not in ("utf-8", "utf8"))):
                raise _ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                "POST takes Content-Type: application/json")

    # --- routes ----------------------------------------------------------------------------------

    def _call(self, call: Callable[[], T]) -> T:
        if not self._ui_calls.acquire(blocking=False):
            raise _ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "UI is still busy; try again")
        try:
            return _bounded(call, self._timeout_s, self._ui_calls.release)
        except TimeoutError as exc:
            raise _ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "UI did not answer in time") from exc

    def get(self, path: str) -> tuple[HTTPStatus, str, bytes]:
        ep = self._endpoints
        if path == "/screen":
            return _json(HTTPStatus.OK, dict(self._call(ep.describe)))
        if path == "/screenshot":
            return HTTPStatus.OK, "image/png", self._call(ep.screenshot)
        if path == "/debug/layout" and ep.layout is not None:
            layout = ep.layout
            return _json(HTTPStatus.OK, {"issues": list(self._call(layout))})
        raise _ApiError(HTTPStatus.NOT_FOUND, f"no such resource: {path}")

    def post(self, path: str, body: Mapping[str, Any]) -> tuple[HTTPStatus, str, bytes]:
        ep = self._endpoints
        if path == "/tap":
            target = _string_field(body, "target")
            if not self._call(lambda: ep.tap(target)):
                raise _ApiError(HTTPStatus.NOT_FOUND, f"no enabled target {target!r} on screen")
            return _json(HTTPStatus.OK, dict(self._call(ep.describe)))
        if path == "/text":
            target = _string_field(body, "target")
            value = _string_field(body, "text")
            text = ep.text
            if text is None or not self._call(lambda: text(target, value)):
                raise _ApiError(HTTPStatus.NOT_FOUND, "no such text field")
            return _json(HTTPStatus.OK, dict(self._call(ep.describe)))
        if path == "/touch":
            x, y = _number_field(body, "x"), _number_field(body, "y")
            try:
                self._call(lambda: ep.touch(x, y))
            except ValueError as exc:
                raise _ApiError(HTTPStatus.BAD_REQUEST, str(exc)) from exc
            return _json(HTTPStatus.OK, {"x": x, "y": y})
        raise _ApiError(HTTPStatus.NOT_FOUND, f"no such resource: {path}")


_METHODS = {
    "/screen": "GET",
    "/screenshot": "GET",
    "/debug/layout": "GET",
    "/tap": "POST",
    "/text": "POST",
    "/touch": "POST",
}


def _route(target: str, method: str) -> str:
    """The request's path without query; a known path asked with the wrong method is a 405."""
    if method not in ("GET", "POST"):
        raise _ApiError(HTTPStatus.METHOD_NOT_ALLOWED, "the API takes GET and POST only")
    path = urlsplit(target).path
    expected = _METHODS.get(path)
    if expected is not None and expected != method:
        raise _ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes {expected}")
    return path


def _json_body(request: _Request) -> Mapping[str, Any]:
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, too deep, too big a number
        raise _ApiError(HTTPStatus.BAD_REQUEST, "body is not JSON") from exc
    if not isinstance(body, dict):
        raise _ApiError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
    return body


def _json(status: HTTPStatus, body: Mapping[str, Any]) -> tuple[HTTPStatus, str, bytes]:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return status, "application/json; charset=utf-8", payload


def _response(status: HTTPStatus, content_type: str, payload: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + payload


def _answer_now(conn: socket.socket, status: HTTPStatus, message: str) -> None:
    """A short error from the accepting thread: never blocks (it fits the socket's buffer), then
    closes the connection."""
    try:
        conn.send(_response(*_json(status, {"error": message})))
    except OSError:
        pass
    finally:
        conn.close()


def _string_field(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"field {name!r} must be a string")
    return value


def _number_field(body: Mapping[str, Any], name: str) -> float:
    value = body.get(name)
    # bool is an int in Python; {"x": true} is a client bug, not a coordinate.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _ApiError(HTTPStatus.BAD_REQUEST, f"field {name!r} must be a number")
    return float(value)
