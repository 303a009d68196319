"""Runs our own pcscd with the vpcd virtual reader on ports we choose, for the simulator and tests.

Facts this module is built on (checked against vsmartcard's ifd-vpcd.c and pcsc-lite 1.9.9):

- One vpcd reader.conf entry gives ONE reader with two slots, listening on CHANNELID and
  CHANNELID+1; pcscd names them "<FRIENDLYNAME> 00 00" and "<FRIENDLYNAME> 00 01". A second vpcd
  entry does not give more slots: pcscd loads the driver once and the driver keeps its slots in a
  static array indexed by slot number only, so the second reader's slots would overwrite the
  first's. Hence one entry and two slots.
- pcscd's socket path is fixed (/run/pcscd/pcscd.comm): one pcscd per machine. We refuse to start
  when another one answers there, and never kill a pcscd we did not start.
- vpcd has no hot-plug events; pcscd polls card presence about every 400 ms, so a card is seen
  some 0-400 ms after it connects.
- A vpcd reader cannot be hot-unplugged: pcscd reads reader.conf.d once, and on SIGUSR1
  (``pcscd --hotplug``) the Debian (libudev) build only rescans USB. The closest fault is a pcscd
  (re)started with or without the reader: ``restart(with_reader=False)``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from smartcard import scard

from simulator.processes import StartsAndStops, stop_process

PCSCD = "pcscd"
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
PCSCD_PID_FILE = Path("/run/pcscd/pcscd.pid")
VPCD_SLOTS = 2  # VPCDSLOTS in the Debian build of vsmartcard-vpcd
DEFAULT_VPCD_PORT = 35963  # what a stock vpcd config and `make sim` use; tests keep off it
FRIENDLY_NAME = "Virtual PCD"

_POLL_S = 0.02


class PcscdError(RuntimeError):
    """pcscd could not be started or did not become ready."""


class PcscdAlreadyRunningError(PcscdError):
    """Another pcscd (not ours) already serves the fixed socket path."""


def _port_free(port: int) -> bool:
    # vpcd binds 0.0.0.0 with SO_REUSEADDR; check the same way so TIME_WAIT does not count.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port_pair(avoid: tuple[int, ...] = (DEFAULT_VPCD_PORT, DEFAULT_VPCD_PORT + 1)) -> int:
    """A port P with P and P+1 both free (vpcd listens on both), never one of ``avoid``."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("0.0.0.0", 0))
            port = int(probe.getsockname()[1])
        if port + 1 < 65536 and not {port, port + 1} & set(avoid) and _port_free(port + 1):
            return port
    raise PcscdError("no two consecutive free TCP ports found")


