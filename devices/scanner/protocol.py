"""Scanner protocol, pure: framing a serial byte stream, keyboard-wedge keys, classifying codes.

Nothing here does I/O or keeps time of its own (the wedge decoder is handed each key's time), so
every rule is tested byte by byte. What a scanner read may be personal (an ID number on a barcode,
an e-ID code): ``ScannedCode`` never shows its text in a repr, ``describe`` is what to log.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

from contracts.codes import CodeKind, is_e_id_code, parse_code
from devices.base import DeviceError, DeviceUnavailable

# A QR code holds at most 2,953 bytes (version 40, level L) and a PDF417 about 1,850, so a longer
# run without a terminator is line noise or a wrong terminator setting, not a code.
DEFAULT_MAX_LENGTH: Final = 4096


class ScannerReason(enum.StrEnum):
    """The reasons a scanner's DeviceState carries; stable codes the heartbeat reports as is."""

    ABSENT = "absent"  # not found since the driver started (wrong path, never plugged in)
    OFFLINE = "offline"  # was there and went away (unplugged, cable, USB reset)
    GARBLED = "garbled"  # framing errors (wrong baud rate or terminator, line noise); degraded
    NO_PERMISSION = "no_permission"  # the device node exists but we may not open it (udev rule)
    BUSY = "busy"  # another process holds it (a serial lock, an evdev grab)
    OPEN_FAILED = "open_failed"  # exists but is not what we expect (not a tty, not an input node)
    DRIVER_MISSING = "driver_missing"  # a keyboard wedge is configured but python-evdev is not in


class ScannerError(DeviceError):
    """Base of scanner errors."""

    reason = "scanner_error"


class ScannerUnavailable(ScannerError, DeviceUnavailable):
    """The scanner cannot be opened now; ``reason`` is a ScannerReason value."""

    reason = ScannerReason.OFFLINE.value


# --- serial framing -------------------------------------------------------------------------------


class Terminator(enum.StrEnum):
    """What ends a code on the wire (the scanner's "suffix" setting)."""

    CR = "cr"
    LF = "lf"
    CRLF = "crlf"
    # CR, LF or CR LF, whichever the scanner was set to: the empty code between CR and LF is
    # dropped. The default, so a scanner swapped for another model's factory settings still works.
    ANY = "any"


_ENDS: Final = {
    Terminator.CR: re.compile(rb"\r"),
    Terminator.LF: re.compile(rb"\n"),
    Terminator.CRLF: re.compile(rb"\r\n"),
    Terminator.ANY: re.compile(rb"\r|\n"),
}


class DiscardReason(enum.StrEnum):
    TOO_LONG = "too_long"  # more than the maximum length before a terminator
    UNDECODABLE = "undecodable"  # neither UTF-8 nor GB18030
    INCOMPLETE = "incomplete"  # cut off: silence, a gap in the keys or an unplug before its end


@dataclass(frozen=True)
class Discarded:
    """A code thrown away, and why; what it held is gone (and never logged)."""

    reason: DiscardReason


def clean_text(text: str) -> str:
    """``text`` without control characters (a scanner's STX/ETX framing, a stray CR or LF, tabs)
    and without byte order marks, which some scanners put in front of UTF-8 output."""
    return "".join(char for char in text if char != "\ufeff" and unicodedata.category(char) != "Cc")


def decode_code(payload: bytes) -> str | Discarded | None:
    """A frame's bytes as text: UTF-8, else GB18030 (what many Chinese scanners send, and what a
    GBK-encoded QR code comes out as), with controls removed. None when nothing is left."""
    for encoding in ("utf-8", "gb18030"):
        try:
            text = payload.decode(encoding)
        except UnicodeDecodeError:
            continue
        text = clean_text(text)
        return text if text.strip() else None
    return Discarded(DiscardReason.UNDECODABLE)


