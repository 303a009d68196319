"""UVC document camera through V4L2 (linuxpy, imported only when a device is opened).

Why linuxpy and not OpenCV: it is pure Python over the kernel's ioctls (about 4 MB installed,
no numpy, nothing to compile on a Pi), it hands us the camera's own MJPEG buffers untouched (the
Pi never decodes and re-encodes a frame it only forwards), and it is maintained (releases through
2025-2026). opencv-python-headless is ~50 MB plus numpy, decodes every frame to BGR by default,
and gives little we need.

Untested against hardware here: the development machine has no /dev/video* and no v4l2loopback.
What is tested without a device is pure: the choice of modes, the MJPEG passthrough (padding cut,
Huffman tables added when the camera leaves them out) and the YUYV fallback conversion.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import io
import os
import select
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image

from devices.camera import BadFrame, CameraAbsent, CameraError, CameraOffline, StreamStalled
from devices.camera.mjpeg import is_jpeg

MJPEG = "MJPG"
YUYV = "YUYV"
_DHT, _SOS, _EOI = 0xC4, 0xDA, b"\xff\xd9"
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
YUYV_JPEG_QUALITY = 90  # only for cameras without MJPEG; the page is compressed again later


@dataclass(frozen=True)
class FrameMode:
    """One format the camera offers: a FourCC, a size and the frame rate at that size."""

    fourcc: str
    width: int
    height: int
    fps: float

    @property
    def area(self) -> int:
        return self.width * self.height


def choose_mode(
    modes: Iterable[FrameMode],
    purpose: Literal["preview", "capture"],
    *,
    preview_size: tuple[int, int] = (1024, 768),
    min_preview_fps: float = 10.0,
) -> FrameMode:
    """The mode to stream in: MJPEG whenever the camera has it (passed through untouched; over
    USB 2 uncompressed YUYV at full resolution runs at a few frames a second), else YUYV.

    Preview: the smallest mode covering ``preview_size`` (either orientation) at a usable frame
    rate, else the largest below it. Capture: the largest mode, the faster one on a tie.
    """
    usable = [m for m in modes if m.fourcc in (MJPEG, YUYV) and m.width > 0 and m.height > 0]
    if not usable:
        raise CameraError("camera offers neither MJPEG nor YUYV", reason="unsupported_format")
    preferred = [m for m in usable if m.fourcc == MJPEG] or usable
    if purpose == "capture":
        return max(preferred, key=lambda m: (m.area, m.fps))
    fast = [m for m in preferred if m.fps >= min_preview_fps or m.fps == 0] or preferred
    short, long = sorted(preview_size)

    def covers(m: FrameMode) -> bool:
        return min(m.width, m.height) >= short and max(m.width, m.height) >= long

    covering = [m for m in fast if covers(m)]
    if covering:
        return min(covering, key=lambda m: (m.area, -m.fps))
    return max(fast, key=lambda m: (m.area, m.fps))


# --- frame -> JPEG --------------------------------------------------------------------------------


def _segments(jpeg: bytes) -> Iterator[tuple[int, int]]:
    """(marker, offset) of each segment before the scan data."""
    at = 2
    while at + 4 <= len(jpeg):
        if jpeg[at] != 0xFF:
            raise BadFrame("JPEG marker expected")
        marker = jpeg[at + 1]
        if marker == 0xFF:
            at += 1
            continue
        yield marker, at
        if marker == _SOS:
            return
        if marker in _STANDALONE:
            at += 2
            continue
        at += 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
    raise BadFrame("JPEG has no scan data")


@functools.cache
def standard_huffman_tables() -> bytes:
    """The DHT segments of ITU-T T.81 Annex K.3, as libjpeg writes them when not optimising.

    Taken from a tiny JPEG that Pillow's libjpeg encodes with its standard tables, rather than
    typed out here: the same 416 bytes of tables, without a chance of a typo in them.
    """
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 64, 32)).save(out, "JPEG", quality=75, optimize=False)
    sample = out.getvalue()
    tables = bytearray()
    for marker, at in _segments(sample):
        if marker == _DHT:
            tables += sample[at : at + 2 + int.from_bytes(sample[at + 2 : at + 4], "big")]
    return bytes(tables)


def with_huffman_tables(jpeg: bytes) -> bytes:
    """``jpeg`` with the standard Huffman tables inserted before its scan if it has none.

    Many UVC cameras send "MJPEG" frames without DHT segments (AVI1 style, the tables being the
    standard ones by convention). libjpeg-turbo, in Pillow's wheels, fills them in itself;
    libjpeg 9 and stricter readers refuse such a frame, so a frame we pass on is made whole.
    """
    scan_at = -1
    for marker, at in _segments(jpeg):
        if marker == _DHT:
            return jpeg
        if marker == _SOS:
            scan_at = at
    return jpeg[:scan_at] + standard_huffman_tables() + jpeg[scan_at:]


def mjpeg_passthrough(data: bytes) -> bytes:
    """A camera's MJPEG buffer as a standalone JPEG: padding after EOI cut, tables completed."""
    if not is_jpeg(data):
        raise BadFrame("camera frame is not a JPEG")
    end = data.rfind(_EOI)
    if end > 2:
        data = data[: end + 2]  # some cameras report the whole buffer as used, zeros after EOI
    return with_huffman_tables(data)


