"""The simulator rig: virtual devices at the wire, the hub, a broker, a display and the terminal.

Each virtual piece replaces only the far end of a link, and each can be swapped for a real
endpoint (a network printer, an external broker, a real hub, whatever PC/SC reader is present,
a serial scanner's tty, a networked camera's MJPEG URL).
The terminal runs as its own process with a generated config, exactly as in production but with
the automation API on, which the terminal allows only because the rig also sets the development
marker (``KIOSK_DEVELOPMENT``) in its environment; the rig is shared by ``kiosk-sim`` and the
end-to-end tests.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.automation_client import AutomationClient
from simulator.broker import Mosquitto
from simulator.display import VirtualDisplay
from simulator.hub import SimHub
from simulator.pcsc import DEFAULT_VPCD_PORT, Pcscd, pcscd_answering
from simulator.processes import LOOPBACK, free_port, port_is_free, stop_process
from simulator.vcamera import VirtualCamera
from simulator.vcard import SIM_BADGE_UID, VirtualCardSlot
from simulator.vcontroller import VirtualController
from simulator.vprinter import VirtualPrinter
from simulator.vsam import VirtualSam
from simulator.vscanner import TERMINATORS, VirtualScanner
from terminal.automation import DEVELOPMENT_MARKER

log = logging.getLogger(__name__)

# The virtual document camera's port: next to the panel (8700), the automation API (8701), the
# hub (8702) and the fleet dashboard (8703).
DEFAULT_CAMERA_PORT = 8704
# The virtual scanner's port, a symlink to its pty in the workdir (as /dev/serial/by-id/... is to
# a ttyUSBn), and the suffix it sends after each code: CR, the usual factory setting.
SCANNER_LINK_NAME = "scanner.tty"
IDCARD_LINK_NAME = "idcard.tty"  # the virtual SAM reader module's pty, likewise
CONTROLLER_LINK_NAME = "controller.tty"  # the virtual co-processor's UART
POWER_RETURN_WAIT_S = 60.0  # the relay's off time is seconds; longer means the board is gone
SCANNER_TERMINATOR = "cr"

# The reference screens' real diagonals (21.5" landscape, 15.6" portrait, the 7" panel).
REFERENCE_DIAGONALS_IN: dict[tuple[int, int], float] = {
    (1920, 1080): 21.5,
    (1080, 1920): 15.6,
    (800, 480): 7.0,
}

@dataclass(frozen=True)
class RigOptions:
    """What to start. A ``None`` endpoint means "start the virtual one"."""

    workdir: Path = Path("var/sim")
    terminal_id: str = "T-SIM-0001"
    site: str = "simulator"
    size: tuple[int, int] = (1920, 1080)
    language: str = "zh_CN"  # the language every resident starts in
    printer: tuple[str, int] | None = None  # a real network printer
    printer_port: int = 9100  # for the virtual printer; 0 = any free port
    broker: tuple[str, int] | None = None  # an external broker
    hub_url: str | None = None  # a real hub
    hub_port: int = 8702
    real_reader: bool = False  # use whatever PC/SC reader is present; no virtual card
    vpcd_port: int = DEFAULT_VPCD_PORT
    scanner_serial: str | None = None  # a real scanner's tty instead of the virtual one
    idcard_serial: str | None = None  # a real SAM reader module's tty instead of the virtual one
    controller_serial: str | None = None  # a real co-processor's tty instead of the virtual one
    # The co-processor's watchdog as the terminal configures it ([controller]); tests shorten it.
    watchdog_timeout_s: int = 60
    watchdog_grace_s: int = 180
    camera: str | None = None  # a real document camera: MJPEG base URL (or a UVC /dev/videoN)
    camera_port: int = DEFAULT_CAMERA_PORT  # for the virtual camera; 0 = any free port
    pcscd: Pcscd | None = None  # an already running pcscd of ours to share (tests)
    automation_port: int = 8701
    heartbeat_interval_s: int = 30
    idle_timeout_s: int = 60
    force_xvfb: bool = False
    start_terminal: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)


def _toml_string(value: str) -> str:
    """``value`` as a TOML basic string: JSON's escapes are TOML's, but for DEL, which TOML
    wants escaped too (a path or URL from the command line may hold anything)."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _pick(port: int) -> int:
    """The wanted port when it is free, else any free one (a second simulator, a test run)."""
    return port if port and port_is_free(port) else free_port()


