"""A real mosquitto on a free local port for the simulator and tests, with a "broker down" fault."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from simulator.processes import StartsAndStops, free_port, stop_process

MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class BrokerError(RuntimeError):
    """mosquitto could not be found, did not start, or did not listen in time."""


def find_mosquitto() -> str:
    """Path of the mosquitto binary (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in MOSQUITTO_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    raise BrokerError("mosquitto not found; install the Debian package 'mosquitto'")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Mosquitto(StartsAndStops):
    """One mosquitto process on 127.0.0.1, anonymous, no persistence by default.

    ``port=0`` picks a free port on the first start; ``stop()`` then ``start()`` (or
    ``restart()``) comes back on the SAME port, which is how "the broker went down and came back"
    looks to a client. ``persistent=True`` keeps sessions and retained messages across a restart
    (saved on stop), for tests whose own subscriber must not miss what arrives right after one.
    ``upgrade_outgoing_qos=True`` is the fleet's production setting (deploy/mosquitto/kiosk.conf):
    a message goes out at its subscription's QoS, so the fleet monitor's QoS 1 subscription holds
    each QoS 0 heartbeat until the monitor has stored it. Usable as a context manager.
    """

    def __init__(
        self,
        port: int = 0,
        *,
        persistent: bool = False,
        start_timeout_s: float = 5.0,
        max_queued_messages: int | None = None,
        upgrade_outgoing_qos: bool = False,
    ) -> None:
        self._port = port
        self._persistent = persistent
        self._max_queued_messages = max_queued_messages
        self._upgrade_outgoing_qos = upgrade_outgoing_qos
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._dir = Path(tempfile.mkdtemp(prefix="kiosk-mosquitto-"))
        self._binary = find_mosquitto()

    @property
    def port(self) -> int:
        if self._port == 0:
            raise BrokerError("the port is chosen on the first start()")
        return self._port

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self._dir / "mosquitto.log"

    def start(self) -> None:
        """Start and wait until the port accepts connections; raise BrokerError otherwise."""
        if self.running:
            return
        # A port picked here can be taken by someone else before mosquitto binds it; only a port
        # we chose ourselves is worth a second try, a requested (or reused) one must be that port.
        attempts = 3 if self._port == 0 else 1
        for attempt in range(attempts):
            port = self._port or free_port()
            try:
                self._launch(port)
            except BrokerError:
                if attempt + 1 == attempts:
                    raise
                continue
            self._port = port
            return

    def _launch(self, port: int) -> None:
        config = self._dir / "mosquitto.conf"
        lines = [
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            # As deploy/mosquitto/kiosk.conf: small MQTT packets leave at once, not after the
            # peer's delayed ACK (40 ms), which would cap a terminal at ~25 commands a second.
            "set_tcp_nodelay true",
            *(
                # Saved only on a clean stop (autosave 0): the restart fault, not crash recovery.
                ["persistence true", f"persistence_location {self._dir}/", "autosave_interval 0"]
                if self._persistent
                else ["persistence false"]
            ),
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if self._max_queued_messages is not None:
            # Per client, beyond those in flight; mosquitto drops QoS 1 messages past it.
            lines.append(f"max_queued_messages {self._max_queued_messages}")
        if self._upgrade_outgoing_qos:
            lines.append("upgrade_outgoing_qos true")
        if os.geteuid() == 0:
            # As root, mosquitto would switch to the 'mosquitto' user, who cannot read our temp dir.
            lines.append("user root")
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        process = subprocess.Popen(
            [self._binary, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BrokerError(
                    f"mosquitto exited with {process.returncode}; see {self.log_path}"
                )
            if _accepts(port):
                self._process = process
                return
            time.sleep(0.02)
        process.kill()
        process.wait(timeout=5)
        raise BrokerError(
            f"mosquitto did not listen on port {port} within {self._start_timeout_s} s"
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the broker (clients see their connection drop); the port is kept for start()."""
        process, self._process = self._process, None
        stop_process(process, timeout_s)

    def restart(self) -> None:
        """The broker-down fault in one go: stop, then start again on the same port."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop and remove the temporary directory."""
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self._dir)