def yuyv_to_image(data: bytes, width: int, height: int) -> Image.Image:
    """A packed YUYV 4:2:2 frame (Y0 U Y1 V) as an RGB image, all in Pillow's C code."""
    if width <= 0 or height <= 0 or width % 2:
        raise BadFrame("YUYV frame needs an even width")
    size = width * height * 2
    if len(data) < size:
        raise BadFrame("YUYV frame is short")
    packed = data[:size]
    # Read as two-byte pixels, "L" is every Y; read as four-byte pixels of half the width,
    # G is each pair's U and A its V.
    luma = Image.frombytes("LA", (width, height), packed).getchannel("L")
    pairs = Image.frombytes("RGBA", (width // 2, height), packed)
    cb = pairs.getchannel("G").resize((width, height), Image.Resampling.BILINEAR)
    cr = pairs.getchannel("A").resize((width, height), Image.Resampling.BILINEAR)
    return Image.merge("YCbCr", (luma, cb, cr)).convert("RGB")


def frame_to_jpeg(data: bytes, mode: FrameMode) -> bytes:
    """Whatever the camera sent, as JPEG bytes: MJPEG untouched, YUYV encoded once."""
    if mode.fourcc == MJPEG:
        return mjpeg_passthrough(data)
    if mode.fourcc == YUYV:
        out = io.BytesIO()
        yuyv_to_image(data, mode.width, mode.height).save(out, "JPEG", quality=YUYV_JPEG_QUALITY)
        return out.getvalue()
    raise CameraError(f"no conversion from {mode.fourcc}", reason="unsupported_format")


# --- the device -----------------------------------------------------------------------------------


def _fourcc(code: int) -> str:
    return int(code).to_bytes(4, "little").decode("ascii", errors="replace")


def _camera_error(exc: OSError, what: str) -> CameraError:
    if exc.errno == errno.ENOENT:
        return CameraAbsent(f"no camera device ({what})")
    if exc.errno == errno.EBUSY:
        return CameraError(f"camera is in use by another process ({what})", reason="busy")
    return CameraOffline(f"camera lost ({what})")  # ENODEV, EIO, ENXIO: unplugged mid-stream


class V4l2Link:
    """A UVC camera as a ``driver.CameraLink``: preview in a small MJPEG mode, capture by
    switching to the largest mode for a few frames (exposure settles), then back.

    One lock serialises the device: a capture waits for the preview's current read (at most
    its timeout); the preview's reads wait while a capture holds the device.
    """

    def __init__(
        self,
        device_path: str = "/dev/video0",
        *,
        preview_size: tuple[int, int] = (1024, 768),
        warmup_frames: int = 3,
        buffers: int = 2,
    ) -> None:
        if not 0 <= warmup_frames <= 30 or not 1 <= buffers <= 8:
            raise ValueError("warmup_frames must be in [0, 30] and buffers in [1, 8]")
        self.device_path = device_path
        self._preview_size = preview_size
        self._warmup_frames = warmup_frames
        self._buffers = buffers
        self._lock = threading.Lock()
        self._device: Any = None
        self._capture: Any = None
        self._mode: FrameMode | None = None
        self._preview_wanted = False
        # A pipe that interrupt_preview writes to, so a read waiting in select() returns at
        # once; made when first needed and closed by close() (the link can be opened again).
        self._wake: tuple[int, int] | None = None
        self._wake_lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"UVC camera at {self.device_path}"

    # -- CameraLink --

    def open_preview(self, timeout_s: float) -> None:
        self._drain_wake()
        if not self._lock.acquire(timeout=timeout_s):
            raise StreamStalled("camera busy with a capture")
        try:
            self._preview_wanted = True
            self._stream(self._pick("preview"))
        finally:
            self._lock.release()

    def read_preview(self, timeout_s: float) -> bytes:
        if not self._lock.acquire(timeout=timeout_s):
            raise StreamStalled(f"no frame within {timeout_s:g} s (capture running)")
        try:
            if self._capture is None:
                raise CameraOffline("preview is not open")
            return self._grab(time.monotonic() + timeout_s)
        finally:
            self._lock.release()

    def interrupt_preview(self) -> None:
        with self._wake_lock:
            wake = self._wake
            if wake is not None:
                with contextlib.suppress(OSError):  # full: a wake-up is already waiting
                    os.write(wake[1], b"x")

    def close_preview(self) -> None:
        with self._lock:
            self._preview_wanted = False
            self._close_device()

    def probe(self, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=timeout_s):
            raise StreamStalled("camera busy")
        try:
            streaming = self._capture is not None
            if not streaming:
                self._stream(self._pick("preview"))
            jpeg = self._grab(deadline)
            if not streaming:
                self._close_device()
            return jpeg
        except CameraError:
            self._close_device()
            raise
        finally:
            self._lock.release()

    def snapshot(self, timeout_s: float) -> bytes:
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=timeout_s):
            raise StreamStalled("camera busy")
        try:
            self._stream(self._pick("capture"))
            for _ in range(self._warmup_frames):
                self._grab(deadline)
            jpeg = self._grab(deadline)
            if self._preview_wanted:
                self._stream(self._pick("preview"))
            else:
                self._close_device()
            return jpeg
        except CameraError:
            self._close_device()
            raise
        finally:
            self._lock.release()

    def close(self) -> None:
        self.close_preview()
        with self._wake_lock:
            wake, self._wake = self._wake, None
        for fd in wake or ():
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- internals (lock held) --

    def _library(self) -> Any:
        try:
            return importlib.import_module("linuxpy.video.device")
        except ImportError as exc:
            raise CameraError("linuxpy is not installed", reason="v4l2_unavailable") from exc

    def _open_device(self) -> Any:
        if self._device is not None:
            return self._device
        if not os.path.exists(self.device_path):
            raise CameraAbsent(f"no camera device at {self.device_path}")
        lib = self._library()
        device = lib.Device(self.device_path, blocking=False)
        try:
            device.open()
        except OSError as exc:
            raise _camera_error(exc, "open") from exc
        self._device = device
        return device

    def _modes(self) -> Sequence[FrameMode]:
        device = self._open_device()
        try:
            return [FrameMode(_fourcc(t.pixel_format), t.width, t.height, float(t.max_fps))
                    for t in device.info.frame_types]
        except OSError as exc:
            raise _camera_error(exc, "listing formats") from exc

    def _pick(self, purpose: Literal["preview", "capture"]) -> FrameMode:
        return choose_mode(self._modes(), purpose, preview_size=self._preview_size)

    def _stream(self, mode: FrameMode) -> None:
        if self._capture is not None and self._mode == mode:
            return
        self._stop_stream()
        lib = self._library()
        device = self._open_device()
        try:
            device.set_format(lib.BufferType.VIDEO_CAPTURE, mode.width, mode.height, mode.fourcc)
            if mode.fps:
                device.set_fps(lib.BufferType.VIDEO_CAPTURE, mode.fps)
            capture = lib.VideoCapture(device, size=self._buffers)
            capture.open()
        except OSError as exc:
            raise _camera_error(exc, "start streaming") from exc
        self._capture, self._mode = capture, mode

    def _grab(self, deadline: float) -> bytes:
        assert self._capture is not None and self._mode is not None and self._device is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise StreamStalled("no frame in time")
        try:
            wake_r = self._wake_pipe()[0]
            ready, _, _ = select.select((self._device.fileno(), wake_r), (), (), left)
            if wake_r in ready:
                self._drain_wake()
                raise CameraOffline("preview interrupted")
            if not ready:
                raise StreamStalled(f"no frame within {left:.1f} s")
            frame = self._capture.buffer.raw_read()
            data = bytes(frame.data)
        except OSError as exc:
            raise _camera_error(exc, "read") from exc
        return frame_to_jpeg(data, self._mode)

    def _stop_stream(self) -> None:
        capture, self._capture, self._mode = self._capture, None, None
        if capture is not None:
            with contextlib.suppress(OSError):  # the device went away: closing is all there is
                capture.close()

    def _close_device(self) -> None:
        self._stop_stream()
        device, self._device = self._device, None
        if device is not None:
            with contextlib.suppress(OSError):
                device.close()

    def _wake_pipe(self) -> tuple[int, int]:
        with self._wake_lock:
            if self._wake is None:
                read_end, write_end = os.pipe()
                os.set_blocking(write_end, False)
                self._wake = (read_end, write_end)
            return self._wake

    def _drain_wake(self) -> None:
        wake_r = self._wake_pipe()[0]
        while True:
            ready, _, _ = select.select((wake_r,), (), (), 0)
            if not ready:
                return
            try:
                os.read(wake_r, 64)
            except OSError:
                return
