"""Shared bench set-up: display, pcscd, virtual devices, and child processes that always stop.

One ``BenchEnv`` serves every benchmark of a run: a private Xvfb shared by the terminal and its
baselines, our own pcscd with the vpcd reader, and the simulator rig's virtual printer, hub and
broker (the rig is started without a terminal; the benchmarks start terminals themselves, with a
config like the one the rig writes, so each can have its own NOTIFY_SOCKET and state directory).
Every process started here is stopped on the way out, whatever happened, and every wait has a
timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from simulator.automation_client import AutomationClient
from simulator.display import VirtualDisplay
from simulator.pcsc import Pcscd, PcscdAlreadyRunningError
from simulator.processes import LOOPBACK, free_port, stop_process
from simulator.rig import RigOptions, SimulatorRig
from simulator.vcard import VirtualCardSlot
from terminal.automation import DEVELOPMENT_MARKER

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SIZE = (1920, 1080)  # what `make sim` shows; the largest screen the product supports
READY_TIMEOUT_S = 60.0  # a cold start on a busy 2-core box takes seconds, never a minute
STOP_TIMEOUT_S = 10.0
MB = 1_000_000  # budgets say "MB": decimal megabytes, the stricter reading


class BenchError(RuntimeError):
    """A benchmark could not run (a piece did not start, a screen never came); says why."""


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def proc_status_kib(pid: int, key: str) -> int:
    """A ``kB`` line of /proc/<pid>/status (VmRSS, VmHWM), in KiB."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as e:
        raise BenchError(f"cannot read /proc/{pid}/status: {e}") from e
    for line in lines:
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {key}")


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so the ``finally`` blocks stop what we started."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


# --- the NOTIFY_SOCKET stand-in ------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One datagram: its ``KEY=value`` lines and when it arrived (``time.monotonic()``)."""

    fields: dict[str, str]
    received: float

    def stamp(self) -> float:
        """When it was sent: the hook's BENCH_MONOTONIC_NS when present, else when it arrived."""
        ns = self.fields.get("BENCH_MONOTONIC_NS")
        return int(ns) / 1e9 if ns is not None else self.received


