"""The rig's scanner and camera: started (or replaced by real ones), in the terminal's config,
stopped with the rig. Only they start here: every other endpoint is given as a real one."""

from __future__ import annotations

import http.client
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.rig import DEFAULT_CAMERA_PORT, SCANNER_LINK_NAME, RigOptions, SimulatorRig
from terminal.config import Config, load_config

# Endpoints nobody starts: the rig takes them as real ones and starts nothing for them.
NOTHING_ELSE = {
    "real_reader": True,
    "printer": ("127.0.0.1", 9),
    "broker": ("127.0.0.1", 1),
    "hub_url": "http://127.0.0.1:1",
    "start_terminal": False,
}


def started(workdir: Path, **options: object) -> SimulatorRig:
    chosen = {**NOTHING_ELSE, **options}
    rig = SimulatorRig(RigOptions(workdir=workdir, **chosen))  # type: ignore[arg-type]
    rig.start()
    return rig


def terminal_config(rig: SimulatorRig) -> Config:
    path = rig.write_terminal_config(rig.workdir / "terminal.toml",
                                     state_dir=rig.workdir / "state", automation_port=8701)
    return load_config(path)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[SimulatorRig]:
    rig = started(tmp_path, camera_port=0)
    yield rig
    rig.stop()


def test_the_virtual_scanner_and_camera_start_quickly_and_are_in_the_config(
    tmp_path: Path,
) -> None:
    # The sample document comes from the user's cache (drawn there once per machine).
    began = time.monotonic()
    rig = started(tmp_path, camera_port=0)
    try:
        assert time.monotonic() - began < 2.0
        assert rig.scanner is not None and rig.camera is not None
        assert rig.scanner_path == str(tmp_path.resolve() / SCANNER_LINK_NAME)
        assert os.readlink(rig.scanner_path).startswith("/dev/pts/")
        config = terminal_config(rig)
        scanner, camera = config.scanner, config.camera
        assert (scanner.kind, scanner.port, scanner.baudrate, scanner.terminator) == (
            "serial", rig.scanner.path, 9600, "cr")
        assert (camera.source, camera.source_dpi) == (rig.camera.url, rig.camera.dpi)
        assert rig.camera_url == rig.camera.url
    finally:
        rig.stop()


def test_the_camera_answers_at_its_url(rig: SimulatorRig) -> None:
    assert rig.camera is not None
    connection = http.client.HTTPConnection("127.0.0.1", rig.camera.port, timeout=5)
    try:
        connection.request("GET", "/snapshot.jpg")
        answer = connection.getresponse()
        assert (answer.status, answer.getheader("Content-Type")) == (200, "image/jpeg")
        answer.read()
    finally:
        connection.close()


def test_stop_unplugs_the_scanner_and_stops_the_camera(rig: SimulatorRig) -> None:
    link, port = Path(rig.scanner_path), rig.camera.port if rig.camera else 0
    rig.stop()
    assert rig.scanner is None and rig.camera is None
    assert not link.exists() and not link.is_symlink()
    with pytest.raises(ConnectionRefusedError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).connect()


def test_real_devices_replace_the_virtual_ones(tmp_path: Path) -> None:
    # A path and a URL are written into the config as given, quotes and backslashes included.
    odd_path = '/dev/serial/by-id/usb-Scanner_"QR"\\1-if00'
    rig = started(tmp_path, scanner_serial=odd_path, camera="http://192.168.1.40:8080/cam")
    try:
        assert rig.scanner is None and rig.camera is None
        assert not (tmp_path / SCANNER_LINK_NAME).exists()
        config = terminal_config(rig)
        # A real scanner's suffix is not known here, so any of CR, LF, CR LF ends a code.
        assert (config.scanner.kind, config.scanner.port, config.scanner.terminator) == (
            "serial", odd_path, "any")
        assert (config.camera.source, config.camera.source_dpi) == (
            "http://192.168.1.40:8080/cam", 0.0)
    finally:
        rig.stop()


def test_the_camera_takes_its_fixed_port_when_free_else_any(tmp_path: Path) -> None:
    # 8704: beside the panel (8700), the automation API (8701), the hub (8702), the fleet (8703).
    assert RigOptions().camera_port == DEFAULT_CAMERA_PORT == 8704
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        rig = started(tmp_path, camera_port=busy)  # a second simulator, say
        try:
            assert rig.camera is not None and rig.camera.port not in (0, busy)
        finally:
            rig.stop()
