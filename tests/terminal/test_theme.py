"""适老化 in millimetres, without a window: type, line spacing, touch targets and contrast on the
reference screens in normal and elder mode, from the theme's own numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminal.config import ASSUMED_MM_PER_PX, DisplaySettings
from terminal.ui import theme
from terminal.ui.theme import (
    ELDER_MIN_CONTRAST,
    NORMAL_MIN_CONTRAST,
    TEXT_PAIRS,
    Metrics,
    contrast_ratio,
    kivy_line_height,
)

UI = Path(__file__).resolve().parents[2] / "terminal" / "ui"

# DESIGN.md section 12: the reference screens, as [display] describes them.
REFERENCE = {
    "21.5in-1920x1080": DisplaySettings(width=1920, height=1080, diagonal_in=21.5),
    "15.6in-1080x1920": DisplaySettings(width=1080, height=1920, diagonal_in=15.6),
    "7in-800x480": DisplaySettings(width=800, height=480, diagonal_in=7.0),
}
FONTS = sorted(name for name in dir(Metrics) if name.startswith("font_"))
TARGETS = (
    "button_height",
    "button_min_width",
    "switch_height",
    "switch_min_width",
    "tile_height",
    "tile_compact_height",
    "tile_min_width",
)
EPS = 1e-9  # float products of mm and px; the sizes themselves are rounded up, never down


def metrics(screen: DisplaySettings, elder: bool, mm_per_px: float | None = None) -> Metrics:
    pitch = screen.mm_per_px if mm_per_px is None else mm_per_px
    return Metrics(screen.width, screen.height, elder=elder, mm_per_px=pitch)


@pytest.fixture(params=sorted(REFERENCE), ids=sorted(REFERENCE))
def screen(request: pytest.FixtureRequest) -> DisplaySettings:
    return REFERENCE[request.param]


def test_main_text_is_4_5_mm_normally_and_6_mm_in_elder_mode(screen: DisplaySettings) -> None:
    normal, elder = metrics(screen, False), metrics(screen, True)
    assert normal.mm(normal.font_body) >= 4.5 - EPS
    assert elder.mm(elder.font_body) >= 6.0 - EPS


def test_the_7_inch_panel_no_longer_gets_18_px_type() -> None:
    m = metrics(REFERENCE["7in-800x480"], False)
    # The issue: 18 px of instructions (3.4 mm); main text is now 4.5 mm, notes not far below.
    assert m.font_body >= 23.6
    assert m.mm(m.font_small) >= 3.8 - EPS


@pytest.mark.parametrize("font", FONTS)
def test_every_text_in_elder_mode_is_at_least_half_as_large_again(
    screen: DisplaySettings, font: str
) -> None:
    normal, elder = metrics(screen, False), metrics(screen, True)
    assert getattr(elder, font) >= 1.5 * getattr(normal, font)


def test_type_keeps_its_order_when_the_mm_floor_lifts_it() -> None:
    """Where the millimetre floor lifts main text (7-inch), the other sizes keep their order
    (hero > title > heading > body > small) at closer steps: proportional lifting made a 53 px
    title in elder mode, a sixth of the screen's height for one line."""
    for elder in (False, True):
        m = metrics(REFERENCE["7in-800x480"], elder)
        assert m.font_hero > m.font_title > m.font_heading > m.font_body > m.font_small
        assert m.font_title <= 1.3 * m.font_body
        assert m.font_tile >= m.font_body and m.font_button >= m.font_body
    elder = metrics(REFERENCE["7in-800x480"], True)
    assert elder.font_title * elder.line_height <= 480 / 7
    # Where the window sets the type (1920x1080), the designed proportions stand.
    large = Metrics(1920, 1080)
    assert large.font_title / large.font_body == pytest.approx(5.8 / 3.9, rel=0.02)


def test_a_short_landscape_panel_puts_the_switches_in_a_side_rail() -> None:
    for elder in (False, True):
        assert metrics(REFERENCE["7in-800x480"], elder).side_rail
        assert metrics(REFERENCE["21.5in-1920x1080"], elder).side_rail
        assert not metrics(REFERENCE["15.6in-1080x1920"], elder).side_rail


@pytest.mark.parametrize(("elder", "mm"), [(False, 10.0), (True, 15.0)], ids=["normal", "elder"])
def test_every_touch_target_is_at_least_10_mm_or_15_mm_in_elder_mode(
    screen: DisplaySettings, elder: bool, mm: float
) -> None:
    m = metrics(screen, elder)
    assert m.mm(m.min_target_px) >= mm - EPS
    for size in TARGETS:
        assert getattr(m, size) >= m.min_target_px, size
    assert m.bar_height >= m.switch_height  # the switches sit inside the top bar


def test_line_spacing_is_at_least_1_3(screen: DisplaySettings) -> None:
    for elder in (False, True):
        m = metrics(screen, elder)
        assert m.line_height >= 1.3
        assert m.target_line_height >= 1.3


