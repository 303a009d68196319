"""Virtual co-processor: the real firmware files run in a board process at the far end of a pty.

How the firmware runs: under CPython, in a process of its own (``python -m simulator.vcontroller
--board``), with ``simulator.micropython_machine`` standing in for MicroPython's ``machine`` and
``time`` extras. The files are imported from devices/controller/firmware/ as they are (never
copied), ``main.py`` run as ``__main__`` as the Pico runs it at boot. A board reset is that
process ending and a new one starting; the stand-ins never enter any other process.

Why not a real MicroPython: Debian (bookworm) packages none for the host, PyPI none, and npm only
the WebAssembly port (@micropython/micropython-webassembly-pyscript 1.27). Tried: it loads under
node 20 and its ``js`` module reaches node's ``fs``, so a UART over the pty could be bridged by
hand, but its ``time.sleep_ms`` busy-waits (1 s of sleeps cost 1.07 s of CPU), so every
simulated board would hold a whole core of this 2-core machine, and it needs node and an npm
install in every set-up. The firmware is type-checked against the MicroPython stubs instead,
which catches CPython-only calls (``json.dumps(sort_keys=...)`` and the like).

The UART is a pty: the driver opens ``path``, a symlink to the pty's slave, as it would
/dev/serial0. The pty belongs to this controller, not to the board process, so a board reset
keeps the port as a Pi's GPIO UART does; ``unplug()`` removes the path and closes the pty (and
powers the board down, as pulling a USB-powered Pico does), ``replug()`` brings both back.

Control channel: the board process's stdin and stdout, one line each way per change (levels of
the door and tamper pins and the sensor's ADC reading in; output pin changes and ``wdt`` out).
``VirtualController`` counts the relay's cuts (``power_cycles``), queues them on
``power_events`` and calls ``on_power_cycle``, so a rig can restart the terminal it stands for.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import runpy
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from devices.controller.firmware import config as board
from simulator.processes import StartsAndStops
from simulator.pty_link import close_linked_pty, open_linked_pty

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "devices" / "controller" / "firmware"

_CAUSES = {"power_on": 1, "firmware_watchdog": 3, "soft": 5}
_EXIT_WDT = 70
_EXIT_RESET = 71


def adc_for_celsius(celsius: float) -> int:
    """The RP2040 sensor's read_u16() at ``celsius`` (the firmware's conversion inverted)."""
    microvolts = board.SENSOR_UV_AT_27C - (celsius - 27.0) * board.SENSOR_UV_PER_C
    return max(0, min(65535, round(microvolts * 65535 / board.ADC_VREF_UV)))


class ControllerUnplugged(RuntimeError):
    """The virtual controller is unplugged (or not started)."""


class VirtualController(StartsAndStops):
    """The co-processor at the far end of a pty. Thread-safe: a panel may open the door while a
    test resets the board."""

    def __init__(
        self,
        *,
        directory: str | Path | None = None,
        name: str = "controller",
        dictionary: str | Path | None = None,
        echo: bool = False,
        on_power_cycle: Callable[[int], None] | None = None,
        python: str = sys.executable,
    ) -> None:
        """``dictionary``: a directory holding another ``dictionary.py`` for the firmware (a board
        flashed from another release); ``echo``: the board process only echoes its UART (a
        baseline for benchmarks)."""
        self._own_directory = directory is None
        self._directory = Path(directory) if directory is not None else None
        self._name = name
        self._dictionary = Path(dictionary) if dictionary is not None else None
        self._echo = echo
        self._on_power_cycle = on_power_cycle
        self._python = python
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._generation = 0
        self._stopping = False
        self._door_open = False
        self._tamper = False
        self._celsius = 25.0
        self._outputs: dict[int, int] = {}
        self.power_cycles = 0
        self.boots = 0
        self.watchdog_resets = 0  # the firmware's own machine.WDT fired
        self.power_events: queue.Queue[int] = queue.Queue()
        self._host_powered = True

    # --- life ---------------------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The stable path the driver opens; set by start()."""
        if self._directory is None:
            raise RuntimeError("virtual controller not started")
        return str(self._directory / self._name)

    @property
    def plugged(self) -> bool:
        with self._lock:
            return self._master is not None

    def start(self) -> VirtualController:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="kiosk-vcontroller-"))
        self._directory.mkdir(parents=True, exist_ok=True)
        self._stopping = False
        self.replug()
        return self

    def stop(self) -> None:
        self.unplug()

    def close(self) -> None:
        self.stop()
        if self._own_directory and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def replug(self) -> None:
        """Plug the board in: a new pty behind ``path`` and the board boots (no-op if plugged)."""
        with self._lock:
            if self._master is not None:
                return
            master, slave, _device = open_linked_pty(Path(self.path), raw_master=True)
            self._master, self._slave = master, slave
            self._stopping = False
        self._spawn("power_on")

    def unplug(self) -> None:
        """Pull the cable: the board loses power, ``path`` goes away, the driver's port hangs up."""
        with self._lock:
            self._stopping = True
            process, self._process = self._process, None
            master, slave = self._master, self._slave
            self._master = self._slave = None
            link = Path(self.path) if self._directory is not None else None
        _kill(process)
        close_linked_pty(link, master, slave)

    def reset(self, cause: str = "power_on") -> None:
        """Reset the board (its reset button, a brown-out): the firmware boots again; the port
        stays. ``cause``: power_on, firmware_watchdog or soft, as machine.reset_cause() says."""
        if cause not in _CAUSES:
            raise ValueError(f"cause must be one of {sorted(_CAUSES)}")
        with self._lock:
            if self._master is None:
                raise ControllerUnplugged("virtual controller is unplugged")
            process, self._process = self._process, None
        _kill(process)
        self._spawn(cause)

    def hang(self) -> None:
        """Freeze the firmware's main loop: its own watchdog (machine.WDT) resets the board."""
        self._command("hang")

    # --- the world ----------------------------------------------------------------------------

    def door(self, open: bool) -> None:
        self._door_open = open
        level = board.DOOR_OPEN_LEVEL if open else 1 - board.DOOR_OPEN_LEVEL
        self._command(f"in {board.DOOR_PIN} {level}")

    def tamper(self, triggered: bool) -> None:
        self._tamper = triggered
        level = board.TAMPER_TRIGGERED_LEVEL if triggered else 1 - board.TAMPER_TRIGGERED_LEVEL
        self._command(f"in {board.TAMPER_PIN} {level}")

    def temperature(self, celsius: float) -> None:
        if not -40 <= celsius <= 125:
            raise ValueError("the RP2040's sensor reads -40..125 °C")
        self._celsius = celsius
        self._command(f"adc {board.TEMP_ADC_CHANNEL} {adc_for_celsius(celsius)}")

    def send_garbage(self, data: bytes) -> None:
        """Line noise on the board's TX line, as the driver will read it."""
        with self._lock:
            if self._master is None:
                raise ControllerUnplugged("virtual controller is unplugged")
            os.write(self._master, data)

    @property
    def door_open(self) -> bool:
        return self._door_open

    @property
    def tamper_triggered(self) -> bool:
        return self._tamper

    @property
    def celsius(self) -> float:
        """What the sensor reads now (set by ``temperature``)."""
        return self._celsius

    @property
    def host_powered(self) -> bool:
        """False while the relay cuts the terminal's power."""
        with self._lock:
            return self._host_powered

    @property
    def fan_on(self) -> bool:
        with self._lock:
            return self._outputs.get(board.FAN_PIN) == board.FAN_ON_LEVEL

    @property
    def running(self) -> bool:
        with self._lock:
            return self._process is not None and self._process.poll() is None

    # --- the board process --------------------------------------------------------------------

    def _spawn(self, cause: str) -> None:
        with self._lock:
            if self._master is None or self._stopping:
                return
            master = self._master
            self._generation += 1
            generation = self._generation
            command = [
                self._python,
                "-m",
                "simulator.vcontroller",
                "--board",
                "--uart-fd",
                str(master),
                "--reset-cause",
                cause,
                "--door-open",
                str(int(self._door_open)),
                "--tamper",
                str(int(self._tamper)),
                "--celsius",
                str(self._celsius),
            ]
            if self._dictionary is not None:
                command += ["--dictionary", str(self._dictionary)]
            if self._echo:
                command.append("--echo")
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=(master,),
                # Its own process group: a Ctrl-C in a terminal reaches us, and we stop it.
                start_new_session=True,
            )
            self._process = process
            self._outputs.clear()
            self.boots += 1
        threading.Thread(
            target=self._watch, args=(process, generation), name="vcontroller-board", daemon=True
        ).start()

    def _command(self, line: str) -> None:
        with self._lock:
            process = self._process
        if process is None or process.stdin is None:
            return  # unplugged or between two boots: the next boot gets the world from its args
        with contextlib.suppress(OSError, ValueError):
            process.stdin.write(line.encode() + b"\n")
            process.stdin.flush()

    def _watch(self, process: subprocess.Popen[bytes], generation: int) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            self._report(raw.decode(errors="replace").split())
        status = process.wait()
        with self._lock:
            current = generation == self._generation and not self._stopping
        if not current:
            return
        if status == _EXIT_WDT:
            self.watchdog_resets += 1
            self._spawn("firmware_watchdog")
        elif status == _EXIT_RESET:
            self._spawn("soft")

    def _report(self, words: list[str]) -> None:
        if len(words) != 3 or words[0] != "out":
            return
        pin, level = int(words[1]), int(words[2])
        cut = None
        with self._lock:
            self._outputs[pin] = level
            if pin == board.RELAY_PIN:
                powered = level != board.RELAY_CUT_LEVEL
                if self._host_powered and not powered:
                    self.power_cycles += 1
                    cut = self.power_cycles
                self._host_powered = powered
        if cut is not None:
            self.power_events.put(cut)
            if self._on_power_cycle is not None:
                self._on_power_cycle(cut)


