"""Virtual ESC/POS network printer: a TCP server that prints receipts to PNG and text files."""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devices.printer.protocol import PAPER_58MM, PAPER_80MM
from simulator.escpos_render import (
    Cut,
    EscPosParser,
    Ignored,
    Paper,
    Parsed,
    StatusRequest,
    render_png,
    render_text,
)
from simulator.processes import StartsAndStops

log = logging.getLogger(__name__)

_PAPER_DOTS = {paper.mm: paper.dots for paper in (PAPER_58MM, PAPER_80MM)}
_POLL_S = 0.1  # how often blocked accepts and reads look at the stop flag


class PrinterStatus(enum.StrEnum):
    """What the printer answers to DLE EOT (and whether it prints at all)."""

    OK = "ok"
    NEAR_END = "near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    SILENT = "silent"  # hung: reads everything, answers nothing, prints nothing
    CUTTER_ERROR = "cutter_error"
    GARBAGE = "garbage"  # answers every DLE EOT with a byte that is not a valid status


# Replies to DLE EOT 1, 2, 3, 4; each has the fixed bits 0xx1xx10 (reference/devices.md 4.1).
_STATUS_BYTES: dict[PrinterStatus, tuple[int, int, int, int]] = {
    PrinterStatus.OK: (0x12, 0x12, 0x12, 0x12),
    PrinterStatus.NEAR_END: (0x12, 0x12, 0x12, 0x1E),  # n=4 bits 2,3: near-end sensor
    # Off-line (n=1 bit 3) because printing stopped at paper end (n=2 bit 5); n=4 bits 5,6.
    PrinterStatus.PAPER_OUT: (0x1A, 0x32, 0x12, 0x72),
    PrinterStatus.COVER_OPEN: (0x1A, 0x16, 0x12, 0x12),  # off-line, n=2 bit 2: cover open
    # Off-line, n=2 bit 6: error occurred, n=3 bit 3: auto-cutter error.
    PrinterStatus.CUTTER_ERROR: (0x1A, 0x52, 0x1A, 0x12),
    PrinterStatus.GARBAGE: (0xFF, 0xFF, 0xFF, 0xFF),  # bits 0 and 7 set: never valid
}
_PRINTING = frozenset({PrinterStatus.OK, PrinterStatus.NEAR_END})


@dataclass(frozen=True)
class PrintedReceipt:
    """One receipt as it left the printer; ``complete`` is False if it was never cut."""

    index: int
    png_path: Path
    text: str
    raw: bytes  # the bytes that printed it, without the DLE EOT requests around it
    printed_at: dt.datetime
    complete: bool
    notes: tuple[str, ...]  # commands skipped, lines wrapped, paper running out


