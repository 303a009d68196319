"""Colours and sizes of the kiosk UI, computed from the window size; pure, no Kivy."""

from __future__ import annotations

import math
from dataclasses import dataclass

Rgba = tuple[float, float, float, float]


def _hex(code: str, alpha: float = 1.0) -> Rgba:
    value = int(code.lstrip("#"), 16)
    return ((value >> 16) / 255, ((value >> 8) & 0xFF) / 255, (value & 0xFF) / 255, alpha)


# A calm official palette: light background, one deep government blue, tone colours kept for
# meaning (error red is never used for decoration, so it stays alarming).
BACKGROUND = _hex("#F3F6FA")
SURFACE = _hex("#FFFFFF")
ACCENT = _hex("#0B4A9E")
ACCENT_PRESSED = _hex("#083873")
ACCENT_TINT = _hex("#E6EEF9")
ON_ACCENT = _hex("#FFFFFF")
TEXT = _hex("#1A2230")
TEXT_MUTED = _hex("#4B5566")
BORDER = _hex("#CBD5E1")
DANGER = _hex("#B3261E")
DANGER_PRESSED = _hex("#8C1D17")
DISABLED_FILL = _hex("#E4E8EE")
DISABLED_TEXT = _hex("#8C96A5")

TONE_COLOURS: dict[str, Rgba] = {
    "info": ACCENT,
    "success": _hex("#1E7B3A"),
    "warning": _hex("#A35F00"),
    "error": DANGER,
}
TONE_TINTS: dict[str, Rgba] = {
    "info": ACCENT_TINT,
    "success": _hex("#E7F4EA"),
    "warning": _hex("#FFF3DF"),
    "error": _hex("#FBEAE8"),
}

# Smallest touch target we accept, in pixels, whatever the scale: about 9 mm on a 7" 800x480
# panel (~133 dpi). Larger screens get more through the relative sizes below.
MIN_TOUCH_PX = 48


@dataclass(frozen=True)
class Metrics:
    """Sizes in pixels for one window; everything scales with 1% of the shorter side (``unit``).

    ``scale`` enlarges type and targets for the large-type (适老化) mode.
    """

    width: int
    height: int
    scale: float = 1.0

    @property
    def unit(self) -> float:
        return min(self.width, self.height) / 100 * self.scale

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    def _u(self, factor: float) -> float:
        return round(self.unit * factor, 1)

    # type
    @property
    def font_hero(self) -> float:
        return self._u(7.6)

    @property
    def font_title(self) -> float:
        return self._u(5.8)

    @property
    def font_heading(self) -> float:
        return self._u(4.6)

    @property
    def font_body(self) -> float:
        return self._u(3.9)

    @property
    def font_small(self) -> float:
        return self._u(3.3)

    @property
    def font_button(self) -> float:
        return self._u(4.1)

    @property
    def font_tile(self) -> float:
        return self._u(4.5)

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
    def bar_height(self) -> float:
        return max(float(MIN_TOUCH_PX) + 8, self._u(11.0))

    @property
    def button_height(self) -> float:
        return max(float(MIN_TOUCH_PX), self._u(12.0))

    @property
    def button_min_width(self) -> float:
        return max(float(MIN_TOUCH_PX) * 2, self._u(24.0))

    @property
    def tile_min_width(self) -> float:
        return self._u(30.0)

    @property
    def tile_max_width(self) -> float:
        # Portrait screens read best as a list of full-width tiles; landscape as a grid.
        return self._u(100.0 if self.portrait else 75.0)

    @property
    def tile_height(self) -> float:
        """Preferred tile height; a menu scrolls rather than shrink tiles below it."""
        return max(float(MIN_TOUCH_PX) * 1.5, self._u(18.0))

    @property
    def tile_compact_height(self) -> float:
        """Smallest tile height before a menu scrolls instead (still well over a fingertip)."""
        return max(MIN_TOUCH_PX * 1.25, self._u(12.0))

    @property
    def tile_comfortable_width(self) -> float:
        """Tile width a scrolling menu aims for: short titles stay on one or two lines."""
        return self._u(45.0)

    @property
    def tile_max_height(self) -> float:
        return self._u(24.0)

    @property
    def qr_side(self) -> float:
        return self._u(34.0 if not self.portrait else 30.0)


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