class NotifySocket:
    """A datagram socket where systemd's would be; children find it through NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))

    def close(self) -> None:
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def drain(self) -> None:
        """Drop whatever is queued (late WATCHDOG=1s, a previous child's STOPPING=1)."""
        self._sock.setblocking(False)
        try:
            while True:
                self._sock.recv(4096)
        except BlockingIOError:
            pass
        finally:
            self._sock.setblocking(True)

    def wait_for(
        self,
        wanted: Callable[[Notification], bool],
        timeout_s: float,
        child: Child | None = None,
        what: str = "notification",
        received: list[Notification] | None = None,
    ) -> Notification:
        """The first datagram ``wanted`` accepts; BenchError on timeout or if ``child`` exits.

        Every datagram read on the way, the wanted one included, is appended to ``received``.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"no {what} within {timeout_s:.0f} s" + _log_hint(child))
            # Short slices, so a child that died is noticed instead of waited out.
            self._sock.settimeout(min(left, 0.25))
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                if child is not None and not child.alive():
                    raise BenchError(
                        f"{child.name} exited with {child.returncode} before {what}"
                        + _log_hint(child)
                    ) from None
                continue
            arrived = time.monotonic()
            fields = dict(
                line.split("=", 1) for line in data.decode(errors="replace").splitlines()
                if "=" in line
            )
            note = Notification(fields, arrived)
            if received is not None:
                received.append(note)
            if wanted(note):
                return note


def ready(note: Notification) -> bool:
    return note.fields.get("READY") == "1"


def screen_event(event: str, screen: str) -> Callable[[Notification], bool]:
    def matches(note: Notification) -> bool:
        fields = note.fields
        return fields.get("BENCH_EVENT") == event and fields.get("BENCH_SCREEN") == screen

    return matches


def _log_hint(child: Child | None) -> str:
    if child is None:
        return ""
    return f"; last lines of {child.log_path}:\n{child.log_tail()}"


# --- child processes -----------------------------------------------------------------------------


class Child:
    """A process we started (terminal or baseline window), its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("ab") as log_file:
            self.started = time.monotonic()  # just before the fork: "process start"
            self._process = subprocess.Popen(
                argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    def alive(self) -> bool:
        return self._process.poll() is None

    def rss_kib(self) -> int:
        return proc_status_kib(self.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return proc_status_kib(self.pid, "VmHWM")

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (the terminal shuts down cleanly on it), SIGKILL if it does not go in time."""
        stop_process(self._process, STOP_TIMEOUT_S)


# --- the terminal's automation API ---------------------------------------------------------------


def automation_for(port: int, child: Child) -> AutomationClient:
    """The shared automation client, told when the benchmark's terminal process has gone."""
    return AutomationClient(
        f"http://{LOOPBACK}:{port}",
        lambda: None if child.alive() else f"{child.name} exited" + _log_hint(child),
    )


# --- the environment -----------------------------------------------------------------------------


def start_own_pcscd(wait_s: float) -> Pcscd:
    """Our pcscd; while one we did not start holds the fixed socket, wait up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    told = False
    while True:
        pcscd = Pcscd()
        try:
            pcscd.start()
            return pcscd
        except PcscdAlreadyRunningError as e:
            pcscd.close()
            if time.monotonic() >= deadline:
                raise BenchError(f"gave up after {wait_s:.0f} s: {e}") from e
            if not told:
                print(f"waiting up to {wait_s:.0f} s for a pcscd we did not start to exit",
                      file=sys.stderr, flush=True)
                told = True
            time.sleep(2.0)
        except BaseException:
            pcscd.close()
            raise


@dataclass
class BenchEnv:
    """Everything the benchmarks need; use as a context manager, which stops all of it."""

    size: tuple[int, int] = DEFAULT_SIZE
    pcscd_wait_s: float = 120.0
    workdir: Path = field(init=False)
    display: str = field(init=False)
    pcscd: Pcscd = field(init=False)
    rig: SimulatorRig = field(init=False)
    notify: NotifySocket = field(init=False)
    _stack: contextlib.ExitStack = field(init=False)
    _children: list[Child] = field(init=False, default_factory=list)
    _runs: int = field(init=False, default=0)

    def __enter__(self) -> BenchEnv:
        self._stack = contextlib.ExitStack()
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        stack = self._stack
        self.workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kiosk-bench-")))
        xvfb = VirtualDisplay(*self.size)
        stack.callback(xvfb.stop)
        self.display = xvfb.start()
        self.pcscd = start_own_pcscd(self.pcscd_wait_s)
        stack.callback(self.pcscd.close)
        self.rig = SimulatorRig(RigOptions(
            workdir=self.workdir / "sim", printer_port=0, hub_port=0, pcscd=self.pcscd,
            start_terminal=False,
        ))
        self.rig.start()
        stack.callback(self.rig.stop)
        self.notify = NotifySocket(self.workdir / "notify.sock")
        stack.callback(self.notify.close)
        # Registered last, so it runs first: terminals go before the display, pcscd and devices.
        stack.callback(self._stop_children)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _stop_children(self) -> None:
        for child in self._children:
            with contextlib.suppress(Exception):
                child.stop()

    # --- pieces for the benchmarks -----------------------------------------------------------

    @property
    def card_slot(self) -> VirtualCardSlot:
        slot = self.rig.card_slot
        if slot is None:
            raise BenchError("the rig has no virtual card slot")
        return slot

    @property
    def reader(self) -> str:
        return self.pcscd.reader_name(0)

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["DISPLAY"] = self.display
        env["NOTIFY_SOCKET"] = str(self.notify.path)
        # The terminal serves the automation API its config asks for only with this marker.
        env[DEVELOPMENT_MARKER] = "bench"
        return env

    def _next(self, name: str) -> Path:
        self._runs += 1
        return self.workdir / f"{self._runs:03d}-{name}.log"

    def terminal_config(self, state_dir: Path, automation_port: int) -> Path:
        """The config ``SimulatorRig`` writes (virtual devices, automation API on), our size."""
        return self.rig.write_terminal_config(
            state_dir.with_suffix(".toml"), state_dir=state_dir,
            automation_port=automation_port, size=self.size,
        )

    def spawn_terminal(
        self, state_dir: Path, *, hooked: bool = False, extra_env: dict[str, str] | None = None
    ) -> tuple[Child, AutomationClient]:
        """``python -m terminal --config ...`` (or the hooked one), as the rig starts it."""
        port = free_port()
        config = self.terminal_config(state_dir, port)
        module = "bench.hooked_terminal" if hooked else "terminal"
        self.notify.drain()
        child = Child("terminal", [sys.executable, "-m", module, "--config", str(config)],
                      self.child_env() | (extra_env or {}), self._next("terminal"))
        self._children.append(child)
        return child, automation_for(port, child)

    def spawn_child(self, name: str, args: list[str]) -> Child:
        """``python <args>`` on the bench display, with the notify socket, logged like the rest."""
        self.notify.drain()
        child = Child(name, [sys.executable, *args], self.child_env(), self._next(name))
        self._children.append(child)
        return child

    def spawn_bare_kivy(self) -> Child:
        width, height = self.size
        home = self.workdir / "bare-kivy-home"
        self.notify.drain()
        child = Child(
            "bare Kivy window",
            [sys.executable, "-m", "bench.bare_kivy", "--width", str(width), "--height",
             str(height), "--home", str(home)],
            self.child_env(), self._next("bare-kivy"),
        )
        self._children.append(child)
        return child

    def wait_ready(self, child: Child, timeout_s: float = READY_TIMEOUT_S) -> float:
        """Seconds from ``child``'s start until its READY=1 arrived."""
        note = self.notify.wait_for(ready, timeout_s, child, "READY=1")
        return note.received - child.started

    def stop(self, child: Child) -> None:
        child.stop()
        with contextlib.suppress(ValueError):
            self._children.remove(child)


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One benchmark's headline figure against its budget, for the summary table."""

    name: str
    figure: str
    budget: str
    passed: bool
    baseline: str = ""

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"


def summary_table(verdicts: Sequence[Verdict]) -> str:
    rows = [("benchmark", "figure", "baseline (same run)", "budget", "result")]
    rows += [(v.name, v.figure, v.baseline, v.budget, v.status) for v in verdicts]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
