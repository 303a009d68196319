"""Receipt printer driver: python-escpos transports, DLE EOT status with our timeout, print jobs."""

from __future__ import annotations

import enum
import errno
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any

from escpos.constants import QR_ECLEVEL_M
from escpos.exceptions import DeviceNotFoundError
from escpos.printer import Dummy, Network, Serial, Usb

from devices.base import (
    CoverOpen,
    DeviceState,
    DeviceTimeout,
    PaperOut,
    PrinterError,
    PrinterOffline,
    Receipt,
)
from devices.printer.protocol import (
    ESC_INIT,
    FS_CHINESE_ON,
    Paper,
    PrinterReason,
    PrintFeed,
    PrintLine,
    PrintQr,
    StatusReplyError,
    StatusRequest,
    WordBreaker,
    decode_status,
    device_state,
    encode_text,
    layout_receipt,
    paper_for,
    status_byte,
    status_request,
)

log = logging.getLogger(__name__)


# --- connection settings --------------------------------------------------------------------------


class ConnectionKind(enum.StrEnum):
    NETWORK = "network"
    USB = "usb"
    SERIAL = "serial"


@dataclass(frozen=True)
class PrinterConnection:
    """Where the printer is: a TCP host and port, a USB vendor/product id, or a serial device."""

    kind: ConnectionKind
    host: str = ""
    port: int = 9100
    vendor_id: int = 0
    product_id: int = 0
    in_endpoint: int = 0x82
    out_endpoint: int = 0x01
    device: str = ""
    baudrate: int = 9600

    def __post_init__(self) -> None:
        if self.kind is ConnectionKind.NETWORK:
            if not self.host:
                raise ValueError("network printer needs a host")
            if not 1 <= self.port <= 65535:
                raise ValueError(f"printer port {self.port} out of range 1..65535")
        elif self.kind is ConnectionKind.USB:
            if not (0 < self.vendor_id <= 0xFFFF and 0 < self.product_id <= 0xFFFF):
                raise ValueError("USB printer needs a vendor and product id in 1..0xFFFF")
        elif self.kind is ConnectionKind.SERIAL:
            if not self.device:
                raise ValueError("serial printer needs a device path")
            if self.baudrate <= 0:
                raise ValueError("serial baud rate must be positive")

    @classmethod
    def network(cls, host: str, port: int = 9100) -> PrinterConnection:
        return cls(ConnectionKind.NETWORK, host=host, port=port)

    @classmethod
    def usb(
        cls, vendor_id: int, product_id: int, *, in_endpoint: int = 0x82, out_endpoint: int = 0x01
    ) -> PrinterConnection:
        return cls(
            ConnectionKind.USB,
            vendor_id=vendor_id,
            product_id=product_id,
            in_endpoint=in_endpoint,
            out_endpoint=out_endpoint,
        )

    @classmethod
    def serial(cls, device: str, baudrate: int = 9600) -> PrinterConnection:
        return cls(ConnectionKind.SERIAL, device=device, baudrate=baudrate)


# --- transports -----------------------------------------------------------------------------------


class _LinkLost(PrinterOffline):
    """The transport broke (peer closed, reset, unplugged): close it and open a new one."""


class _LinkTimeout(DeviceTimeout):
    """A write did not complete within its timeout; the byte stream may be cut mid-command."""


def _is_timeout(exc: BaseException) -> bool:
    # pyserial raises SerialTimeoutException and pyusb USBTimeoutError, both OSError subclasses
    # without a common base; we do not import either package just to name them.
    return (
        isinstance(exc, TimeoutError)
        or getattr(exc, "errno", None) == errno.ETIMEDOUT
        or type(exc).__name__ in ("SerialTimeoutException", "USBTimeoutError")
    )


