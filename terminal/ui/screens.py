"""One Kivy body per screen kind (attract, message, progress, menu, guide), drawn from a model."""

from __future__ import annotations

from typing import Any

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from terminal.presentation import ScreenModel, SectionModel
from terminal.ui import theme
from terminal.ui.linebreak import number_items
from terminal.ui.theme import Metrics, menu_grid
from terminal.ui.widgets import (
    Activate,
    CardArt,
    Panel,
    QrImage,
    Scroller,
    Spinner,
    TextLabel,
    Tile,
    ToneIcon,
    centred_scroll,
    measurer,
    vbox,
)


def _centred(widget: Widget) -> AnchorLayout:
    """A fixed-size widget centred across a vertical stack."""
    holder = AnchorLayout(anchor_x="center", size_hint_y=None, height=widget.height)
    holder.add_widget(widget)
    return holder


def _card(widget: Widget, m: Metrics) -> Panel:
    """A white card with a thin grey edge behind ``widget``."""
    return Panel(
        widget, theme.SURFACE, border=theme.BORDER, radius=m.radius, border_width=m.border * 1.5
    )


class ScreenBody(BoxLayout):  # type: ignore[misc]
    """The part between the top bar and the footer. ``dispose`` stops anything animated."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(orientation="vertical", padding=m.pad, spacing=m.gap)

    def dispose(self) -> None:
        """Called when the screen is replaced."""


class AttractBody(ScreenBody):
    """The idle screen: a card picture, a large welcome and what to do."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        content = vbox(m, spacing=m.gap * 1.5)
        content.add_widget(_centred(CardArt(m)))
        content.add_widget(
            TextLabel(model.title, m.font_hero, color=theme.ACCENT, halign="center")
        )
        for line in model.lines:
            content.add_widget(
                TextLabel(line, m.font_body * 1.1, color=theme.TEXT_MUTED, halign="center")
            )
        self.add_widget(centred_scroll(content, m, max_width=m.unit * 150))


class MessageBody(ScreenBody):
    """A card tinted by tone (info, success, warning, error) with its icon, title and lines."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        tone = model.tone if model.tone in theme.TONE_COLOURS else "info"
        card = vbox(m, spacing=m.gap * 1.2, padding=m.pad * 1.2)
        Panel(
            card,
            theme.TONE_TINTS[tone],
            border=theme.TONE_COLOURS[tone],
            radius=m.radius * 1.5,
            border_width=m.border * 2.5,
        )
        card.add_widget(_centred(ToneIcon(tone, m)))
        card.add_widget(
            TextLabel(
                model.title,
                m.font_title,
                color=theme.TONE_COLOURS[tone],
                halign="center",
            )
        )
        for line in model.lines:
            card.add_widget(TextLabel(line, m.font_body, halign="center"))
        self.add_widget(centred_scroll(card, m, max_width=m.unit * 140))


class ProgressBody(ScreenBody):
    """Work under way: a turning spinner, the title and what is happening."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        content = vbox(m, spacing=m.gap * 1.5)
        self._spinner = Spinner(m)
        content.add_widget(_centred(self._spinner))
        content.add_widget(TextLabel(model.title, m.font_title, halign="center"))
        for line in model.lines:
            content.add_widget(
                TextLabel(line, m.font_body, color=theme.TEXT_MUTED, halign="center")
            )
        self.add_widget(centred_scroll(content, m, max_width=m.unit * 140))
        self._spinner.start()

    def dispose(self) -> None:
        self._spinner.stop()


def _header(body: ScreenBody, model: ScreenModel, m: Metrics) -> None:
    """Title and lines at the top left, for screens whose content is a list."""
    body.add_widget(TextLabel(model.title, m.font_title))
    for line in model.lines:
        body.add_widget(TextLabel(line, m.font_body, color=theme.TEXT_MUTED))


