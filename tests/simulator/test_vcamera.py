"""The virtual document camera as a plain HTTP client sees it: a steady MJPEG stream, full-size
stills, the documents it can show, its faults; and the sample documents behind it."""

from __future__ import annotations

import http.client
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.camera import StreamStalled
from devices.camera.mjpeg import CameraUrl, MjpegStream, jpeg_dimensions
from simulator.sample_documents import (
    DOCUMENTS,
    PLATEN_SIZE,
    PREVIEW_SIZE,
    encode_scene,
    load_document,
    render,
)
from simulator.vcamera import VirtualCamera

CACHE = Path(tempfile.gettempdir()) / "kiosk-sample-documents"


@pytest.fixture
def camera() -> Iterator[VirtualCamera]:
    camera = VirtualCamera(fps=15, cache_dir=CACHE)
    camera.start()
    yield camera
    camera.stop()


def get(camera: VirtualCamera, path: str, timeout_s: float = 5.0) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", camera.port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_the_stream_is_steady_numbered_mjpeg_at_preview_size(camera: VirtualCamera) -> None:
    stream = MjpegStream(CameraUrl.parse(camera.url))
    stream.open(2.0)
    try:
        stream.next_frame(2.0)
        began = time.monotonic()
        frames = [stream.next_frame(2.0) for _ in range(15)]
        took = time.monotonic() - began
    finally:
        stream.close()
    assert 0.75 < took < 1.6, f"15 frames at 15 fps took {took:.2f} s"
    assert [f.seq for f in frames] == list(range(2, 17))
    assert jpeg_dimensions(frames[0].jpeg) == PREVIEW_SIZE


def test_the_snapshot_is_full_size_and_follows_the_document(camera: VirtualCamera) -> None:
    assert camera.documents() == list(DOCUMENTS)
    assert set(DOCUMENTS) == {"application_form", "household_register", "certificate", "empty"}
    assert "申请表" in camera.document_titles()["application_form"]
    status, kind, first = get(camera, "/snapshot.jpg")
    assert (status, kind) == (200, "image/jpeg") and jpeg_dimensions(first) == PLATEN_SIZE
    camera.set_document("certificate")
    assert camera.document() == "certificate"
    assert get(camera, "/snapshot.jpg")[2] == load_document("certificate", CACHE).full_jpeg
    assert get(camera, "/nothing")[0] == 404
    with pytest.raises(ValueError):
        camera.set_document("passport")
    with pytest.raises(ValueError):
        camera.set_fault("on_fire")


def test_absent_answers_503_and_black_sends_black_frames(camera: VirtualCamera) -> None:
    camera.set_fault("absent")
    assert get(camera, "/snapshot.jpg")[0] == 503
    assert get(camera, "/stream.mjpg")[0] == 503
    camera.set_fault("black")
    status, _, black = get(camera, "/snapshot.jpg")
    assert status == 200 and jpeg_dimensions(black) == PLATEN_SIZE
    assert len(black) < len(load_document("application_form", CACHE).full_jpeg) / 2


def test_stall_holds_the_stream_and_the_snapshot_until_cleared(camera: VirtualCamera) -> None:
    stream = MjpegStream(CameraUrl.parse(camera.url))
    stream.open(2.0)
    stream.next_frame(2.0)
    camera.set_fault("stall")
    time.sleep(0.2)
    connection = http.client.HTTPConnection("127.0.0.1", camera.port, timeout=0.5)
    connection.request("GET", "/snapshot.jpg")
    with pytest.raises(TimeoutError):
        connection.getresponse()  # the snapshot hangs past the client's timeout
    connection.close()
    with pytest.raises(StreamStalled):
        for _ in range(5):
            stream.next_frame(0.4)
    stream.close()
    camera.set_fault("ok")
    fresh = MjpegStream(CameraUrl.parse(camera.url))
    fresh.open(2.0)
    assert jpeg_dimensions(fresh.next_frame(2.0).jpeg) == PREVIEW_SIZE
    fresh.close()


def test_a_restart_keeps_the_port_and_stop_ends_held_requests(camera: VirtualCamera) -> None:
    url = camera.url
    camera.set_fault("stall")
    connection = http.client.HTTPConnection("127.0.0.1", camera.port, timeout=5)
    connection.request("GET", "/snapshot.jpg")
    began = time.monotonic()
    camera.stop()
    assert time.monotonic() - began < 2.0
    with pytest.raises((http.client.HTTPException, OSError)):
        connection.getresponse()
    connection.close()
    camera.start()
    assert camera.url == url
    camera.set_fault("ok")
    assert get(camera, "/snapshot.jpg")[0] == 200


def test_sample_documents_are_deterministic_and_the_sheet_is_where_it_says() -> None:
    first, box = render("certificate")
    second, box_again = render("certificate")
    assert box == box_again and first.tobytes() == second.tobytes()
    assert encode_scene(first) == encode_scene(second)
    assert box is not None
    left, top, right, bottom = box
    assert 0 < left < right < PLATEN_SIZE[0] and 0 < top < bottom < PLATEN_SIZE[1]
    # Off centre on purpose: a crop that assumed a centred sheet would be caught.
    assert (left + right) // 2 != PLATEN_SIZE[0] // 2
    # The sheet is bright paper and the platen dark grey, right at the edge.
    assert sum(first.getpixel((left + 5, (top + bottom) // 2))) > 3 * 180  # type: ignore[arg-type]
    assert sum(first.getpixel((left - 30, (top + bottom) // 2))) < 3 * 90  # type: ignore[arg-type]
    assert load_document("empty", CACHE).page_box is None


def test_the_cache_is_used_once_made(tmp_path: Path) -> None:
    began = time.monotonic()
    made = load_document("household_register", tmp_path)
    making = time.monotonic() - began
    began = time.monotonic()
    again = load_document("household_register", tmp_path)
    reading = time.monotonic() - began
    assert again.full_jpeg == made.full_jpeg and again.page_box == made.page_box
    assert reading < making / 5, (reading, making)
    assert repr(made) == "SampleDocument(household_register)"
