"""Motion JPEG: frame checks, a multipart stream parser, and the networked camera's HTTP client.

URL convention for a networked document camera, given its base URL ``http://HOST[:PORT][/PREFIX]``:

- ``{base}/stream.mjpg``: the live preview, ``multipart/x-mixed-replace`` with one JPEG per part
  (a ``Content-Length`` per part is used when present, else the next boundary ends the part);
- ``{base}/snapshot.jpg``: one still at the camera's full resolution, ``image/jpeg``.

HTTP 503 from either means the camera's server is up but the camera is not (``CameraAbsent``).
Plain ``http`` only: the camera sits on the kiosk's own wire or on loopback. Use an IP address in
the URL: the name lookup is the one step no timeout of ours bounds (``socket.getaddrinfo``).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from devices.camera import BadFrame, CameraAbsent, CameraError, CameraOffline, StreamStalled

STREAM_PATH = "/stream.mjpg"
SNAPSHOT_PATH = "/snapshot.jpg"

DEFAULT_MAX_FRAME_BYTES = 4_000_000  # a 1024x768 preview frame is ~100 KB; leave room, not 100 MB
DEFAULT_MAX_SNAPSHOT_BYTES = 24_000_000  # an 8 MP still at high quality is 2-5 MB
MAX_PART_HEADER_BYTES = 8192
_READ_BYTES = 65536

_SOI = b"\xff\xd8"
# Start-of-frame markers carry the image size; DHT (C4), JPG (C8) and DAC (CC) share the range.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field
_SOS = 0xDA


# --- JPEG frames ----------------------------------------------------------------------------------


def is_jpeg(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` starts like a JPEG (SOI followed by a marker)."""
    return len(data) >= 4 and data[0] == 0xFF and data[1] == 0xD8 and data[2] == 0xFF


def jpeg_dimensions(data: bytes) -> tuple[int, int]:
    """Width and height from a JPEG's start-of-frame header, without decoding it.

    Raises BadFrame for anything that is not a JPEG with a frame header before its scan data.
    """
    if not is_jpeg(data):
        raise BadFrame("frame is not a JPEG")
    at = 2
    end = len(data)
    while at + 4 <= end:
        if data[at] != 0xFF:
            raise BadFrame("JPEG marker expected")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _STANDALONE_MARKERS:
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if length < 2:
            raise BadFrame("JPEG segment length is invalid")
        if marker in _SOF_MARKERS:
            if at + 9 > end:
                break
            height = int.from_bytes(data[at + 5 : at + 7], "big")
            width = int.from_bytes(data[at + 7 : at + 9], "big")
            if width == 0 or height == 0:
                raise BadFrame("JPEG frame has no size")
            return width, height
        if marker == _SOS:
            break
        at += 2 + length
    raise BadFrame("JPEG has no frame header")


# --- multipart/x-mixed-replace --------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Part:
    """One part of a multipart stream: its headers (names lower-cased) and its body."""

    headers: dict[str, str]
    body: bytes

    def __repr__(self) -> str:
        # A part is a picture of whatever lies on the platen: never its bytes in a log line.
        return f"Part({len(self.body)} bytes)"


def boundary_from_content_type(content_type: str) -> str:
    """The ``boundary`` parameter of a multipart Content-Type; BadFrame if there is none."""
    kind, _, params = content_type.partition(";")
    if not kind.strip().lower().startswith("multipart/"):
        raise BadFrame(f"stream is {kind.strip() or 'untyped'}, not multipart")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip().strip('"')
            if value:
                return value
    raise BadFrame("multipart stream without a boundary")