class VirtualPrinter(StartsAndStops):
    """An 80 or 58 mm ESC/POS printer on a TCP port, with a settable status and paper supply."""

    def __init__(
        self, *, out_dir: Path, host: str = "127.0.0.1", port: int = 0, paper_mm: int = 80
    ) -> None:
        if paper_mm not in _PAPER_DOTS:
            raise ValueError(f"paper_mm must be one of {sorted(_PAPER_DOTS)}")
        self._out_dir = out_dir
        self._host = host
        self._port = port
        self._dots = _PAPER_DOTS[paper_mm]
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._status = PrinterStatus.OK
        self._lines_left: int | None = None
        self._paper = Paper(self._dots)
        self._raw = bytearray()
        self._discarding = False
        self._bytes_received = 0
        self._reply_delay_s = 0.0
        self._receipts: list[PrintedReceipt] = []
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._clients: set[socket.socket] = set()

    # -- lifecycle --

    def start(self) -> None:
        if self._listener is not None:
            raise RuntimeError("virtual printer already started")
        self._out_dir.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # So a test (or the simulator) can restart the printer on the same port at once.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self._host, self._port))
        # A restarted printer keeps its address, as a real one does after a power cycle.
        self._port = listener.getsockname()[1]
        listener.listen(4)
        listener.settimeout(_POLL_S)
        self._listener = listener
        self._stopping.clear()
        self._spawn(self._accept_loop, "vprinter-accept")
        log.info("virtual printer listening on %s:%d", *self.address)

    def stop(self) -> None:
        self._stopping.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=2.0)
        self._threads = []
        with self._lock:
            self._finish_receipt(complete=False)



    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None:
            raise RuntimeError("virtual printer not started")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    # -- controls --

    @property
    def status(self) -> PrinterStatus:
        with self._lock:
            return self._status

    @status.setter
    def status(self, value: PrinterStatus) -> None:
        with self._lock:
            self._status = PrinterStatus(value)
            if self._status in _PRINTING:
                self._discarding = False

    @property
    def reply_delay_s(self) -> float:
        """Delay before each DLE EOT reply: a slow printer, answering after the driver gave up."""
        with self._lock:
            return self._reply_delay_s

    @reply_delay_s.setter
    def reply_delay_s(self, value: float) -> None:
        if value < 0:
            raise ValueError("reply_delay_s must be >= 0")
        with self._lock:
            self._reply_delay_s = value

    def send_unsolicited(self, data: bytes) -> None:
        """Send bytes nobody asked for to every client (automatic status back, power-on noise)."""
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.sendall(data)

    def paper_out_after(self, lines: int) -> None:
        """Let ``lines`` more rows print (text lines, blank lines, QR symbols), then run out."""
        if lines < 0:
            raise ValueError("lines must be >= 0")
        with self._lock:
            self._lines_left = lines
            if lines == 0:
                self._run_out()

    @property
    def bytes_received(self) -> int:
        """Print data received so far, printed or discarded (DLE EOT requests not counted)."""
        with self._lock:
            return self._bytes_received

    def receipts(self) -> list[PrintedReceipt]:
        with self._lock:
            return list(self._receipts)

    def wait_for_receipts(self, count: int, timeout_s: float) -> list[PrintedReceipt]:
        """Block until at least ``count`` receipts exist; TimeoutError after ``timeout_s``."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._receipts) >= count, timeout_s):
                raise TimeoutError(f"{len(self._receipts)} of {count} receipts after {timeout_s} s")
            return list(self._receipts)

    # -- network --

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed by stop()
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.settimeout(_POLL_S)
            with self._lock:
                self._clients.add(client)
            self._spawn(self._serve, "vprinter-client", client)

    def _serve(self, client: socket.socket) -> None:
        parser = EscPosParser()
        try:
            while not self._stopping.is_set():
                try:
                    data = client.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                for parsed in parser.feed(data):
                    reply = self._handle(parsed)
                    if reply:
                        # The answer is fixed when asked; a slow printer only delivers it late.
                        delay = self.reply_delay_s
                        if delay and self._stopping.wait(delay):
                            break
                        client.sendall(reply)
        except OSError:
            log.info("virtual printer client went away")
        finally:
            with self._lock:
                self._clients.discard(client)
                # A client that hangs up without cutting still leaves its paper in the printer.
                self._finish_receipt(complete=False)
            client.close()

    # -- printing --

    def _handle(self, parsed: Parsed) -> bytes:
        command = parsed.command
        with self._lock:
            if isinstance(command, StatusRequest):
                replies = _STATUS_BYTES.get(self._status)
                return bytes((replies[command.n - 1],)) if replies else b""
            self._bytes_received += len(parsed.raw)
            if self._status not in _PRINTING:
                if not (isinstance(command, Ignored) and not command.note):
                    if not self._discarding:
                        log.info("virtual printer not printing (%s): data discarded", self._status)
                    self._discarding = True
                return b""
            self._raw += parsed.raw
            printed = self._paper.apply(command)
            if printed and self._lines_left is not None:
                self._lines_left -= printed
                if self._lines_left <= 0:
                    self._paper.drop_rows(-self._lines_left)  # those never came out
                    self._run_out()
                    return b""
            if isinstance(command, Cut):
                self._finish_receipt(complete=True)
            return b""

    def _run_out(self) -> None:
        """The roll ends: what was printed so far is all the resident gets (lock held)."""
        self._lines_left = None
        self._status = PrinterStatus.PAPER_OUT
        self._discarding = True
        self._paper.notes.append("paper ran out")
        self._finish_receipt(complete=False)

    def _finish_receipt(self, *, complete: bool) -> None:
        """Render what was printed since the last cut, if anything (lock held)."""
        has_content = self._paper.has_content
        rows, notes = self._paper.take()
        raw, self._raw = bytes(self._raw), bytearray()
        if not has_content:
            return
        index = len(self._receipts) + 1
        stem = self._out_dir / f"receipt-{index:04d}"
        png_path = stem.with_suffix(".png")
        text = render_text(rows, self._dots)
        render_png(rows, self._dots).save(png_path)
        stem.with_suffix(".txt").write_text(text, encoding="utf-8")
        stem.with_suffix(".bin").write_bytes(raw)
        self._receipts.append(
            PrintedReceipt(
                index=index,
                png_path=png_path,
                text=text,
                raw=raw,
                printed_at=dt.datetime.now(dt.UTC),
                complete=complete,
                notes=tuple(notes),
            )
        )
        self._changed.notify_all()