class _Link:
    """One transport through a python-escpos printer object, plus status reads with our timeout.

    python-escpos' own ``_read`` uses whatever timeout the transport was opened with (60 s for a
    socket) and 3.1 never validates what it reads, so reads are done here, per transport.
    """

    def __init__(
        self, connection: PrinterConnection, status_timeout_s: float, job_timeout_s: float
    ) -> None:
        self._connection = connection
        self._status_timeout_s = status_timeout_s
        self._job_timeout_s = job_timeout_s
        self._printer: Any = None

    @property
    def is_open(self) -> bool:
        return self._printer is not None

    def open(self) -> None:
        printer = self._new_printer()
        try:
            printer.open()
        except DeviceNotFoundError as exc:
            raise PrinterOffline("printer cannot be reached") from exc
        except RuntimeError as exc:
            # python-escpos raises RuntimeError when pyusb or pyserial is not installed.
            raise PrinterOffline("printer transport support is not installed") from exc
        self._printer = printer
        self._configure()

    def close(self) -> None:
        printer, self._printer = self._printer, None
        if printer is not None:
            try:
                printer.close()
            except OSError:
                log.debug("printer transport close failed", exc_info=True)

    def write(self, data: bytes, timeout_s: float) -> None:
        assert self._printer is not None
        try:
            self._write(data, timeout_s)
        except OSError as exc:
            if _is_timeout(exc):
                raise _LinkTimeout("printer did not take data in time") from exc
            raise _LinkLost("printer connection lost") from exc

    def _new_printer(self) -> Any:
        raise NotImplementedError

    def _configure(self) -> None:
        """Transport settings python-escpos does not expose, applied right after opening."""

    def _write(self, data: bytes, timeout_s: float) -> None:
        self._printer._raw(data)

    def drain(self) -> None:
        """Discard unread input, so a late reply to an earlier request is not read as a new one."""
        raise NotImplementedError

    def read_reply(self, timeout_s: float) -> bytes:
        """Whatever the printer sent within ``timeout_s``; b"" if nothing. Raises _LinkLost."""
        raise NotImplementedError


class _NetworkLink(_Link):
    def _new_printer(self) -> Any:
        # The constructor's timeout is the connect timeout: a host that drops SYNs must fail
        # within the status timeout, not python-escpos' 60 s default.
        return Network(self._connection.host, self._connection.port, timeout=self._status_timeout_s)

    def _configure(self) -> None:
        sock: socket.socket = self._printer.device
        # A 3-byte DLE EOT right after a large job would otherwise wait for the ACK of the job's
        # last segment (Nagle + delayed ACK, up to 40-200 ms) before it even leaves.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _write(self, data: bytes, timeout_s: float) -> None:
        # Since Python 3.5 a socket timeout bounds the whole sendall, so one timeout covers a job.
        sock: socket.socket = self._printer.device
        sock.settimeout(timeout_s)
        self._printer._raw(data)

    def drain(self) -> None:
        assert self._printer is not None
        sock: socket.socket = self._printer.device
        sock.setblocking(False)
        try:
            while True:
                try:
                    chunk = sock.recv(256)
                except BlockingIOError:
                    return
                if not chunk:
                    raise _LinkLost("printer closed the connection")
        except OSError as exc:
            raise _LinkLost("printer connection lost") from exc
        finally:
            sock.settimeout(self._job_timeout_s)

    def read_reply(self, timeout_s: float) -> bytes:
        assert self._printer is not None
        sock: socket.socket = self._printer.device
        sock.settimeout(timeout_s)
        try:
            data: bytes = self._printer._read()
        except TimeoutError:
            return b""
        except OSError as exc:
            raise _LinkLost("printer connection lost") from exc
        if not data:
            raise _LinkLost("printer closed the connection")
        return data


class _SerialLink(_Link):
    def _new_printer(self) -> Any:
        return Serial(
            self._connection.device, self._connection.baudrate, timeout=self._status_timeout_s
        )

    def _configure(self) -> None:
        # python-escpos sets no write timeout, and with DSR/DTR flow control a printer that holds
        # DSR low (paper out, cover open) blocks write() forever.
        self._printer.device.write_timeout = self._job_timeout_s

    def _write(self, data: bytes, timeout_s: float) -> None:
        self._printer.device.write_timeout = timeout_s
        self._printer._raw(data)

    def drain(self) -> None:
        assert self._printer is not None
        try:
            self._printer.device.reset_input_buffer()
        except OSError as exc:
            raise _LinkLost("serial printer lost") from exc

    def read_reply(self, timeout_s: float) -> bytes:
        assert self._printer is not None
        self._printer.device.timeout = timeout_s
        try:
            return bytes(self._printer.device.read(16))  # b"" on timeout: a serial line has no EOF
        except OSError as exc:
            raise _LinkLost("serial printer lost") from exc


