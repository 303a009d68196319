"""ESC/POS printer protocol, pure: DLE EOT status bytes and receipt layout per paper width."""

from __future__ import annotations

import enum
import itertools
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devices.base import Align, DeviceState, Feed, FieldLine, QrCode, Receipt, Rule, TextLine

# --- commands we build ourselves (python-escpos has no name for these) ---------------------------

ESC_INIT = b"\x1b@"  # ESC @: clear the print buffer, reset every mode to the power-on default
# FS & enters Chinese (Kanji) mode. Most Chinese models power on in it, but ESC @ on some models
# and a previous job's FS . leave it off, so every job sends it explicitly after ESC @.
FS_CHINESE_ON = b"\x1c&"
FS_CHINESE_OFF = b"\x1c."
TEXT_ENCODING = "gb18030"


# --- DLE EOT real-time status ---------------------------------------------------------------------


class StatusRequest(enum.IntEnum):
    """The ``n`` of DLE EOT n: which status byte the printer transmits."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    ROLL_PAPER = 4


def status_request(kind: StatusRequest) -> bytes:
    """The three bytes asking for one real-time status byte: ``10 04 n``."""
    return bytes((0x10, 0x04, int(kind)))


def is_valid_status_byte(value: int) -> bool:
    """True if ``value`` has the fixed bits of every DLE EOT reply: ``0xx1xx10``.

    Bits 1 and 4 are always 1, bits 0 and 7 always 0. Anything else is not a status byte (line
    noise, an echo of our own request, a reply meant for an earlier request), so it must never be
    decoded as one.
    """
    return 0 <= value <= 0xFF and (value & 0x81) == 0 and (value & 0x12) == 0x12


class StatusReplyError(ValueError):
    """The printer answered, but not with a valid DLE EOT status byte."""


def status_byte(reply: bytes) -> int:
    """The status byte in one read's worth of reply; raises StatusReplyError if there is none.

    Only the last byte counts: the driver drains stale input before asking, so anything in front of
    it can only be noise or a reply that arrived after an earlier request had timed out.
    """
    if not reply:
        raise StatusReplyError("empty status reply")
    value = reply[-1]
    if not is_valid_status_byte(value):
        raise StatusReplyError(f"invalid status byte 0x{value:02x}")
    return value


@dataclass(frozen=True)
class RealtimeStatus:
    """The four DLE EOT status bytes, decoded (Epson layout, reference/devices.md section 4.1)."""

    offline: bool  # n=1 bit 3
    cover_open: bool  # n=2 bit 2
    feed_button: bool  # n=2 bit 3: paper is being fed by the FEED button (transiently offline)
    paper_end_stop: bool  # n=2 bit 5: printing stopped because the paper ran out
    error: bool  # n=2 bit 6: an error occurred; n=3 says which
    cutter_error: bool  # n=3 bit 3: recoverable with DLE ENQ
    unrecoverable_error: bool  # n=3 bit 5
    auto_recoverable_error: bool  # n=3 bit 6: head overheat, or cover opened while printing
    paper_near_end: bool  # n=4 bits 2,3
    paper_end: bool  # n=4 bits 5,6


def decode_status(
    printer: int, offline_cause: int, error_cause: int, roll_paper: int
) -> RealtimeStatus:
    """Decode the replies to DLE EOT 1, 2, 3 and 4; raises StatusReplyError on an invalid byte."""
    for value in (printer, offline_cause, error_cause, roll_paper):
        if not is_valid_status_byte(value):
            raise StatusReplyError(f"invalid status byte 0x{value:02x}")
    return RealtimeStatus(
        offline=bool(printer & 0x08),
        cover_open=bool(offline_cause & 0x04),
        feed_button=bool(offline_cause & 0x08),
        paper_end_stop=bool(offline_cause & 0x20),
        error=bool(offline_cause & 0x40),
        cutter_error=bool(error_cause & 0x08),
        unrecoverable_error=bool(error_cause & 0x20),
        auto_recoverable_error=bool(error_cause & 0x40),
        # Two sensor bits each; printers set both together, but one is enough to act on.
        paper_near_end=bool(roll_paper & 0x0C),
        paper_end=bool(roll_paper & 0x60),
    )


class PrinterReason(enum.StrEnum):
    """Reasons the printer reports in its DeviceState (heartbeat ``devices.printer.reason``)."""

    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    CUTTER_ERROR = "cutter_error"
    UNRECOVERABLE_ERROR = "unrecoverable_error"
    AUTO_RECOVERABLE_ERROR = "auto_recoverable_error"
    OFFLINE = "offline"  # unreachable, or the printer says off-line without a known cause
    NO_RESPONSE = "no_response"  # connected, but no valid status byte within our timeout


def device_state(status: RealtimeStatus) -> DeviceState:
    """Map a decoded status to the state every heartbeat reports; the first matching fault wins."""
    # Cover first: with the cover open the paper sensor often reads "no paper" too, and closing the
    # cover is what the technician must do before anything else can be judged.
    if status.cover_open:
        return DeviceState.fault(PrinterReason.COVER_OPEN)
    if status.paper_end or status.paper_end_stop:
        return DeviceState.fault(PrinterReason.PAPER_OUT)
    if status.cutter_error:
        return DeviceState.fault(PrinterReason.CUTTER_ERROR)
    if status.unrecoverable_error:
        return DeviceState.fault(PrinterReason.UNRECOVERABLE_ERROR)
    if status.auto_recoverable_error:
        return DeviceState.fault(PrinterReason.AUTO_RECOVERABLE_ERROR)
    if status.offline or status.error:
        return DeviceState.fault(PrinterReason.OFFLINE)
    if status.paper_near_end:
        return DeviceState.degraded(PrinterReason.PAPER_NEAR_END)
    return DeviceState.ok()


# --- paper and layout -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Paper:
    """A paper roll width: characters per line in font A (12x24 dots) and printable dots."""

    mm: int
    columns: int
    dots: int


PAPER_58MM = Paper(mm=58, columns=32, dots=384)
PAPER_80MM = Paper(mm=80, columns=48, dots=576)


def paper_for(mm: int) -> Paper:
    """The paper spec for a roll width in millimetres (58 or 80)."""
    for paper in (PAPER_58MM, PAPER_80MM):
        if paper.mm == mm:
            return paper
    raise ValueError(f"unsupported paper width {mm} mm (58 or 80)")


class ReceiptLayoutError(ValueError):
    """A receipt cannot be laid out on this paper (a QR code too long for it, or not text)."""


@dataclass(frozen=True)
class PrintLine:
    """One physical line of text fitted to the paper (``large`` = double width and height)."""

    text: str
    align: Align = Align.LEFT
    bold: bool = False
    large: bool = False


@dataclass(frozen=True)
class PrintQr:
    """A QR symbol printed natively by the printer, centred; ``module_dots`` per module."""

    data: str
    module_dots: int


@dataclass(frozen=True)
class PrintFeed:
    """Blank lines."""

    lines: int


LayoutItem = PrintLine | PrintQr | PrintFeed

# Characters that must not begin a line (Chinese line-breaking rule, 避头点): they pull the
# preceding character onto the new line with them.
_NO_LINE_START = frozenset("，。、；：？！）》」』】〉”’,.;:?!)]}%")

_MAX_FEED_LINES = 255  # ESC d n takes one byte


def sanitize_text(text: str) -> str:
    """Text safe to send as printable GB18030: NFC, no control, format or surrogate characters.

    Strings come from the service hub and the catalogue; a stray ESC or GS in them would be taken
    by the printer as a command. Tabs become spaces; line breaks are kept for the caller to split.
    """
    out: list[str] = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
        elif ch in "\t\u00a0":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    # Composed after the filtering, not before: a dropped character may have stood between a
    # letter and its combining mark, which would then print in a cell of its own.
    return unicodedata.normalize("NFC", "".join(out))


def char_columns(ch: str) -> int:
    """Columns one character takes in Chinese mode: 1 for ASCII, 2 for everything else.

    In FS & mode every byte >= 0x80 starts a multi-byte GB18030 code that the printer draws in a
    full-width (24-dot) Kanji cell. That covers East Asian wide characters and also "ambiguous" ones
    such as ·, × or —, which a terminal would count as 1 but the printer prints 2 columns wide.
    """
    return 1 if ord(ch) < 0x80 else 2


def text_columns(text: str) -> int:
    """Columns a string takes on the paper in normal size."""
    return sum(char_columns(ch) for ch in text)


# Cuts a text into words that rejoin it (flows.wording.segment, injected by the composition root:
# devices may not import flows). Without one every Chinese character is a word of its own.
WordBreaker = Callable[[str], Sequence[str]]

# Opening brackets and quotes must not end a line (避尾点): they go down with what they open.
_NO_LINE_END = frozenset("（《「『【〔〈“‘([{<")
# A Latin word or number, kept whole on one line unless it is wider than the line.
_LATIN = re.compile(r"[0-9A-Za-z\u00C0-\u024F*#@&_\-+/'.]+")
_TOKEN = re.compile(rf"\s+|{_LATIN.pattern}|.", re.DOTALL)


def wrap_text(text: str, columns: int, words: WordBreaker | None = None) -> list[str]:
    """Break text into lines of at most ``columns``; never splits a word that fits a line.

    Lines break at spaces and between words: Latin words and numbers, and the Chinese words
    ``words`` finds (each Chinese character when there is none). Closing punctuation never
    starts a line and opening punctuation never ends one. A word wider than a line is cut where
    it must be.
    """
    if columns < 2:
        raise ValueError("columns must be at least 2")
    return [
        line
        for paragraph in sanitize_text(text).split("\n")
        for line in _wrap_paragraph(paragraph, columns, words)
    ]


def _wrap_paragraph(text: str, columns: int, words: WordBreaker | None) -> list[str]:
    offsets = [0]  # offsets[i]: columns taken by text[:i]
    for ch in text:
        offsets.append(offsets[-1] + char_columns(ch))
    spaces, breaks, inside = _break_opportunities(text, words)
    lines: list[str] = []
    start, following = 0, 0
    while True:
        rest = text[start:].rstrip()
        if offsets[start + len(rest)] - offsets[start] <= columns:
            lines.append(rest)
            return lines
        while following < len(breaks) and breaks[following][0] <= start:
            following += 1
        chosen: tuple[int, int] | None = None
        at_space: tuple[int, int] | None = None
        for end, resume in breaks[following:]:
            if offsets[end] - offsets[start] > columns:
                break
            chosen = (end, resume)
            if end in spaces:
                at_space = chosen
        # Where Chinese text has a space it marks a phrase boundary ("服务中心 24小时"): break
        # there rather than at a later word, unless that leaves the line less than half full.
        if at_space is not None and offsets[at_space[0]] - offsets[start] >= columns // 2:
            chosen = at_space
        if chosen is None:
            # Not even the first word fits: cut it, inside a Chinese word if 禁则 allow it there.
            limit = breaks[following][0] if following < len(breaks) else start + len(rest)
            fits = [c for c in range(start + 1, limit) if offsets[c] - offsets[start] <= columns]
            cut = max((c for c in fits if c in inside), default=max(fits, default=start + 1))
            chosen = (cut, cut)
        lines.append(text[start : chosen[0]].rstrip())
        start = chosen[1]
        while start < len(text) and text[start].isspace():
            start += 1


def _break_opportunities(
    text: str, words: WordBreaker | None
) -> tuple[frozenset[int], list[tuple[int, int]], frozenset[int]]:
    """Where a line may end and the next begin: (ends at spaces, (end, resume) at every allowed
    break in order, offsets inside Chinese words where a too-wide word may be cut)."""
    pieces = words(text) if words is not None else list(text)
    if "".join(pieces) != text:
        raise ReceiptLayoutError("the word breaker's pieces do not rejoin the text")
    boundaries = set(itertools.accumulate(len(piece) for piece in pieces))
    spans: list[tuple[int, int]] = []
    for match in _TOKEN.finditer(text):
        first, last = match.span()
        glued = spans and first not in boundaries and not text[spans[-1][0]].isspace()
        if glued and not match.group().isspace():
            spans[-1] = (spans[-1][0], last)  # inside one word: one token
        else:
            spans.append((first, last))
    spaces: set[int] = set()
    breaks: list[tuple[int, int]] = []
    inside: set[int] = set()
    for index, (first, last) in enumerate(spans):
        token = text[first:last]
        if index and not token.isspace():
            before_first, before_last = spans[index - 1]
            end = before_first if text[before_first].isspace() else before_last
            if end > 0 and text[end - 1] not in _NO_LINE_END and token[0] not in _NO_LINE_START:
                breaks.append((end, first))
                if end != first:
                    spaces.add(end)
        if len(token) > 1 and not token.isspace() and not _LATIN.fullmatch(token):
            inside.update(
                first + i
                for i in range(1, len(token))
                if token[i - 1] not in _NO_LINE_END and token[i] not in _NO_LINE_START
            )
    return frozenset(spaces), breaks, frozenset(inside)


def _pad_right_aligned(text: str, columns: int) -> str:
    return " " * max(columns - text_columns(text), 0) + text


def layout_field(
    label: str, value: str, columns: int, words: WordBreaker | None = None
) -> list[str]:
    """A label and its value: on one line with the value flush right, or wrapped below it."""
    label = sanitize_text(label).replace("\n", " ")
    value = sanitize_text(value).replace("\n", " ")
    label_lines = wrap_text(label, columns, words) if label else []
    last = label_lines.pop() if label_lines else ""
    gap = 1 if last else 0
    if text_columns(last) + gap + text_columns(value) <= columns:
        fill = columns - text_columns(last) - text_columns(value)
        return [*label_lines, last + " " * fill + value]
    # Too long for one line: the label keeps its line, the value goes below, flush right, so the
    # eye still finds every value in the right-hand column.
    return [
        *label_lines,
        last,
        *(_pad_right_aligned(line, columns) for line in wrap_text(value, columns, words)),
    ]


# Byte-mode capacity of QR versions 1..15 at error correction level M (ISO/IEC 18004 table 7).
# The printer may pick a denser mode, so this gives an upper bound on the symbol's size.
_QR_BYTES_LEVEL_M = (14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412)
_QR_MAX_MODULE_DOTS = 8  # 1 mm per module at 203 dpi: easy for any phone camera
_QR_MIN_MODULE_DOTS = 3  # below this thermal dots smear and phones struggle
_QR_QUIET_MODULES = 8  # 4 modules of white each side


def qr_module_dots(data: str, paper: Paper) -> int:
    """Dots per QR module so the symbol and its quiet zone fit the paper, capped at 8 dots."""
    try:
        # The printer is sent the data as UTF-8 (python-escpos encodes it so for GS ( k).
        size = len(data.encode("utf-8"))
    except UnicodeEncodeError:
        # A lone surrogate (from a broken JSON escape in a hub answer) has no UTF-8 form.
        raise ReceiptLayoutError("QR data is not valid Unicode text") from None
    for version, capacity in enumerate(_QR_BYTES_LEVEL_M, start=1):
        if size <= capacity:
            modules = 17 + 4 * version
            dots = min(_QR_MAX_MODULE_DOTS, paper.dots // (modules + _QR_QUIET_MODULES))
            if dots >= _QR_MIN_MODULE_DOTS:
                return dots
            break
    raise ReceiptLayoutError(f"QR data of {size} bytes is too long for {paper.mm} mm paper")


def layout_receipt(
    receipt: Receipt, paper: Paper, words: WordBreaker | None = None
) -> tuple[LayoutItem, ...]:
    """Lay a receipt out as physical lines, QR symbols and feeds for one paper width; ``words``
    finds the Chinese words that lines break between."""
    items: list[LayoutItem] = []
    for block in receipt.blocks:
        if isinstance(block, TextLine):
            # Double width halves the characters per line.
            columns = paper.columns // 2 if block.large else paper.columns
            wrapped = wrap_text(block.text, columns, words)
            # Under the hang-th character, but never more than half the line in.
            hang = min(text_columns(block.text[: max(0, block.hang)]), columns // 2)
            if hang and len(wrapped) > 1:
                # Wrapped narrower by the hang, every line but the first indented by it.
                wrapped = wrap_text(block.text, columns - hang, words)
                wrapped = [wrapped[0], *(" " * hang + line for line in wrapped[1:])]
            items.extend(
                PrintLine(line, block.align, block.emphasis, block.large) for line in wrapped
            )
        elif isinstance(block, FieldLine):
            items.extend(
                PrintLine(line)
                for line in layout_field(block.label, block.value, paper.columns, words)
            )
        elif isinstance(block, Rule):
            items.append(PrintLine("-" * paper.columns))
        elif isinstance(block, QrCode):
            if block.data:
                # A blank line (30 dots, about 4 modules) above and below is the symbol's quiet
                # zone; printers print none, and text right against it defeats phone scanners.
                items.append(PrintFeed(1))
                items.append(PrintQr(block.data, qr_module_dots(block.data, paper)))
                items.append(PrintFeed(1))
            if block.caption:
                items.extend(
                    PrintLine(line, Align.CENTER)
                    for line in wrap_text(block.caption, paper.columns, words)
                )
        elif isinstance(block, Feed):
            lines = max(0, block.lines)
            while lines > 0:
                items.append(PrintFeed(min(lines, _MAX_FEED_LINES)))
                lines -= _MAX_FEED_LINES
    return tuple(items)


def encode_text(text: str) -> bytes:
    """Text as the printer expects it in Chinese mode: GB18030, whatever the characters are.

    python-escpos 3.1 only GB18030-encodes a string that contains a CJK ideograph; "No. 123" or
    "¥5·00" would go through its code-page path (ESC t switches, '?' for ¥), so we never use it.
    """
    return sanitize_text(text).encode(TEXT_ENCODING)
