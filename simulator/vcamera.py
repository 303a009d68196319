"""Virtual networked document camera: MJPEG preview and full-resolution stills over HTTP.

Serves the URL convention of ``devices.camera.mjpeg`` on 127.0.0.1: ``GET /stream.mjpg`` (a
multipart MJPEG stream at a steady ``fps``, preview size) and ``GET /snapshot.jpg`` (the full
frame), showing one of ``simulator.sample_documents`` at a time. Faults, as a real camera fails:

- ``absent``: the camera's server answers 503 and cuts the streams it was sending;
- ``black``: frames keep coming, black (lamp off, lens covered);
- ``stall``: streams stop sending mid-stream and snapshots hang, connections held open, until
  the fault is cleared (then streams go on) or the camera stops;
- ``ok``: back to normal.

``stop()`` then ``start()`` keeps the port, so "unplugged and plugged back" can be played too
(the driver sees connections refused meanwhile).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from simulator.processes import LOOPBACK, StartsAndStops
from simulator.sample_documents import (
    DOCUMENTS,
    PLATEN_DPI,
    SCENES,
    SampleDocument,
    black_frames,
    load_document,
)

log = logging.getLogger(__name__)

BOUNDARY = "kioskcamframe"
_HOLD_POLL_S = 0.1  # a held (stalled) request looks at its fault and the stop flag this often
_MAX_HOLD_S = 600.0  # a stalled request never outlives this, whatever happens


class CameraFault(enum.StrEnum):
    OK = "ok"
    ABSENT = "absent"
    BLACK = "black"
    STALL = "stall"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A restart keeps its port at once, as a real camera's address survives a power cycle.
    allow_reuse_address = True
    camera: VirtualCamera


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection; the stream ends by closing
    # A client that stops reading must not hold a handler thread for ever: a write that cannot
    # go out within this ends the connection.
    timeout = 10.0

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("vcamera %s " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        camera = self.server.camera
        path = self.path.split("?", 1)[0]
        if path == "/stream.mjpg":
            camera._serve_stream(self)
        elif path == "/snapshot.jpg":
            camera._serve_snapshot(self)
        else:
            self.send_error(HTTPStatus.NOT_FOUND)


class VirtualCamera(StartsAndStops):
    """A networked document camera on ``127.0.0.1:port`` (0: a free port); ``url`` is its base.

    ``write_chunk``: send each stream part in pieces of this many bytes with a short pause
    between them, so a client's reads see boundaries and headers split anywhere (tests).
    ``content_length=False``: parts without Content-Length, as some cameras send them.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        fps: float = 15.0,
        document: str = "application_form",
        cache_dir: Path | None = None,
        write_chunk: int | None = None,
        content_length: bool = True,
    ) -> None:
        if not 0.5 <= fps <= 60:
            raise ValueError("fps must be in [0.5, 60]")
        if document not in DOCUMENTS:
            raise ValueError(f"unknown document {document!r}; have {', '.join(DOCUMENTS)}")
        if write_chunk is not None and write_chunk < 1:
            raise ValueError("write_chunk must be at least 1")
        self._port = port
        self._fps = fps
        self._cache_dir = cache_dir
        self._write_chunk = write_chunk
        self._content_length = content_length
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._document = document
        self._fault = CameraFault.OK
        self._loaded: dict[str, SampleDocument] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._frames_sent = 0
        self._snapshots_sent = 0

    # -- lifecycle --

    def start(self) -> str:
        """Listen and serve; returns ``url``. The current document is made ready first."""
        if self._server is not None:
            raise RuntimeError("virtual camera already started")
        self._scene(self.document())  # drawn or read from the cache before anyone asks
        black_frames()
        server = _Server((LOOPBACK, self._port), _Handler)
        server.camera = self
        self._port = server.server_address[1]
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="vcamera-http", daemon=True)
        self._thread.start()
        log.info("virtual camera at %s", self.url)
        return self.url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()  # wake held (stalled) requests
        server.shutdown()
        server.server_close()  # waits for the handler threads, which see _stopping
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        log.info("virtual camera stopped")

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def dpi(self) -> float:
        """The full frame's pixels per inch at the platen (the driver's ``source_dpi``)."""
        return PLATEN_DPI

    @property
    def fps(self) -> float:
        return self._fps

    # -- the control panel's --

    def documents(self) -> list[str]:
        """What can lie on the platen, ``empty`` included."""
        return list(DOCUMENTS)

    def document_titles(self) -> dict[str, str]:
        """Each document's name as the panel shows it (申请表, 户口簿, ...)."""
        return {name: SCENES[name].title for name in DOCUMENTS}

    def document(self) -> str:
        """The document on the platen now."""
        with self._lock:
            return self._document

    def set_document(self, name: str) -> None:
        if name not in DOCUMENTS:
            raise ValueError(f"unknown document {name!r}; have {', '.join(DOCUMENTS)}")
        self._scene(name)  # load outside the lock: the stream goes on meanwhile
        with self._changed:
            self._document = name
            self._changed.notify_all()
        log.info("virtual camera shows %s", name)

    def fault(self) -> str:
        with self._lock:
            return self._fault.value

    def set_fault(self, mode: str) -> None:
        fault = CameraFault(mode)  # ValueError for anything else
        with self._changed:
            self._fault = fault
            self._changed.notify_all()
        log.info("virtual camera fault: %s", fault.value)

    @property
    def frames_sent(self) -> int:
        with self._lock:
            return self._frames_sent

    @property
    def snapshots_sent(self) -> int:
        with self._lock:
            return self._snapshots_sent

    # -- serving (handler threads) --

    def _scene(self, name: str) -> SampleDocument:
        loaded = self._loaded.get(name)
        if loaded is None:
            loaded = load_document(name, self._cache_dir)
            self._loaded[name] = loaded
        return loaded

    def _picture(self, full: bool) -> tuple[CameraFault, bytes]:
        with self._lock:
            fault, name = self._fault, self._document
        if fault is CameraFault.BLACK:
            black_full, black_preview = black_frames()
            return fault, black_full if full else black_preview
        scene = self._scene(name)
        return fault, scene.full_jpeg if full else scene.preview_jpeg

    def _hold_while_stalled(self) -> bool:
        """Block while the fault is ``stall``; False if the camera stops meanwhile."""
        give_up = time.monotonic() + _MAX_HOLD_S
        with self._changed:
            while self._fault is CameraFault.STALL:
                if self._stopping.is_set() or time.monotonic() > give_up:
                    return False
                self._changed.wait(_HOLD_POLL_S)
        return not self._stopping.is_set()

    def _serve_snapshot(self, handler: _Handler) -> None:
        fault, _ = self._picture(full=True)
        if fault is CameraFault.STALL and not self._hold_while_stalled():
            return  # stopped while held: the connection just closes
        fault, jpeg = self._picture(full=True)
        if fault is CameraFault.ABSENT:
            handler.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no camera")
            return
        handler.send_response(HTTPStatus.OK)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", str(len(jpeg)))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        with contextlib.suppress(OSError):  # the client gave up
            handler.wfile.write(jpeg)
            with self._lock:
                self._snapshots_sent += 1

    def _serve_stream(self, handler: _Handler) -> None:
        if self.fault() == CameraFault.ABSENT.value:
            handler.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no camera")
            return
        handler.send_response(HTTPStatus.OK)
        handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("Pragma", "no-cache")
        handler.end_headers()
        sock: socket.socket = handler.connection
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        period = 1.0 / self._fps
        started = time.monotonic()
        seq = 0
        while not self._stopping.is_set():
            fault, jpeg = self._picture(full=False)
            if fault is CameraFault.ABSENT:
                return  # unplugged: the stream just ends
            if fault is CameraFault.STALL:
                if not self._hold_while_stalled():
                    return
                started, seq = time.monotonic(), 0  # a fresh cadence after the stall
                continue
            seq += 1
            head = [f"--{BOUNDARY}", "Content-Type: image/jpeg"]
            if self._content_length:
                head.append(f"Content-Length: {len(jpeg)}")
            head += [f"X-Frame-Seq: {seq}", f"X-Timestamp: {time.time():.6f}", "", ""]
            part = "\r\n".join(head).encode("ascii") + jpeg + b"\r\n"
            try:
                self._send(handler, part)
            except OSError:
                return  # the client went away
            with self._lock:
                self._frames_sent += 1
            # A steady cadence: each frame at started + n/fps, not "fps after the last write",
            # so a slow write does not lower the rate for good.
            due = started + seq * period
            delay = due - time.monotonic()
            if delay < -period:
                started = time.monotonic() - seq * period  # far behind: a new cadence from now
            elif delay > 0 and self._stopping.wait(delay):
                return

    def _send(self, handler: _Handler, data: bytes) -> None:
        if self._write_chunk is None:
            handler.wfile.write(data)
            return
        for at in range(0, len(data), self._write_chunk):
            handler.wfile.write(data[at : at + self._write_chunk])
            time.sleep(0.0002)  # let each piece go out as its own segment
