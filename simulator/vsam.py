"""Virtual SAM_A module: the far end of a pty, answering find, select and read as an ID card reader.

The driver opens ``path`` as its serial port. ``path`` is a symlink to the pty's slave, as
/dev/serial/by-id/... is to a ttyUSBn: ``unplug()`` removes it and closes the pty (the driver's
open port hangs up, as a pulled USB cable does), ``replug()`` makes a new pty behind the same
path. A thread reads command frames from the master and answers each at once (``slow_s`` adds a
delay before every answer).

``place()`` lays a card on the reader until ``remove()``; any ID number and name work (the text
block is composed on the spot with a made-up address and issuer, the photo is 1024 dummy bytes).
Unlike some real modules, find keeps answering 0x9F while a card lies there, even after a read,
so the driver's "report each presentation once" is what the tests see.

``fault(mode)``: ``ok``; ``no_card`` (find answers 0x80 even with a card); ``sam_self_test``
(11 FF answers 0x60, reads answer 0x60); ``checksum`` (every answer with a wrong XOR);
``unknown_card_type`` (read answers 0x40); ``mid_frame`` (the read answer stops halfway, then
nothing); ``silent`` (no answer at all); ``garbage`` (noise bytes before every answer).

Run ``python -m simulator.vsam`` for one on a pty, driven from stdin.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import os
import re
import select
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Final, Literal

from devices.idcard.protocol import (
    LONG_TERM,
    PHOTO_SIZE,
    TEXT_BLOCK_SIZE,
    Command,
    FrameProblem,
    FrameProblemKind,
    Request,
    RequestFramer,
    Status,
    answer_frame,
    read_answer_payload,
)
from simulator.processes import StartsAndStops
from simulator.pty_link import close_linked_pty, open_linked_pty

CardType = Literal[
    "citizen",
    "residence_permit",
    "foreign_permanent_resident",
    "foreign_permanent_resident_2023",
    "unknown",
]
# The document-type flag at char 124 of the text block (devices/idcard/protocol.py: an inference
# from vendor SDKs). The other documents' real layouts differ; the driver declines them before
# reading any field, so the simulator keeps the citizen layout and sets only the flag.
CARD_TYPE_FLAGS: Final[dict[str, str]] = {
    "citizen": " ",
    "residence_permit": "J",
    "foreign_permanent_resident": "I",
    "foreign_permanent_resident_2023": "Y",
    "unknown": "Z",
}
FAULT_MODES: Final[tuple[str, ...]] = (
    "ok",
    "no_card",
    "sam_self_test",
    "checksum",
    "unknown_card_type",
    "mid_frame",
    "silent",
    "garbage",
)

# Line noise that ends in the first bytes of a preamble: the driver's framer has to resync on
# the real one right after it.
NOISE: Final = bytes.fromhex("00 ff 13 69 96 aa aa 55 aa aa aa 96")
SAM_NUMBER: Final = bytes.fromhex("0500 0000 1122 3344 5566 7788 99aa bbcc")
# A stand-in for the encrypted wlt photo: 1024 bytes below 0x80, so never a preamble.
DUMMY_PHOTO: Final = bytes((i * 37) & 0x7F for i in range(PHOTO_SIZE))
ADDRESS: Final = "北京市东城区模拟街道模拟社区1号"
ISSUER: Final = "北京市公安局东城分局"
VALID_FROM: Final = dt.date(2016, 5, 1)

_ID_SHAPE = re.compile(r"[0-9]{17}[0-9Xx]")
_CUT_AT = 640  # mid_frame: the bytes of the 1295-byte read answer that get through


class SamUnplugged(RuntimeError):
    """The virtual module is unplugged (or not started)."""


def _field(value: str, chars: int, what: str) -> bytes:
    """``value`` as UCS-2 LE, space padded to ``chars`` characters."""
    encoded = value.encode("utf-16-le")
    if len(encoded) > chars * 2:
        raise ValueError(f"{what} longer than {chars} characters")
    return encoded + " ".encode("utf-16-le") * (chars - len(encoded) // 2)


def _yyyymmdd(day: dt.date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def compose_text_block(
    *,
    id_number: str,
    name: str,
    sex: str,
    birth: dt.date,
    valid_until: dt.date | None,
    card_type: CardType = "citizen",
    nation: str = "01",
    address: str = ADDRESS,
    issuer: str = ISSUER,
    valid_from: dt.date = VALID_FROM,
) -> bytes:
    """The 256-byte text block a card holds (reference/devices.md 2.3); ``valid_until`` None
    is a long-term (长期) card."""
    until = LONG_TERM if valid_until is None else _yyyymmdd(valid_until)
    reserved = " " * 14 + CARD_TYPE_FLAGS[card_type] + " " * 3  # chars 110-127, flag at 124
    block = b"".join(
        (
            _field(name, 15, "name"),
            _field(sex, 1, "sex"),
            _field(nation, 2, "nation"),
            _field(_yyyymmdd(birth), 8, "birth"),
            _field(address, 35, "address"),
            _field(id_number, 18, "ID number"),
            _field(issuer, 15, "issuer"),
            _field(_yyyymmdd(valid_from), 8, "valid from"),
            _field(until, 8, "valid until"),
            _field(reserved, 18, "reserved"),
        )
    )
    assert len(block) == TEXT_BLOCK_SIZE  # the field widths add up to 128 characters
    return block


def _valid_until(value: dt.date | str | None) -> dt.date | None:
    if value is None:
        today = dt.date.today()
        return dt.date(today.year + 10, 12, 31)  # a card well within its validity
    if isinstance(value, dt.date):
        return value
    text = value.strip()
    if text == LONG_TERM:
        return None
    try:
        if re.fullmatch(r"[0-9]{8}", text):
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError("valid_until must be a date, YYYYMMDD, YYYY-MM-DD or 长期") from None


class VirtualSam(StartsAndStops):
    """A SAM_A module at the far end of a pty. Thread-safe: the panel may place a card while a
    test unplugs the module."""

    def __init__(
        self,
        *,
        directory: str | Path | None = None,
        name: str = "idcard",
        slow_s: float = 0.0,
        write_timeout_s: float = 2.0,
    ) -> None:
        if slow_s < 0:
            raise ValueError("slow_s must not be negative")
        self._own_directory = directory is None
        self._directory = Path(directory) if directory is not None else None
        self._name = name
        self._slow_s = slow_s
        self._write_timeout_s = write_timeout_s
        self._lock = threading.Lock()
        self._master: int | None = None
        self._slave: int | None = None  # kept open so the pty lives while the driver reopens
        self._device = ""
        self._generation = 0  # +1 per plug: a read never goes to a closed (reused) descriptor
        self._framer = RequestFramer()
        self._card: bytes | None = None  # the text block of the card lying on the reader
        self._selected = False
        self._found_at: float | None = None  # when a find first found the card lying there
        self._mode: str = "ok"
        self._received: collections.deque[Command | None] = collections.deque(maxlen=1000)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        """The stable path the driver opens (a symlink to the current pty); set by start()."""
        if self._directory is None:
            raise RuntimeError("virtual SAM module not started")
        return str(self._directory / self._name)

    @property
    def device(self) -> str:
        """The pty slave behind ``path`` now (/dev/pts/N); "" while unplugged."""
        with self._lock:
            return self._device

    @property
    def plugged(self) -> bool:
        with self._lock:
            return self._master is not None

    @property
    def mode(self) -> str:
        with self._lock:
            return self._mode

    @property
    def card_present(self) -> bool:
        with self._lock:
            return self._card is not None

    @property
    def found_at(self) -> float | None:
        """``time.monotonic()`` when a find first found the card placed last (None: not yet):
        where a reader's poll met the card, the start of any read, raw or not."""
        with self._lock:
            return self._found_at

    def received(self) -> list[Command | None]:
        """The commands received so far (None for an unknown one), oldest first."""
        with self._lock:
            return list(self._received)

    def start(self) -> VirtualSam:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="kiosk-vsam-"))
        self._directory.mkdir(parents=True, exist_ok=True)
        self.replug()
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="vsam", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=2.0)
        self.unplug()

    def close(self) -> None:
        self.stop()
        if self._own_directory and self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def replug(self) -> None:
        """Plug the module in: a new pty behind ``path`` (no-op if plugged)."""
        with self._lock:
            if self._master is not None:
                return
            master, slave, device = open_linked_pty(Path(self.path))
            self._master, self._slave, self._device = master, slave, device
            self._generation += 1
            self._framer.reset()
            self._selected = False

    def unplug(self) -> None:
        """Pull the cable: ``path`` goes away and the driver's open port hangs up."""
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = None
            self._device = ""
            self._generation += 1
            close_linked_pty(Path(self.path) if self._directory is not None else None,
                             master, slave)

    def place(
        self,
        id_number: str,
        name: str,
        *,
        sex: str = "1",
        birth: dt.date | None = None,
        valid_until: dt.date | str | None = None,
        card_type: CardType = "citizen",
    ) -> None:
        """Lay a card on the reader. ``birth`` defaults to the ID number's; ``valid_until``
        defaults to a date years ahead, "长期" (or ``LONG_TERM``) makes a long-term card and a
        string may also be YYYYMMDD or YYYY-MM-DD. Raises ValueError for what no card holds."""
        if not _ID_SHAPE.fullmatch(id_number):
            raise ValueError("id_number must be 17 digits and a digit or X")
        if not name.strip():
            raise ValueError("name must not be empty")
        if len(sex) != 1:
            raise ValueError("sex is one character ('1' male, '2' female)")
        if card_type not in CARD_TYPE_FLAGS:
            raise ValueError(f"card_type must be one of {sorted(CARD_TYPE_FLAGS)}")
        if birth is None:
            try:
                birth = dt.date(int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
            except ValueError:
                raise ValueError("the ID number holds no calendar date; pass birth") from None
        block = compose_text_block(
            id_number=id_number,
            name=name,
            sex=sex,
            birth=birth,
            valid_until=_valid_until(valid_until),
            card_type=card_type,
        )
        with self._lock:
            self._card = block
            self._selected = False
            self._found_at = None

    def place_text_block(self, block: bytes) -> None:
        """Lay a card holding exactly ``block`` (malformed fields, other layouts)."""
        if len(block) != TEXT_BLOCK_SIZE:
            raise ValueError("a text block is 256 bytes")
        with self._lock:
            self._card = bytes(block)
            self._selected = False
            self._found_at = None

    def remove(self) -> None:
        """Take the card away."""
        with self._lock:
            self._card = None
            self._selected = False

    def fault(self, mode: str) -> None:
        """Set a fault mode (see the module docstring); "ok" clears it."""
        if mode not in FAULT_MODES:
            raise ValueError(f"fault mode must be one of {', '.join(FAULT_MODES)}")
        with self._lock:
            self._mode = mode

    # --- the module's thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                master, generation = self._master, self._generation
            if master is None:
                self._stop.wait(0.02)
                continue
            try:
                readable, _, _ = select.select([master], [], [], 0.05)
            except (OSError, ValueError):  # unplugged under us
                continue
            if not readable:
                continue
            with self._lock:
                if self._generation != generation:
                    continue
                try:
                    data = os.read(master, 4096)
                except OSError:
                    continue
                answers = [self._answer(item) for item in self._framer.feed(data)]
            for answer in answers:
                if answer is None:
                    continue
                if self._slow_s:
                    time.sleep(self._slow_s)
                with contextlib.suppress(SamUnplugged, TimeoutError):
                    self._write(answer, generation)

    def _answer(self, item: Request | FrameProblem) -> bytes | None:
        """What the module sends back for one received frame (under the lock)."""
        mode = self._mode
        if isinstance(item, FrameProblem):
            if item.kind is FrameProblemKind.SKIPPED:
                return None
            status = (
                Status.CHECKSUM_ERROR
                if item.kind is FrameProblemKind.BAD_CHECKSUM
                else Status.LENGTH_ERROR
            )
            answer = answer_frame(status)
        else:
            self._received.append(item.command)
            answer = self._answer_request(item, mode)
        if mode == "silent":
            return None
        if mode == "checksum":
            answer = answer[:-1] + bytes((answer[-1] ^ 0x5A,))
        if mode == "garbage":
            answer = NOISE + answer
        return answer

    def _answer_request(self, request: Request, mode: str) -> bytes:
        command = request.command
        card = self._card
        if command is Command.SAM_STATUS:
            return answer_frame(
                Status.SAM_SELF_TEST_FAILED if mode == "sam_self_test" else Status.OK
            )
        if command is Command.SAM_ID:
            return answer_frame(Status.OK, SAM_NUMBER)
        if command is Command.FIND:
            self._selected = False
            if card is None or mode == "no_card":
                return answer_frame(Status.NO_CARD)
            if self._found_at is None:
                self._found_at = time.monotonic()
            return answer_frame(Status.FIND_OK, bytes(4))
        if command is Command.SELECT:
            if card is None or mode == "no_card":
                return answer_frame(Status.SELECT_FAILED)
            self._selected = True
            return answer_frame(Status.OK, bytes(8))
        if command is Command.READ_TEXT_PHOTO:
            if mode == "sam_self_test":
                return answer_frame(Status.SAM_SELF_TEST_FAILED)
            if mode == "unknown_card_type":
                return answer_frame(Status.UNKNOWN_CARD_TYPE)
            if card is None or not self._selected:
                return answer_frame(Status.READ_FAILED)
            answer = answer_frame(Status.OK, read_answer_payload(card, DUMMY_PHOTO))
            return answer[:_CUT_AT] if mode == "mid_frame" else answer
        return answer_frame(Status.COMMAND_ERROR)

    def _write(self, data: bytes, generation: int) -> None:
        deadline = time.monotonic() + self._write_timeout_s
        while data:
            with self._lock:
                if self._master is None or self._generation != generation:
                    raise SamUnplugged("virtual SAM module is unplugged")
                try:
                    written = os.write(self._master, data)
                except BlockingIOError:
                    written = 0
                except OSError:
                    raise SamUnplugged("virtual SAM module's pty is gone") from None
                master = self._master
            data = data[written:]
            if not data:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("nobody reads the virtual SAM module's port")
            # Outside the lock, so unplug() is not held up by a full buffer.
            with contextlib.suppress(OSError, ValueError):
                select.select([], [master], [], min(remaining, 0.05))


_HELP = (
    "commands: place ID_NUMBER NAME [VALID_UNTIL|长期] | remove | fault MODE | !unplug | !replug"
)


def main(argv: list[str] | None = None) -> int:
    """A virtual SAM module on a pty; lines on stdin place and remove cards and set faults."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator.vsam", description=__doc__, epilog=_HELP
    )
    parser.add_argument("--dir", help="where to put the port's symlink (default: a temp dir)")
    parser.add_argument("--slow", type=float, default=0.0, help="seconds before every answer")
    args = parser.parse_args(argv)
    with VirtualSam(directory=args.dir, slow_s=args.slow) as sam:
        print(f"ID card reader: {sam.path}", flush=True)
        print(_HELP, file=sys.stderr, flush=True)
        for line in sys.stdin:
            words = line.split()
            try:
                if not words:
                    continue
                if words[0] == "place" and len(words) in (3, 4):
                    until = words[3] if len(words) == 4 else None
                    sam.place(words[1], words[2], valid_until=until)
                elif words == ["remove"]:
                    sam.remove()
                elif words[0] == "fault" and len(words) == 2:
                    sam.fault(words[1])
                elif words == ["!unplug"]:
                    sam.unplug()
                elif words == ["!replug"]:
                    sam.replug()
                else:
                    print(_HELP, file=sys.stderr, flush=True)
            except ValueError as exc:
                print(f"not done: {exc}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
