"""The notifier speaks the systemd datagram protocol to a real unix socket."""

import socket
from pathlib import Path

from terminal.sd_notify import Notifier


def test_ready_and_watchdog_reach_the_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(2)
        notifier = Notifier(path)
        assert notifier.ready("attract screen shown")
        assert server.recv(256) == b"READY=1\nSTATUS=attract screen shown"
        assert notifier.watchdog()
        assert server.recv(256) == b"WATCHDOG=1"


def test_without_a_socket_nothing_is_sent_and_nothing_raises(tmp_path: Path) -> None:
    assert Notifier("").ready() is False
    assert Notifier(str(tmp_path / "gone.sock")).ready() is False