class _UsbLink(_Link):
    def _new_printer(self) -> Any:
        # pyusb timeouts are milliseconds; python-escpos passes its ``timeout`` straight through
        # (and its default 0 means wait forever).
        return Usb(
            self._connection.vendor_id,
            self._connection.product_id,
            timeout=max(1, round(self._job_timeout_s * 1000)),
            in_ep=self._connection.in_endpoint,
            out_ep=self._connection.out_endpoint,
        )

    def _write(self, data: bytes, timeout_s: float) -> None:
        self._printer.device.write(
            self._connection.out_endpoint, data, max(1, round(timeout_s * 1000))
        )

    def drain(self) -> None:
        for _ in range(8):
            if not self._read_usb(0.001):
                return

    def read_reply(self, timeout_s: float) -> bytes:
        return self._read_usb(timeout_s)

    def _read_usb(self, timeout_s: float) -> bytes:
        assert self._printer is not None
        try:
            data = self._printer.device.read(
                self._connection.in_endpoint, 16, max(1, round(timeout_s * 1000))
            )
        except OSError as exc:  # pyusb's USBError is an OSError
            if _is_timeout(exc):
                return b""
            raise _LinkLost("USB printer lost") from exc
        return bytes(data)


def _make_link(
    connection: PrinterConnection, status_timeout_s: float, job_timeout_s: float
) -> _Link:
    if connection.kind is ConnectionKind.NETWORK:
        return _NetworkLink(connection, status_timeout_s, job_timeout_s)
    if connection.kind is ConnectionKind.USB:
        return _UsbLink(connection, status_timeout_s, job_timeout_s)
    return _SerialLink(connection, status_timeout_s, job_timeout_s)


# --- job encoding ---------------------------------------------------------------------------------


def encode_receipt(receipt: Receipt, paper: Paper, words: WordBreaker | None = None) -> bytes:
    """The complete ESC/POS byte stream for one receipt, from ESC @ to the cut.

    Built in a python-escpos Dummy so it goes to the printer in one write under one timeout.
    ``words`` splits Chinese text into words, so lines break between them (养老, not 养/老).
    """
    out: Any = Dummy()
    out._raw(ESC_INIT + FS_CHINESE_ON)
    # The modes ESC @ leaves us in; only changes are sent.
    align, bold, large = "left", False, False
    for item in layout_receipt(receipt, paper, words):
        if isinstance(item, PrintLine):
            if item.align.value != align:
                align = item.align.value
                out.set(align=align)
            if item.bold != bold:
                bold = item.bold
                out.set(bold=bold)
            if item.large != large:
                large = item.large
                # GS ! (custom_size), not ESC ! (python-escpos' double_width/height): on Epson
                # ESC ! only sizes alphanumerics, GS ! sizes Chinese characters too.
                size = 2 if large else 1
                out.set(custom_size=True, width=size, height=size)
            # Our own encoding, never escpos' text(): see protocol.encode_text.
            out._raw(encode_text(item.text) + b"\n")
        elif isinstance(item, PrintQr):
            # python-escpos refuses center=True for native QR; ESC a centres the symbol instead.
            if align != "center":
                align = "center"
                out.set(align=align)
            out.qr(item.data, native=True, size=item.module_dots, ec=QR_ECLEVEL_M)
        elif isinstance(item, PrintFeed):
            out.print_and_feed(item.lines)
    out.cut()  # ESC d 6 (last line past the cutter), GS V 0
    data: bytes = out.output
    return data


# --- the driver -----------------------------------------------------------------------------------


def _raise_unless_printable(state: DeviceState, *, during_job: bool = False) -> None:
    if state.usable:
        return
    when = " during the job" if during_job else ""
    if state.reason == PrinterReason.PAPER_OUT:
        raise PaperOut("printer is out of paper" + when)
    if state.reason == PrinterReason.COVER_OPEN:
        raise CoverOpen("printer cover is open" + when)
    if state.reason == PrinterReason.OFFLINE:
        raise PrinterOffline("printer is offline" + when)
    if state.reason == PrinterReason.NO_RESPONSE:
        raise DeviceTimeout("printer gave no valid status reply" + when, reason=state.reason)
    raise PrinterError("printer reports an error" + when, reason=state.reason)


