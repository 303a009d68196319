"""Kivy building blocks of the screens: wrapping labels, touch targets, spinner, icons, QR."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from kivy.clock import Clock
from kivy.core.text import Label as CoreLabel
from kivy.effects.scroll import ScrollEffect
from kivy.graphics import Color, Ellipse, InstructionGroup, Line, Rectangle, RoundedRectangle
from kivy.graphics.texture import Texture
from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.layout import Layout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from terminal.presentation import TargetModel
from terminal.ui import theme
from terminal.ui.fonts import FONT_NAME
from terminal.ui.linebreak import break_lines
from terminal.ui.paging import line_pieces
from terminal.ui.qr import QrDataError, qr_matrix
from terminal.ui.theme import Metrics, Rgba, kivy_line_height

log = logging.getLogger(__name__)

# Called with the target id and the time (time.time(), as Kivy stamps touches) the touch began.
Activate = Callable[[str, float], None]


# Lines are broken a little short of the box: Kivy measures the laid-out line again and would
# cut it at a character itself if ours came out a pixel too long.
WRAP_SLACK_PX = 2.0


@lru_cache(maxsize=16)
def measurer(font_size: float) -> Callable[[str], float]:
    """Width of a one-line string in the UI font at this size (main thread only). One per size,
    its answers kept, a bounded number: a label measures its words again each time it wraps at
    a new width, and every screen measures the same buttons and headings (1,380 font
    measurements, about 9% of start-up, for the first attract screen before they were kept)."""
    core = CoreLabel(font_name=FONT_NAME, font_size=font_size)

    @lru_cache(maxsize=2048)
    def measure(text: str) -> float:
        return float(core.get_extents(text)[0])

    return measure


@lru_cache(maxsize=64)
def _natural_line_px(font_size: float) -> float:
    """Height of one laid-out line of the UI font at this size (Kivy's line_height of 1)."""
    return float(CoreLabel(font_name=FONT_NAME, font_size=font_size).get_extents("国Ag")[1])


def line_height_for(font_size: float, line_height_em: float = theme.LINE_HEIGHT) -> float:
    """Kivy's ``line_height`` that puts baselines ``line_height_em`` em apart in the UI font."""
    return kivy_line_height(line_height_em, font_size, _natural_line_px(font_size))


class Panel:
    """A rounded fill and optional border (``border_width`` px thick) behind a widget.

    The border is a rounded rectangle with the fill inset inside it rather than a Line: Kivy's
    rounded Line shows a kink where it starts and ends.
    """

    def __init__(
        self,
        widget: Widget,
        fill: Rgba,
        *,
        border: Rgba | None = None,
        radius: float = 0.0,
        border_width: float = 1.0,
    ) -> None:
        self._widget = widget
        self._radius = radius
        self._border_width = border_width
        with widget.canvas.before:
            self._stroke = Color(*(border or fill))
            self._outer = RoundedRectangle(radius=[radius])
            self._fill = Color(*fill)
            self._inner = RoundedRectangle(radius=[max(0.0, radius - border_width)])
        # A closure, not a bound method: Kivy holds bound methods weakly, and nothing else keeps
        # this Panel alive once the constructor returns.
        widget.bind(pos=lambda *_: self._follow(), size=lambda *_: self._follow())
        self._follow()

    def set_colours(self, fill: Rgba, border: Rgba | None = None) -> None:
        self._fill.rgba = fill
        self._stroke.rgba = border or fill

    def _follow(self, *_: Any) -> None:
        w = self._widget
        inset = self._border_width
        self._outer.pos, self._outer.size = w.pos, w.size
        self._inner.pos = (w.x + inset, w.y + inset)
        self._inner.size = (max(0.0, w.width - 2 * inset), max(0.0, w.height - 2 * inset))


class DashedOutline:
    """A dashed edge inside a widget's box, drawn over its fill: the sign of a disabled target
    that does not rest on colour. Straight sides only; the rounded corners stay open."""

    def __init__(self, widget: Widget, colour: Rgba, *, width: float, radius: float) -> None:
        self._widget = widget
        self._width = max(1.0, width)
        self._radius = radius
        self._group = InstructionGroup()
        self._colour = Color(*colour)
        self.visible = False
        widget.canvas.before.add(self._group)
        widget.bind(pos=lambda *_: self._draw(), size=lambda *_: self._draw())

    def show(self, visible: bool) -> None:
        self.visible = visible
        self._draw()

    def _draw(self) -> None:
        group, w = self._group, self._widget
        group.clear()
        if not self.visible:
            return
        t, r = self._width, self._radius
        dash, space = 3 * t, 2 * t
        group.add(self._colour)
        x0, y0, x1, y1 = w.x, w.y, w.x + w.width, w.y + w.height
        for start, end, fixed, horizontal in (
            (x0 + r, x1 - r, y0, True),
            (x0 + r, x1 - r, y1 - t, True),
            (y0 + r, y1 - r, x0, False),
            (y0 + r, y1 - r, x1 - t, False),
        ):
            at = start
            while at < end:
                length = min(dash, end - at)
                pos = (at, fixed) if horizontal else (fixed, at)
                size = (length, t) if horizontal else (t, length)
                group.add(Rectangle(pos=pos, size=size))
                at += dash + space


def _below_one_character(label: Label, width: float | None) -> bool:
    """Whether ``width`` cannot hold one character (one em, a CJK character) of ``label``'s:
    a width a label only passes through while the layouts above it settle."""
    return width is not None and width < float(label.font_size)


@lru_cache(maxsize=1024)
def _broken(text: str, width: float, measure: Callable[[str], float], balanced: bool) -> str:
    """``break_lines``, its answers kept: a label breaks its text once to measure its height
    and again to show it, and the screens that come back (attract, the menus) break the same
    texts at the same widths each time they are built."""
    return break_lines(text, width, measure, balanced=balanced)


class TextLabel(Label):  # type: ignore[misc]
    """Text that wraps to its width and is exactly as tall as its lines, its baselines
    ``line_height_em`` apart (at least 1.3 em: 适老化 line spacing)."""

    def __init__(
        self,
        text: str,
        font_size: float,
        *,
        color: Rgba = theme.TEXT,
        halign: str = "left",
        line_height_em: float = theme.LINE_HEIGHT,
        **kwargs: Any,
    ) -> None:
        self.source_text = text
        self._measure = measurer(font_size)
        self._style = dict(color=color, halign=halign, line_height_em=line_height_em, **kwargs)
        super().__init__(
            text=text,
            font_name=FONT_NAME,
            font_size=font_size,
            color=color,
            halign=halign,
            valign="middle",
            line_height=line_height_for(font_size, line_height_em),
            size_hint_y=None,
            **kwargs,
        )
        self.bind(width=self._wrap, texture_size=self._fit)
        if self.size_hint_x is None:
            self._wrap()  # a width of its own: wrap to it now
        else:
            # Its width comes with the first layout, which wraps it; until then it has none (Kivy's
            # default of 100 px would be rendered, a few characters a line, and thrown away).
            self.width = 0.0

    def texture_update(self, *largs: Any) -> None:
        # Layouts run from the outside in, so a label first sees widths its parents had before
        # their own layout (1 px, 30 px) and only then its own. Rendered at each, the texts came
        # out one character a line, every character measured: some 900 of the 1,000 measurements
        # and a dozen thrown-away textures on the first attract screen. Narrower than one
        # character, a label waits: the width it is given next wraps and renders it.
        if _below_one_character(self, self.width):
            return
        super().texture_update(*largs)

    def set_text(self, text: str) -> None:
        """Show ``text`` instead, wrapped as the first was."""
        self.source_text = text
        self._wrap()

    def height_at(self, width: float) -> float:
        """Height the label will take at ``width``, without laying it out (a paged screen
        decides its pages before its labels have their widths)."""
        return len(self._lines_at(width)) * self._line_px()

    def chunks_at(self, width: float, first: float, room: float) -> list[str]:
        """The text in pieces of whole lines at ``width``, the first at most ``first`` tall and
        the others ``room`` (a line at least): where pages break inside a text too long for any
        page (``paging.Split``)."""
        line = self._line_px()
        pieces = line_pieces(self._lines_at(width), int(first // line), max(1, int(room // line)))
        return ["\n".join(piece) for piece in pieces]

    def like(self, text: str) -> TextLabel:
        """A label for ``text`` set as this one is (a piece of it on the next page)."""
        return TextLabel(text, float(self.font_size), **self._style)

    def _lines_at(self, width: float) -> list[str]:
        return _broken(self.source_text, max(1.0, width) - WRAP_SLACK_PX, self._measure,
                       self.halign == "center").split("\n")

    def _line_px(self) -> float:
        size = float(self.font_size)
        return max(float(self.line_height) * _natural_line_px(size), size)

    def _wrap(self, *_: Any) -> None:
        if _below_one_character(self, self.width):
            return  # a parent's width before its own layout (see texture_update)
        width = self.width
        self.text_size = (width, None)
        # Centred text reads best in even lines; left-aligned paragraphs fill each line.
        self.text = _broken(self.source_text, width - WRAP_SLACK_PX, self._measure,
                            self.halign == "center")

    def _fit(self, *_: Any) -> None:
        self.height = self.texture_size[1]


class Pill(Label):  # type: ignore[misc]
    """A short one-line text on a rounded fill, as wide as its text (the countdown)."""

    def __init__(self, font_size: float, m: Metrics, fill: Rgba, color: Rgba) -> None:
        super().__init__(
            text="",
            font_name=FONT_NAME,
            font_size=font_size,
            color=color,
            size_hint=(None, None),
            padding=(m.pad, m.gap * 0.6),
        )
        self._panel = Panel(self, fill, radius=m.radius * 2)
        self._measure = measurer(font_size)
        self.bind(texture_size=self._fit, text=self._fit)

    def width_for(self, text: str) -> float:
        """How wide the pill is while showing ``text`` (0 for none)."""
        return self._measure(text) + 2 * self.padding[0] if text else 0.0

    def _fit(self, *_: Any) -> None:
        if self.text:
            self.size = self.texture_size
        else:
            self.size = (0, 0)


class TargetButton(ButtonBehavior, Label):  # type: ignore[misc]
    """A touch target with a stable ``target_id``; a release calls ``activate`` with that id."""

    def __init__(
        self,
        target: TargetModel,
        m: Metrics,
        activate: Activate,
        *,
        font_size: float | None = None,
        min_height: float | None = None,
        pad_x: float | None = None,
        min_width: float | None = None,
        style: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.target_id = target.id
        self.style = style or target.style
        self.source_text = target.label
        font_size = font_size or m.font_button
        self._measure = measurer(font_size)
        self._m = m
        self._activate = activate
        self._pad_x = m.pad if pad_x is None else pad_x
        self._pad_y = m.gap * 0.8
        # Never under the mode's minimum target (10 mm, 15 mm in elder mode), however asked.
        self.min_height = max(
            m.min_target_px, min_height if min_height is not None else m.button_height
        )
        self._min_width = max(
            m.min_target_px, min_width if min_width is not None else m.button_min_width
        )
        super().__init__(
            text=target.label,
            font_name=FONT_NAME,
            font_size=font_size,
            halign="center",
            valign="middle",
            line_height=line_height_for(font_size, m.target_line_height),
            size_hint_y=None,
            disabled_color=theme.DISABLED_TEXT,
            **kwargs,
        )
        # A disabled widget swallows touches in Kivy, so a disabled target is never activated.
        self.disabled = not target.enabled
        self._panel = self._make_panel()
        self._dashes = DashedOutline(
            self, theme.DISABLED_TEXT, width=m.border * 2, radius=m.radius * 1.5
        )
        self.bind(width=self._wrap, texture_size=self._fit, state=self._paint, disabled=self._paint)
        self._wrap()
        self._fit()
        self._paint()

    def _make_panel(self) -> Panel:
        return Panel(self, theme.SURFACE, radius=self._m.radius, border_width=self._m.border * 2)

    def natural_width(self) -> float:
        """Width that shows the label on one line, never narrower than a comfortable target."""
        return max(
            self._min_width,
            self._measure(self.source_text) + 2 * self._pad_x + WRAP_SLACK_PX + 1,
        )

    def needed_height(self) -> float:
        """Height the wrapped label needs, padding included."""
        return float(self.texture_size[1] + 2 * self._pad_y)

    def fits_in(self, width: float) -> bool:
        """Whether the label keeps every word whole, on at most two lines, at ``width``."""
        # The side padding gives way down to a sliver before a label wraps (see _wrap).
        inner = width - 2 * min(self._pad_x, self._m.gap * 0.4) - WRAP_SLACK_PX
        words = self.source_text.split()
        if any(self._measure(word) > inner for word in words if word.isascii()):
            return False
        lines = break_lines(self.source_text, inner, self._measure, balanced=True).count("\n")
        return lines <= 1

    def height_at(self, width: float) -> float:
        """Height the label would need at ``width``, padding included, without laying it out
        (a paged menu decides its rows before its tiles have their widths)."""
        inner = self._text_width(width) - WRAP_SLACK_PX
        lines = break_lines(self.source_text, inner, self._measure, balanced=True).count("\n") + 1
        return lines * float(self.font_size) * self._m.target_line_height + 2 * self._pad_y

    def set_min_height(self, height: float) -> None:
        self.min_height = max(self._m.min_target_px, height)
        self._fit()

    def _text_width(self, width: float) -> float:
        """The text's width in a button ``width`` wide. The side padding gives way (down to a
        sliver) before a short label wraps: "删除" on a narrow key in large type stays one line
        rather than a taller key overflowing its row. ``height_at`` asks the same, so a menu
        that decides its rows first counts the lines the tiles will really have."""
        one_line = self._measure(self.source_text) + WRAP_SLACK_PX + 1
        pad, least = self._pad_x, self._m.gap * 0.4
        if width - 2 * pad < one_line <= width - 2 * least:
            pad = (width - one_line) / 2
        return max(1.0, width - 2 * pad)

    def _wrap(self, *_: Any) -> None:
        width = self._text_width(self.width)
        self.text_size = (width, None)
        if _below_one_character(self, width):
            return  # Kivy's default width, before the layout gives one (see texture_update)
        self.text = break_lines(
            self.source_text, width - WRAP_SLACK_PX, self._measure, balanced=True
        )

    def texture_update(self, *largs: Any) -> None:
        # As TextLabel's: not rendered one character a line at a width it only passes through.
        if _below_one_character(self, self.text_size[0]):
            return
        super().texture_update(*largs)

    def _fit(self, *_: Any) -> None:
        self.height = max(self.min_height, self.texture_size[1] + 2 * self._pad_y)

    def _colours(self) -> tuple[Rgba, Rgba | None, Rgba]:
        """Fill, border and text colour for the current style and state."""
        pressed = self.state == "down"
        if self.disabled:
            return theme.DISABLED_FILL, None, theme.DISABLED_TEXT
        if self.style == "primary":
            return (theme.ACCENT_PRESSED if pressed else theme.ACCENT), None, theme.ON_ACCENT
        if self.style == "danger":
            return (theme.DANGER_PRESSED if pressed else theme.DANGER), None, theme.ON_ACCENT
        if self.style == "inverse":  # on the deep-blue top bar: a white key, no outline
            return (theme.ACCENT_TINT if pressed else theme.SURFACE), None, theme.ACCENT
        return (theme.ACCENT_TINT if pressed else theme.SURFACE), theme.ACCENT, theme.ACCENT

    def _paint(self, *_: Any) -> None:
        fill, border, text = self._colours()
        self._panel.set_colours(fill, border)
        self._dashes.show(bool(self.disabled))
        self.color = text

    def on_release(self) -> None:
        touch = getattr(self, "last_touch", None)
        self._activate(self.target_id, touch.time_start if touch is not None else math.inf)


class Tile(TargetButton):
    """A big menu tile: white card, deep-blue stripe on the left, centred label."""

    def __init__(self, target: TargetModel, m: Metrics, activate: Activate) -> None:
        super().__init__(
            target,
            m,
            activate,
            font_size=m.font_tile,
            min_height=m.tile_height,
            pad_x=m.pad * 1.2,
        )
        with self.canvas.before:
            self._stripe_colour = Color(*theme.ACCENT)
            self._stripe = Rectangle()
        self.bind(pos=self._place_stripe, size=self._place_stripe)
        self._place_stripe()
        self._paint()

    def _make_panel(self) -> Panel:
        return Panel(self, theme.SURFACE, radius=self._m.radius, border_width=self._m.border * 1.5)

    def _place_stripe(self, *_: Any) -> None:
        stripe_w = max(3.0, self._m.unit * 1.0)
        inset = self._m.radius
        self._stripe.pos = (self.x + self._m.border, self.y + inset)
        self._stripe.size = (stripe_w, max(0.0, self.height - 2 * inset))

    def _colours(self) -> tuple[Rgba, Rgba | None, Rgba]:
        if self.disabled:
            return theme.DISABLED_FILL, theme.BORDER, theme.DISABLED_TEXT
        fill = theme.ACCENT_TINT if self.state == "down" else theme.SURFACE
        return fill, theme.BORDER, theme.TEXT

    def _paint(self, *_: Any) -> None:
        super()._paint()
        if hasattr(self, "_stripe_colour"):
            self._stripe_colour.rgba = theme.DISABLED_TEXT if self.disabled else theme.ACCENT


class ActionRow(Layout):  # type: ignore[misc]
    """Buttons in a row: at their natural widths if they fit; else equal widths, where every
    label then keeps its words whole on at most two lines; else as many rows as it takes, each
    button at its natural width (never "Prin/t the/chec/klist" towers)."""

    def __init__(self, buttons: Sequence[TargetButton], m: Metrics, align: str = "right") -> None:
        super().__init__(size_hint_y=None, height=0)
        self._buttons = list(buttons)
        self._gap = m.gap
        self._align = align
        for button in self._buttons:
            button.size_hint = (None, None)
            button.bind(height=self._trigger_layout)
            self.add_widget(button)
        self.bind(width=self._trigger_layout, pos=self._trigger_layout)

    def _rows(self, width: float) -> list[list[tuple[TargetButton, float]]]:
        buttons = self._buttons
        gaps = self._gap * (len(buttons) - 1)
        natural = [b.natural_width() for b in buttons]
        if sum(natural) + gaps <= width:
            return [list(zip(buttons, natural, strict=True))]
        equal = (width - gaps) / len(buttons)
        if all(b.fits_in(equal) for b in buttons):
            return [[(b, equal) for b in buttons]]
        rows: list[list[tuple[TargetButton, float]]] = [[]]
        used = 0.0
        for button, natural_width in zip(buttons, natural, strict=True):
            wanted = min(natural_width, width)
            if rows[-1] and used + self._gap + wanted > width:
                rows.append([])
                used = 0.0
            used += (self._gap if rows[-1] else 0.0) + wanted
            rows[-1].append((button, wanted))
        return rows

    def height_at(self, width: float) -> float:
        """Height the row will take at ``width``, without laying it out."""
        if not self._buttons:
            return 0.0
        rows = self._rows(width)
        return sum(max(max(float(b.min_height), b.height_at(w)) for b, w in row)
                   for row in rows) + self._gap * (len(rows) - 1)

    def do_layout(self, *_: Any) -> None:
        if not self._buttons:
            self.height = 0
            return
        rows = self._rows(self.width)
        heights = [max(b.height for b, _ in row) for row in rows]
        self.height = sum(heights) + self._gap * (len(rows) - 1)
        top = self.y + self.height
        for row, row_height in zip(rows, heights, strict=True):
            used = sum(w for _, w in row) + self._gap * (len(row) - 1)
            x = {"left": self.x, "center": self.x + (self.width - used) / 2}.get(
                self._align, self.x + self.width - used
            )
            top -= row_height
            for button, width in row:
                button.width = width
                button.pos = (x, top + (row_height - button.height) / 2)
                x += width + self._gap
            top -= self._gap


class Spinner(Widget):  # type: ignore[misc]
    """A turning arc: work is under way. Animates only between ``start`` and ``stop``."""

    def __init__(self, m: Metrics, **kwargs: Any) -> None:
        side = m.unit * 16
        super().__init__(size_hint=(None, None), size=(side, side), **kwargs)
        self._angle = 0.0
        self._event: Any = None
        width = max(2.0, m.unit * 1.1)
        with self.canvas:
            Color(*theme.ACCENT_TINT)
            self._track = Line(width=width)
            Color(*theme.ACCENT)
            self._arc = Line(width=width, cap="round")
        self.bind(pos=self._draw, size=self._draw)
        self._draw()

    def start(self) -> None:
        if self._event is None:
            self._event = Clock.schedule_interval(self._step, 1 / 30)

    def stop(self) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None

    def _step(self, dt: float) -> None:
        self._angle = (self._angle + 300 * dt) % 360
        self._draw()

    def _draw(self, *_: Any) -> None:
        # Coordinates from x/y/size: the cached ``center`` may lag inside a pos/size callback.
        cx, cy = self.x + self.width / 2, self.y + self.height / 2
        r = min(self.width, self.height) / 2 - self._arc.width * 2
        self._track.circle = (cx, cy, r)
        self._arc.circle = (cx, cy, r, self._angle, self._angle + 110)


# Glyph strokes on a unit square (0,0 bottom-left), drawn in white on the tone colour.
_TONE_STROKES: dict[str, tuple[tuple[float, ...], ...]] = {
    "success": ((0.28, 0.52, 0.44, 0.36, 0.72, 0.66),),
    "error": ((0.34, 0.34, 0.66, 0.66), (0.34, 0.66, 0.66, 0.34)),
    "warning": ((0.5, 0.42, 0.5, 0.74),),
    "info": ((0.5, 0.26, 0.5, 0.56),),
}
_TONE_DOTS: dict[str, tuple[float, float]] = {"warning": (0.5, 0.27), "info": (0.5, 0.72)}


class ToneIcon(Widget):  # type: ignore[misc]
    """A filled circle in the tone colour with a drawn mark (tick, cross, !, i); no font glyphs."""

    def __init__(self, tone: str, m: Metrics) -> None:
        side = m.unit * 14
        super().__init__(size_hint=(None, None), size=(side, side))
        self._tone = tone if tone in _TONE_STROKES else "info"
        self.bind(pos=self._draw, size=self._draw)
        self._draw()

    def _draw(self, *_: Any) -> None:
        x, y, side = self.x, self.y, min(self.width, self.height)
        self.canvas.clear()
        with self.canvas:
            Color(*theme.TONE_COLOURS[self._tone])
            Ellipse(pos=(x, y), size=(side, side))
            Color(*theme.ON_ACCENT)
            width = side * 0.045
            for stroke in _TONE_STROKES[self._tone]:
                points = [v * side + (x if i % 2 == 0 else y) for i, v in enumerate(stroke)]
                Line(points=points, width=width, cap="round", joint="round")
            dot = _TONE_DOTS.get(self._tone)
            if dot is not None:
                r = width * 1.3
                Ellipse(pos=(x + dot[0] * side - r, y + dot[1] * side - r), size=(2 * r, 2 * r))


class CardArt(Widget):  # type: ignore[misc]
    """A drawn social security card above a downward chevron: "insert your card here"."""

    def __init__(self, m: Metrics) -> None:
        width = m.unit * 34
        super().__init__(size_hint=(None, None), size=(width, width * 0.82))
        self.bind(pos=self._draw, size=self._draw)
        self._draw()

    def _draw(self, *_: Any) -> None:
        w = self.width
        card_h = w * 0.63  # ID-1 card proportions
        x, top = self.x, self.y + self.height  # not .top: it may lag inside this callback
        card_y = top - card_h
        self.canvas.clear()
        with self.canvas:
            Color(*theme.ACCENT)
            RoundedRectangle(pos=(x, card_y), size=(w, card_h), radius=[w * 0.05])
            Color(0.86, 0.69, 0.28, 1)  # chip gold
            RoundedRectangle(
                pos=(x + w * 0.1, card_y + card_h * 0.42),
                size=(w * 0.16, card_h * 0.24),
                radius=[w * 0.015],
            )
            Color(1, 1, 1, 0.85)
            for i, length in enumerate((0.5, 0.38, 0.44)):
                line_y = card_y + card_h * (0.72 - i * 0.16)
                start, end = x + w * 0.36, x + w * (0.36 + length)
                Line(points=[start, line_y, end, line_y], width=w * 0.012)
            Color(*theme.ACCENT)
            cy = self.y + (card_y - self.y) * 0.45
            Line(
                points=[
                    *(x + w * 0.4, cy + w * 0.05),
                    *(x + w * 0.5, cy - w * 0.03),
                    *(x + w * 0.6, cy + w * 0.05),
                ],
                width=w * 0.02,
                cap="round",
                joint="round",
            )


class QrImage(Widget):  # type: ignore[misc]
    """A QR code drawn module-exact on white, sized to whole pixels per module so it stays sharp."""

    def __init__(self, data: str, side: float) -> None:
        super().__init__(size_hint=(None, None), size=(side, side))
        try:
            matrix = qr_matrix(data)
        except QrDataError:
            # Content too long or not encodable: a blank square, the caption still says what
            # the code was for; a screen must never fail over it.
            log.warning("QR code not drawn: its data cannot be encoded")
            matrix = ((False,),)
        n = len(matrix)
        # Kivy textures start at the bottom row; RGBA keeps rows 4-byte aligned for GL.
        buf = bytearray()
        for row in reversed(matrix):
            for dark in row:
                buf += b"\x00\x00\x00\xff" if dark else b"\xff\xff\xff\xff"
        texture = Texture.create(size=(n, n), colorfmt="rgba")
        texture.blit_buffer(bytes(buf), colorfmt="rgba", bufferfmt="ubyte")
        texture.mag_filter = "nearest"
        texture.min_filter = "nearest"
        self._modules = n
        with self.canvas:
            Color(1, 1, 1, 1)
            self._back = Rectangle()
            self._image = Rectangle(texture=texture)
        self.bind(pos=self._draw, size=self._draw)
        self._draw()

    def _draw(self, *_: Any) -> None:
        self._back.pos, self._back.size = self.pos, self.size
        module = max(1, int(min(self.width, self.height) // self._modules))
        side = module * self._modules
        self._image.size = (side, side)
        self._image.pos = (
            round(self.x + (self.width - side) / 2),
            round(self.y + (self.height - side) / 2),
        )


def vbox(m: Metrics, *, spacing: float | None = None, padding: Any = 0) -> BoxLayout:
    """A vertical stack as tall as its children (for content that may scroll)."""
    box = BoxLayout(
        orientation="vertical",
        size_hint_y=None,
        spacing=m.gap if spacing is None else spacing,
        padding=padding,
    )
    box.bind(minimum_height=box.setter("height"))
    return box


class Scroller(ScrollView):  # type: ignore[misc]
    """Vertical scrolling only when the content is taller than the view, with a bar that stays
    visible then (residents must see there is more below) and is absent otherwise."""

    def __init__(self, m: Metrics, **kwargs: Any) -> None:
        super().__init__(
            do_scroll_x=False,
            do_scroll_y=False,
            bar_width=max(4.0, m.unit * 1.0),
            scroll_type=["bars", "content"],
            effect_cls=ScrollEffect,  # no overscroll bounce: calmer, nothing drifts on its own
            **kwargs,
        )
        self.bind(height=self._update)

    def add_widget(self, widget: Widget, *args: Any, **kwargs: Any) -> None:
        super().add_widget(widget, *args, **kwargs)
        widget.bind(height=self._update)
        self._update()

    def _update(self, *_: Any) -> None:
        content = self.children[0] if self.children else None
        scrolls = content is not None and content.height > self.height + 1
        # A view that cannot scroll hands touches straight to its buttons (no scroll_timeout
        # delay) and shows no bar that would suggest more content.
        self.do_scroll_y = scrolls
        self.bar_color = theme.ACCENT if scrolls else (0, 0, 0, 0)
        self.bar_inactive_color = (*theme.ACCENT[:3], 0.55) if scrolls else (0, 0, 0, 0)


def centred_scroll(content: Widget, m: Metrics, max_width: float) -> ScrollView:
    """``content`` centred in the available space, scrolling only if it is taller than that."""
    view = Scroller(m)
    holder = AnchorLayout(anchor_x="center", anchor_y="center", size_hint_y=None)
    content.size_hint_x = None
    holder.add_widget(content)
    view.add_widget(holder)

    def fit(*_: Any) -> None:
        holder.height = max(content.height, view.height)
        content.width = min(max(1.0, view.width - 2 * m.pad), max_width)

    view.bind(size=fit)
    content.bind(height=fit)
    fit()
    return view
