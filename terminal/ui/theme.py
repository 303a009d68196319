"""Colours and sizes of the kiosk UI, computed from the window and the panel's pixel pitch; pure."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from terminal.config import ASSUMED_MM_PER_PX

Rgba = tuple[float, float, float, float]


def _hex(code: str, alpha: float = 1.0) -> Rgba:
    value = int(code.lstrip("#"), 16)
    return ((value >> 16) / 255, ((value >> 8) & 0xFF) / 255, (value & 0xFF) / 255, alpha)


# A calm official palette: light background, one deep government blue, tone colours kept for
# meaning (error red is never used for decoration, so it stays alarming). One palette serves both
# modes: every text colour is dark enough for elder mode's 7:1 (tests/terminal/test_theme.py), so
# the screens need not know the mode to pick a colour. The muted grey, red, green, amber and the
# disabled grey were darkened just enough for that; the look is the same.
BACKGROUND = _hex("#F3F6FA")
SURFACE = _hex("#FFFFFF")
ACCENT = _hex("#0B4A9E")
ACCENT_PRESSED = _hex("#083873")
ACCENT_TINT = _hex("#E6EEF9")
ON_ACCENT = _hex("#FFFFFF")
TEXT = _hex("#1A2230")
TEXT_MUTED = _hex("#4A5364")
BORDER = _hex("#CBD5E1")
DANGER = _hex("#972019")
DANGER_PRESSED = _hex("#7A1914")
DISABLED_FILL = _hex("#E4E8EE")
# Disabled is not told by a faint grey alone: a disabled target also loses its solid edge for a
# dashed one (widgets.TargetButton), so its text can stay as legible as any other.
DISABLED_TEXT = _hex("#464B52")

TONE_COLOURS: dict[str, Rgba] = {
    "info": ACCENT,
    "success": _hex("#165C2B"),
    "warning": _hex("#794600"),
    "error": DANGER,
}
TONE_TINTS: dict[str, Rgba] = {
    "info": ACCENT_TINT,
    "success": _hex("#E7F4EA"),
    "warning": _hex("#FFF3DF"),
    "error": _hex("#FBEAE8"),
}

# Every (text colour, background) pair the UI draws, by where it is drawn. The contrast test runs
# over this table, and another test checks that every colour the UI code passes as a text colour
# is a foreground here.
TEXT_PAIRS: tuple[tuple[str, Rgba, Rgba], ...] = (
    ("text on the page", TEXT, BACKGROUND),
    ("text on a card or tile", TEXT, SURFACE),
    ("text on a pressed tile", TEXT, ACCENT_TINT),
    ("notes on the page", TEXT_MUTED, BACKGROUND),
    ("notes on a card", TEXT_MUTED, SURFACE),
    ("titles and headings on the page", ACCENT, BACKGROUND),
    ("headings and list numbers on a card", ACCENT, SURFACE),
    ("secondary and top-bar buttons", ACCENT, SURFACE),
    ("secondary and top-bar buttons, pressed", ACCENT, ACCENT_TINT),
    ("primary button", ON_ACCENT, ACCENT),
    ("primary button, pressed; countdown", ON_ACCENT, ACCENT_PRESSED),
    ("danger button", ON_ACCENT, DANGER),
    ("danger button, pressed", ON_ACCENT, DANGER_PRESSED),
    ("top bar: service name", ON_ACCENT, ACCENT),
    ("disabled target", DISABLED_TEXT, DISABLED_FILL),
    ("a form field's error on the page", DANGER, BACKGROUND),
    *((f"{tone} notice: title", TONE_COLOURS[tone], TONE_TINTS[tone]) for tone in TONE_COLOURS),
    *((f"{tone} notice: lines", TEXT, TONE_TINTS[tone]) for tone in TONE_TINTS),
)

NORMAL_MIN_CONTRAST = 4.5  # WCAG 2.x AA
ELDER_MIN_CONTRAST = 7.0  # WCAG 2.x AAA, asked of elder mode


def relative_luminance(colour: Rgba) -> float:
    """WCAG 2.x relative luminance of an sRGB colour (alpha ignored)."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(fg: Rgba, bg: Rgba) -> float:
    """WCAG 2.x contrast ratio of two opaque colours, 1.0 to 21.0, whichever is lighter."""
    lighter, darker = sorted((relative_luminance(fg), relative_luminance(bg)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


# Smallest touch target in pixels whatever the pitch (what geometry.layout_issues checks); the
# millimetre minimums below are what a resident's finger needs and usually ask for more.
MIN_TOUCH_PX = 48

# What 适老化 asks, on the physical screen (DESIGN.md section 12).
NORMAL_BODY_MM = 4.5  # main text em size, normal mode
ELDER_BODY_MM = 6.0  # main text em size, elder mode
ELDER_TYPE_FACTOR = 1.5  # every text in elder mode, against its normal size
NORMAL_TARGET_MM = 10.0
ELDER_TARGET_MM = 15.0
# Baseline to baseline, in em (the CSS sense). Kivy's own line_height multiplies the font's
# natural line height instead; ``kivy_line_height`` converts.
LINE_HEIGHT = 1.4
MIN_LINE_HEIGHT = 1.3

# Sizes in multiples of the type unit (fonts) or of ``unit`` (layout), the proportions the layout
# was designed in; main text is ``font_body``.
_TYPE = {
    "hero": 7.6,
    "title": 5.8,
    "heading": 4.6,
    "body": 3.9,
    "small": 3.3,
    "button": 4.1,
    "tile": 4.5,
    "bar": 3.6,  # the top bar's service name and switches
}
# Each size against main text where the millimetre floor, not the window, sets the type: the
# same order as above, closer together (small keeps its ratio: notes stay at 3.8 mm).
_FLOOR_RATIO = {
    "hero": 1.45,
    "title": 1.25,
    "heading": 1.1,
    "body": 1.0,
    "small": _TYPE["small"] / _TYPE["body"],
    "button": 1.05,
    "tile": 1.1,
    "bar": 0.92,
}
# A target is at least this many em of its own label tall: room for the words and a margin.
_BUTTON_EM = 2.2
_TILE_EM = 3.0
_TILE_COMPACT_EM = 2.2
_SWITCH_EM = 2.0


def _ceil_tenth(value: float) -> float:
    """Rounded up to 0.1 px: a size computed as a minimum must not come out under it."""
    return math.ceil(round(value * 10, 6)) / 10


@dataclass(frozen=True)
class Metrics:
    """Sizes in pixels for one window on a panel of ``mm_per_px`` millimetres per pixel.

    Layout (spacing, pictures, widths) scales with ``unit``, 1% of the shorter side. Type scales
    with it too but never below the millimetre minimum of main text (the other sizes then keep
    their order at closer steps, ``_FLOOR_RATIO``); in ``elder`` mode every font is exactly
    ``ELDER_TYPE_FACTOR`` times its normal size and targets grow to ``ELDER_TARGET_MM``, while
    spacing stays (a 7-inch screen has no room to spare). ``scale`` multiplies ``unit`` for tools
    and tests that want a bigger layout; elder mode is ``elder``, not a scale.
    """

    width: int
    height: int
    scale: float = 1.0
    elder: bool = False
    mm_per_px: float = ASSUMED_MM_PER_PX

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"window size must be positive, not {self.width}x{self.height}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be positive and finite, not {self.scale!r}")
        if not (math.isfinite(self.mm_per_px) and self.mm_per_px > 0):
            raise ValueError(f"mm_per_px must be positive and finite, not {self.mm_per_px!r}")

    @property
    def unit(self) -> float:
        return min(self.width, self.height) / 100 * self.scale

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    def px(self, mm: float) -> float:
        """Pixels covering ``mm`` millimetres of this panel."""
        return mm / self.mm_per_px

    def mm(self, px: float) -> float:
        """Millimetres ``px`` pixels cover on this panel."""
        return px * self.mm_per_px

    def _u(self, factor: float) -> float:
        return round(self.unit * factor, 1)

    # type

    @property
    def type_factor(self) -> float:
        return ELDER_TYPE_FACTOR if self.elder else 1.0

    def _font(self, name: str) -> float:
        # Where ``unit`` would set main text under NORMAL_BODY_MM (a 7-inch 800x480 panel), main
        # text is lifted to the floor and the rest of the hierarchy only as far as it must stay
        # above (or below) main text: lifting every size in proportion made a 53 px title in
        # elder mode, one line of which took a sixth of a 480 px screen.
        floor = self.px(NORMAL_BODY_MM) * _FLOOR_RATIO[name]
        return _ceil_tenth(max(self.unit * _TYPE[name], floor)) * self.type_factor

    @property
    def font_hero(self) -> float:
        return self._font("hero")

    @property
    def font_title(self) -> float:
        return self._font("title")

    @property
    def font_heading(self) -> float:
        return self._font("heading")

    @property
    def font_body(self) -> float:
        """Main text: at least 4.5 mm (em) in normal mode, 1.5 times that in elder mode."""
        return self._font("body")

    @property
    def font_small(self) -> float:
        return self._font("small")

    @property
    def font_button(self) -> float:
        return self._font("button")

    @property
    def font_tile(self) -> float:
        return self._font("tile")

    @property
    def font_bar(self) -> float:
        """The top bar's service name and switches."""
        return self._font("bar")

    @property
    def line_height(self) -> float:
        """Baseline to baseline, in em; Kivy labels take ``kivy_line_height`` of it."""
        return LINE_HEIGHT

    @property
    def target_line_height(self) -> float:
        """Line spacing of a target's label: the least allowed, since a label is a few words
        on a line or two and the target's own edge sets it apart; tiles stay compact."""
        return MIN_LINE_HEIGHT

    # spacing

    @property
    def pad(self) -> float:
        return self._u(3.2)

    @property
    def gap(self) -> float:
        return self._u(2.0)

    @property
    def radius(self) -> float:
        return self._u(1.4)

    @property
    def border(self) -> float:
        return max(1.0, self._u(0.3))

    # chrome and targets

    @property
    def min_target_mm(self) -> float:
        return ELDER_TARGET_MM if self.elder else NORMAL_TARGET_MM

    @property
    def min_target_px(self) -> float:
        """Least width and height of any touch target, in whole pixels."""
        return float(max(MIN_TOUCH_PX, math.ceil(round(self.px(self.min_target_mm), 6))))

    @property
    def switch_height(self) -> float:
        """The top bar's switches (large text, language)."""
        return max(self.min_target_px, self.font_bar * _SWITCH_EM, self._u(11.0) * 0.74)

    @property
    def side_rail(self) -> bool:
        """The switches in a column down the right edge instead of a top bar: on a landscape
        panel too short for a bar, a title, rows of targets and a footer at elder mode's sizes
        (800x480, and 1920x1080 whose large type is 63 px), while width is left over. Normal
        mode on the same panel too, so the switches stay where they are when a resident turns
        large type on."""
        elder = self if self.elder else dataclasses.replace(self, elder=True)
        return not self.portrait and self.height < 8 * elder.button_height

    @property
    def compact(self) -> bool:
        """A 7-inch-class panel (800x480): no room for pictures or a code beside a list."""
        return self.height <= 600

    @property
    def switch_min_width(self) -> float:
        return self.min_target_px * 1.5

    @property
    def bar_height(self) -> float:
        return max(self._u(11.0), self.switch_height + self.gap)

    @property
    def button_height(self) -> float:
        return max(self.min_target_px, self._u(12.0), self.font_button * _BUTTON_EM)

    @property
    def button_min_width(self) -> float:
        return max(self.min_target_px * 1.5, float(MIN_TOUCH_PX) * 2, self._u(24.0))

    @property
    def tile_min_width(self) -> float:
        return max(self.min_target_px, self._u(30.0), self.font_tile * 4)

    @property
    def tile_max_width(self) -> float:
        # Portrait screens read best as a list of full-width tiles; landscape as a grid.
        return max(self.tile_min_width, self._u(100.0 if self.portrait else 75.0))

    @property
    def tile_height(self) -> float:
        """Preferred tile height; a menu scrolls rather than shrink tiles below it."""
        return max(self.min_target_px * 1.25, self._u(18.0), self.font_tile * _TILE_EM)

    @property
    def tile_compact_height(self) -> float:
        """Smallest tile height before a menu scrolls instead (still well over a fingertip)."""
        return max(self.min_target_px, self._u(12.0), self.font_tile * _TILE_COMPACT_EM)

    @property
    def tile_comfortable_width(self) -> float:
        """Tile width a scrolling menu aims for: short titles stay on one or two lines."""
        return max(self.tile_min_width, self._u(45.0), self.font_tile * 6)

    @property
    def tile_max_height(self) -> float:
        return max(self.tile_height, self._u(24.0))

    @property
    def qr_side(self) -> float:
        return self._u(34.0 if not self.portrait else 30.0)


def kivy_line_height(line_height_em: float, font_size: float, natural_line_px: float) -> float:
    """Kivy's ``Label.line_height`` giving ``line_height_em`` from baseline to baseline.

    Kivy multiplies the font's natural line height (``natural_line_px``, the height of one laid
    out line, about 1.2 em for WenQuanYi, 1.45 em for Noto CJK); never below 1, which would
    overlap the lines of a font whose natural height is already generous enough.
    """
    if natural_line_px <= 0 or font_size <= 0:
        raise ValueError(f"font size and line height must be positive: {font_size}, "
                         f"{natural_line_px}")
    return max(1.0, line_height_em * font_size / natural_line_px)


@dataclass(frozen=True)
class Grid:
    columns: int
    tile_height: float


def menu_grid(count: int, avail_width: float, avail_height: float, m: Metrics) -> Grid:
    """Columns and tile height for ``count`` menu tiles in the given space.

    Among column counts whose tiles are neither too narrow nor too wide and whose rows all fit
    at the preferred tile height, take the one leaving the fewest empty cells (a 5-level rating
    reads best as one row), then the fewest columns (bigger tiles). If none fits, try again at
    a compact tile height; if still none fits, the menu scrolls, with tiles of a comfortable
    width at the preferred height (narrow tiles would wrap every title into a tower).
    """
    count = max(1, count)
    for wanted_height in (m.tile_height, m.tile_compact_height):
        feasible: list[tuple[int, int, float]] = []
        for columns in range(1, count + 1):
            tile_w = (avail_width - (columns - 1) * m.gap) / columns
            if tile_w < m.tile_min_width and columns > 1:
                break
            if tile_w > m.tile_max_width and columns < count:
                continue
            rows = math.ceil(count / columns)
            tile_h = (avail_height - (rows - 1) * m.gap) / rows
            if tile_h >= wanted_height:
                feasible.append((rows * columns - count, columns, min(tile_h, m.tile_max_height)))
        if feasible:
            _, columns, tile_h = min(feasible)
            return Grid(columns, tile_h)
    columns = int((avail_width + m.gap) // (m.tile_comfortable_width + m.gap))
    return Grid(max(1, min(count, columns)), m.tile_height)
