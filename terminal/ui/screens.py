"""One Kivy body per screen kind, drawn from its model; flows never need a screen of their own.

Kinds: attract, message (a notice), progress, menu (a choice), guide, confirm (label/value
summary), done, qr (a code to take away).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from terminal.presentation import FieldModel, ScreenModel, SectionModel, TargetModel
from terminal.ui import theme
from terminal.ui.linebreak import number_items
from terminal.ui.theme import Metrics, menu_grid
from terminal.ui.widgets import (
    ActionRow,
    Activate,
    CardArt,
    Panel,
    QrImage,
    Scroller,
    Spinner,
    TargetButton,
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

    def local_targets(self) -> tuple[TargetModel, ...]:
        """Targets the UI adds on its own (page buttons), reported with the model's."""
        return ()

    def handle_local(self, target_id: str) -> bool:
        """Act on one of ``local_targets``; False for any other target (the flow's)."""
        return False

    def attach_pager(self, slot: BoxLayout, refit: Callable[[], None]) -> None:
        """The footer's place for page buttons, should this body page its content."""


class AttractBody(ScreenBody):
    """The idle screen: a card picture, a large welcome and what to do."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        content = vbox(m, spacing=m.gap * 1.5)
        # On a short panel (800x480) what to do comes before a picture of a card: the picture
        # goes, and in large type the welcome is set as a title, so "insert your card" shows.
        short = m.height <= 600
        if not short:
            content.add_widget(_centred(CardArt(m)))
        hero = m.font_title if short and m.elder else m.font_hero
        content.add_widget(TextLabel(model.title, hero, color=theme.ACCENT, halign="center"))
        for line in model.lines:
            content.add_widget(
                TextLabel(line, m.font_body * 1.1, color=theme.TEXT_MUTED, halign="center")
            )
        if model.notice is not None:
            content.add_widget(_notice_panel(model, m))
        self.add_widget(centred_scroll(content, m, max_width=m.unit * 150))


def _notice_panel(model: ScreenModel, m: Metrics) -> BoxLayout:
    """The public notice in force, on a card below the call to action; an urgent one is marked
    in words (the model's title starts 【紧急】), with the warning edge as a second signal."""
    assert model.notice is not None
    title, body = model.notice
    tone = "warning" if model.notice_urgent else "info"
    panel = vbox(m, spacing=m.gap * 0.6, padding=m.pad)
    Panel(panel, theme.TONE_TINTS[tone], border=theme.TONE_COLOURS[tone], radius=m.radius,
          border_width=m.border * 2)
    panel.add_widget(TextLabel(title, m.font_heading, color=theme.TEXT))
    panel.add_widget(TextLabel(body, m.font_body, color=theme.TEXT))
    return panel


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
    """Options as big tiles in a grid sized to the window. When they cannot all fit (large type on
    a small screen), the menu is paged with plain 上一页 / 第1/2页 / 下一页 buttons in the footer,
    never a scroll bar a resident may not notice; the page buttons are the UI's own targets
    (``menu.page.*``)."""

    PREVIOUS, NEXT = "menu.page.previous", "menu.page.next"

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        _header(self, model, m)
        self._m = m
        self._model = model
        self._activate = activate
        self._tiles = [Tile(option, m, activate) for option in model.options]
        self._page = 0
        self._per_page = max(1, len(self._tiles))
        self._tile_height = m.tile_height
        self._cap = math.inf
        self._slot: BoxLayout | None = None
        self._pager_shown: tuple[int, int] | None = None
        self._refit: Callable[[], None] = lambda: None
        # A scroll view only as the last resort: one row of tiles taller than the screen has
        # room for (long English titles in large type on a 7-inch panel) scrolls, never overlaps.
        self._area = Scroller(m)
        self._grid = GridLayout(cols=1, spacing=m.gap, size_hint_y=None)
        self._grid.bind(minimum_height=self._grid.setter("height"))
        self._area.add_widget(self._grid)
        self.add_widget(self._area)
        for tile in self._tiles:
            tile.bind(texture_size=self._even_rows)
        self._area.bind(size=self._regrid)

    def attach_pager(self, slot: BoxLayout, refit: Callable[[], None]) -> None:
        self._slot, self._refit = slot, refit
        self._fill()

    @property
    def pages(self) -> int:
        return -(-len(self._tiles) // self._per_page)

    def local_targets(self) -> tuple[TargetModel, ...]:
        if self.pages <= 1:
            return ()
        return (
            TargetModel(self.PREVIOUS, self._model.page_previous, self._page > 0, "secondary"),
            TargetModel(self.NEXT, self._model.page_next, self._page < self.pages - 1,
                        "primary"),
        )

    def handle_local(self, target_id: str) -> bool:
        if target_id == self.PREVIOUS and self._page > 0:
            self._page -= 1
        elif target_id == self.NEXT and self._page < self.pages - 1:
            self._page += 1
        elif target_id not in (self.PREVIOUS, self.NEXT):
            return False
        self._fill()
        return True

    def _regrid(self, *_: Any) -> None:
        m, area = self._m, self._area
        count = len(self._tiles)
        width = area.width - area.bar_width - m.gap / 2  # keep the scroll bar off the tiles
        shape = menu_grid(count, width, area.height, m)
        rows = -(-count // shape.columns)
        row = max([shape.tile_height, *self._heights_at(shape.columns, width)])
        fits = rows * row + (rows - 1) * m.gap <= area.height + 1
        self._grid.cols = shape.columns
        self._tile_height = shape.tile_height
        self._cap = math.inf
        if fits:
            self._per_page = max(1, count)
        else:
            # Large type on a page: at most two tiles a row, so a long title wraps to two lines
            # rather than a tower of three. Then as many rows as fit; rows as tall as the
            # tallest title needs (a three-line title is not cut short).
            columns = min(shape.columns, 2) if m.elder else shape.columns
            self._grid.cols = columns
            row = max([m.tile_compact_height, *self._heights_at(columns, width)])
            rows_fit = max(1, int((area.height + m.gap) // (row + m.gap)))
            self._per_page = rows_fit * columns
            self._cap = max(row, (area.height - (rows_fit - 1) * m.gap) / rows_fit)
            self._tile_height = min(row, self._cap)
        self._page = min(self._page, self.pages - 1)
        self._fill()

    def _heights_at(self, columns: int, width: float) -> list[float]:
        tile_width = (width - (columns - 1) * self._m.gap) / columns
        return [tile.height_at(tile_width) for tile in self._tiles]

    def _fill(self) -> None:
        start = self._page * self._per_page
        self._grid.clear_widgets()
        for tile in self._tiles[start : start + self._per_page]:
            self._grid.add_widget(tile)
        if self._slot is not None:
            self._fill_pager(self._slot)
        self._even_rows()

    def _fill_pager(self, slot: BoxLayout) -> None:
        # Rebuilt only when the page changes: rebuilding resizes the footer, which resizes the
        # menu, which would page it again, and so on.
        shown = (self._page, self.pages)
        if shown == self._pager_shown:
            return
        self._pager_shown = shown
        slot.clear_widgets()
        slot.width = 0
        if self.pages > 1:
            m = self._m
            previous, following = (TargetButton(t, m, self._activate, size_hint_x=None)
                                   for t in self.local_targets())
            where = TextLabel(
                self._model.page_of.format(page=self._page + 1, pages=self.pages),
                m.font_body, halign="center", size_hint_x=None,
                pos_hint={"center_y": 0.5},
            )
            where.width = measurer(m.font_body)(where.text) + m.gap
            for button in (previous, following):
                button.width = button.natural_width()
            for widget in (previous, where, following):
                slot.add_widget(widget)
            slot.width = previous.width + where.width + following.width + 2 * slot.spacing
        self._refit()

    def _even_rows(self, *_: Any) -> None:
        # Every tile as tall as the tallest label needs: rows of one height read as a grid.
        shown = self._tiles[self._page * self._per_page : (self._page + 1) * self._per_page]
        height = max([self._tile_height, *(tile.needed_height() for tile in shown)])
        height = min(height, self._cap)  # a paged menu never grows past its room
        for tile in shown:
            tile.set_min_height(height)


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
        number = TextLabel(
            label,
            m.font_body,
            color=theme.ACCENT,
            halign="right",
            size_hint_x=None,
            width=number_width,
            pos_hint={"top": 1},
        )
        box.add_widget(_side_by_side(number, text, m.gap * 0.5))
    return box


def _side_by_side(left: TextLabel, right: TextLabel, spacing: float) -> BoxLayout:
    """Two labels on one row, tops aligned, the row as tall as the taller of them."""
    row = BoxLayout(orientation="horizontal", size_hint_y=None, spacing=spacing)
    row.add_widget(left)
    row.add_widget(right)

    def fit(*_: Any) -> None:
        row.height = max(left.height, right.height)

    left.bind(height=fit)
    right.bind(height=fit)
    fit()
    return row


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
            holder = AnchorLayout(anchor_x="center", anchor_y="top", size_hint_y=None,
                                  height=m.qr_side)
            holder.add_widget(image)
            stack = vbox(m, spacing=m.gap)
            stack.add_widget(holder)
            stack.add_widget(caption)
            # The code keeps a size a phone can read (never below half its size); on a short
            # landscape screen in large type the caption scrolls under it rather than overlap.
            view = Scroller(m)
            view.add_widget(stack)
            panel.add_widget(view)

            def shrink(*_: Any) -> None:
                room = panel.height - caption.height - 2 * m.pad - m.gap
                side = max(m.qr_side * 0.5, min(m.qr_side, room))
                image.size = (side, side)
                holder.height = side

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


class ConfirmBody(ScreenBody):
    """What is about to happen: the title, a label/value summary on a card, and the notes."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        card = vbox(m, spacing=m.gap * 1.2, padding=m.pad * 1.2)
        _card(card, m)
        card.add_widget(TextLabel(model.title, m.font_title, halign="center"))
        for label, value in model.rows:
            name = TextLabel(label, m.font_body, color=theme.TEXT_MUTED, size_hint_x=0.32,
                             halign="right", pos_hint={"top": 1})
            text = TextLabel(value, m.font_body, pos_hint={"top": 1})
            card.add_widget(_side_by_side(name, text, m.gap))
        for line in model.lines:
            card.add_widget(TextLabel(line, m.font_body, color=theme.TEXT_MUTED, halign="center"))
        self.add_widget(centred_scroll(card, m, max_width=m.unit * 140))


class DoneBody(MessageBody):
    """An errand finished: drawn as a notice in the success tone (tick icon, green edge, words)."""


class QrBody(ScreenBody):
    """A code to scan with a phone, as large as the screen allows, and what it is for."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        content = vbox(m, spacing=m.gap * 1.2)
        content.add_widget(TextLabel(model.title, m.font_title, halign="center"))
        if model.qr_data is not None:
            side = m.qr_side * 1.4
            content.add_widget(_centred(QrImage(model.qr_data, side)))
        if model.qr_caption:
            content.add_widget(TextLabel(model.qr_caption, m.font_body, halign="center"))
        for line in model.lines:
            content.add_widget(
                TextLabel(line, m.font_body, color=theme.TEXT_MUTED, halign="center")
            )
        self.add_widget(centred_scroll(content, m, max_width=m.unit * 140))


class FormBody(ScreenBody):
    """Fields on the left (or above), each a box to tap into; the keypad beside (or below).

    The focused field has a thick accent edge and the words of its label; an error is written
    under its field in words, so colour is never the only signal.
    """

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        _header(self, model, m)
        # Fields beside the keypad where there is the height for three rows of keys; otherwise
        # (a 7-inch panel in large type) fields and keypad one under the other, scrolling.
        wide = not m.portrait and m.height >= 3 * m.min_target_px * 2.6
        view = Scroller(m)
        column = vbox(m, spacing=m.gap, padding=(0, 0, view.bar_width + m.gap / 2, 0))
        for form_field in model.fields:
            column.add_widget(self._field(form_field, m, activate))
        if not wide and model.keypad:
            column.add_widget(self._keypad(model, m, activate, wide))
        view.add_widget(column)
        if wide:
            content = BoxLayout(orientation="horizontal", spacing=m.gap)
            content.add_widget(view)
            if model.keypad:
                content.add_widget(self._keypad(model, m, activate, wide))
            self.add_widget(content)
        else:
            self.add_widget(view)

    @staticmethod
    def _field(form_field: FieldModel, m: Metrics, activate: Activate) -> BoxLayout:
        box = vbox(m, spacing=m.gap * 0.5)
        shown = form_field.shown or " "
        label = form_field.target.label
        colon = ": " if label.isascii() else "："
        value = TargetModel(
            form_field.target.id, f"{label}{colon}{shown}", True,
            "primary" if form_field.focused else "secondary",
        )
        box.add_widget(TargetButton(value, m, activate, font_size=m.font_body))
        if form_field.choices:
            row = ActionRow([TargetButton(c, m, activate) for c in form_field.choices], m,
                            align="left")
            box.add_widget(row)
        if form_field.error is not None:
            box.add_widget(TextLabel(f"！{form_field.error}", m.font_body, color=theme.DANGER))
        return box

    @staticmethod
    def _keypad(model: ScreenModel, m: Metrics, activate: Activate, wide: bool) -> Widget:
        # Four keys a row, three rows (1-4, 5-8, 9 0 删除 清空): short enough for a landscape
        # 800x480 panel in large type; each key a comfortable square-ish target.
        cols, spacing = 4, m.gap * 0.6
        rows = -(-len(model.keypad) // cols)
        key_height = m.button_height
        keys = [TargetButton(key, m, activate, font_size=m.font_button, min_height=key_height)
                for key in model.keypad]
        grid = GridLayout(cols=cols, spacing=spacing, size_hint=(None, None))
        for key in keys:
            grid.add_widget(key)
        # Every key as wide as the widest label needs ("Delete" on one line), and square-ish.
        key_width = max([key_height * 1.25, *(key.natural_width() for key in keys)])
        grid.width = cols * key_width + (cols - 1) * spacing
        grid.height = rows * key_height + (rows - 1) * spacing
        if not wide:
            grid.size_hint_x = 1
            return grid
        # Beside the fields the keypad takes the height there is: keys shrink to fit it (never
        # below a finger's target), rather than reach up over the instructions.
        holder = AnchorLayout(anchor_y="top", size_hint_x=None, width=grid.width)
        holder.add_widget(grid)

        def fit(*_: Any) -> None:
            room = (holder.height - (rows - 1) * spacing) / rows
            height = max(m.min_target_px, min(key_height, room))
            for key in keys:
                key.set_min_height(height)
            grid.height = rows * height + (rows - 1) * spacing

        holder.bind(height=fit)
        return holder


BODIES: dict[str, type[ScreenBody]] = {
    "attract": AttractBody,
    "message": MessageBody,
    "progress": ProgressBody,
    "menu": MenuBody,
    "guide": GuideBody,
    "confirm": ConfirmBody,
    "done": DoneBody,
    "qr": QrBody,
    "form": FormBody,
}


def build_body(model: ScreenModel, m: Metrics, activate: Activate) -> ScreenBody:
    return BODIES[model.kind](model, m, activate)