class MenuBody(ScreenBody):
    """Options as big tiles in a grid sized to the window; scrolls if they cannot all fit."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        _header(self, model, m)
        tiles = [Tile(option, m, activate) for option in model.options]
        view = Scroller(m)
        bar_room = view.bar_width + m.gap / 2  # keep the scroll bar off the tiles
        grid = GridLayout(
            cols=1, spacing=m.gap, size_hint_y=None, padding=(0, 0, bar_room, m.gap / 2)
        )
        grid.bind(minimum_height=grid.setter("height"))
        for tile in tiles:
            grid.add_widget(tile)
        view.add_widget(grid)
        self.add_widget(view)

        tile_height = m.tile_height

        def even_rows(*_: Any) -> None:
            # Every tile as tall as the tallest label needs: rows of one height read as a grid.
            height = max([tile_height, *(tile.needed_height() for tile in tiles)])
            for tile in tiles:
                tile.set_min_height(height)

        def regrid(*_: Any) -> None:
            nonlocal tile_height
            shape = menu_grid(len(tiles), view.width - bar_room, view.height - m.gap / 2, m)
            grid.cols = shape.columns
            tile_height = shape.tile_height
            even_rows()

        for tile in tiles:
            tile.bind(texture_size=even_rows)
        view.bind(size=regrid)
        regrid()


def _section(section: SectionModel, m: Metrics) -> BoxLayout:
    box = vbox(m, spacing=m.gap * 0.8)
    box.add_widget(TextLabel(section.heading, m.font_heading, color=theme.ACCENT))
    items = number_items(section.items)
    measure = measurer(m.font_body)
    number_width = m.gap + max((measure(label) for label, _ in items if label), default=0.0)
    for label, item in items:
        text = TextLabel(item, m.font_body, pos_hint={"top": 1})
        if label is None:
            box.add_widget(text)
            continue
        row = BoxLayout(orientation="horizontal", size_hint_y=None, spacing=m.gap * 0.5)
        number = TextLabel(
            label,
            m.font_body,
            color=theme.ACCENT,
            halign="right",
            size_hint_x=None,
            width=number_width,
            pos_hint={"top": 1},
        )
        row.add_widget(number)
        row.add_widget(text)

        def fit(*_: Any, row: BoxLayout = row, a: TextLabel = number, b: TextLabel = text) -> None:
            row.height = max(a.height, b.height)

        number.bind(height=fit)
        text.bind(height=fit)
        fit()
        box.add_widget(row)
    return box


class GuideBody(ScreenBody):
    """A service guide: scrolling sections (every material at once) and its QR code."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        # Only the title stays put: the guide's notes scroll with its sections, or on a small
        # screen they would leave no room for the list of materials itself.
        self.add_widget(TextLabel(model.title, m.font_title))
        wide = not m.portrait
        content = BoxLayout(orientation="horizontal" if wide else "vertical", spacing=m.gap)
        view = Scroller(m)
        _card(view, m)
        padding = (m.pad, m.pad, m.pad + view.bar_width, m.pad)
        sections = vbox(m, spacing=m.gap * 1.8, padding=padding)
        if model.lines:
            notes = vbox(m, spacing=m.gap * 0.6)
            for line in model.lines:
                notes.add_widget(TextLabel(line, m.font_body, color=theme.TEXT_MUTED))
            sections.add_widget(notes)
        for section in model.sections:
            sections.add_widget(_section(section, m))
        view.add_widget(sections)
        content.add_widget(view)
        if model.qr_data is not None:
            content.add_widget(self._qr_panel(model.qr_data, model.qr_caption or "", m, wide))
        self.add_widget(content)

    @staticmethod
    def _qr_panel(data: str, caption_text: str, m: Metrics, wide: bool) -> BoxLayout:
        caption = TextLabel(caption_text, m.font_small, color=theme.TEXT_MUTED, halign="center")
        if wide:
            panel = BoxLayout(
                orientation="vertical",
                size_hint_x=None,
                width=m.qr_side + 2 * m.pad,
                padding=m.pad,
                spacing=m.gap,
            )
            image = QrImage(data, m.qr_side)
            holder = AnchorLayout(anchor_x="center", anchor_y="top")
            holder.add_widget(image)
            panel.add_widget(holder)
            panel.add_widget(caption)

            def shrink(*_: Any) -> None:
                # On a short landscape screen the code gives way to its caption, never overlaps.
                room = panel.height - caption.height - 2 * m.pad - m.gap
                side = max(1.0, min(m.qr_side, room))
                image.size = (side, side)

            panel.bind(height=shrink)
            caption.bind(height=shrink)
        else:
            side = m.qr_side
            panel = BoxLayout(
                orientation="horizontal",
                size_hint_y=None,
                height=side + 2 * m.pad,
                padding=m.pad,
                spacing=m.pad,
            )
            image = QrImage(data, side)
            image.pos_hint = {"center_y": 0.5}
            caption.halign = "left"
            caption.pos_hint = {"center_y": 0.5}
            panel.add_widget(image)
            panel.add_widget(caption)
        _card(panel, m)
        return panel


BODIES: dict[str, type[ScreenBody]] = {
    "attract": AttractBody,
    "message": MessageBody,
    "progress": ProgressBody,
    "menu": MenuBody,
    "guide": GuideBody,
}


def build_body(model: ScreenModel, m: Metrics, activate: Activate) -> ScreenBody:
    return BODIES[model.kind](model, m, activate)