class CodeFramer:
    """Cuts a scanner's byte stream into codes. However the stream is split into reads, the same
    codes and discards come out in the same order; memory stays within ``max_length`` bytes.

    A run longer than ``max_length`` without a terminator is reported once as TOO_LONG, and
    everything up to the next terminator is dropped with it (the framer resyncs there).
    """

    def __init__(
        self, terminator: Terminator = Terminator.ANY, max_length: int = DEFAULT_MAX_LENGTH
    ) -> None:
        if max_length < 1:
            raise ValueError("max_length must be at least 1")
        self._terminator = Terminator(terminator)
        self._end = _ENDS[self._terminator]
        self._max_length = max_length
        self._buffer = bytearray()
        self._skipping = False  # inside an over-long run, already reported

    @property
    def pending(self) -> bool:
        """True while part of a code has arrived without its terminator."""
        return bool(self._buffer) and not self._skipping

    def feed(self, data: bytes) -> list[str | Discarded]:
        """The codes (and discards) that ``data`` completes, in order."""
        out: list[str | Discarded] = []
        self._buffer += data
        while (end := self._end.search(self._buffer)) is not None:
            frame = bytes(self._buffer[: end.start()])
            del self._buffer[: end.end()]
            if self._skipping:
                self._skipping = False
            elif len(frame) > self._max_length:
                out.append(Discarded(DiscardReason.TOO_LONG))
            elif (item := decode_code(frame)) is not None:
                out.append(item)
        # A CR at the very end may be the first half of CR LF: it is not part of the code yet.
        held = 1 if self._terminator is Terminator.CRLF and self._buffer.endswith(b"\r") else 0
        if len(self._buffer) - held > self._max_length:
            if not self._skipping:
                out.append(Discarded(DiscardReason.TOO_LONG))
                self._skipping = True
            del self._buffer[: len(self._buffer) - held]
        return out

    def reset(self) -> Discarded | None:
        """Forget a partial code (the line went quiet or the port was reopened); INCOMPLETE if
        there was one."""
        # A lone held CR, or a partial that is only controls, was not a code.
        had_code = self.pending and decode_code(bytes(self._buffer)) is not None
        self._buffer.clear()
        self._skipping = False
        return Discarded(DiscardReason.INCOMPLETE) if had_code else None


# --- classification -------------------------------------------------------------------------------


class ScanKind(enum.StrEnum):
    """What a scanned code is, as far as the terminal can tell."""

    RECEIPT = "receipt"  # a receipt's progress QR: the case's progress, no identification needed
    APPOINTMENT = "appointment"  # an appointment slip's QR
    # An e-ID code (电子社保卡 / 一码办) from the resident's phone: it identifies them once the hub
    # has resolved it, so it goes to the hub and nowhere else (never a log line or an event).
    E_ID = "e_id"
    UNKNOWN = "unknown"


_SCAN_KIND: Final = {
    CodeKind.PROGRESS: ScanKind.RECEIPT,
    CodeKind.APPOINTMENT: ScanKind.APPOINTMENT,
    CodeKind.E_ID: ScanKind.E_ID,
}


@dataclass(frozen=True, repr=False)
class ScannedCode:
    """One code as scanned: its kind, the reference a receipt or slip carries, and the raw text.

    The text may be personal (an ID number on a barcode, an e-ID code): the repr shows only the
    kind and the length, so a code in a traceback or a log line gives nothing away. For an e-ID
    code, ``reference`` is the code itself without the blanks around it: what the hub resolves,
    opaque here, and as secret as the identity it stands for while it is valid.
    """

    kind: ScanKind
    text: str
    # The case number, local reference or appointment code; an e-ID code's whole code.
    reference: str | None = None

    def __repr__(self) -> str:
        return f"ScannedCode(kind={self.kind.value}, length={len(self.text)})"


def classify(text: str) -> ScannedCode:
    """Tell a receipt's or appointment slip's code (printed by any terminal of the hub) and an
    e-ID code from anything else; the reference is taken only from a printed code whose check is
    right, or from a code of exactly the e-ID form (whether the hub issued it is the hub's say)."""
    stripped = text.strip()
    if is_e_id_code(stripped):
        return ScannedCode(ScanKind.E_ID, text, stripped)
    printed = parse_code(stripped)
    if printed is None:
        return ScannedCode(ScanKind.UNKNOWN, text)
    return ScannedCode(_SCAN_KIND[printed.kind], text, printed.reference)


def describe(code: ScannedCode) -> str:
    """What may be logged about a code: its kind and length, never its content."""
    return f"{code.kind.value} code, {len(code.text)} characters"


# --- keyboard wedge -------------------------------------------------------------------------------

# Linux input event codes (linux/input-event-codes.h, a stable kernel ABI): the keys a scanner
# types in the US layout, which is what scanners default to. Without evdev's ecodes, so this module
# stays importable (and tested) where python-evdev is not installed.
EV_KEY: Final = 0x01
KEY_ENTER: Final = 28
KEY_KPENTER: Final = 96
KEY_LEFTSHIFT: Final = 42
KEY_RIGHTSHIFT: Final = 54
KEY_CAPSLOCK: Final = 58
KEY_LEFTCTRL: Final = 29
KEY_RIGHTCTRL: Final = 97
KEY_LEFTALT: Final = 56
KEY_RIGHTALT: Final = 100
KEY_LEFTMETA: Final = 125
KEY_RIGHTMETA: Final = 126
KEY_NUMLOCK: Final = 69

KEY_UP: Final = 0
KEY_DOWN: Final = 1
KEY_REPEAT: Final = 2

_SHIFTS: Final = frozenset({KEY_LEFTSHIFT, KEY_RIGHTSHIFT})
# Held down, these make a key a shortcut rather than a character; they type nothing themselves.
_CHORDS: Final = frozenset(
    {KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT, KEY_LEFTMETA, KEY_RIGHTMETA}
)
# Num lock changes nothing for us: scanners send keypad digits meaning digits.
_SILENT: Final = frozenset({KEY_NUMLOCK})


