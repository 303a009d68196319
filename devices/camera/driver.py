"""Document camera driver: one API over a UVC or networked camera; live preview and page capture.

The terminal holds a ``DocumentCamera`` and never knows the transport: a ``CameraLink`` (the
``mjpeg`` or ``v4l2`` module's) moves JPEG frames; this module adds the preview threads, the
device state, timeouts, reopening, and the page pipeline of ``imaging``.

Threads while the preview runs: ``camera-preview`` reads frames as fast as the camera sends them
and keeps only the newest; ``camera-frames`` hands that newest frame to ``on_frame``. A slow
consumer therefore skips frames and never builds a backlog, and never slows the reading either
(a stream left unread would fill the socket buffers with stale frames).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from devices.base import DeviceState, DeviceTimeout
from devices.camera import BlackFrame, BlankPage, CameraError
from devices.camera.imaging import (
    Box,
    PageSettings,
    Thumbnail,
    make_thumbnail,
    preview_stats,
    process_page,
)
from devices.camera.mjpeg import MjpegHttpLink, jpeg_dimensions
from devices.camera.v4l2 import V4l2Link

log = logging.getLogger(__name__)

# What the device state says for each problem; the reasons are the errors' own.
BLACK_FRAME = BlackFrame.reason
NOT_READ_YET = "offline"  # reported until the first frame or probe says otherwise
RESTART_WAIT_S = 0.5  # start_preview's wait for the last preview's reader to be gone


class CameraLink(Protocol):
    """A transport that moves JPEG frames; ``mjpeg.MjpegHttpLink`` and ``v4l2.V4l2Link``.

    Every call raises a ``devices.camera.CameraError`` subclass and returns within its timeout.
    ``interrupt_preview`` may be called from any thread; the rest from one thread at a time per
    preview (the driver's reader), ``snapshot`` from any thread.
    """

    @property
    def description(self) -> str: ...

    def open_preview(self, timeout_s: float) -> None: ...

    def read_preview(self, timeout_s: float) -> bytes: ...

    def interrupt_preview(self) -> None: ...

    def close_preview(self) -> None: ...

    def probe(self, timeout_s: float) -> bytes:
        """One preview-sized frame, on a connection of its own (the preview's is not touched)."""
        ...

    def snapshot(self, timeout_s: float) -> bytes: ...

    def close(self) -> None: ...


def link_for(source: str, *, preview_size: tuple[int, int] = (1024, 768)) -> CameraLink:
    """The transport for a configured source: ``http://HOST:PORT[/PREFIX]`` (a networked camera,
    see ``mjpeg``) or ``/dev/videoN`` (a UVC camera)."""
    if source.startswith("http://"):
        return MjpegHttpLink(source)
    if source.startswith("/dev/"):
        return V4l2Link(source, preview_size=preview_size)
    raise ValueError(f"camera source must be http://... or /dev/video...: {source!r}")


@dataclass(frozen=True, repr=False)
class PreviewFrame:
    """One preview frame as the camera sent it (JPEG), numbered from 1 per preview run.

    A picture of whatever lies on the platen: personal data, never logged or repr'd.
    """

    jpeg: bytes
    width: int
    height: int
    seq: int
    received_at: float  # time.monotonic() when the frame was read

    def __repr__(self) -> str:
        return f"PreviewFrame(#{self.seq}, {self.width}x{self.height})"


@dataclass(frozen=True, repr=False)
class CapturedPage:
    """One captured page: cropped, scaled to about 200 dpi, JPEG under the size budget.

    ``page_box`` is where the sheet was found in the camera's full-resolution frame of
    ``source_size``; ``crop_box`` the part kept (the sheet and a margin). Personal data.
    """

    jpeg: bytes
    width: int
    height: int
    quality: int
    page_box: Box
    crop_box: Box
    source_size: tuple[int, int]

    @property
    def size_bytes(self) -> int:
        return len(self.jpeg)

    def thumbnail(self, max_side: int = 320) -> Thumbnail:
        """RGB pixels for the screen, decoded at a reduced DCT scale (call off the UI thread)."""
        return make_thumbnail(self.jpeg, max_side)

    def __repr__(self) -> str:
        return f"CapturedPage({self.width}x{self.height}, {self.size_bytes} bytes)"


OnFrame = Callable[[PreviewFrame], None]
OnState = Callable[[DeviceState], None]


@dataclass
class _PreviewRun:
    """One start_preview .. stop_preview: its threads and the newest frame between them."""

    on_frame: OnFrame
    on_state: OnState | None
    stopping: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)
    frame: PreviewFrame | None = None
    state: DeviceState | None = None
    state_version: int = 0
    reader: threading.Thread | None = None
    deliverer: threading.Thread | None = None


class DocumentCamera:
    """A document camera over any ``CameraLink``: ``start_preview``/``stop_preview``,
    ``capture``, ``state``; every blocking call bounded by its timeout.

    The state is ok, or fault with the reason of what went wrong: ``absent``, ``offline``,
    ``stalled`` (connected, no frame within ``frame_timeout_s``), ``black_frame``, ``bad_frame``.
    While the preview runs the preview thread keeps it current and reopens the link every
    ``retry_interval_s`` after a failure, so a camera that comes back is picked up by itself;
    ``capture`` opens what it needs each time.
    """

    def __init__(
        self,
        link: CameraLink,
        *,
        page: PageSettings | None = None,
        frame_timeout_s: float = 2.0,
        open_timeout_s: float = 3.0,
        retry_interval_s: float = 1.0,
        black_check_interval_s: float = 0.5,
    ) -> None:
        if not 0 < frame_timeout_s <= 30 or not 0 < open_timeout_s <= 30:
            raise ValueError("frame_timeout_s and open_timeout_s must be in (0, 30]")
        if not 0 < retry_interval_s <= 60 or not 0 <= black_check_interval_s <= 60:
            raise ValueError("retry_interval_s must be in (0, 60], black_check_interval_s "
                             "in [0, 60]")
        self._link = link
        self._page = page or PageSettings()
        self._frame_timeout_s = frame_timeout_s
        self._open_timeout_s = open_timeout_s
        self._retry_interval_s = retry_interval_s
        self._black_check_interval_s = black_check_interval_s
        self._state_lock = threading.Lock()
        self._state = DeviceState.fault(NOT_READ_YET)
        self._run: _PreviewRun | None = None
        # The last stopped preview's reader, which may outlive stop_preview. The thread alone,
        # not its run: the run holds the callbacks, and through them the screen that showed the
        # preview, which would then stay in memory until the next preview (5 MB at full HD).
        self._stopped_reader: threading.Thread | None = None
        self._run_lock = threading.Lock()
        self._capture_lock = threading.Lock()
        self._probe_lock = threading.Lock()

    @property
    def description(self) -> str:
        return self._link.description

    @property
    def previewing(self) -> bool:
        return self._run is not None

    # -- state --

    def last_state(self) -> DeviceState:
        """The state last found by the preview, a capture or a probe; never blocks."""
        with self._state_lock:
            return self._state

    def state(self, timeout_s: float | None = None) -> DeviceState:
        """The camera's state now: while previewing, the preview's; otherwise one preview frame
        is fetched (within ``timeout_s``, by default the open and frame timeouts) and checked."""
        if self._run is not None:
            return self.last_state()
        budget = self._open_timeout_s + self._frame_timeout_s if timeout_s is None else timeout_s
        if not self._probe_lock.acquire(timeout=budget):
            return self.last_state()
        try:
            state = self._frame_state(self._link.probe(budget))
        except CameraError as exc:
            state = DeviceState.fault(exc.reason)
        finally:
            self._probe_lock.release()
        self._remember(state)
        return state

    def _frame_state(self, jpeg: bytes) -> DeviceState:
        jpeg_dimensions(jpeg)  # BadFrame unless it is a JPEG with a size
        if preview_stats(jpeg).black:
            return DeviceState.fault(BLACK_FRAME)
        return DeviceState.ok()

    def _remember(self, state: DeviceState, run: _PreviewRun | None = None) -> None:
        with self._state_lock:
            previous, self._state = self._state, state
        if state != previous:
            log.info("document camera %s%s", state.health.value,
                     f" ({state.reason})" if state.reason else "")
        if run is not None:
            with run.changed:
                if run.state != state:
                    run.state = state
                    run.state_version += 1
                    run.changed.notify_all()

    # -- preview --

    def start_preview(self, on_frame: OnFrame, on_state: OnState | None = None) -> None:
        """Start reading frames; ``on_frame`` gets the newest (skipping any that arrived while it
        was busy) and ``on_state`` each change of state, both on the ``camera-frames`` thread.

        Returns at once: a missing camera shows as a state, and the preview keeps trying.
        """
        with self._run_lock:
            if self._run is not None:
                raise RuntimeError("the preview is already running")
            # A reader that outlived its stop_preview (interrupted, it is gone in milliseconds)
            # would close the new run's stream on its way out: give it a moment, else refuse
            # rather than share the link with it.
            old = self._stopped_reader
            if old is not None and old.is_alive():
                old.join(RESTART_WAIT_S)
                if old.is_alive():
                    raise DeviceTimeout("the previous preview is still stopping", reason="busy")
            run = _PreviewRun(on_frame, on_state)
            run.reader = threading.Thread(target=self._read_frames, args=(run,),
                                          name="camera-preview", daemon=True)
            run.deliverer = threading.Thread(target=self._deliver_frames, args=(run,),
                                             name="camera-frames", daemon=True)
            self._run = run
            run.reader.start()
            run.deliverer.start()

    def stop_preview(self, timeout_s: float = 3.0) -> None:
        """Stop the preview and wait up to ``timeout_s`` for its threads; no callback after it
        returns (unless one was still running and outlived the timeout: logged).

        From the UI thread pass ``timeout_s=0``: the threads are told and interrupted but not
        waited for (the widget's own ``stop()`` drops a frame that still arrives).
        """
        with self._run_lock:
            run, self._run = self._run, None
            if run is not None:
                self._stopped_reader = run.reader
        if run is None:
            return
        run.stopping.set()
        self._link.interrupt_preview()
        with run.changed:
            run.changed.notify_all()
        deadline = time.monotonic() + timeout_s
        for thread in (run.reader, run.deliverer):
            if thread is None or thread is threading.current_thread():
                continue  # stopped from inside a callback: it ends when the callback returns
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive() and timeout_s > 0:
                log.warning("camera thread %s did not stop within %.1f s", thread.name, timeout_s)

    def _read_frames(self, run: _PreviewRun) -> None:
        opened = False
        seq = 0
        black = False
        next_black_check = 0.0
        try:
            while not run.stopping.is_set():
                try:
                    if not opened:
                        self._link.open_preview(self._open_timeout_s)
                        opened = True
                    jpeg = self._link.read_preview(self._frame_timeout_s)
                    received = time.monotonic()
                    width, height = jpeg_dimensions(jpeg)
                    # A black check decodes at 1/8 scale: cheap, but not needed for every frame.
                    if received >= next_black_check:
                        next_black_check = received + self._black_check_interval_s
                        black = preview_stats(jpeg).black
                except CameraError as exc:
                    if run.stopping.is_set():
                        break
                    if opened:
                        self._link.close_preview()
                        opened = False
                    self._remember(DeviceState.fault(exc.reason), run)
                    run.stopping.wait(self._retry_interval_s)
                    continue
                seq += 1
                frame = PreviewFrame(jpeg, width, height, seq, received)
                self._remember(DeviceState.fault(BLACK_FRAME) if black else DeviceState.ok(), run)
                with run.changed:
                    run.frame = frame
                    run.changed.notify_all()
        except Exception:
            log.exception("camera preview reader failed")
            self._remember(DeviceState.fault("camera_error"), run)
        finally:
            self._link.close_preview()

    def _deliver_frames(self, run: _PreviewRun) -> None:
        delivered: PreviewFrame | None = None
        state_version = 0
        while True:
            with run.changed:
                while (not run.stopping.is_set() and run.frame is delivered
                       and run.state_version == state_version):
                    run.changed.wait()
                if run.stopping.is_set():
                    return
                frame = run.frame if run.frame is not delivered else None
                state = run.state if run.state_version != state_version else None
                state_version = run.state_version
                delivered = run.frame
            # Callbacks are the consumer's code: one that fails must not end the preview.
            if state is not None and run.on_state is not None:
                try:
                    run.on_state(state)
                except Exception:
                    log.exception("camera on_state callback failed")
            if frame is not None and not run.stopping.is_set():
                try:
                    run.on_frame(frame)
                except Exception:
                    log.exception("camera on_frame callback failed")

    # -- capture --

    def capture(self, timeout_s: float = 10.0) -> CapturedPage:
        """One page at full resolution, cropped and compressed.

        ``timeout_s`` bounds the wait for the camera (a capture already running, the picture's
        transfer); the imaging after it takes a few hundred milliseconds of CPU. Raises
        BlankPage (nothing on the platen; the camera is fine), BlackFrame, StreamStalled,
        CameraAbsent, CameraOffline, BadFrame, or DeviceTimeout ("busy").
        """
        deadline = time.monotonic() + timeout_s
        if not self._capture_lock.acquire(timeout=timeout_s):
            raise DeviceTimeout("camera busy with another capture", reason="busy")
        try:
            previewing = self._run is not None
            try:
                jpeg = self._link.snapshot(max(0.001, deadline - time.monotonic()))
                page = process_page(jpeg, self._page)
            except BlankPage:
                if not previewing:
                    self._remember(DeviceState.ok())
                raise
            except CameraError as exc:
                # While the preview runs its thread owns the state; a failed still alone
                # does not overrule a stream that works.
                if not previewing:
                    self._remember(DeviceState.fault(exc.reason))
                raise
            if not previewing:
                self._remember(DeviceState.ok())
            return CapturedPage(
                jpeg=page.jpeg, width=page.width, height=page.height, quality=page.quality,
                page_box=page.page_box, crop_box=page.crop_box, source_size=page.source_size,
            )
        finally:
            self._capture_lock.release()

    def close(self) -> None:
        """Stop the preview and close the transport; the camera can be used again after."""
        self.stop_preview()
        self._link.close()