@pytest.mark.parametrize("natural_em", [1.0, 1.18, 1.3, 1.45, 1.6])
def test_kivy_line_height_puts_baselines_the_asked_em_apart(natural_em: float) -> None:
    font = 40.0
    natural = natural_em * font
    pitch = kivy_line_height(1.4, font, natural) * natural
    # Exactly 1.4 em where the font is tighter; never squeezed where it is already looser.
    assert pitch == pytest.approx(max(1.4 * font, natural))
    assert pitch >= theme.MIN_LINE_HEIGHT * font


def test_kivy_line_height_refuses_a_font_of_no_size() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        kivy_line_height(1.4, 40, 0)


def test_the_assumed_pitch_is_safe_on_every_reference_screen(screen: DisplaySettings) -> None:
    """Sized without [display] diagonal_in, then measured on the real panel: still enough."""
    for elder, body_mm, target_mm in ((False, 4.5, 10.0), (True, 6.0, 15.0)):
        sized = metrics(screen, elder, ASSUMED_MM_PER_PX)
        real = screen.mm_per_px
        assert sized.font_body * real >= body_mm - EPS
        assert sized.min_target_px * real >= target_mm - EPS


def test_elder_type_still_fits_the_7_inch_screen() -> None:
    for pitch in (REFERENCE["7in-800x480"].mm_per_px, ASSUMED_MM_PER_PX):
        m = Metrics(800, 480, elder=True, mm_per_px=pitch)
        line = 800 - 2 * m.pad
        # Fewer words a line, but a title and a sentence still read as such...
        assert line / m.font_body >= 18
        assert line / m.font_title >= 12
        assert line / m.font_hero >= 9
        # ...and the top bar and one row of footer buttons leave room for a title and three
        # lines of main text (longer screens scroll or page).
        footer = m.button_height + 2 * m.gap
        body = 480 - m.bar_height - footer - 2 * m.pad
        assert body >= m.font_title * m.line_height + 3 * m.font_body * m.line_height


@given(
    width=st.integers(320, 7999),
    height=st.integers(240, 7999),
    mm_per_px=st.floats(0.04, 1.3),
    elder=st.booleans(),
)
def test_any_sane_window_meets_the_mm_minimums(
    width: int, height: int, mm_per_px: float, elder: bool
) -> None:
    m = Metrics(width, height, elder=elder, mm_per_px=mm_per_px)
    assert m.mm(m.font_body) >= (6.0 if elder else 4.5) - EPS
    assert m.mm(m.min_target_px) >= (15.0 if elder else 10.0) - EPS
    assert min(getattr(m, size) for size in TARGETS) >= m.min_target_px
    if elder:
        normal = Metrics(width, height, mm_per_px=mm_per_px)
        assert all(getattr(m, font) >= 1.5 * getattr(normal, font) for font in FONTS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0, "height": 480},
        {"width": 800, "height": -1},
        {"width": 800, "height": 480, "mm_per_px": 0.0},
        {"width": 800, "height": 480, "mm_per_px": float("nan")},
        {"width": 800, "height": 480, "scale": float("inf")},
    ],
)
def test_metrics_refuse_a_window_or_pitch_that_is_none(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Metrics(**kwargs)  # type: ignore[arg-type]


# --- contrast --------------------------------------------------------------------------------


def test_contrast_ratio_follows_wcag() -> None:
    black, white = (0.0, 0.0, 0.0, 1.0), (1.0, 1.0, 1.0, 1.0)
    assert contrast_ratio(black, white) == pytest.approx(21.0)
    assert contrast_ratio(white, black) == pytest.approx(21.0)
    assert contrast_ratio(white, white) == pytest.approx(1.0)
    grey = (0x77 / 255, 0x77 / 255, 0x77 / 255, 1.0)  # the well-known 4.48:1 that fails AA
    assert contrast_ratio(grey, white) == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(("where", "fg", "bg"), TEXT_PAIRS, ids=[p[0] for p in TEXT_PAIRS])
def test_every_text_colour_on_its_background_is_7_to_1(
    where: str, fg: theme.Rgba, bg: theme.Rgba
) -> None:
    # One palette serves both modes, so elder mode's 7:1 holds for normal mode's 4.5:1 too.
    ratio = contrast_ratio(fg, bg)
    assert ratio >= ELDER_MIN_CONTRAST >= NORMAL_MIN_CONTRAST, f"{where}: {ratio:.2f}:1"


def test_the_contrast_table_covers_every_text_colour_the_ui_code_uses() -> None:
    """A colour given to a label in terminal/ui is a foreground in TEXT_PAIRS (so a new pairing
    cannot dodge the contrast test by not being listed)."""
    foregrounds = {fg for _, fg, _ in TEXT_PAIRS}
    used: set[str] = set()
    for path in UI.glob("*.py"):
        used |= set(re.findall(r"\bcolor=theme\.([A-Z_]+)", path.read_text("utf-8")))
    assert used, "no text colours found: has the UI code changed how it names them?"
    for name in sorted(used):
        value = getattr(theme, name)
        colours = value.values() if isinstance(value, dict) else [value]
        assert all(colour in foregrounds for colour in colours), name


def test_disabled_text_is_no_fainter_than_any_other() -> None:
    # Disabled is shown by a dashed edge (widgets.DashedOutline), not by fading the words.
    assert contrast_ratio(theme.DISABLED_TEXT, theme.DISABLED_FILL) >= ELDER_MIN_CONTRAST
