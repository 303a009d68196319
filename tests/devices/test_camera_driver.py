"""DocumentCamera against the virtual camera over TCP: preview threads (newest frame only, no
backlog), states for every fault within its timeout, reopening, capture; and the UVC transport's
pure parts, which need no device (none exists on the development machine)."""

from __future__ import annotations

import gc
import io
import itertools
import logging
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from devices.base import DeviceState, DeviceTimeout, Health
from devices.camera import (
    BadFrame,
    BlackFrame,
    BlankPage,
    CameraAbsent,
    CameraError,
    CameraOffline,
    StreamStalled,
)
from devices.camera.driver import DocumentCamera, PreviewFrame, link_for
from devices.camera.imaging import PageSettings
from devices.camera.mjpeg import MjpegHttpLink, jpeg_dimensions
from devices.camera.v4l2 import (
    MJPEG,
    YUYV,
    FrameMode,
    V4l2Link,
    choose_mode,
    frame_to_jpeg,
    mjpeg_passthrough,
    standard_huffman_tables,
    with_huffman_tables,
    yuyv_to_image,
)
from simulator.sample_documents import PREVIEW_SIZE, load_document
from simulator.vcamera import VirtualCamera

CACHE = Path(tempfile.gettempdir()) / "kiosk-sample-documents"
FRAME_TIMEOUT_S = 0.6
RETRY_S = 0.2
SETTLE_S = FRAME_TIMEOUT_S + RETRY_S + 1.5  # a state change is seen within this


@pytest.fixture
def camera() -> Iterator[VirtualCamera]:
    camera = VirtualCamera(fps=15, cache_dir=CACHE)
    camera.start()
    yield camera
    camera.stop()


@pytest.fixture
def driver(camera: VirtualCamera) -> Iterator[DocumentCamera]:
    driver = DocumentCamera(
        MjpegHttpLink(camera.url), page=PageSettings(source_dpi=camera.dpi),
        frame_timeout_s=FRAME_TIMEOUT_S, open_timeout_s=1.0, retry_interval_s=RETRY_S,
        black_check_interval_s=0.1,
    )
    yield driver
    driver.close()