def pcscd_answering(timeout: float = 0.5) -> bool:
    """True when some pcscd accepts connections on the fixed socket path."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(str(PCSCD_SOCKET))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _foreign_pcscd_pid() -> int | None:
    try:
        pid = int(PCSCD_PID_FILE.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _pcscd_processes() -> list[int]:
    """Live (not zombie) processes named pcscd, for the error message."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            name = fields[0].split("(", 1)[1]
            state = fields[1].split()[0]
        except (OSError, IndexError):
            continue
        if name == "pcscd" and state != "Z":
            found.append(int(stat.parent.name))
    return sorted(found)


def _describe(pid: int | None) -> str:
    # pcscd creates its socket before it writes its pid file; look the process up if need be.
    pids = [pid] if pid is not None else _pcscd_processes()
    described = []
    for each in pids:
        try:
            command = Path(f"/proc/{each}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            command = "?"
        described.append(f"pid {each}: {command.strip()}")
    return "; ".join(described) or "pid unknown"


def list_readers() -> list[str]:
    """Readers pcscd shows now; empty when there are none or pcscd is not answering."""
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return []
    try:
        hresult, readers = scard.SCardListReaders(context, [])
        return list(readers) if hresult == scard.SCARD_S_SUCCESS else []
    finally:
        scard.SCardReleaseContext(context)


def wait_card(reader: str, *, present: bool, timeout: float) -> bool:
    """Wait until pcscd reports a card in ``reader`` (or none); False on timeout."""
    deadline = time.monotonic() + timeout
    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    try:
        current = scard.SCARD_STATE_UNAWARE
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            hresult, states = scard.SCardGetStatusChange(
                context, max(remaining_ms, 0), [(reader, current)]
            )
            if hresult == scard.SCARD_S_SUCCESS:
                _, current, _ = states[0]
                if bool(current & scard.SCARD_STATE_PRESENT) == present:
                    return True
                current &= ~scard.SCARD_STATE_CHANGED
            if remaining_ms <= 0:
                return False
            if hresult not in (scard.SCARD_S_SUCCESS, scard.SCARD_E_TIMEOUT):
                time.sleep(_POLL_S)  # reader not there yet: look again shortly
    finally:
        scard.SCardReleaseContext(context)


class Pcscd(StartsAndStops):
    """Our pcscd with one vpcd reader (two slots) on ``base_port`` and ``base_port + 1``.

    ``Pcscd()`` picks free ports away from the default 35963, so tests never fight a running
    simulator for them; ``Pcscd(base_port=35963)`` gives the stock configuration.
    """

    def __init__(
        self,
        *,
        base_port: int | None = None,
    ) -> None:
        self.base_port = base_port if base_port is not None else free_port_pair()
        self._dir = Path(tempfile.mkdtemp(prefix="kiosk-pcscd-"))
        # Removed by close(), or at the latest when this object goes or the interpreter exits,
        # for callers that only stop().
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, ignore_errors=True)
        self._conf_dir = self._dir / "reader.conf.d"
        self._conf_dir.mkdir()
        self._log_path = self._dir / "pcscd.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._with_reader = True

    # --- ports and reader names ----------------------------------------------------------------

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(self.base_port + slot for slot in range(VPCD_SLOTS))

    def reader_name(self, slot: int) -> str:
        """The PC/SC name of vpcd slot 0 or 1: "Virtual PCD 00 00", "Virtual PCD 00 01".

        pcscd names a reader "<FRIENDLYNAME> <reader index> <slot>"; ours is its only reader.
        """
        if not 0 <= slot < VPCD_SLOTS:
            raise ValueError(f"vpcd has slots 0..{VPCD_SLOTS - 1}")
        return f"{FRIENDLY_NAME} 00 {slot:02X}"

    @property
    def with_reader(self) -> bool:
        """Whether pcscd was (last) started with the vpcd reader."""
        return self._with_reader

    @property
    def log_path(self) -> Path:
        return self._log_path

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0, *, with_reader: bool = True) -> None:
        """Start pcscd and wait until it answers and, ``with_reader``, lists both vpcd slots.

        ``with_reader=False`` starts it with no reader at all (the "no reader" fault).
        """
        if self.running:
            return
        self._with_reader = with_reader
        if with_reader:
            self._write_reader_conf()
        else:
            (self._conf_dir / "vpcd").unlink(missing_ok=True)
        self._check_prerequisites()
        foreign = _foreign_pcscd_pid()
        if pcscd_answering() or foreign is not None:
            raise PcscdAlreadyRunningError(
                f"a pcscd we did not start already runs ({_describe(foreign)}, socket "
                f"{PCSCD_SOCKET}); its socket path is fixed, so only one can run. Stop it first "
                "(a system one: `systemctl stop pcscd.socket pcscd.service`; one left behind by a "
                "killed test run has --config .../kiosk-pcscd-*: `kill <pid>`) and run again"
            )
        # A pcscd killed hard leaves its pid file and socket behind; with no live owner (checked
        # just above) they are stale and would make the new pcscd refuse to start.
        for stale in (PCSCD_PID_FILE, PCSCD_SOCKET):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        with self._log_path.open("ab") as log_file:
            # Error-level logging only: debug or APDU logging (-d, -a) would write card data.
            self._process = subprocess.Popen(
                [PCSCD, "--foreground", "--config", str(self._conf_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C handling, not the terminal's, stops it
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        """Stop our pcscd (SIGTERM, then SIGKILL after ``timeout``); virtual cards see EOF."""
        process, self._process = self._process, None
        stop_process(process, timeout)

    def restart(self, timeout: float = 10.0, *, with_reader: bool = True) -> None:
        """The "pcscd restarted" fault: stop and start again on the same ports."""
        self.stop()
        self.start(timeout, with_reader=with_reader)

    def close(self) -> None:
        self.stop()
        self._cleanup()



    # --- internals ---------------------------------------------------------------------------

    def _check_prerequisites(self) -> None:
        if shutil.which(PCSCD) is None:
            raise PcscdError(f"{PCSCD} not found: install the Debian package pcscd")
        if not VPCD_DRIVER.exists():
            raise PcscdError(f"{VPCD_DRIVER} not found: install vsmartcard-vpcd")

    def _write_reader_conf(self) -> None:
        (self._conf_dir / "vpcd").write_text(
            f'FRIENDLYNAME "{FRIENDLY_NAME}"\n'
            # /dev/null as host: vpcd listens (the virtual card connects), on port and port+1.
            f"DEVICENAME   /dev/null:0x{self.base_port:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{self.base_port:04X}\n"
        )

    def _our_readers(self) -> list[str]:
        return [r for r in list_readers() if r.startswith(FRIENDLY_NAME + " ")]

    def _wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            if self._process is not None and self._process.poll() is not None:
                raise PcscdError(
                    f"pcscd exited with {self._process.returncode}; see {self._log_path}"
                )
            if not pcscd_answering():
                return False
            return not self._with_reader or len(self._our_readers()) == VPCD_SLOTS

        self._wait_until(ready, timeout, "pcscd did not get ready")

    def _wait_until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise PcscdError(f"{what} within {timeout} s; see {self._log_path}")
            time.sleep(_POLL_S)