class ReceiptPrinter:
    """An ESC/POS receipt printer: health by DLE EOT, receipts laid out for its paper width.

    Thread-safe: one lock serialises the wire, so a heartbeat's ``status()`` waits for a running
    job (or returns the cached state if the job outlasts it); ``last_state()`` never blocks.
    """

    def __init__(
        self,
        connection: PrinterConnection,
        *,
        paper_mm: int = 80,
        status_timeout_s: float = 1.0,
        job_timeout_s: float = 10.0,
        words: WordBreaker | None = None,
    ) -> None:
        if not 0 < status_timeout_s <= 30:
            raise ValueError("status_timeout_s must be in (0, 30]")
        if not 0 < job_timeout_s <= 600:
            raise ValueError("job_timeout_s must be in (0, 600]")
        self._paper = paper_for(paper_mm)
        self._words = words
        self._status_timeout_s = status_timeout_s
        self._job_timeout_s = job_timeout_s
        self._link = _make_link(connection, status_timeout_s, job_timeout_s)
        self._wire = threading.Lock()
        # How long status() and close() wait for a running job to let go of the wire.
        self._wire_wait_s = job_timeout_s + 5 * status_timeout_s
        self._state_lock = threading.Lock()
        # Nothing is known until the first check; report the printer as not reachable until then.
        self._last_state = DeviceState.fault(PrinterReason.OFFLINE)

    def last_state(self) -> DeviceState:
        """The state found by the last status check or job, without touching the wire."""
        with self._state_lock:
            return self._last_state

    def status(self) -> DeviceState:
        """Ask the printer (DLE EOT 1..4, each within the status timeout) and return its state."""
        if not self._wire.acquire(timeout=self._wire_wait_s):
            return self.last_state()  # a job holds the wire far too long; it will report itself
        try:
            return self._check_status()
        finally:
            self._wire.release()

    def print_receipt(self, receipt: Receipt) -> None:
        """Print one receipt, or raise why not: PaperOut, CoverOpen, PrinterOffline, DeviceTimeout.

        Paper near end prints (the state says degraded). Paper that runs out during the job is
        reported as PaperOut by the status check that follows it; part of the receipt may be out.
        """
        payload = encode_receipt(receipt, self._paper, self._words)
        if not self._wire.acquire(timeout=self._job_timeout_s):
            raise DeviceTimeout("printer busy with another job", reason="busy")
        try:
            _raise_unless_printable(self._check_status())
            try:
                self._link.write(payload, self._job_timeout_s)
            except _LinkTimeout:
                # The printer stopped taking data (often: paper ran out and its buffer filled).
                # The stream is cut mid-command, so the connection is useless now.
                self._link.close()
                _raise_unless_printable(self._check_status(), during_job=True)
                raise DeviceTimeout("printer did not take the job in time") from None
            except _LinkLost:
                self._link.close()
                self._remember(DeviceState.fault(PrinterReason.OFFLINE))
                raise PrinterOffline("printer connection lost during the job") from None
            # DLE EOT is answered in real time, so on a real printer this can run ahead of the
            # paper; a later run-out still shows in the next status() and blocks the next job.
            _raise_unless_printable(self._check_status(), during_job=True)
        finally:
            self._wire.release()

    def close(self) -> None:
        """Close the transport; the next status() or job opens it again."""
        if self._wire.acquire(timeout=self._wire_wait_s):
            try:
                self._link.close()
            finally:
                self._wire.release()
        else:
            log.warning("printer close skipped: the wire stayed busy")

    # -- internals (wire lock held) --

    def _check_status(self) -> DeviceState:
        try:
            replies = self._read_status_bytes()
        except PrinterOffline:
            state = DeviceState.fault(PrinterReason.OFFLINE)
        else:
            if replies is None:
                state = DeviceState.fault(PrinterReason.NO_RESPONSE)
            else:
                state = device_state(decode_status(*replies))
        self._remember(state)
        return state

    def _read_status_bytes(self) -> tuple[int, int, int, int] | None:
        # A dead link (printer rebooted, socket dropped by the network) shows up here as EOF or a
        # reset; reopen once so a printer that came back is picked up without a restart.
        for attempt in (1, 2):
            if not self._link.is_open:
                self._link.open()  # raises PrinterOffline
            try:
                return self._ask_all()
            except _LinkLost:
                self._link.close()
                if attempt == 2:
                    raise
        return None  # pragma: no cover - the loop always returns or raises

    def _ask_all(self) -> tuple[int, int, int, int] | None:
        self._link.drain()
        replies: list[int] = []
        for kind in StatusRequest:
            try:
                self._link.write(status_request(kind), self._status_timeout_s)
                replies.append(status_byte(self._link.read_reply(self._status_timeout_s)))
            except (_LinkTimeout, StatusReplyError):
                # No answer or garbage: the stream may be out of step with our requests, so drop
                # the connection; a late reply must never be taken as the answer to a later one.
                self._link.close()
                return None
        return replies[0], replies[1], replies[2], replies[3]

    def _remember(self, state: DeviceState) -> None:
        with self._state_lock:
            previous, self._last_state = self._last_state, state
        if state != previous:
            log.info(
                "printer %s%s", state.health.value, f" ({state.reason})" if state.reason else ""
            )