def wait_until(check: Callable[[], bool], timeout_s: float = SETTLE_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


class Recorder:
    """on_frame / on_state that keep what they got, optionally slow."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.frames: list[PreviewFrame] = []
        self.lags: list[float] = []  # how old each frame was when it was handed over
        self.states: list[DeviceState] = []
        self.threads: set[str] = set()

    def frame(self, frame: PreviewFrame) -> None:
        self.lags.append(time.monotonic() - frame.received_at)
        self.frames.append(frame)
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay_s)

    def state(self, state: DeviceState) -> None:
        self.states.append(state)

    def reason(self) -> str:
        return self.states[-1].reason if self.states else "?"


# --- preview --------------------------------------------------------------------------------------


def test_preview_frames_come_in_order_on_the_driver_thread(driver: DocumentCamera) -> None:
    seen = Recorder()
    driver.start_preview(seen.frame, seen.state)
    assert wait_until(lambda: len(seen.frames) >= 10, 5.0)
    driver.stop_preview()
    seqs = [f.seq for f in seen.frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert (seen.frames[0].width, seen.frames[0].height) == PREVIEW_SIZE
    assert seen.threads == {"camera-frames"}
    assert seen.states[-1] == DeviceState.ok() and driver.last_state() == DeviceState.ok()
    count = len(seen.frames)
    time.sleep(0.3)
    assert len(seen.frames) == count, "no callback after stop_preview returned"


def test_a_slow_consumer_gets_the_newest_frame_and_never_a_backlog(
    driver: DocumentCamera,
) -> None:
    slow = Recorder(delay_s=0.3)  # ~3 fps against a 15 fps stream
    driver.start_preview(slow.frame)
    assert wait_until(lambda: len(slow.frames) >= 6, 5.0)
    driver.stop_preview()
    seqs = [f.seq for f in slow.frames]
    assert all(b - a >= 2 for a, b in itertools.pairwise(seqs[1:])), seqs
    # Each frame handed over was at most about one frame period old: frames that arrived while
    # the consumer was busy were dropped, not queued.
    assert max(slow.lags[1:]) < 0.25, slow.lags


def test_the_ui_thread_stops_without_waiting_and_may_start_again_at_once(
    driver: DocumentCamera,
) -> None:
    first = Recorder()
    driver.start_preview(first.frame)
    assert wait_until(lambda: len(first.frames) >= 2, 5.0)
    began = time.monotonic()
    driver.stop_preview(timeout_s=0)
    assert time.monotonic() - began < 0.05
    second = Recorder()
    driver.start_preview(second.frame)
    assert wait_until(lambda: len(second.frames) >= 5, 5.0)
    assert second.frames[0].seq == 1  # a fresh run, its own numbering
    driver.stop_preview()


def test_a_stopped_preview_lets_go_of_its_callbacks(driver: DocumentCamera) -> None:
    # The callbacks are the preview widget's methods: held past stop_preview, they kept the
    # whole scan screen (5 MB of textures at full HD) alive until the next preview.
    def preview_once() -> weakref.ref[Recorder]:
        seen = Recorder()
        driver.start_preview(seen.frame, seen.state)
        assert wait_until(lambda: len(seen.frames) >= 2, 5.0)
        driver.stop_preview()
        return weakref.ref(seen)

    gone = preview_once()
    gc.collect()
    assert gone() is None


def test_a_failing_consumer_does_not_end_the_preview(
    driver: DocumentCamera, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def explode(frame: PreviewFrame) -> None:
        calls.append(frame.seq)
        raise RuntimeError("consumer bug")

    driver.start_preview(explode)
    assert wait_until(lambda: len(calls) >= 3, 5.0)
    driver.stop_preview()
    assert "on_frame callback failed" in caplog.text


@pytest.mark.parametrize(("fault", "reason"), [
    ("stall", "stalled"), ("black", "black_frame"), ("absent", "absent"),
])
def test_each_fault_shows_in_the_state_within_its_timeout_and_clears_after(
    camera: VirtualCamera, driver: DocumentCamera, fault: str, reason: str
) -> None:
    seen = Recorder()
    driver.start_preview(seen.frame, seen.state)
    assert wait_until(lambda: driver.last_state() == DeviceState.ok(), 5.0)
    began = time.monotonic()
    camera.set_fault(fault)
    assert wait_until(lambda: driver.last_state().reason == reason), driver.last_state()
    took = time.monotonic() - began
    assert driver.state() == DeviceState(Health.FAULT, reason)  # while previewing: no wire
    assert wait_until(lambda: seen.reason() == reason, 1.0)  # on_state, on the frames thread
    camera.set_fault("ok")
    assert wait_until(lambda: driver.last_state() == DeviceState.ok()), driver.last_state()
    assert wait_until(lambda: seen.states[-1] == DeviceState.ok(), 1.0)
    driver.stop_preview()
    if fault == "stall":
        assert FRAME_TIMEOUT_S * 0.8 < took < FRAME_TIMEOUT_S + 1.0


def test_a_camera_unplugged_mid_preview_is_offline_then_picked_up_again(
    camera: VirtualCamera, driver: DocumentCamera
) -> None:
    seen = Recorder()
    driver.start_preview(seen.frame, seen.state)
    assert wait_until(lambda: len(seen.frames) >= 2, 5.0)
    camera.stop()
    assert wait_until(lambda: driver.last_state() == DeviceState.fault("offline"))
    count = len(seen.frames)
    camera.start()  # same port: plugged back in
    assert wait_until(lambda: driver.last_state() == DeviceState.ok())
    assert wait_until(lambda: len(seen.frames) > count + 3, 5.0)
    driver.stop_preview()


def test_state_without_a_preview_probes_one_frame(
    camera: VirtualCamera, driver: DocumentCamera
) -> None:
    assert driver.last_state() == DeviceState.fault("offline")  # nothing known yet
    assert driver.state() == DeviceState.ok()
    camera.set_fault("black")
    assert driver.state() == DeviceState.fault("black_frame")
    camera.set_fault("absent")
    assert driver.state() == DeviceState.fault("absent")
    camera.set_fault("stall")
    began = time.monotonic()
    assert driver.state() == DeviceState.fault("stalled")
    assert time.monotonic() - began < 1.0 + FRAME_TIMEOUT_S + 0.5
    camera.stop()
    assert driver.state() == DeviceState.fault("offline")


# --- capture --------------------------------------------------------------------------------------


def test_capture_gives_the_cropped_page_under_budget_even_while_previewing(
    camera: VirtualCamera, driver: DocumentCamera, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    truth = load_document("household_register", CACHE).page_box
    assert truth is not None
    camera.set_document("household_register")
    page = driver.capture(5.0)
    assert all(abs(a - b) <= 3 for a, b in zip(page.page_box.as_tuple(), truth, strict=True))
    assert page.size_bytes <= 500_000 and jpeg_dimensions(page.jpeg) == (page.width, page.height)
    assert driver.last_state() == DeviceState.ok()
    seen = Recorder()
    driver.start_preview(seen.frame)
    assert wait_until(lambda: len(seen.frames) >= 2, 5.0)
    again = driver.capture(5.0)
    assert again.page_box == page.page_box
    assert wait_until(lambda: len(seen.frames) >= 8, 5.0), "the preview went on meanwhile"
    driver.stop_preview()
    # Pages are personal data: no repr of their bytes, nothing of them in the log.
    assert "\\x" not in repr(page) and "\\x" not in repr(seen.frames[0])
    assert str(page.size_bytes) in repr(page)
    assert all("\\x" not in r.getMessage() and len(r.getMessage()) < 200 for r in caplog.records)
    thumb = page.thumbnail(200)
    assert max(thumb.width, thumb.height) == 200


def test_capture_says_why_there_is_no_page(camera: VirtualCamera, driver: DocumentCamera) -> None:
    camera.set_document("empty")
    with pytest.raises(BlankPage):
        driver.capture(5.0)
    assert driver.last_state() == DeviceState.ok()  # the camera works; the platen is empty
    camera.set_document("certificate")
    camera.set_fault("black")
    with pytest.raises(BlackFrame):
        driver.capture(5.0)
    assert driver.last_state() == DeviceState.fault("black_frame")
    camera.set_fault("absent")
    with pytest.raises(CameraAbsent):
        driver.capture(5.0)
    camera.set_fault("stall")
    began = time.monotonic()
    with pytest.raises(StreamStalled):
        driver.capture(0.8)
    assert time.monotonic() - began < 1.5
    assert driver.last_state() == DeviceState.fault("stalled")
    camera.set_fault("ok")
    camera.stop()
    with pytest.raises(CameraOffline):
        driver.capture(2.0)
    camera.start()
    assert driver.capture(5.0).size_bytes > 0
    assert driver.last_state() == DeviceState.ok()


def test_a_second_capture_waits_its_timeout_then_is_told_busy(
    camera: VirtualCamera, driver: DocumentCamera
) -> None:
    camera.set_fault("stall")
    outcome: list[BaseException] = []

    def hung_capture() -> None:
        try:
            driver.capture(1.5)
        except CameraError as exc:
            outcome.append(exc)

    first = threading.Thread(target=hung_capture)
    first.start()
    time.sleep(0.2)
    with pytest.raises(DeviceTimeout) as caught:
        driver.capture(0.3)
    assert caught.value.reason == "busy"
    first.join()
    assert [type(e) for e in outcome] == [StreamStalled]


def test_sources_pick_their_transport() -> None:
    assert isinstance(link_for("http://127.0.0.1:8080"), MjpegHttpLink)
    uvc = link_for("/dev/video7")
    assert isinstance(uvc, V4l2Link)
    uvc.close()
    with pytest.raises(ValueError):
        link_for("rtsp://camera/stream")
    with pytest.raises(ValueError):
        DocumentCamera(MjpegHttpLink("http://127.0.0.1:1"), frame_timeout_s=0)


# --- the UVC path without a device ----------------------------------------------------------------


MODES = [
    FrameMode(YUYV, 640, 480, 30), FrameMode(YUYV, 2592, 1944, 2),
    FrameMode(MJPEG, 640, 480, 30), FrameMode(MJPEG, 1280, 960, 30),
    FrameMode(MJPEG, 1024, 768, 30), FrameMode(MJPEG, 1024, 768, 15),
    FrameMode(MJPEG, 3264, 2448, 15), FrameMode(MJPEG, 2592, 1944, 15),
]


def test_modes_are_chosen_for_mjpeg_passthrough() -> None:
    assert choose_mode(MODES, "preview") == FrameMode(MJPEG, 1024, 768, 30)
    assert choose_mode(MODES, "capture") == FrameMode(MJPEG, 3264, 2448, 15)
    # A portrait preview wanted: the same sensor mode covers it, turned.
    assert choose_mode(MODES, "preview", preview_size=(768, 1024)).width == 1024
    # Nothing big enough: the largest there is. No MJPEG at all: YUYV.
    assert choose_mode(MODES[:3], "preview", preview_size=(1920, 1080)) == MODES[2]
    assert choose_mode(MODES[:2], "capture") == MODES[1]
    with pytest.raises(CameraError) as caught:
        choose_mode([FrameMode("H264", 1920, 1080, 30)], "preview")
    assert caught.value.reason == "unsupported_format"


def _strip_huffman_tables(jpeg: bytes) -> bytes:
    out, at = bytearray(jpeg[:2]), 2
    while True:
        marker, length = jpeg[at + 1], int.from_bytes(jpeg[at + 2 : at + 4], "big")
        if marker == 0xDA:
            return bytes(out + jpeg[at:])
        if marker != 0xC4:
            out += jpeg[at : at + 2 + length]
        at += 2 + length


def test_mjpeg_frames_without_huffman_tables_are_completed_and_padding_cut() -> None:
    original = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 140, 200)).save(original, "JPEG", quality=80)
    complete = original.getvalue()
    bare = _strip_huffman_tables(complete)  # as many UVC cameras send their frames
    assert len(bare) < len(complete) and b"\xff\xc4" not in bare
    padded = bare + b"\x00" * 4096  # the whole buffer reported as used
    fixed = mjpeg_passthrough(padded)
    assert fixed.endswith(b"\xff\xd9") and len(fixed) == len(complete)
    assert fixed.count(b"\xff\xc4") == complete.count(b"\xff\xc4")
    assert Image.open(io.BytesIO(fixed)).convert("RGB").getpixel((10, 10)) == \
        Image.open(io.BytesIO(complete)).convert("RGB").getpixel((10, 10))
    assert with_huffman_tables(complete) is complete  # a complete frame passes untouched
    tables = standard_huffman_tables()
    # ITU-T T.81 K.3: four tables, 416 bytes, here in four DHT segments; the first is the
    # luminance DC table (Table K.3): code counts per length, then the values 0..11.
    assert len(tables) == 416 + 4 * 4 and tables.count(b"\xff\xc4") == 4
    assert tables[:33] == (b"\xff\xc4\x00\x1f\x00" + bytes([0, 1, 5, 1, 1, 1, 1, 1, 1] + [0] * 7)
                           + bytes(range(12)))
    with pytest.raises(BadFrame):
        mjpeg_passthrough(b"\x00\x00 not a frame")


def test_yuyv_frames_are_converted_once_to_jpeg() -> None:
    width, height = 8, 4
    # Y0 U Y1 V for a flat colour: Y=150, U=V=128 is a neutral grey of 150.
    packed = bytes([150, 128, 150, 128]) * (width // 2) * height
    image = yuyv_to_image(packed, width, height)
    assert image.size == (width, height)
    assert all(abs(c - 150) <= 2 for c in image.getpixel((3, 2)))  # type: ignore[union-attr]
    jpeg = frame_to_jpeg(packed, FrameMode(YUYV, width, height, 30))
    assert jpeg_dimensions(jpeg) == (width, height)
    with pytest.raises(BadFrame):
        yuyv_to_image(packed[:10], width, height)


def test_a_missing_uvc_camera_is_absent_within_the_call() -> None:
    driver = DocumentCamera(V4l2Link("/dev/video-not-here"), frame_timeout_s=0.5)
    assert driver.state(1.0) == DeviceState.fault("absent")
    with pytest.raises(CameraAbsent):
        driver.capture(1.0)
    seen = Recorder()
    driver.start_preview(seen.frame, seen.state)
    assert wait_until(lambda: seen.reason() == "absent", 2.0)
    driver.close()
