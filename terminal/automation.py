"""Automation API (DESIGN 8): HTTP on 127.0.0.1 for the simulator and tests; off in production.

The server knows nothing of Kivy: it is handed plain callables that do the work on the UI's
main thread and block until it answered. Each call is also bounded here, so a stuck main thread
gives the client a 503 instead of a hung request.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
MAX_BODY_BYTES = 64 * 1024

T = TypeVar("T")


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


def _bounded(call: Callable[[], T], timeout_s: float) -> T:
    """Run ``call`` on a daemon thread and wait at most ``timeout_s`` for it."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # handed back to the request thread below
            box["error"] = exc
        finally:
            done.set()

    # A daemon thread: if the main thread never answers, this one must not keep the process alive.
    threading.Thread(target=run, name="automation-call", daemon=True).start()
    if not done.wait(timeout_s):
        raise TimeoutError("the UI did not answer in time")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


class AutomationServer:
    """``ThreadingHTTPServer`` on loopback in a daemon thread; ``port=0`` picks a free port."""

    def __init__(
        self,
        endpoints: AutomationEndpoints,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        timeout_s: float = 5.0,
    ) -> None:
        if host != LOOPBACK:
            # DESIGN 8/10: the API lets anyone drive the terminal, so it never leaves the box.
            raise ValueError("the automation API only listens on 127.0.0.1")
        self._endpoints = endpoints
        self._timeout_s = timeout_s
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        # A short poll interval: stop() waits up to one interval for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="automation-api",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> AutomationServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- routes ----------------------------------------------------------------------------------

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return _bounded(call, self._timeout_s)
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

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # request lines would flood the simulator's console

            def do_GET(self) -> None:
                self._answer(lambda: server.get(_route(self.path, "GET")))

            def do_POST(self) -> None:
                self._answer(lambda: server.post(_route(self.path, "POST"), self._json_body()))

            def _json_body(self) -> Mapping[str, Any]:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError as exc:
                    raise _ApiError(HTTPStatus.BAD_REQUEST, "bad Content-Length") from exc
                if length > MAX_BODY_BYTES:
                    raise _ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
                raw = self.rfile.read(length) if length > 0 else b""
                try:
                    body = json.loads(raw)
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise _ApiError(HTTPStatus.BAD_REQUEST, "body is not JSON") from exc
                if not isinstance(body, dict):
                    raise _ApiError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
                return body

            def _answer(self, route: Callable[[], tuple[HTTPStatus, str, bytes]]) -> None:
                try:
                    status, content_type, payload = route()
                except _ApiError as exc:
                    status, content_type, payload = _json(exc.status, {"error": exc.message})
                except Exception:
                    log.exception("automation API request failed")
                    status, content_type, payload = _json(
                        HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}
                    )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

        return Handler


_METHODS = {
    "/screen": "GET",
    "/screenshot": "GET",
    "/debug/layout": "GET",
    "/tap": "POST",
    "/text": "POST",
    "/touch": "POST",
}


def _route(raw_path: str, method: str) -> str:
    """The request's path without query; a known path asked with the wrong method is a 405."""
    path = urlsplit(raw_path).path
    expected = _METHODS.get(path)
    if expected is not None and expected != method:
        raise _ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} takes {expected}")
    return path


def _json(status: HTTPStatus, body: Mapping[str, Any]) -> tuple[HTTPStatus, str, bytes]:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return status, "application/json; charset=utf-8", payload


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
