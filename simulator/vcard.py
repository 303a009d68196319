"""A virtual social security card that connects to pcscd's vpcd driver like a card put in a reader.

vpcd (vsmartcard) LISTENS on a TCP port per slot; the card CONNECTS to it. Every message either way
is a 2-byte big-endian length and a payload. A 1-byte payload from vpcd is a control code (0 power
off, 1 power on, 2 reset, 4 get ATR; only get ATR is answered), anything longer is a command APDU
answered by a response APDU. Inserting a card is connecting, removing it is closing the socket.

The card encodes its records and answers its commands on its own, from reference/devices.md
section 1, not with the driver's protocol logic, so a mistake on one side cannot hide the same
mistake on the other; only the fixed identifiers (the AID, the file ids) come from the protocol.
It behaves like a T=0 card where the driver must cope: SELECT of the application answers 61xx
(the FCI waits for GET RESPONSE) and a READ RECORD whose Le is not the record's length answers
6Cxx with the right one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from devices.card.protocol import EF_CARD_INFO, EF_PERSONAL, SSSE_AID

log = logging.getLogger(__name__)

CardKind = Literal["ssse", "other", "badge"]

# T=0-only ATRs (T0 = 0x6x: TB1 and TC1 follow, no TD1, so pcscd picks T=0). The historical bytes
# are made up; nothing reads them.
ATR_SSSE = bytes.fromhex("3B6C0000" + "5353534556495254" + "55414C00")
ATR_OTHER = bytes.fromhex("3B680000" + "42414E4B43415244")
# A contactless card as a PC/SC reader presents it (PC/SC part 3 ATR for a MIFARE-class card).
ATR_BADGE = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
# The simulator's staff badge: the UID kiosk-sim lists in its terminal's staff badges.
SIM_BADGE_UID = "04A1B2C3D4E580"

# Control codes from vsmartcard's vpcd.h.
_CTRL_OFF, _CTRL_ON, _CTRL_RESET, _CTRL_ATR = 0, 1, 2, 4

# Value lengths from the reference table (SIDCardOperation.h); records are tag | len | value.
REFERENCE_LENGTHS: Mapping[int, int] = {
    0x01: 16, 0x02: 1, 0x03: 4, 0x04: 12, 0x05: 4, 0x06: 4, 0x07: 9,
    0x08: 18, 0x09: 30, 0x0A: 1, 0x0B: 1, 0x0C: 3, 0x0D: 4,
}  # fmt: skip

_RECONNECT_INTERVAL_S = 0.05
_RECV_TIMEOUT_S = 0.5  # only bounds how long a closed slot takes to notice; vpcd may idle for long
_CONNECT_TIMEOUT_S = 1.0
_LOG_LIMIT = 2000


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits)


def _bcd_date(day: dt.date) -> bytes:
    return _bcd(day.strftime("%Y%m%d"))


@dataclass(repr=False)
class VirtualCard:
    """The data a virtual card carries; ``kind="other"`` is a non-SSSE card such as a bank card.

    ``record_lengths`` overrides the stored value length of some tags (a card personalised
    differently from the reference table); values are padded or cut to it. A driver that asks the
    table's length for such a record meets 6Cxx.
    """

    kind: CardKind
    uid: str = ""  # a badge's UID, upper-case hex (GET DATA FF CA answers it)
    id_number: str = ""
    name: str = ""
    sex: str = "1"
    birth_date: dt.date = dt.date(1970, 1, 1)
    card_number: str = ""
    region_code: str = "110100"
    issued: dt.date = dt.date(2020, 1, 1)
    expires: dt.date = dt.date(2030, 1, 1)
    record_lengths: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def ssse(cls, *, id_number: str, name: str, **overrides: Any) -> VirtualCard:
        """A social security card; the birth date and sex follow the ID number unless given."""
        defaults: dict[str, Any] = {
            "sex": "1",
            "birth_date": dt.date(1970, 1, 1),
            "card_number": "A" + "".join(c for c in id_number if c.isdigit())[-8:].rjust(8, "0"),
            "region_code": id_number[:6] if id_number[:6].isdigit() else "110100",
        }
        if len(id_number) == 18 and id_number[:17].isdigit():
            # GB 11643: digits 7-14 are the birth date, digit 17 odd for men and even for women.
            with contextlib.suppress(ValueError):
                defaults["birth_date"] = dt.datetime.strptime(id_number[6:14], "%Y%m%d").date()
            defaults["sex"] = "1" if int(id_number[16]) % 2 else "2"
        defaults.update(overrides)
        return cls(kind="ssse", id_number=id_number, name=name, **defaults)

    @classmethod
    def badge(cls, uid: str = SIM_BADGE_UID) -> VirtualCard:
        """A contactless card with only a UID (a staff badge when the terminal lists it)."""
        bytes.fromhex(uid)  # a clear ValueError for a UID that is not hex
        return cls(kind="badge", uid=uid.upper())

    @classmethod
    def other(cls) -> VirtualCard:
        """A card without the SSSE application (think bank card): SELECT SSSE answers 6A82."""
        return cls(kind="other")

    def __repr__(self) -> str:
        # Test people are synthetic, but reprs end up in logs; keep the habit of the real code.
        return f"VirtualCard(kind={self.kind!r}, <redacted>)"

    @property
    def atr(self) -> bytes:
        return {"ssse": ATR_SSSE, "badge": ATR_BADGE}.get(self.kind, ATR_OTHER)

    def _value(self, tag: int, raw: bytes, pad: int) -> bytes:
        length = self.record_lengths.get(tag, REFERENCE_LENGTHS[tag])
        return raw[:length].ljust(length, bytes([pad]))

    def files(self) -> dict[int, dict[int, bytes]]:
        """EF05 and EF06 as complete TLV records (tag | len | value) keyed by file id and tag."""
        # 统筹区 code, the issuer's D156000005, a serial from the card number, FF padding; the
        # shape of the sample in the reference (330300 D156000005 99110145 FFFFFFFF).
        serial = "".join(c for c in self.card_number if c.isdigit())[-8:].rjust(8, "0")
        card_identification = (
            _bcd(self.region_code) + bytes.fromhex("D156000005") + _bcd(serial) + b"\xff" * 4
        )
        ef05 = {
            0x01: self._value(0x01, card_identification, 0xFF),
            0x02: self._value(0x02, b"3", 0x20),
            0x03: self._value(0x03, b"3.00", 0x20),
            0x04: self._value(0x04, bytes.fromhex("D15600000500000000000000"), 0x00),
            0x05: self._value(0x05, _bcd_date(self.issued), 0x00),
            0x06: self._value(0x06, _bcd_date(self.expires), 0x00),
            0x07: self._value(0x07, self.card_number.encode("ascii"), 0x20),
        }
        ef06 = {
            0x08: self._value(0x08, self.id_number.encode("ascii"), 0x20),
            0x09: self._value(0x09, self.name.encode("gbk"), 0x00),
            0x0A: self._value(0x0A, self.sex.encode("ascii"), 0x20),
            0x0B: self._value(0x0B, b"\x01", 0x00),  # 民族 01 = 汉
            0x0C: self._value(0x0C, _bcd(self.id_number[:6].ljust(6, "0")), 0xFF),
            0x0D: self._value(0x0D, _bcd_date(self.birth_date), 0x00),
        }
        return {
            EF_CARD_INFO: {tag: bytes([tag, len(v)]) + v for tag, v in ef05.items()},
            EF_PERSONAL: {tag: bytes([tag, len(v)]) + v for tag, v in ef06.items()},
        }


class _CardApplet:
    """The card's command interpreter for one power cycle: selection state and pending response."""

    def __init__(self, card: VirtualCard) -> None:
        self._card = card
        self._files = card.files() if card.kind == "ssse" else {}
        self._app_selected = False
        self._current_ef: int | None = None
        self._pending = b""  # bytes announced by 61xx, waiting for GET RESPONSE

    def process(self, apdu: bytes) -> bytes:
        pending, self._pending = self._pending, b""  # T=0: any other command drops it
        if len(apdu) < 4:
            return b"\x67\x00"
        cla, ins, p1, p2 = apdu[:4]
        body = apdu[4:]
        if (cla, ins) == (0xFF, 0xCA):
            return self._get_uid(p1, body)
        if cla != 0x00:
            return b"\x6e\x00"
        if ins == 0xA4:
            return self._select(p1, body)
        if ins == 0xC0:
            return self._get_response(pending, body)
        if ins == 0xB2:
            return self._read_record(p1, p2, body)
        if ins in (0x20, 0x24, 0x2C):
            # VERIFY / CHANGE / UNBLOCK: a reader must never do these for a resident.
            return b"\x69\x83"
        return b"\x6d\x00"

    def _get_uid(self, p1: int, body: bytes) -> bytes:
        # GET DATA is the reader's pseudo-APDU; vpcd hands it to the card, so the card answers
        # as a contactless reader would. A contact card has no UID to give.
        if self._card.kind != "badge" or p1 != 0x00:
            return b"\x6a\x81"
        uid = bytes.fromhex(self._card.uid)
        le = body[0] if len(body) == 1 else 0
        if le not in (0, len(uid)):
            return bytes([0x6C, len(uid)])
        return uid + b"\x90\x00"

    def _select(self, p1: int, body: bytes) -> bytes:
        if not body or len(body) < 1 + body[0]:
            return b"\x67\x00"
        data = body[1 : 1 + body[0]]
        if p1 == 0x04:
            if self._card.kind != "ssse" or data != SSSE_AID:
                return b"\x6a\x82"
            self._app_selected, self._current_ef = True, None
            fci = b"\x6f" + bytes([2 + len(SSSE_AID)]) + b"\x84" + bytes([len(SSSE_AID)]) + SSSE_AID
            self._pending = fci
            return bytes([0x61, len(fci)])
        if p1 in (0x00, 0x02) and len(data) == 2:
            file_id = int.from_bytes(data, "big")
            if not self._app_selected or file_id not in self._files:
                return b"\x6a\x82"
            self._current_ef = file_id
            return b"\x90\x00"
        return b"\x6a\x86"

    def _get_response(self, pending: bytes, body: bytes) -> bytes:
        if not pending:
            return b"\x69\x85"
        le = body[0] if len(body) == 1 else 0
        if le == 0 or le > len(pending):
            self._pending = pending
            return bytes([0x6C, len(pending)])
        if le < len(pending):
            self._pending = pending[le:]
            return pending[:le] + bytes([0x61, len(self._pending) & 0xFF])
        return pending + b"\x90\x00"

    def _read_record(self, p1: int, p2: int, body: bytes) -> bytes:
        sfi, mode = p2 >> 3, p2 & 0x07
        file_id = self._current_ef if sfi == 0 else 0xEF00 | sfi
        if file_id is None or file_id not in self._files:
            return b"\x69\x86" if sfi == 0 else b"\x6a\x82"
        records = self._files[file_id]
        if mode == 0x00:  # P1 is a record identifier (tag)
            record = records.get(p1)
        elif mode == 0x04:  # P1 is a record number; records are stored in tag order
            ordered = [records[tag] for tag in sorted(records)]
            record = ordered[p1 - 1] if 1 <= p1 <= len(ordered) else None
        else:
            return b"\x6a\x86"
        if record is None:
            return b"\x6a\x83"
        le = body[0] if len(body) == 1 else 0
        if le != len(record):
            return bytes([0x6C, len(record)])  # T=0: wrong P3, here is the right one
        return record + b"\x90\x00"


