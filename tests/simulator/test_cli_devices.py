"""`kiosk-sim --scanner-serial PATH --camera URL`: parsed, checked, and shown at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.cli import RigBackend, _banner, build_parser
from simulator.panel import ControlPanel
from simulator.rig import RigOptions, SimulatorRig
from simulator.vcamera import VirtualCamera
from simulator.vscanner import VirtualScanner


def test_real_scanner_and_camera_are_taken_as_given() -> None:
    args = build_parser().parse_args(
        ["--scanner-serial", "/dev/serial/by-id/usb-QR-if00", "--camera", "http://10.0.0.9:8080/"])
    assert args.scanner_serial == "/dev/serial/by-id/usb-QR-if00"
    assert args.camera == "http://10.0.0.9:8080"  # the base URL; the driver adds the paths


def test_without_them_the_virtual_ones_are_used() -> None:
    args = build_parser().parse_args([])
    assert (args.scanner_serial, args.camera) == (None, None)


def test_a_uvc_camera_may_be_named_by_its_device() -> None:
    assert build_parser().parse_args(["--camera", "/dev/video2"]).camera == "/dev/video2"


@pytest.mark.parametrize(
    "camera",
    ["rtsp://10.0.0.9/stream", "https://10.0.0.9", "http://", "http://user:pw@10.0.0.9",
     "http://10.0.0.9:99999", "http://10.0.0.9:0", "http://10.0.0.9/?x=1", "10.0.0.9:8080"],
)
def test_a_camera_that_is_not_an_mjpeg_url_is_refused_at_once(
    camera: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--camera", camera])
    assert stopped.value.code == 2
    assert "--camera" in capsys.readouterr().err


def test_a_scanner_path_with_control_characters_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--scanner-serial", "/dev/tty\nUSB0"])
    assert "not a device path" in capsys.readouterr().err


def test_the_start_banner_prints_the_scanner_and_the_camera(tmp_path: Path) -> None:
    rig = SimulatorRig(RigOptions(workdir=tmp_path, start_terminal=False))
    rig.scanner_path, rig.camera_url = "/dev/ttyACM0", "http://127.0.0.1:8704"
    banner = _banner(rig, ControlPanel(RigBackend(rig), port=0), None)
    assert "  Scanner:         /dev/ttyACM0  (real)\n" in banner
    assert "  Camera:          http://127.0.0.1:8704  (real)\n" in banner
    assert "  Broker:          mqtt://" in banner
    # The virtual ones (not started: only their addresses are needed).
    rig.camera = VirtualCamera(port=8704)
    rig.scanner = VirtualScanner(directory=tmp_path, name="scanner.tty")
    rig.scanner_path, rig.camera_url = rig.scanner.path, rig.camera.url
    banner = _banner(rig, ControlPanel(RigBackend(rig), port=0), None)
    assert f"  Scanner:         {tmp_path / 'scanner.tty'}  (virtual: " in banner
    assert ("  Camera:          http://127.0.0.1:8704  (virtual: /stream.mjpg, /snapshot.jpg)\n"
            in banner)