@dataclass
class MultipartReader:
    """Incremental parser of a multipart stream: ``feed`` bytes as they come, get whole parts.

    Tolerant of what cameras really send: a boundary declared with or without its leading
    ``--``, LF instead of CRLF, parts without headers or without Content-Length (then the next
    boundary ends the part), boundaries split anywhere across reads. Bounded: a part larger than
    ``max_part_bytes`` or a header block larger than ``max_header_bytes`` raises BadFrame, so a
    broken or hostile stream cannot make us buffer without end.
    """

    boundary: str
    max_part_bytes: int = DEFAULT_MAX_FRAME_BYTES
    max_header_bytes: int = MAX_PART_HEADER_BYTES
    _marker: bytes = field(init=False)
    _buffer: bytearray = field(init=False, default_factory=bytearray)
    _state: str = field(init=False, default="boundary")
    _headers: dict[str, str] = field(init=False, default_factory=dict)
    _scanned: int = field(init=False, default=0)  # where the next boundary search resumes
    ended: bool = field(init=False, default=False)  # the closing boundary (--b--) was seen

    def __post_init__(self) -> None:
        # The boundary text without its dashes: a delimiter is then a line of two or more
        # dashes and this text, which matches "--b" as the RFC writes it and the "----b" of
        # cameras that declare "--b" and add the RFC's dashes as well.
        marker = self.boundary.lstrip("-").encode("latin-1")
        if not marker:
            raise ValueError("empty multipart boundary")
        self._marker = marker

    def _find_delimiter(self, start: int) -> tuple[int, int]:
        """(where the delimiter line starts, where its boundary text starts), or (-1, -1).

        The boundary text alone is not enough: a short one turns up inside JPEG data. It must
        follow at least two dashes at the start of a line (or of what is buffered).
        """
        buffer, marker = self._buffer, self._marker
        at = buffer.find(marker, start)
        while at >= 0:
            line = at
            while line > 0 and buffer[line - 1] == 0x2D:  # "-"
                line -= 1
            if at - line >= 2 and (line == 0 or buffer[line - 1] == 0x0A):
                return line, at
            at = buffer.find(marker, at + 1)
        return -1, -1

    def feed(self, data: bytes) -> list[Part]:
        """Parts completed by ``data``, in stream order."""
        self._buffer += data
        parts: list[Part] = []
        while not self.ended:
            if self._state == "boundary":
                if not self._skip_boundary():
                    break
            elif self._state == "headers":
                if not self._read_headers():
                    break
            else:
                part = self._read_body()
                if part is None:
                    break
                parts.append(part)
        return parts

    def _skip_boundary(self) -> bool:
        _line, at = self._find_delimiter(self._scanned)
        if at < 0:
            # Keep only a tail that could be the start of a split delimiter line: the preamble
            # and any bytes between parts are not ours to keep.
            keep = len(self._marker) + 16
            if len(self._buffer) > keep:
                del self._buffer[: len(self._buffer) - keep]
            self._scanned = 0
            return False
        line_end = self._buffer.find(b"\n", at + len(self._marker))
        if line_end < 0:
            if len(self._buffer) - at > self.max_header_bytes:
                raise BadFrame("multipart boundary line too long")
            self._scanned = at
            return False
        if self._buffer[at + len(self._marker) : line_end].strip().startswith(b"--"):
            self.ended = True  # "--boundary--": the server closed the stream on purpose
        del self._buffer[: line_end + 1]
        self._scanned = 0
        self._state = "headers"
        return True

    def _read_headers(self) -> bool:
        # A part with no headers starts with its blank line at once.
        if self._buffer.startswith(b"\r\n") or self._buffer.startswith(b"\n"):
            self._headers = {}
            del self._buffer[: 2 if self._buffer[0] == 0x0D else 1]
            self._state = "body"
            return True
        ends = [(i, n) for i, n in ((self._buffer.find(b"\r\n\r\n"), 4),
                                    (self._buffer.find(b"\n\n"), 2)) if i >= 0]
        if not ends:
            if len(self._buffer) > self.max_header_bytes:
                raise BadFrame("multipart part headers too long")
            return False
        end, size = min(ends)
        if end > self.max_header_bytes:
            raise BadFrame("multipart part headers too long")
        block = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + size]
        headers: dict[str, str] = {}
        for line in block.splitlines():
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        self._headers = headers
        self._state = "body"
        return True

    def _read_body(self) -> Part | None:
        length = self._content_length()
        if length is not None:
            if len(self._buffer) < length:
                return None
            body = bytes(self._buffer[:length])
            del self._buffer[:length]
        else:
            line, _at = self._find_delimiter(self._scanned)
            if line < 0:
                if len(self._buffer) > self.max_part_bytes + len(self._marker) + 8:
                    raise BadFrame("multipart part larger than allowed")
                self._scanned = max(0, len(self._buffer) - len(self._marker) + 1)
                return None
            # The part ends with the line break before the delimiter line. A JPEG ends in
            # FF D9, so stripping CR and LF can never eat into the picture.
            body = bytes(self._buffer[:line]).rstrip(b"\r\n")
            del self._buffer[:line]  # leave the delimiter for the next round
            if len(body) > self.max_part_bytes:
                raise BadFrame("multipart part larger than allowed")
        self._scanned = 0
        self._state = "boundary"
        return Part(self._headers, body)

    def _content_length(self) -> int | None:
        value = self._headers.get("content-length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError:
            return None  # a garbled length: find the part's end by its boundary instead
        if length < 0:
            return None
        if length > self.max_part_bytes:
            raise BadFrame("multipart part larger than allowed")
        return length


# --- HTTP -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraUrl:
    """A networked camera's base URL, split for http.client; see the module docstring."""

    host: str
    port: int
    prefix: str  # path before stream.mjpg / snapshot.jpg, without a trailing slash

    @classmethod
    def parse(cls, base_url: str) -> CameraUrl:
        parts = urlsplit(base_url)
        if parts.scheme != "http":
            raise ValueError(f"camera URL must be http://HOST[:PORT][/PREFIX], got {base_url!r}")
        if not parts.hostname:
            raise ValueError(f"camera URL has no host: {base_url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"camera URL must not carry a query or fragment: {base_url!r}")
        try:
            port = parts.port or 80
        except ValueError as exc:
            raise ValueError(f"camera URL has a bad port: {base_url!r}") from exc
        return cls(parts.hostname, port, parts.path.rstrip("/"))

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.prefix}"

    @property
    def stream_path(self) -> str:
        return self.prefix + STREAM_PATH

    @property
    def snapshot_path(self) -> str:
        return self.prefix + SNAPSHOT_PATH


def _connect(url: CameraUrl, timeout_s: float) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection(url.host, url.port, timeout=max(0.001, timeout_s))
    try:
        connection.connect()
    except TimeoutError as exc:
        connection.close()
        raise CameraOffline("camera did not accept a connection in time") from exc
    except OSError as exc:  # refused, unreachable, reset
        connection.close()
        raise CameraOffline("camera cannot be reached") from exc
    # Each request is a small GET: do not let Nagle hold it back for a delayed ACK.
    if connection.sock is not None:
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return connection


def _check_status(response: http.client.HTTPResponse, what: str) -> None:
    if response.status == 503:
        raise CameraAbsent(f"camera server reports no camera ({what}: HTTP 503)")
    if response.status != 200:
        raise CameraError(f"camera answered HTTP {response.status} to {what}", reason="bad_reply")


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


def fetch_jpeg(
    url: CameraUrl, timeout_s: float, *, max_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES
) -> bytes:
    """``GET {base}/snapshot.jpg``: the full-resolution still, all of it within ``timeout_s``.

    CameraOffline: not reachable or cut off; CameraAbsent: HTTP 503; StreamStalled: connected
    but the picture did not arrive in time; BadFrame: too large or not a JPEG.
    """
    deadline = time.monotonic() + timeout_s
    connection = _connect(url, timeout_s)
    try:
        sock = connection.sock
        assert sock is not None
        try:
            sock.settimeout(max(0.001, _left(deadline)))
            connection.request("GET", url.snapshot_path, headers={"Accept": "image/jpeg"})
            response = connection.getresponse()
            _check_status(response, "the snapshot")
            declared = response.getheader("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise BadFrame("snapshot larger than allowed")
            body = bytearray()
            while True:
                left = _left(deadline)
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = response.read1(_READ_BYTES)
                if not chunk:
                    break
                body += chunk
                if len(body) > max_bytes:
                    raise BadFrame("snapshot larger than allowed")
        except TimeoutError as exc:
            raise StreamStalled(f"no snapshot within {timeout_s:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise CameraOffline("camera connection lost during the snapshot") from exc
        if declared is not None and declared.isdigit() and len(body) != int(declared):
            raise CameraOffline("snapshot cut short")
        data = bytes(body)
        if not is_jpeg(data):
            raise BadFrame("snapshot is not a JPEG")
        return data
    finally:
        connection.close()


@dataclass(frozen=True, repr=False)
class StreamFrame:
    """One JPEG from the stream and the sequence number the camera gave it, if it gives one."""

    jpeg: bytes
    seq: int | None

    def __repr__(self) -> str:
        return f"StreamFrame({len(self.jpeg)} bytes, seq={self.seq})"


class MjpegStream:
    """One open ``{base}/stream.mjpg`` connection; frames one at a time, each within a timeout.

    Not shared between threads except ``abort()``, which may be called from any thread to
    unblock a ``next_frame`` waiting on the socket. After any error the stream is dead: close it
    and open a new one (the camera may send the rest of a half-read part otherwise).
    """

    def __init__(
        self,
        url: CameraUrl,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        read_bytes: int = _READ_BYTES,
    ) -> None:
        self._url = url
        self._max_frame_bytes = max_frame_bytes
        self._read_bytes = read_bytes
        self._connection: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        self._sock: socket.socket | None = None
        self._reader: MultipartReader | None = None
        self._ready: list[Part] = []
        self._lock = threading.Lock()  # guards _sock against abort() from another thread
        self._aborted = False

    def open(self, timeout_s: float) -> None:
        """Connect and read the response head within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        connection = _connect(self._url, timeout_s)
        try:
            sock = connection.sock
            assert sock is not None
            with self._lock:
                if self._aborted:
                    raise CameraOffline("stream closed")
                self._sock = sock
            sock.settimeout(max(0.001, _left(deadline)))
            connection.request("GET", self._url.stream_path,
                               headers={"Accept": "multipart/x-mixed-replace"})
            response = connection.getresponse()
            _check_status(response, "the stream")
            boundary = boundary_from_content_type(response.getheader("Content-Type", ""))
        except TimeoutError as exc:
            connection.close()
            raise StreamStalled(f"stream did not start within {timeout_s:g} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise CameraOffline("camera connection lost while opening the stream") from exc
        except CameraError:
            connection.close()
            raise
        self._connection = connection
        self._response = response
        self._reader = MultipartReader(boundary, max_part_bytes=self._max_frame_bytes)

    def next_frame(self, timeout_s: float) -> StreamFrame:
        """The next JPEG part; StreamStalled if none completes within ``timeout_s``."""
        if self._response is None or self._reader is None or self._sock is None:
            raise CameraOffline("stream is not open")
        deadline = time.monotonic() + timeout_s
        while not self._ready:
            left = _left(deadline)
            if left <= 0:
                raise StreamStalled(f"no frame within {timeout_s:g} s")
            try:
                self._sock.settimeout(left)
                data = self._response.read1(self._read_bytes)
            except TimeoutError as exc:
                raise StreamStalled(f"no frame within {timeout_s:g} s") from exc
            except (OSError, ValueError, http.client.HTTPException) as exc:
                # ValueError: the response was closed under us by abort().
                raise CameraOffline("camera connection lost") from exc
            if not data:
                raise CameraOffline("camera ended the stream")
            self._ready.extend(self._reader.feed(data))
            if self._reader.ended and not self._ready:
                raise CameraOffline("camera ended the stream")
        part = self._ready.pop(0)
        if not is_jpeg(part.body):
            raise BadFrame("stream part is not a JPEG")
        seq_text = part.headers.get("x-frame-seq", "")
        return StreamFrame(part.body, int(seq_text) if seq_text.isdigit() else None)

    def abort(self) -> None:
        """From any thread: make a blocked ``next_frame`` return at once (it raises)."""
        with self._lock:
            self._aborted = True
            sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed or never connected
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.abort()
        if self._connection is not None:
            self._connection.close()
        self._connection = self._response = None
        self._reader = None
        with self._lock:
            self._sock = None


class MjpegHttpLink:
    """The networked camera as a ``driver.CameraLink``: preview from the stream, capture from
    the snapshot URL (a separate connection, so a capture never waits for preview frames)."""

    def __init__(
        self,
        base_url: str,
        *,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES,
    ) -> None:
        self.url = CameraUrl.parse(base_url)
        self._max_frame_bytes = max_frame_bytes
        self._max_snapshot_bytes = max_snapshot_bytes
        self._stream: MjpegStream | None = None
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"MJPEG camera at {self.url.base}"

    def open_preview(self, timeout_s: float) -> None:
        stream = MjpegStream(self.url, max_frame_bytes=self._max_frame_bytes)
        with self._lock:
            self._stream = stream
        stream.open(timeout_s)

    def read_preview(self, timeout_s: float) -> bytes:
        stream = self._stream
        if stream is None:
            raise CameraOffline("preview is not open")
        return stream.next_frame(timeout_s).jpeg

    def interrupt_preview(self) -> None:
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.abort()

    def close_preview(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def probe(self, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        stream = MjpegStream(self.url, max_frame_bytes=self._max_frame_bytes)
        try:
            stream.open(timeout_s)
            return stream.next_frame(max(0.001, _left(deadline))).jpeg
        finally:
            stream.close()

    def snapshot(self, timeout_s: float) -> bytes:
        return fetch_jpeg(self.url, timeout_s, max_bytes=self._max_snapshot_bytes)

    def close(self) -> None:
        self.close_preview()
