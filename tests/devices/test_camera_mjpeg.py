"""MJPEG over HTTP: the multipart parser fed in every split, and the client against the virtual
camera over TCP (frames in order, boundaries split across reads, 503, stalls, refusals)."""

from __future__ import annotations

import http.client
import io
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from devices.camera import BadFrame, CameraAbsent, CameraOffline, StreamStalled
from devices.camera.mjpeg import (
    CameraUrl,
    MjpegHttpLink,
    MjpegStream,
    MultipartReader,
    boundary_from_content_type,
    fetch_jpeg,
    is_jpeg,
    jpeg_dimensions,
)
from simulator.sample_documents import PLATEN_SIZE, PREVIEW_SIZE
from simulator.vcamera import VirtualCamera

CACHE = Path(tempfile.gettempdir()) / "kiosk-sample-documents"


def small_jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=80)
    return out.getvalue()


FRAMES = [small_jpeg((200, 10, 10)), small_jpeg((10, 200, 10), (64, 48)),
          small_jpeg((10, 10, 200), (30, 40))]


def stream_bytes(boundary: str = "frame", *, lengths: bool = True, newline: bytes = b"\r\n",
                 dashes: str = "--") -> bytes:
    out = b"preamble a client must skip" + newline
    for index, jpeg in enumerate(FRAMES):
        head = [f"{dashes}{boundary}".encode(), b"Content-Type: image/jpeg"]
        if lengths:
            head.append(f"Content-Length: {len(jpeg)}".encode())
        head.append(f"X-Frame-Seq: {index + 1}".encode())
        out += newline.join(head) + newline + newline + jpeg + newline
    return out + f"{dashes}{boundary}--".encode() + newline


def feed_in_pieces(reader: MultipartReader, data: bytes, piece: int) -> list[bytes]:
    bodies: list[bytes] = []
    for at in range(0, len(data), piece):
        bodies += [part.body for part in reader.feed(data[at : at + piece])]
    return bodies


# --- JPEG frames ----------------------------------------------------------------------------------


def test_jpeg_dimensions_come_from_the_frame_header_without_decoding() -> None:
    assert jpeg_dimensions(FRAMES[1]) == (64, 48)
    assert is_jpeg(FRAMES[0]) and not is_jpeg(b"GIF89a....")
    for garbage in (b"", b"\xff\xd8", b"not a jpeg at all", FRAMES[0][:20]):
        with pytest.raises(BadFrame):
            jpeg_dimensions(garbage)


# --- the multipart parser -------------------------------------------------------------------------


@pytest.mark.parametrize("lengths", [True, False], ids=["content-length", "boundary-only"])
def test_parts_come_out_whole_and_in_order_however_the_stream_is_cut(lengths: bool) -> None:
    data = stream_bytes(lengths=lengths)
    for piece in (1, 2, 3, 5, 7, 13, 64, 1000, len(data)):
        reader = MultipartReader("frame")
        assert feed_in_pieces(reader, data, piece) == FRAMES, f"pieces of {piece}"
        assert reader.ended


def test_what_cameras_really_send_is_understood() -> None:
    # LF line ends; the boundary declared with the dashes already in it; no part headers at all.
    assert feed_in_pieces(MultipartReader("frame"), stream_bytes(newline=b"\n"), 11) == FRAMES
    assert feed_in_pieces(MultipartReader("--frame"), stream_bytes(), 9) == FRAMES
    bare = b"".join(b"--b\r\n\r\n" + jpeg + b"\r\n" for jpeg in FRAMES) + b"--b\r\n"
    assert feed_in_pieces(MultipartReader("b"), bare, 4) == FRAMES
    # A garbled Content-Length: the next boundary ends the part instead.
    garbled = stream_bytes().replace(b"Content-Length: ", b"Content-Length: x")
    assert feed_in_pieces(MultipartReader("frame"), garbled, 17) == FRAMES
    assert boundary_from_content_type('multipart/x-mixed-replace; boundary="abc"') == "abc"
    with pytest.raises(BadFrame):
        boundary_from_content_type("image/jpeg")
    with pytest.raises(BadFrame):
        boundary_from_content_type("multipart/x-mixed-replace")


def test_an_oversized_part_or_header_is_refused_not_buffered() -> None:
    with pytest.raises(BadFrame, match="larger"):
        feed_in_pieces(MultipartReader("frame", max_part_bytes=100), stream_bytes(), 50)
    with pytest.raises(BadFrame, match="larger"):
        feed_in_pieces(MultipartReader("frame", max_part_bytes=100),
                       stream_bytes(lengths=False), 50)
    endless_headers = b"--frame\r\n" + b"X-Padding: aaaaaaaa\r\n" * 2000
    with pytest.raises(BadFrame, match="headers too long"):
        feed_in_pieces(MultipartReader("frame"), endless_headers, 4096)
    # Garbage with no boundary in it is dropped as it comes, never kept.
    reader = MultipartReader("frame")
    for _ in range(100):
        assert reader.feed(b"x" * 10_000) == []
    assert len(reader._buffer) < 64


def test_camera_urls_follow_the_convention() -> None:
    url = CameraUrl.parse("http://10.0.0.7:8080/cam1/")
    assert (url.host, url.port, url.stream_path, url.snapshot_path) == (
        "10.0.0.7", 8080, "/cam1/stream.mjpg", "/cam1/snapshot.jpg")
    assert CameraUrl.parse("http://10.0.0.7").port == 80
    for bad in ("https://10.0.0.7", "rtsp://cam/stream", "http://", "http://h/?a=1",
                "http://h:99999"):
        with pytest.raises(ValueError):
            CameraUrl.parse(bad)


