"""The virtual scanner alone: a raw pty behind a stable path, paced sends, unplug and replug."""

import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.vscanner import ScannerUnplugged, VirtualScanner


def read_exactly(fd: int, size: int, timeout_s: float = 3.0) -> bytes:
    """``size`` bytes from ``fd`` within ``timeout_s`` (the test fails rather than hangs)."""
    data = b""
    deadline = time.monotonic() + timeout_s
    while len(data) < size:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"got {data!r} of {size} bytes"
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            data += os.read(fd, size - len(data))
    return data


@pytest.fixture
def vscanner(tmp_path: Path) -> Iterator[VirtualScanner]:
    with VirtualScanner(directory=tmp_path) as virtual:
        yield virtual


def open_port(path: str) -> int:
    # What the driver does, minus pyserial: the slave end, no controlling terminal.
    return os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)


def test_the_path_is_a_stable_link_to_a_raw_pty(vscanner: VirtualScanner) -> None:
    path = Path(vscanner.path)
    assert path.is_symlink()
    assert os.readlink(path) == vscanner.device
    assert vscanner.device.startswith("/dev/pts/")
    port = open_port(vscanner.path)
    try:
        vscanner.scan("A\rB")  # raw: a CR inside stays a CR (no ICRNL), nothing is echoed
        assert read_exactly(port, 4) == b"A\rB\r"
    finally:
        os.close(port)


@pytest.mark.parametrize("terminator", [b"\r", b"\n", b"\r\n"])
def test_the_terminator_follows_every_code(tmp_path: Path, terminator: bytes) -> None:
    with VirtualScanner(terminator, directory=tmp_path) as virtual:
        port = open_port(virtual.path)
        try:
            virtual.scan("one")
            virtual.scan("二", encoding="gb18030")
            expected = b"one" + terminator + "二".encode("gb18030") + terminator
            assert read_exactly(port, len(expected)) == expected
        finally:
            os.close(port)


def test_a_paced_scan_arrives_in_pieces_over_time(vscanner: VirtualScanner) -> None:
    port = open_port(vscanner.path)
    try:
        began = time.monotonic()
        vscanner.scan("x" * 63, chunk_size=16, gap_s=0.02)  # 64 bytes: 4 pieces, 3 gaps
        assert time.monotonic() - began >= 0.06
        assert read_exactly(port, 64) == b"x" * 63 + b"\r"
    finally:
        os.close(port)


def test_unplug_removes_the_path_and_hangs_up_the_open_port(vscanner: VirtualScanner) -> None:
    port = open_port(vscanner.path)
    try:
        vscanner.unplug()
        assert not vscanner.plugged
        assert not os.path.lexists(vscanner.path)
        assert vscanner.device == ""
        ready, _, _ = select.select([port], [], [], 1.0)
        assert ready  # a hang-up wakes a reader, whose read finds the end of the line: what a
        assert os.read(port, 16) == b""  # pulled USB adapter does, and pyserial raises on
        with pytest.raises(ScannerUnplugged):
            vscanner.scan("nobody hears this")
    finally:
        os.close(port)
    vscanner.replug()
    assert vscanner.plugged
    assert os.readlink(vscanner.path) == vscanner.device
    port = open_port(vscanner.path)
    try:
        vscanner.scan("back")
        assert read_exactly(port, 5) == b"back\r"
    finally:
        os.close(port)


def test_unplug_and_replug_are_idempotent(vscanner: VirtualScanner) -> None:
    vscanner.replug()
    device = vscanner.device
    vscanner.replug()
    assert vscanner.device == device
    vscanner.unplug()
    vscanner.unplug()
    assert not vscanner.plugged


def test_a_send_nobody_reads_gives_up_in_time(tmp_path: Path) -> None:
    with VirtualScanner(directory=tmp_path, write_timeout_s=0.2) as virtual:
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            virtual.send(b"x" * 1_000_000)
        assert time.monotonic() - began < 1.0


def test_close_removes_its_own_directory() -> None:
    virtual = VirtualScanner()
    virtual.start()
    directory = Path(virtual.path).parent
    assert directory.is_dir()
    virtual.close()
    assert not directory.exists()
    with pytest.raises(RuntimeError):
        _ = virtual.path


def test_only_scanner_terminators_are_taken() -> None:
    with pytest.raises(ValueError):
        VirtualScanner(b"\t")


def test_the_command_line_scans_typed_lines(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator.vscanner", "--dir", str(tmp_path), "--terminator", "lf"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 10.0)
        assert ready, "no path printed"
        line = process.stdout.readline().strip()
        assert line == f"Scanner: {tmp_path / 'scanner'}"
        port = open_port(str(tmp_path / "scanner"))
        try:
            process.stdin.write("SB20261207000123\n")
            process.stdin.flush()
            assert read_exactly(port, 17) == b"SB20261207000123\n"
        finally:
            os.close(port)
        process.stdin.close()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    assert not os.path.lexists(tmp_path / "scanner")  # unplugged on the way out