def _kill(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    # SIGKILL: a reset is instant, the firmware gets no chance to say goodbye.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


# --- inside the board process -------------------------------------------------------------------


def _run_board(args: argparse.Namespace) -> int:
    # Here, not at the top: the stand-ins exist in the board process and nowhere else.
    from simulator.micropython_machine import machine, utime  # noqa: PLC0415

    # Our stdout is the control channel; anything the firmware prints goes to stderr.
    report_stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    report_lock = threading.Lock()

    def report(line: str) -> None:
        with report_lock, contextlib.suppress(OSError, ValueError):
            report_stream.write(line + "\n")
            report_stream.flush()

    if args.echo:
        return _echo(args.uart_fd)
    door_level = board.DOOR_OPEN_LEVEL if args.door_open else 1 - board.DOOR_OPEN_LEVEL
    tamper_level = (
        board.TAMPER_TRIGGERED_LEVEL if args.tamper else 1 - board.TAMPER_TRIGGERED_LEVEL
    )
    machine.install(
        uart_fd=args.uart_fd,
        reset_cause=_CAUSES[args.reset_cause],
        inputs={board.DOOR_PIN: door_level, board.TAMPER_PIN: tamper_level},
        adc={board.TEMP_ADC_CHANNEL: adc_for_celsius(args.celsius)},
        report=report,
    )
    utime.install()
    sys.modules["machine"] = machine
    # The board's root: the firmware's modules import each other by bare name (`import config`).
    paths = [str(FIRMWARE_DIR)]
    if args.dictionary:
        paths.insert(0, str(Path(args.dictionary).resolve()))
    sys.path[0:0] = paths
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    runpy.run_path(str(FIRMWARE_DIR / "main.py"), run_name="__main__")
    return 0


def _echo(fd: int) -> int:
    """A board that sends back whatever it receives: the benchmark's baseline."""
    os.set_blocking(fd, True)
    while True:
        select.select([fd], [], [])
        data = os.read(fd, 4096)
        if data:
            os.write(fd, data)


def main(argv: list[str] | None = None) -> int:
    """Run a virtual controller; commands on stdin: door open|closed, tamper on|off, temp C,
    reset, hang, garbage, unplug, replug."""
    parser = argparse.ArgumentParser(prog="python -m simulator.vcontroller", description=__doc__)
    parser.add_argument("--link", help="the port's path (a symlink; default: in a temp dir)")
    parser.add_argument("--board", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--uart-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--reset-cause", default="power_on", help=argparse.SUPPRESS)
    parser.add_argument("--door-open", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--tamper", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--celsius", type=float, default=25.0, help=argparse.SUPPRESS)
    parser.add_argument("--dictionary", help="a directory with another firmware dictionary.py")
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.board:
        return _run_board(args)
    link = Path(args.link) if args.link else None
    controller = VirtualController(
        directory=link.parent if link else None,
        name=link.name if link else "controller",
        dictionary=args.dictionary,
        on_power_cycle=lambda count: print(f"power cycle {count}", flush=True),
    )
    with controller:
        print(f"Controller: {controller.path}", flush=True)
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            try:
                _console(controller, words)
            except (ValueError, ControllerUnplugged) as exc:
                print(f"not done: {exc}", file=sys.stderr, flush=True)
    return 0


def _console(controller: VirtualController, words: list[str]) -> None:
    verb, rest = words[0], words[1:]
    if verb == "door" and rest:
        controller.door(rest[0] == "open")
    elif verb == "tamper" and rest:
        controller.tamper(rest[0] == "on")
    elif verb == "temp" and rest:
        controller.temperature(float(rest[0]))
    elif verb == "reset":
        controller.reset()
    elif verb == "hang":
        controller.hang()
    elif verb == "garbage":
        controller.send_garbage(os.urandom(32))
    elif verb == "unplug":
        controller.unplug()
    elif verb == "replug":
        controller.replug()
    else:
        raise ValueError(f"unknown command {' '.join(words)!r}")


if __name__ == "__main__":
    sys.exit(main())
