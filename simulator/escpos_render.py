"""ESC/POS interpreter for the virtual printer: parses bytes, lays out paper, renders PNG, text."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import qrcode
import qrcode.exceptions
from PIL import Image, ImageDraw, ImageFont

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
# Face 1 of the collection is "WenQuanYi Micro Hei Mono": its Latin glyphs are 0.6 em wide, so at
# 20 px they fill exactly a 12-dot font-A cell and at 24 px its CJK glyphs fill a 24-dot Kanji cell.
_FONT_INDEX = 1
_NARROW_DOTS = 12  # font A: 12 x 24
_WIDE_DOTS = 24  # Kanji: 24 x 24
_CHAR_HEIGHT = 24
_DEFAULT_LINE_SPACING = 30  # ESC 2: 1/6 inch at 180 dpi, about 30 dots at 203 dpi
# Paper kept between two cuts: 2.5 m at 203 dpi, ten times our longest receipt. A real printer
# feeds whatever it is told, but three bytes (ESC d 255 at 255-dot spacing) ask for 8 m of paper,
# and the simulator must not turn a garbled stream into a gigabyte image.
MAX_PAPER_DOTS = 20_000

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10

# --- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """Printable characters; ``wide`` when they came as multi-byte codes in Chinese mode."""

    text: str
    wide: bool


@dataclass(frozen=True)
class LineFeed:
    """LF: print the line buffer and feed one line."""


@dataclass(frozen=True)
class PrintAndFeed:
    """ESC d n."""

    lines: int


@dataclass(frozen=True)
class FeedDots:
    """ESC J n."""

    dots: int


@dataclass(frozen=True)
class Initialize:
    """ESC @."""


@dataclass(frozen=True)
class ChineseMode:
    """FS & (on) / FS . (off)."""

    on: bool


@dataclass(frozen=True)
class Justify:
    """ESC a n: 0 left, 1 centre, 2 right."""

    align: int


@dataclass(frozen=True)
class Emphasis:
    """ESC E n."""

    on: bool


@dataclass(frozen=True)
class PrintMode:
    """ESC ! n: bit 3 emphasis, bit 4 double height, bit 5 double width (alphanumerics only)."""

    mode: int


@dataclass(frozen=True)
class CharSize:
    """GS ! n: width (high nibble) and height (low nibble) multipliers, all characters."""

    size: int


@dataclass(frozen=True)
class KanjiMode:
    """FS ! n: bit 2 double width, bit 3 double height, Chinese characters only."""

    mode: int


@dataclass(frozen=True)
class LineSpacing:
    """ESC 2 (default, ``dots`` None) or ESC 3 n."""

    dots: int | None


@dataclass(frozen=True)
class QrModuleSize:
    """GS ( k cn=49 fn=67."""

    dots: int


@dataclass(frozen=True)
class QrErrorLevel:
    """GS ( k cn=49 fn=69: 48..51 = L, M, Q, H."""

    level: int


@dataclass(frozen=True)
class QrStore:
    """GS ( k cn=49 fn=80: the symbol's data."""

    data: bytes


@dataclass(frozen=True)
class QrPrint:
    """GS ( k cn=49 fn=81."""


@dataclass(frozen=True)
class Cut:
    """GS V (any form)."""


@dataclass(frozen=True)
class StatusRequest:
    """DLE EOT n: answered in real time, never part of a receipt."""

    n: int


@dataclass(frozen=True)
class Ignored:
    """Bytes skipped: a known command we do not render, or an unknown one (``note`` says which)."""

    note: str


Command = (
    Text
    | LineFeed
    | PrintAndFeed
    | FeedDots
    | Initialize
    | ChineseMode
    | Justify
    | Emphasis
    | PrintMode
    | CharSize
    | KanjiMode
    | LineSpacing
    | QrModuleSize
    | QrErrorLevel
    | QrStore
    | QrPrint
    | Cut
    | StatusRequest
    | Ignored
)


@dataclass(frozen=True)
class Parsed:
    command: Command
    raw: bytes


# --- parser ---------------------------------------------------------------------------------------

# ESC x n commands we render, built from their one parameter byte n.
_ESC_ONE_PARAM: dict[int, Callable[[int], Command]] = {
    ord("a"): lambda n: Justify(n % 48 if n >= 48 else n),
    ord("E"): lambda n: Emphasis(bool(n & 1)),
    ord("!"): PrintMode,
    ord("d"): PrintAndFeed,
    ord("J"): FeedDots,
    ord("3"): LineSpacing,
}
# ESC x commands with one parameter byte that we accept and do not render.
_ESC_ONE_PARAM_IGNORED = frozenset(b" -MtG{RrUVc")
_GS_ONE_PARAM_IGNORED = frozenset(b"BbfhHw|aIr")


def _hex(data: bytes | bytearray) -> str:
    return data.hex(" ")


def _gb18030_length(buf: bytearray, pos: int) -> int | None:
    """Bytes in the GB18030 code starting at ``pos``: 2 or 4; 0 if none starts there; None if
    the bytes so far could still become one (wait for more)."""
    if not 0x81 <= buf[pos] <= 0xFE:
        return 0
    if pos + 1 >= len(buf):
        return None
    second = buf[pos + 1]
    if 0x40 <= second <= 0xFE and second != 0x7F:
        return 2
    if not 0x30 <= second <= 0x39:
        return 0  # a control byte (LF, ESC) is never part of a character
    if pos + 2 >= len(buf):
        return None
    if not 0x81 <= buf[pos + 2] <= 0xFE:
        return 0
    if pos + 3 >= len(buf):
        return None
    return 4 if 0x30 <= buf[pos + 3] <= 0x39 else 0


def _gb18030_character(code: bytes) -> str:
    """The character of one well-formed 2- or 4-byte code, or one replacement glyph.

    Each code is decoded on its own: decoding a run at once lets the codec's error recovery
    depend on the neighbouring codes, and so on how the bytes happened to arrive.
    """
    try:
        ch = code.decode("gb18030")
    except UnicodeDecodeError:
        return "\ufffd"  # well-formed, but GB18030 assigns it no character
    # Four-byte codes reach C1 controls (81 30 81 30 is U+0080) and line separators, which a
    # printer has no glyph for and Pillow cannot lay out: they print as the replacement glyph.
    if len(ch) != 1 or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
        return "\ufffd"
    return ch


class EscPosParser:
    """Incremental ESC/POS tokenizer: feed it bytes as they arrive, get whole commands back.

    It tracks Chinese mode itself, because that decides whether a byte >= 0x80 starts a
    multi-byte GB18030 character or is one code-page character. ESC @ turns Chinese mode off, so a
    driver that does not send FS & shows up as mojibake instead of passing by luck.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.chinese = False

    def feed(self, data: bytes) -> list[Parsed]:
        self._buf += data
        out: list[Parsed] = []
        pos = 0
        while pos < len(self._buf):
            step = self._parse_at(pos)
            if step is None:
                break  # incomplete command: wait for more bytes
            command, end = step
            out.append(Parsed(command, bytes(self._buf[pos:end])))
            pos = end
        del self._buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes held back as the start of an incomplete command."""
        return len(self._buf)

    def _need(self, pos: int, length: int) -> bool:
        return pos + length <= len(self._buf)

    def _parse_at(self, pos: int) -> tuple[Command, int] | None:
        b = self._buf[pos]
        if b == 0x0A:
            return LineFeed(), pos + 1
        if b == 0x0D:
            return Ignored(""), pos + 1  # CR: ignored with auto line feed off (the default)
        if b == 0x09:
            return Text(" ", wide=False), pos + 1
        if b == ESC:
            return self._parse_esc(pos)
        if b == GS:
            return self._parse_gs(pos)
        if b == FS:
            return self._parse_fs(pos)
        if b == DLE:
            return self._parse_dle(pos)
        if b < 0x20 or b == 0x7F:
            return Ignored(f"control byte {b:02x}"), pos + 1
        return self._parse_text(pos)

    def _parse_text(self, pos: int) -> tuple[Command, int] | None:
        buf = self._buf
        if buf[pos] < 0x80:
            end = pos
            while end < len(buf) and 0x20 <= buf[end] < 0x7F:
                end += 1
            return Text(buf[pos:end].decode("ascii"), wide=False), end
        if not self.chinese:
            end = pos
            while end < len(buf) and buf[end] >= 0x80:
                end += 1
            return Text(buf[pos:end].decode("cp437"), wide=False), end
        end = pos
        chars: list[str] = []
        while end < len(buf) and buf[end] >= 0x80:
            size = _gb18030_length(buf, end)
            if size is None:
                break  # cut off: wait for the rest
            if size == 0:
                if end == pos:
                    # Only the lead byte is skipped: what follows it (an LF, an ESC) is a command.
                    note = f"invalid GB18030 sequence {_hex(buf[pos : pos + 2])}"
                    return Ignored(note), pos + 1
                break
            chars.append(_gb18030_character(bytes(buf[end : end + size])))
            end += size
        if end == pos:
            return None
        return Text("".join(chars), wide=True), end

    def _parse_esc(self, pos: int) -> tuple[Command, int] | None:
        if not self._need(pos, 2):
            return None
        op = self._buf[pos + 1]
        if op == ord("@"):
            self.chinese = False
            return Initialize(), pos + 2
        if op == ord("2"):
            return LineSpacing(None), pos + 2
        if not self._need(pos, 3):
            return None
        simple = _ESC_ONE_PARAM.get(op)
        if simple is not None:
            return simple(self._buf[pos + 2]), pos + 3
        if op in _ESC_ONE_PARAM_IGNORED:
            return Ignored(""), pos + 3
        if op == ord("p"):  # ESC p m t1 t2: drawer kick
            return (Ignored(""), pos + 5) if self._need(pos, 5) else None
        return Ignored(f"unknown command {_hex(self._buf[pos : pos + 2])}"), pos + 2

    def _parse_gs(self, pos: int) -> tuple[Command, int] | None:
        buf = self._buf
        if not self._need(pos, 3):
            return None
        op, n = buf[pos + 1], buf[pos + 2]
        if op == ord("!"):
            return CharSize(n), pos + 3
        if op == ord("V"):
            if n in (0, 1, 48, 49):
                return Cut(), pos + 3
            if n in (65, 66, 97, 98, 103, 104):
                return (Cut(), pos + 4) if self._need(pos, 4) else None
            return Ignored(f"unknown cut mode {n:02x}"), pos + 3
        if op == ord("("):
            return self._parse_gs_paren(pos)
        if op in _GS_ONE_PARAM_IGNORED:
            return Ignored(""), pos + 3
        if op in (ord("L"), ord("W"), ord("P")):
            return (Ignored(""), pos + 4) if self._need(pos, 4) else None
        if op == ord("v") and n == ord("0"):  # GS v 0 m xL xH yL yH raster image
            if not self._need(pos, 8):
                return None
            width = buf[pos + 4] + 256 * buf[pos + 5]
            height = buf[pos + 6] + 256 * buf[pos + 7]
            end = pos + 8 + width * height
            return (Ignored("raster image not rendered"), end) if end <= len(buf) else None
        if op == ord("8") and n == ord("L"):  # GS 8 L p1 p2 p3 p4: long graphics data
            if not self._need(pos, 7):
                return None
            size = int.from_bytes(buf[pos + 3 : pos + 7], "little")
            end = pos + 7 + size
            return (Ignored("graphics data not rendered"), end) if end <= len(buf) else None
        return Ignored(f"unknown command {_hex(buf[pos : pos + 2])}"), pos + 2

    def _parse_gs_paren(self, pos: int) -> tuple[Command, int] | None:
        buf = self._buf
        if not self._need(pos, 5):
            return None
        length = buf[pos + 3] + 256 * buf[pos + 4]
        end = pos + 5 + length
        if end > len(buf):
            return None
        function = buf[pos + 2]
        body = bytes(buf[pos + 5 : end])
        if function != ord("k"):
            return Ignored(f"GS ( {chr(function)} not rendered"), end
        if len(body) < 2 or body[0] != 0x31:
            return Ignored(f"2D code {_hex(body[:2])} not supported"), end
        fn, params = body[1], body[2:]
        if fn == 65:  # model: we only draw model 2, the only one phones read reliably
            return Ignored("" if params[:1] == b"2" else "QR model other than 2"), end
        if fn == 67 and params:
            return QrModuleSize(params[0]), end
        if fn == 69 and params:
            return QrErrorLevel(params[0]), end
        if fn == 80 and params:
            return QrStore(params[1:]), end  # params[0] is m = '0'
        if fn == 81:
            return QrPrint(), end
        return Ignored(f"QR function {fn} not supported"), end

    def _parse_fs(self, pos: int) -> tuple[Command, int] | None:
        if not self._need(pos, 2):
            return None
        op = self._buf[pos + 1]
        if op == ord("&"):
            self.chinese = True
            return ChineseMode(True), pos + 2
        if op == ord("."):
            self.chinese = False
            return ChineseMode(False), pos + 2
        if op in (ord("!"), ord("W"), ord("-"), ord("C")):
            if not self._need(pos, 3):
                return None
            n = self._buf[pos + 2]
            if op == ord("!"):
                return KanjiMode(n), pos + 3
            if op == ord("W"):
                return KanjiMode(0x0C if n & 1 else 0), pos + 3
            return Ignored(""), pos + 3
        if op == ord("S"):
            return (Ignored(""), pos + 4) if self._need(pos, 4) else None
        return Ignored(f"unknown command {_hex(self._buf[pos : pos + 2])}"), pos + 2

    def _parse_dle(self, pos: int) -> tuple[Command, int] | None:
        if not self._need(pos, 2):
            return None
        op = self._buf[pos + 1]
        if op in (0x04, 0x05):
            if not self._need(pos, 3):
                return None
            n = self._buf[pos + 2]
            if op == 0x04 and 1 <= n <= 4:
                return StatusRequest(n), pos + 3
            return Ignored(f"real-time command {_hex(self._buf[pos : pos + 3])} ignored"), pos + 3
        return Ignored("stray DLE"), pos + 1


# --- paper ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Glyph:
    char: str
    wide: bool
    width_mult: int
    height_mult: int
    bold: bool

    @property
    def dots(self) -> int:
        return (_WIDE_DOTS if self.wide else _NARROW_DOTS) * self.width_mult

    @property
    def columns(self) -> int:
        return (2 if self.wide else 1) * self.width_mult


@dataclass(frozen=True)
class TextRow:
    glyphs: tuple[Glyph, ...]
    align: int
    spacing: int

    @property
    def height(self) -> int:
        tallest = max(_CHAR_HEIGHT * g.height_mult for g in self.glyphs)
        return max(self.spacing, tallest + max(self.spacing - _CHAR_HEIGHT, 0))


@dataclass(frozen=True)
class BlankRow:
    height: int


@dataclass(frozen=True)
class QrRow:
    data: bytes
    module_dots: int
    error_level: int
    align: int
    modules: int  # symbol width in modules, from its version: 21 to 177

    @property
    def height(self) -> int:
        return self.modules * self.module_dots


Row = TextRow | BlankRow | QrRow


@dataclass
class _Modes:
    """Print modes: they survive a cut and are reset only by ESC @ (as on a real printer)."""

    align: int = 0
    bold: bool = False
    ank_size: tuple[int, int] = (1, 1)  # alphanumerics: ESC ! and GS !
    kanji_size: tuple[int, int] = (1, 1)  # Chinese: FS ! and GS !
    line_spacing: int = _DEFAULT_LINE_SPACING
    qr_module: int = 3
    qr_error_level: int = 48
    qr_data: bytes | None = None


@dataclass
class Paper:
    """The paper coming out of the printer since the last cut, and the modes it is printed in."""

    dots: int
    modes: _Modes = field(default_factory=_Modes)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _line: list[Glyph] = field(default_factory=list)
    _line_align: int = 0
    _length: int = 0  # dots of paper in ``rows``
    _cut_off: bool = False  # rows were refused for MAX_PAPER_DOTS since the last cut

    @property
    def has_content(self) -> bool:
        return bool(self.rows or self._line)

    def apply(self, command: Command) -> int:
        """Apply one command; returns how many rows of paper it printed."""
        before = len(self.rows)
        m = self.modes
        if isinstance(command, Text):
            self._add_text(command)
        elif isinstance(command, LineFeed):
            self._print_line()
        elif isinstance(command, PrintAndFeed):
            blanks = command.lines
            if self._line:
                self._print_line()
                blanks -= 1
            for _ in range(max(blanks, 0)):
                if self._cut_off:
                    break  # past MAX_PAPER_DOTS nothing more is kept
                self._add_row(BlankRow(m.line_spacing))
        elif isinstance(command, FeedDots):
            self._flush_line()
            self._add_row(BlankRow(command.dots))
        elif isinstance(command, Initialize):
            self._line.clear()  # ESC @ clears the print buffer, not what is already printed
            self.modes = _Modes()
        elif isinstance(command, Justify):
            m.align = min(command.align, 2)
        elif isinstance(command, Emphasis):
            m.bold = command.on
        elif isinstance(command, PrintMode):
            m.bold = bool(command.mode & 0x08)
            m.ank_size = (2 if command.mode & 0x20 else 1, 2 if command.mode & 0x10 else 1)
        elif isinstance(command, CharSize):
            size = ((command.size >> 4) % 8 + 1, (command.size & 0x0F) % 8 + 1)
            m.ank_size = m.kanji_size = size
        elif isinstance(command, KanjiMode):
            m.kanji_size = (2 if command.mode & 0x04 else 1, 2 if command.mode & 0x08 else 1)
        elif isinstance(command, LineSpacing):
            m.line_spacing = _DEFAULT_LINE_SPACING if command.dots is None else command.dots
        elif isinstance(command, QrModuleSize):
            m.qr_module = min(max(command.dots, 1), 16)
        elif isinstance(command, QrErrorLevel):
            m.qr_error_level = command.level
        elif isinstance(command, QrStore):
            m.qr_data = command.data
        elif isinstance(command, QrPrint):
            self._flush_line()
            if not m.qr_data:
                self.notes.append("QR print with no stored data")
            elif (modules := _qr_modules(m.qr_data, m.qr_error_level)) is None:
                # A real printer prints nothing for data its largest symbol cannot hold.
                self.notes.append(
                    f"QR data of {len(m.qr_data)} bytes is too long for a symbol: not printed"
                )
            else:
                self._add_row(QrRow(m.qr_data, m.qr_module, m.qr_error_level, m.align, modules))
        elif isinstance(command, Cut):
            self._flush_line()
        elif isinstance(command, Ignored) and command.note:
            self.notes.append(command.note)
        return len(self.rows) - before

    def take(self) -> tuple[list[Row], list[str]]:
        """Hand over what was printed since the last cut and start a fresh stretch of paper."""
        self._flush_line()
        rows, notes = self.rows, self.notes
        self.rows, self.notes = [], []
        self._length, self._cut_off = 0, False
        return rows, notes

    def drop_rows(self, count: int) -> None:
        """Forget the last ``count`` rows (they were never printed: the paper had run out)."""
        if count > 0:
            self._length -= sum(row.height for row in self.rows[-count:])
            del self.rows[-count:]

    def _add_row(self, row: Row) -> None:
        if self._length + row.height > MAX_PAPER_DOTS:
            if not self._cut_off:
                self.notes.append(
                    f"receipt longer than {MAX_PAPER_DOTS} dots: the rest was not printed"
                )
                self._cut_off = True
            return
        self.rows.append(row)
        self._length += row.height

    def _add_text(self, text: Text) -> None:
        m = self.modes
        width, height = m.kanji_size if text.wide else m.ank_size
        for ch in text.text:
            glyph = Glyph(ch, text.wide, width, height, m.bold)
            if sum(g.dots for g in self._line) + glyph.dots > self.dots:
                # A real printer wraps here; our driver's layout must never make it.
                self.notes.append("line wider than the paper was wrapped")
                self._print_line()
            if not self._line:
                self._line_align = m.align  # ESC a counts only at the start of a line
            self._line.append(glyph)

    def _print_line(self) -> None:
        if self._line:
            self._add_row(TextRow(tuple(self._line), self._line_align, self.modes.line_spacing))
            self._line = []
        else:
            self._add_row(BlankRow(self.modes.line_spacing))

    def _flush_line(self) -> None:
        if self._line:
            self._print_line()


# --- rendering ------------------------------------------------------------------------------------

_QR_ERROR_LEVELS = {
    48: qrcode.constants.ERROR_CORRECT_L,
    49: qrcode.constants.ERROR_CORRECT_M,
    50: qrcode.constants.ERROR_CORRECT_Q,
    51: qrcode.constants.ERROR_CORRECT_H,
}
_MARGIN_DOTS = 12  # white paper above the first and below the last row


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_PATH), size, index=_FONT_INDEX)


@functools.lru_cache(maxsize=4096)
def _glyph_mask(glyph: Glyph) -> Image.Image:
    """The glyph's ink as an L-mode mask of its cell (plus room below for descenders)."""
    scale = glyph.height_mult
    base = _WIDE_DOTS if glyph.wide else _NARROW_DOTS
    cell_w, cell_h = base * scale, _CHAR_HEIGHT * scale
    font = _font((24 if glyph.wide else 20) * scale)
    mask = Image.new("L", (cell_w + scale, cell_h + 6 * scale), 0)
    draw = ImageDraw.Draw(mask)
    baseline = cell_h - 3 * scale
    draw.text((0, baseline), glyph.char, fill=255, font=font, anchor="ls")
    if glyph.bold:
        # Emphasised printing on a thermal head is the same dots struck again one dot to the right.
        draw.text((1, baseline), glyph.char, fill=255, font=font, anchor="ls")
    if glyph.width_mult != glyph.height_mult:
        target_w = base * glyph.width_mult + glyph.width_mult
        mask = mask.resize((target_w, mask.height), Image.Resampling.BILINEAR)
    return mask


def _qr_code(data: bytes, error_level: int, module_dots: int = 1) -> qrcode.QRCode:
    code = qrcode.QRCode(
        error_correction=_QR_ERROR_LEVELS.get(error_level, qrcode.constants.ERROR_CORRECT_L),
        box_size=module_dots,
        border=0,  # the printer prints no quiet zone; the white paper around it is the zone
    )
    code.add_data(data)
    return code


def _qr_modules(data: bytes, error_level: int) -> int | None:
    """The width in modules of the smallest symbol holding ``data``; None if none can."""
    try:
        version: int = _qr_code(data, error_level).best_fit()
    except (qrcode.exceptions.DataOverflowError, ValueError):
        # qrcode 8.2 rejects version 41 in its version setter with a plain ValueError before
        # best_fit gets to raise DataOverflowError.
        return None
    return 17 + 4 * version


def _qr_image(row: QrRow) -> Image.Image:
    code = _qr_code(row.data, row.error_level, row.module_dots)
    code.make(fit=True)
    image: Image.Image = code.make_image(fill_color="black", back_color="white").get_image()
    return image.convert("L")


def _row_x(align: int, width: int, dots: int) -> int:
    if align == 1:
        return max((dots - width) // 2, 0)
    if align == 2:
        return max(dots - width, 0)
    return 0


def render_png(rows: list[Row], dots: int) -> Image.Image:
    """The receipt as it would come out of the printer: ``dots`` pixels wide, one pixel per dot."""
    qr_images = {id(row): _qr_image(row) for row in rows if isinstance(row, QrRow)}

    total = sum(row.height for row in rows) + 2 * _MARGIN_DOTS
    page = Image.new("L", (dots, max(total, 1)), 255)
    y = _MARGIN_DOTS
    for row in rows:
        if isinstance(row, TextRow):
            width = sum(g.dots for g in row.glyphs)
            x = _row_x(row.align, width, dots)
            line_bottom = y + max(_CHAR_HEIGHT * g.height_mult for g in row.glyphs)
            for glyph in row.glyphs:
                mask = _glyph_mask(glyph)
                top = line_bottom - _CHAR_HEIGHT * glyph.height_mult
                page.paste(0, (x, top, x + mask.width, top + mask.height), mask)
                x += glyph.dots
        elif isinstance(row, QrRow):
            image = qr_images[id(row)]
            page.paste(image, (_row_x(row.align, image.width, dots), y))
        y += row.height
    return page


def _escaped(ch: str) -> str:
    # QR data is any bytes; a line break in it must not start a line of the text rendering.
    return ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")


def render_text(rows: list[Row], dots: int) -> str:
    """The receipt as plain text, one line per printed row, aligned in font-A columns."""
    columns = dots // _NARROW_DOTS
    lines: list[str] = []
    for row in rows:
        if isinstance(row, TextRow):
            used = sum(g.columns for g in row.glyphs)
            text = "".join(g.char for g in row.glyphs)
        elif isinstance(row, QrRow):
            text = "[QR] " + "".join(map(_escaped, row.data.decode("utf-8", errors="replace")))
            used = len(text)
        else:
            lines.append("")
            continue
        align = row.align
        pad = (columns - used) // 2 if align == 1 else columns - used if align == 2 else 0
        lines.append((" " * max(pad, 0) + text).rstrip())
    return "\n".join(lines) + "\n"