# --- against the virtual camera -------------------------------------------------------------------


@pytest.fixture(scope="module")
def split_camera() -> Iterator[VirtualCamera]:
    """A camera that sends each part in 997-byte pieces, so boundaries arrive cut anywhere."""
    camera = VirtualCamera(fps=30, cache_dir=CACHE, write_chunk=997)
    camera.start()
    yield camera
    camera.stop()


@pytest.fixture
def camera() -> Iterator[VirtualCamera]:
    camera = VirtualCamera(fps=15, cache_dir=CACHE)
    camera.start()
    yield camera
    camera.stop()


def test_frames_arrive_whole_and_in_order_over_tcp_with_boundaries_split(
    split_camera: VirtualCamera,
) -> None:
    # The camera writes 997-byte pieces; we read at most 61 bytes at a time: every boundary,
    # header block and JPEG end is split across reads somewhere in these frames.
    stream = MjpegStream(CameraUrl.parse(split_camera.url), read_bytes=61)
    stream.open(2.0)
    try:
        frames = [stream.next_frame(2.0) for _ in range(4)]
    finally:
        stream.close()
    seqs = [f.seq or 0 for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + 4)) and seqs[0] > 0, seqs
    assert all(jpeg_dimensions(f.jpeg) == PREVIEW_SIZE for f in frames)
    assert all(f.jpeg.endswith(b"\xff\xd9") for f in frames)


def test_parts_without_content_length_are_found_by_their_boundary() -> None:
    camera = VirtualCamera(fps=30, cache_dir=CACHE, content_length=False)
    camera.start()
    try:
        stream = MjpegStream(CameraUrl.parse(camera.url), read_bytes=4096)
        stream.open(2.0)
        frames = [stream.next_frame(2.0) for _ in range(3)]
        stream.close()
    finally:
        camera.stop()
    assert all(f.jpeg.endswith(b"\xff\xd9") and jpeg_dimensions(f.jpeg) == PREVIEW_SIZE
               for f in frames)
    assert [f.seq for f in frames] == [1, 2, 3]


def test_the_snapshot_is_the_full_resolution_frame(camera: VirtualCamera) -> None:
    jpeg = fetch_jpeg(CameraUrl.parse(camera.url), 5.0)
    assert jpeg_dimensions(jpeg) == PLATEN_SIZE
    with pytest.raises(BadFrame, match="larger"):
        fetch_jpeg(CameraUrl.parse(camera.url), 5.0, max_bytes=10_000)


def test_an_absent_camera_answers_503_and_ends_the_streams_it_was_sending(
    camera: VirtualCamera,
) -> None:
    link = MjpegHttpLink(camera.url)
    link.open_preview(2.0)
    link.read_preview(2.0)
    camera.set_fault("absent")
    with pytest.raises(CameraOffline):  # the open stream is cut
        for _ in range(5):
            link.read_preview(2.0)
    link.close_preview()
    with pytest.raises(CameraAbsent):
        link.open_preview(2.0)
    with pytest.raises(CameraAbsent):
        link.snapshot(2.0)
    connection = http.client.HTTPConnection("127.0.0.1", camera.port, timeout=2)
    connection.request("GET", "/stream.mjpg")
    assert connection.getresponse().status == 503
    connection.close()


def test_a_stalled_stream_and_a_hung_snapshot_end_within_their_timeouts(
    camera: VirtualCamera,
) -> None:
    link = MjpegHttpLink(camera.url)
    link.open_preview(2.0)
    link.read_preview(2.0)
    camera.set_fault("stall")
    time.sleep(0.15)  # let a frame already on its way arrive
    began = time.monotonic()
    with pytest.raises(StreamStalled):
        for _ in range(5):
            link.read_preview(0.5)
    assert time.monotonic() - began < 1.5
    link.close_preview()
    began = time.monotonic()
    with pytest.raises(StreamStalled):
        link.snapshot(0.6)
    assert 0.5 < time.monotonic() - began < 1.5
    camera.set_fault("ok")
    assert jpeg_dimensions(link.snapshot(5.0)) == PLATEN_SIZE


def test_a_camera_that_is_gone_refuses_and_one_that_is_back_streams_again(
    camera: VirtualCamera,
) -> None:
    link = MjpegHttpLink(camera.url)
    camera.stop()
    began = time.monotonic()
    with pytest.raises(CameraOffline):
        link.open_preview(2.0)
    with pytest.raises(CameraOffline):
        link.snapshot(2.0)
    assert time.monotonic() - began < 1.0  # refused at once, no timeout waited out
    camera.start()  # the same port, as a camera plugged back in
    link.open_preview(2.0)
    assert jpeg_dimensions(link.read_preview(2.0)) == PREVIEW_SIZE
    link.close()


def test_abort_unblocks_a_reader_waiting_on_a_silent_stream(camera: VirtualCamera) -> None:
    camera.set_fault("stall")
    link = MjpegHttpLink(camera.url)
    link.open_preview(2.0)
    began = time.monotonic()
    threading.Timer(0.2, link.interrupt_preview).start()
    with pytest.raises(CameraOffline):
        link.read_preview(10.0)
    assert time.monotonic() - began < 2.0
    link.close()