class SimulatorRig:
    """Starts every piece in dependency order; ``stop`` undoes what ``start`` did, in reverse."""

    def __init__(self, options: RigOptions) -> None:
        self.options = options
        self.workdir = options.workdir.resolve()
        self.pcscd: Pcscd | None = None
        self.card_slot: VirtualCardSlot | None = None
        self.printer: VirtualPrinter | None = None
        self.scanner: VirtualScanner | None = None  # None when a real one is used
        self.sam: VirtualSam | None = None  # the ID card reader; None when a real one is used
        self.controller: VirtualController | None = None  # None when a real board is used
        self.controller_path = ""
        self.terminal_restarts = 0  # boots after the co-processor cut the terminal's power
        self._terminal_env: dict[str, str] = {}
        self._terminal_config = Path()
        self._stopping = threading.Event()
        self.camera: VirtualCamera | None = None  # None when a real one is used
        self.hub: SimHub | None = None
        self.broker: Mosquitto | None = None
        self.display: VirtualDisplay | None = None
        self.terminal: subprocess.Popen[bytes] | None = None
        self.automation_port = 0
        self.printer_address: tuple[str, int] = ("", 0)
        self.broker_address: tuple[str, int] = ("", 0)
        self.hub_url = ""
        self.scanner_path = ""  # what the terminal opens: the virtual scanner's link or a real tty
        self.idcard_path = ""  # likewise for the ID card's SAM reader module
        self.camera_url = ""  # the virtual camera's base URL or the real camera's source

    # --- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        o = self.options
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not o.real_reader:
            self._start_card()
        if o.printer is None:
            self.printer = VirtualPrinter(out_dir=self.workdir / "receipts",
                                          port=_pick(o.printer_port))
            self.printer.start()
            self.printer_address = self.printer.address
        else:
            self.printer_address = o.printer
        self._start_scanner()
        self._start_idcard()
        self._start_controller()
        self._start_camera()
        if o.hub_url is None:
            self.hub = SimHub(db_path=self.workdir / "hub.sqlite", port=_pick(o.hub_port))
            self.hub.start()
            self.hub_url = self.hub.url
        else:
            self.hub_url = o.hub_url
        if o.broker is None:
            # As production's broker (deploy/mosquitto/kiosk.conf on Debian's defaults): sessions
            # and retained messages survive a restart, and a QoS 1 subscriber gets QoS 1.
            self.broker = Mosquitto(persistent=True, upgrade_outgoing_qos=True)
            self.broker.start()
            self.broker_address = (self.broker.host, self.broker.port)
        else:
            self.broker_address = o.broker
        if o.start_terminal:
            self._start_terminal()

    def _start_card(self) -> None:
        o = self.options
        if o.pcscd is not None:
            self.pcscd = o.pcscd
            port = o.pcscd.ports[0]
        elif pcscd_answering():
            # One pcscd per machine: a running one (a system service with Debian's stock vpcd
            # config) is used as it is, on the stock vpcd port.
            log.info("using the pcscd already running; virtual card on vpcd port %d", o.vpcd_port)
            port = o.vpcd_port
        else:
            self.pcscd = Pcscd(base_port=o.vpcd_port)
            self.pcscd.start()
            port = self.pcscd.ports[0]
        self.card_slot = VirtualCardSlot(port)

    def _start_scanner(self) -> None:
        if self.options.scanner_serial is not None:
            self.scanner_path = self.options.scanner_serial
            return
        self.scanner = VirtualScanner(TERMINATORS[SCANNER_TERMINATOR],
                                      directory=self.workdir, name=SCANNER_LINK_NAME)
        self.scanner.start()
        self.scanner_path = self.scanner.path

    def _start_idcard(self) -> None:
        if self.options.idcard_serial is not None:
            self.idcard_path = self.options.idcard_serial
            return
        self.sam = VirtualSam(directory=self.workdir, name=IDCARD_LINK_NAME)
        self.sam.start()
        self.idcard_path = self.sam.path

    def _start_controller(self) -> None:
        if self.options.controller_serial is not None:
            self.controller_path = self.options.controller_serial
            return
        self.controller = VirtualController(directory=self.workdir, name=CONTROLLER_LINK_NAME,
                                            on_power_cycle=self._power_cut)
        self.controller.start()
        self.controller_path = self.controller.path

    def _power_cut(self, cycles: int) -> None:
        # The board's relay cut the terminal's power (its watchdog fired): the terminal dies at
        # once, as a Pi does, and boots again when the power comes back.
        log.warning("co-processor cut the terminal's power (%d); it will boot again", cycles)
        threading.Thread(target=self._boot_after_power_cut, name="sim-power-cycle",
                         daemon=True).start()

    def _boot_after_power_cut(self) -> None:
        process = self.terminal
        if process is None:
            return  # no terminal of ours on this power (a bench starts its own)
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen process must still die
            process.kill()
            process.wait(10)
        deadline = time.monotonic() + POWER_RETURN_WAIT_S
        controller = self.controller
        while controller is not None and not controller.host_powered:
            if self._stopping.is_set() or time.monotonic() > deadline:
                return
            time.sleep(0.1)
        if self._stopping.is_set():
            return
        self.terminal_restarts += 1
        self._spawn_terminal()

    def freeze_terminal(self, frozen: bool) -> None:
        """Stop (SIGSTOP) or resume the terminal's process, as a hang would: with it frozen the
        co-processor hears no more kicks and, after its timeout, power-cycles it."""
        process = self.terminal
        if process is None or process.poll() is not None:
            raise RuntimeError("the terminal is not running")
        process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    def _start_camera(self) -> None:
        if self.options.camera is not None:
            self.camera_url = self.options.camera
            return
        # About 0.25 s: the sample document comes from the user's cache (drawn once, the first
        # time), the black frame of the "black" fault is made now.
        self.camera = VirtualCamera(port=_pick(self.options.camera_port))
        self.camera_url = self.camera.start()

    def _scanner_config(self) -> str:
        if not self.scanner_path:
            return 'kind = "none"\n'
        # A real scanner's suffix is whatever it was set to; the virtual one's is known. A pty
        # ignores the baud rate; 9600 is the usual factory setting of a real one.
        terminator = "any" if self.scanner is None else SCANNER_TERMINATOR
        return (f'kind = "serial"\nport = {_toml_string(self.scanner_path)}\nbaudrate = 9600\n'
                f'terminator = "{terminator}"\n')

    def _camera_config(self) -> str:
        # A real camera's pixels per inch at the platen are unknown here: 0 says so.
        dpi = self.camera.dpi if self.camera is not None else 0.0
        return f"source = {_toml_string(self.camera_url)}\nsource_dpi = {dpi}\n"

    def write_terminal_config(
        self, path: Path, *, state_dir: Path, automation_port: int,
        size: tuple[int, int] | None = None,
    ) -> Path:
        """The terminal's config for this rig's endpoints, automation on; also used by bench/.

        Whoever starts a terminal with it must set ``DEVELOPMENT_MARKER`` in its environment, or
        the terminal refuses the automation API."""
        o = self.options
        width, height = size or o.size
        printer_host, printer_port = self.printer_address
        broker_host, broker_port = self.broker_address
        inches = REFERENCE_DIAGONALS_IN.get((width, height))
        # A reference screen is simulated at its real size, so type and targets come out in the
        # millimetres a resident would see; any other size gets the terminal's assumed pitch.
        diagonal = f"diagonal_in = {inches}\n" if inches is not None else ""
        config = f"""# Written by the simulator for this run; terminal/config.py lists every option.
[terminal]
id = "{o.terminal_id}"
site = "{o.site}"
state_dir = "{state_dir}"
idle_timeout_s = {o.idle_timeout_s}

[display]
fullscreen = false
width = {width}
height = {height}
language = "{o.language}"
{diagonal}
[card]
reader_filter = ""

[printer]
kind = "network"
host = "{printer_host}"
port = {printer_port}

[hub]
url = "{self.hub_url}"
timeout_s = 5.0

[mqtt]
host = "{broker_host}"
port = {broker_port}
heartbeat_interval_s = {o.heartbeat_interval_s}

[automation]
enabled = true
port = {automation_port}

[speech]
# The simulator's sound card: each utterance becomes a WAV file here (the last 50 are kept).
wav_dir = "{self.workdir / "speech"}"

[staff]
# The virtual staff badge (the panel's "badge" card) opens the maintenance menu.
badges = ["{SIM_BADGE_UID}"]

[idcard]
kind = "serial"
port = {_toml_string(self.idcard_path)}

[controller]
kind = "serial"
port = {_toml_string(self.controller_path)}
watchdog_timeout_s = {o.watchdog_timeout_s}
grace_s = {o.watchdog_grace_s}

[scanner]
{self._scanner_config()}
[camera]
{self._camera_config()}"""
        path.write_text(config, encoding="utf-8")
        return path

    def _start_terminal(self) -> None:
        o = self.options
        env = dict(os.environ)
        # The terminal honours [automation] enabled only with this marker in its environment.
        env[DEVELOPMENT_MARKER] = "simulator"
        env.update(o.extra_env)
        if o.force_xvfb or not env.get("DISPLAY"):
            self.display = VirtualDisplay(*o.size)
            env["DISPLAY"] = self.display.start()
        self.automation_port = _pick(o.automation_port)
        self._terminal_config = self.write_terminal_config(
            self.workdir / "terminal.toml",
            state_dir=self.workdir / "terminal-state",
            automation_port=self.automation_port,
        )
        self._terminal_env = env
        self._spawn_terminal()
        self.wait_for_screen("attract", timeout_s=60)

    def _spawn_terminal(self) -> None:
        with (self.workdir / "terminal.log").open("ab") as log_file:
            self.terminal = subprocess.Popen(
                [sys.executable, "-m", "terminal", "--config", str(self._terminal_config)],
                env=self._terminal_env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        self._stopping.set()
        if self.terminal is not None and self.terminal.poll() is None:
            self.terminal.send_signal(signal.SIGCONT)  # a frozen terminal must hear SIGTERM
        # The terminal's own clean stop (telemetry's last words, the outbox) is bounded well
        # inside this; only a hung one is killed.
        stop_process(self.terminal, timeout_s=25)
        self.terminal = None
        for stop in (
            self.display.stop if self.display else None,
            self.broker.close if self.broker else None,
            self.hub.stop if self.hub else None,
            self.camera.stop if self.camera else None,
            self.scanner.close if self.scanner else None,
            self.sam.close if self.sam else None,
            self.controller.close if self.controller else None,
            self.printer.stop if self.printer else None,
            self.card_slot.close if self.card_slot else None,
            self.pcscd.close if self.pcscd and self._owns_pcscd else None,
        ):
            if stop is not None:
                try:
                    stop()
                except Exception:  # keep stopping the rest; a leftover process must be visible
                    log.exception("stopping %s failed", getattr(stop, "__qualname__", stop))
        self.display = self.broker = self.hub = self.printer = self.card_slot = None
        self.scanner = None
        self.sam = None
        self.controller = None
        self.camera = None
        if self._owns_pcscd:
            self.pcscd = None

    @property
    def _owns_pcscd(self) -> bool:
        # A pcscd the caller passed in (options.pcscd) is theirs to stop, not ours.
        return self.pcscd is not None and self.options.pcscd is None

    # --- the terminal's automation API ---------------------------------------------------------

    @property
    def automation_url(self) -> str:
        return f"http://{LOOPBACK}:{self.automation_port}"

    def _terminal_gone(self) -> str | None:
        if self.terminal is not None and self.terminal.poll() is not None:
            return (f"the terminal exited with {self.terminal.returncode}; "
                    f"see {self.workdir / 'terminal.log'}")
        return None

    @property
    def client(self) -> AutomationClient:
        return AutomationClient(self.automation_url, self._terminal_gone)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None,
            timeout_s: float = 6.0) -> tuple[int, bytes]:
        return self.client.call(method, path, body, timeout_s)

    def screen(self) -> dict[str, Any]:
        return self.client.screen()

    def tap(self, target: str) -> dict[str, Any]:
        return self.client.tap(target)

    def wait_for_screen(self, screen_id: str, timeout_s: float = 15.0) -> dict[str, Any]:
        """Poll GET /screen until it shows ``screen_id``; AutomationError names what it shows."""
        return self.client.wait_for_screen(screen_id, timeout_s)