def _row(first_code: int, plain: str, shifted: str) -> dict[int, tuple[str, str]]:
    return {first_code + i: pair for i, pair in enumerate(zip(plain, shifted, strict=True))}


# key code -> (character, character with shift)
US_KEYS: Final[dict[int, tuple[str, str]]] = {
    **_row(2, "1234567890-=", "!@#$%^&*()_+"),  # KEY_1 .. KEY_EQUAL
    **_row(16, "qwertyuiop[]", "QWERTYUIOP{}"),  # KEY_Q .. KEY_RIGHTBRACE
    **_row(30, "asdfghjkl;'`", 'ASDFGHJKL:"~'),  # KEY_A .. KEY_GRAVE
    **_row(43, "\\zxcvbnm,./", "|ZXCVBNM<>?"),  # KEY_BACKSLASH .. KEY_SLASH
    57: (" ", " "),  # KEY_SPACE
    # The keypad, which some scanners use for digits ("numeric keypad" emulation); shift does not
    # apply to what a scanner means by them.
    55: ("*", "*"),  # KEY_KPASTERISK
    **_row(71, "789-456+1230.", "789-456+1230."),  # KEY_KP7 .. KEY_KPDOT
    98: ("/", "/"),  # KEY_KPSLASH
    117: ("=", "="),  # KEY_KPEQUAL
}

# Longer than this between two keys of one code and the first part is dropped: a scanner types a
# whole code in one burst (a few ms a key), so a gap means a lost Enter, not a slow scanner.
DEFAULT_KEY_GAP_S: Final = 0.5


class WedgeDecoder:
    """Turns a keyboard-wedge scanner's key events into codes; Enter ends a code.

    Keys we cannot type as a character (function keys, Tab, anything pressed with Ctrl, Alt or
    Meta held) are dropped and counted in ``unknown_keys``, so operations can see a scanner set
    to another layout or to send control sequences.
    """

    def __init__(
        self, max_length: int = DEFAULT_MAX_LENGTH, key_gap_s: float = DEFAULT_KEY_GAP_S
    ) -> None:
        if max_length < 1:
            raise ValueError("max_length must be at least 1")
        if key_gap_s <= 0:
            raise ValueError("key_gap_s must be above 0")
        self._max_length = max_length
        self._key_gap_s = key_gap_s
        self._chars: list[str] = []
        self._skipping = False
        self._shifts: set[int] = set()
        self._chords: set[int] = set()
        self._caps_lock = False
        self._last_key_at: float | None = None
        self.unknown_keys = 0

    @property
    def pending(self) -> bool:
        return bool(self._chars) and not self._skipping

    def feed(self, key_code: int, value: int, at: float) -> str | Discarded | None:
        """One EV_KEY event (``value`` 1 down, 0 up, 2 auto-repeat) at time ``at`` (seconds, any
        monotonic clock); the completed code or discard, if this key ends one."""
        if key_code in _SHIFTS or key_code in _CHORDS:
            held = self._shifts if key_code in _SHIFTS else self._chords
            if value == KEY_UP:
                held.discard(key_code)
            else:
                held.add(key_code)
            return None
        if value != KEY_DOWN:
            return None  # key up, or auto-repeat: a scanner never holds a key on purpose
        gap = self._last_key_at is not None and at - self._last_key_at > self._key_gap_s
        self._last_key_at = at
        outcome = self.reset() if gap else None
        if key_code in (KEY_ENTER, KEY_KPENTER):
            return self._finish() or outcome
        if key_code == KEY_CAPSLOCK:
            self._caps_lock = not self._caps_lock
            return outcome
        if key_code in _SILENT:
            return outcome
        pair = US_KEYS.get(key_code)
        if pair is None or self._chords:
            self.unknown_keys += 1
            return outcome
        char = pair[1] if self._shifts else pair[0]
        if self._caps_lock and char.isalpha():
            char = char.swapcase()
        return self._add(char) or outcome

    def reset(self) -> Discarded | None:
        """Forget a partial code; INCOMPLETE if there was one. Held keys are forgotten too (the
        device was reopened, or its key-ups were lost)."""
        had_code = self.pending
        self._chars.clear()
        self._skipping = False
        return Discarded(DiscardReason.INCOMPLETE) if had_code else None

    def release_all(self) -> None:
        """Forget held modifiers and caps lock, as a freshly opened device starts."""
        self._shifts.clear()
        self._chords.clear()
        self._caps_lock = False
        self._last_key_at = None

    def _add(self, char: str) -> Discarded | None:
        if self._skipping:
            return None
        self._chars.append(char)
        if len(self._chars) > self._max_length:
            self._chars.clear()
            self._skipping = True
            return Discarded(DiscardReason.TOO_LONG)
        return None

    def _finish(self) -> str | None:
        text = clean_text("".join(self._chars))
        skipped = self._skipping
        self._chars.clear()
        self._skipping = False
        if skipped or not text.strip():
            return None
        return text