class VirtualCardSlot:
    """One vpcd slot: insert a virtual card (connect to vpcd), remove it, or pull it mid-read.

    While a card is inserted it stays inserted across pcscd restarts: when the connection drops
    without remove(), the slot reconnects, as a physical card stays in its reader.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.port = port
        self.host = host
        self._lock = threading.Lock()
        self._card: VirtualCard | None = None
        self._generation = 0  # bumps on every insert/remove, so a stale session thread stops
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._pull_after: int | None = None
        self._stall_after: int | None = None
        # Armed by pull_next_card_mid_read: handed to the next card inserted as its _pull_after.
        self._pull_next_after: int | None = None
        self._pulled_mid_read_at: dt.datetime | None = None
        # (command, response) of every APDU the card in the slot answered since it was inserted,
        # for tests and the control panel; it holds the (synthetic) card data, so it stays in
        # memory and is never logged.
        self.exchanges: deque[tuple[bytes, bytes]] = deque(maxlen=_LOG_LIMIT)

    @property
    def card(self) -> VirtualCard | None:
        return self._card

    def insert(self, card: VirtualCard) -> None:
        """Put ``card`` into the slot; returns at once, the connection is made in the background."""
        with self._lock:
            if self._card is not None:
                raise RuntimeError(f"slot {self.port} already holds a card; remove it first")
            self._card = card
            self._generation += 1
            self._pull_after, self._pull_next_after = self._pull_next_after, None
            self._stall_after = None
            self.exchanges.clear()
            self._thread = threading.Thread(
                target=self._run,
                args=(card, self._generation),
                name=f"vcard-{self.port}",
                daemon=True,
            )
            self._thread.start()

    def remove(self) -> None:
        """Take the card out: the connection closes and vpcd reports the slot empty."""
        with self._lock:
            thread = self._detach_locked()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)

    def pull_after(self, apdus: int) -> None:
        """Fault: after ``apdus`` more command APDUs are answered, the card is pulled out."""
        with self._lock:
            if self._card is None:
                raise RuntimeError("no card to pull")
            self._pull_after = apdus
            thread = self._detach_locked() if apdus <= 0 else None
        if thread is not None:
            thread.join(timeout=2.0)

    def pull_next_card_mid_read(self, apdus: int) -> None:
        """Fault: the next card inserted is pulled out after answering ``apdus`` command APDUs.

        Armed for the next insertion rather than the card in the slot, if any: the terminal reads
        a card once, right after it goes in, so that card's read is over.
        """
        if apdus < 1:
            raise ValueError("apdus must be at least 1: a card pulled before any APDU is no read")
        with self._lock:
            self._pull_next_after = apdus

    def cancel_pull(self) -> None:
        """Disarm a pull still waiting, whether for the next card or in the current card's read."""
        with self._lock:
            self._pull_next_after = self._pull_after = None

    @property
    def pull_armed(self) -> bool:
        """A pull is waiting: for the next card to go in, or for the current card's APDUs."""
        with self._lock:
            return self._pull_next_after is not None or self._pull_after is not None

    @property
    def pulled_mid_read_at(self) -> dt.datetime | None:
        """When (UTC) a card was last pulled by a pull fault, or None if never."""
        return self._pulled_mid_read_at

    def stall_after(self, apdus: int) -> None:
        """Fault: after ``apdus`` more command APDUs the card goes mute and answers nothing."""
        with self._lock:
            self._stall_after = apdus

    def close(self) -> None:
        self.remove()

    def __enter__(self) -> VirtualCardSlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- background session -------------------------------------------------------------------

    def _detach_locked(self) -> threading.Thread | None:
        self._card = None
        self._generation += 1
        self._pull_after = None  # a pull still waiting in this card's read goes out with it
        sock, self._sock = self._sock, None
        if sock is not None:
            # shutdown() wakes the session thread out of recv at once and sends vpcd a FIN.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        thread, self._thread = self._thread, None
        return thread

    def _current(self, generation: int) -> bool:
        return self._generation == generation

    def _run(self, card: VirtualCard, generation: int) -> None:
        while self._current(generation):
            try:
                sock = socket.create_connection((self.host, self.port), timeout=_CONNECT_TIMEOUT_S)
            except OSError:
                # vpcd is not listening (pcscd down or restarting): keep the card "in the reader".
                time.sleep(_RECONNECT_INTERVAL_S)
                continue
            with self._lock:
                if not self._current(generation):
                    sock.close()
                    return
                self._sock = sock
            try:
                self._serve(sock, card, generation)
            except OSError:
                pass
            finally:
                with self._lock:
                    if self._sock is sock:
                        self._sock = None
                sock.close()

    def _serve(self, sock: socket.socket, card: VirtualCard, generation: int) -> None:
        # Without TCP_NODELAY and a re-armed TCP_QUICKACK every exchange waits for a delayed ACK
        # (about 48 ms per APDU instead of 0.1 ms); QUICKACK resets itself, hence before each recv.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(_RECV_TIMEOUT_S)
        applet = _CardApplet(card)
        buffer = bytearray()
        while self._current(generation):
            message = self._next_message(sock, buffer, generation)
            if message is None:
                return
            if len(message) == 1:
                code = message[0]
                if code == _CTRL_ATR:
                    self._send(sock, card.atr)
                elif code in (_CTRL_ON, _CTRL_RESET, _CTRL_OFF):
                    applet = _CardApplet(card)  # power and reset clear all selection state
                continue
            with self._lock:
                if self._stall_after is not None:
                    if self._stall_after <= 0:
                        continue  # mute: the command is swallowed, vpcd waits in vain
                    self._stall_after -= 1
            answer = applet.process(message)
            self.exchanges.append((message, answer))
            self._send(sock, answer)
            with self._lock:
                if self._pull_after is not None and self._current(generation):
                    self._pull_after -= 1
                    if self._pull_after <= 0:
                        self._pulled_mid_read_at = dt.datetime.now(dt.UTC)
                        self._detach_locked()
                        return

    def _next_message(
        self, sock: socket.socket, buffer: bytearray, generation: int
    ) -> bytes | None:
        while True:
            if len(buffer) >= 2:
                (length,) = struct.unpack("!H", buffer[:2])
                if len(buffer) >= 2 + length:
                    message = bytes(buffer[2 : 2 + length])
                    del buffer[: 2 + length]
                    return message
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if not self._current(generation):
                    return None
                continue
            if not chunk:
                return None  # vpcd went away (pcscd stopped) or we were shut down
            buffer += chunk

    @staticmethod
    def _send(sock: socket.socket, payload: bytes) -> None:
        sock.sendall(struct.pack("!H", len(payload)) + payload)
