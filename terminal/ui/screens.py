"""One Kivy body per screen kind, drawn from its model; flows never need a screen of their own.

Kinds: attract, message (a notice), progress, menu (a choice), guide, confirm (label/value
summary), done, qr (a code to take away).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Protocol

from kivy.clock import Clock
from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from terminal.presentation import FieldModel, ScreenModel, TargetModel
from terminal.ui import theme
from terminal.ui.linebreak import number_items
from terminal.ui.paging import Block, paginate
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

    # True: the body draws the screen's actions itself (beside a camera's picture), and the
    # footer leaves them out.
    owns_actions = False

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        # Beside a side rail (large type on a 7-inch panel) every line counts: tighter margins.
        super().__init__(orientation="vertical",
                         padding=(m.gap, m.gap * 0.5) if m.side_rail else m.pad, spacing=m.gap)

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


PAGE_PREVIOUS, PAGE_NEXT = "page.previous", "page.next"


class PageButtons:
    """上一页 / 第1/2页 / 下一页 in the footer's slot, for a body that pages what does not fit;
    the buttons are the UI's own targets (``page.previous``, ``page.next``)."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        self._model, self._m, self._activate = model, m, activate
        self._slot: BoxLayout | None = None
        self._refit: Callable[[], None] = lambda: None
        self._shown: tuple[int, int] | None = None
        self.page, self.pages = 0, 1

    def attach(self, slot: BoxLayout, refit: Callable[[], None]) -> None:
        self._slot, self._refit = slot, refit
        self._shown = None
        self.show(self.page, self.pages)

    def targets(self) -> tuple[TargetModel, ...]:
        if self.pages <= 1 or self._slot is None:
            return ()  # one page, or the buttons have no place on the screen right now
        return (
            TargetModel(PAGE_PREVIOUS, self._model.page_previous, self.page > 0, "secondary"),
            TargetModel(PAGE_NEXT, self._model.page_next, self.page < self.pages - 1, "primary"),
        )

    def turn(self, target_id: str) -> int | None:
        """The page ``target_id`` turns to; None for a target that is not a page button."""
        if target_id == PAGE_PREVIOUS:
            return max(0, self.page - 1)
        if target_id == PAGE_NEXT:
            return min(self.pages - 1, self.page + 1)
        return None

    def show(self, page: int, pages: int) -> None:
        self.page, self.pages = page, pages
        slot = self._slot
        # Rebuilt only when the page changes: rebuilding resizes the footer, which resizes the
        # body, which would page it again, and so on.
        if slot is None or (page, pages) == self._shown:
            return
        self._shown = (page, pages)
        slot.clear_widgets()
        # Emptied in both directions: a rail's slot left as tall as the page buttons it held
        # (several pages while the screen was still being laid out, one at the end) pushed the
        # switches off the window.
        slot.width = 0
        if slot.orientation == "vertical":
            slot.height = 0
        if pages > 1 and slot.orientation == "vertical":
            self._fill_rail(slot, page, pages)
        elif pages > 1:
            m = self._m
            previous, following = (TargetButton(t, m, self._activate, size_hint_x=None)
                                   for t in self.targets())
            where = TextLabel(
                self._model.page_of.format(page=page + 1, pages=pages),
                m.font_body, halign="center", size_hint_x=None,
                pos_hint={"center_y": 0.5},
            )
            # The words as given: .text is already wrapped at the default width, and a
            # newline measured as a glyph made "第10/10页" half as wide again.
            where.width = measurer(m.font_body)(where.source_text) + m.gap
            for button in (previous, following):
                button.width = button.natural_width()
            for widget in (previous, where, following):
                slot.add_widget(widget)
            slot.width = previous.width + where.width + following.width + 2 * slot.spacing
        self._refit()

    def _fill_rail(self, slot: BoxLayout, page: int, pages: int) -> None:
        """One under another in a side rail: 上一页, 第1/2页 (white on the rail's blue), 下一页."""
        m = self._m
        previous, following = (TargetButton(t, m, self._activate, font_size=m.font_bar,
                                            style="inverse", pad_x=m.gap * 0.5)
                               for t in self.targets())
        where = TextLabel(self._model.page_of.format(page=page + 1, pages=pages),
                          m.font_small, color=theme.ON_ACCENT, halign="center")
        for widget in (previous, where, following):
            slot.add_widget(widget)

        def fit(*_: Any) -> None:
            if previous.parent is not slot:
                return  # page buttons of an earlier page, still settling after they went
            slot.height = (previous.height + where.height + following.height
                           + 2 * slot.spacing)

        for widget in (previous, where, following):
            widget.bind(height=fit)
        fit()


class AttractBody(ScreenBody):
    """The idle screen: a card picture, a large welcome and what to do."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        content = vbox(m, spacing=m.gap * 1.5)
        # On a short panel (800x480) what to do comes before a picture of a card: the picture
        # goes, and in large type the welcome is set as a title, so "insert your card" shows.
        art = None if m.compact else _centred(CardArt(m))
        if art is not None:
            content.add_widget(art)
        hero = m.font_title if m.elder else m.font_hero
        content.add_widget(TextLabel(model.title, hero, color=theme.ACCENT, halign="center"))
        lines = [TextLabel(line, m.font_body * (1.0 if m.side_rail else 1.1),
                           color=theme.TEXT_MUTED, halign="center") for line in model.lines]
        for label in lines:
            content.add_widget(label)
        # What gives way where large type leaves no room (English on a 7-inch panel): first the
        # card's picture, then the notice (it is back at the next attract screen, in normal
        # type), then the lines after the call to action from the last up (the hint before the
        # other ways of identifying); never the call to action itself.
        optional: list[Widget] = list(lines[1:])
        self._notice: tuple[TextLabel, TextLabel] | None = None
        self._notice_urgent = model.notice_urgent
        if model.notice is not None:
            panel, self._notice = _notice_panel(model, m)
            optional.append(panel)
            content.add_widget(panel)
        if art is not None:
            optional.append(art)  # the picture goes first: it only shows what the words say
        max_width = m.unit * 150
        view = centred_scroll(content, m, max_width=max_width)
        self.add_widget(view)
        self._retrim = give_way(view, content, optional, m, max_width)

    def show_notice(self, model: ScreenModel) -> bool:
        """Show ``model``'s notice in place of this one: new words in the same panel, for the
        rotation every few seconds. False when it takes more than words (a notice comes or goes,
        or its urgency changes): build the screen afresh then.

        A whole new attract screen at each rotation cost the main thread a frame's worth of
        work and held both screens' textures at once, 5 MB more for a moment every 10 s.
        """
        if (self._notice is None or model.notice is None
                or model.notice_urgent != self._notice_urgent):
            return False
        for label, text in zip(self._notice, model.notice, strict=True):
            label.set_text(text)
        self._retrim()  # the new words may take more or fewer lines: decide again what fits
        return True


def give_way(view: Widget, content: BoxLayout, optional: list[Widget], m: Metrics,
             max_width: float) -> Callable[..., Any]:
    """Keep ``content`` (a vertical box in ``view``, a ``centred_scroll``) whole on the screen:
    the widgets in ``optional`` give way, the last first, until the rest fits ``view``'s height.
    Returns the trigger that decides again (bound to ``view``'s size already)."""
    everything = list(reversed(content.children))  # top to bottom, as built

    def trim(*_: Any) -> None:
        # Decided on the heights the lines will have at the width they are about to get,
        # not on the heights of this moment: at the first layout the column is still Kivy's
        # default 100 px wide, every line wraps a character a row, and everything optional
        # went (the notice and the picture even on a full-HD panel). And decided afresh from
        # everything each time, so a size seen in passing takes nothing away for good.
        if view.width <= 1 or view.height <= 1 or tuple(view.size) == (100, 100):
            return  # not laid out yet: 100 x 100 is every Kivy widget's size before it is
        width = min(max(1.0, view.width - 2 * m.pad), max_width)
        shown = list(everything)
        candidates = list(optional)  # the next to give way is the last

        def height() -> float:
            heights = [natural_height(widget, width) for widget in shown]
            return float(sum(heights) + content.spacing * (len(heights) - 1))

        while candidates and height() > view.height + 1:
            shown.remove(candidates.pop())
        if shown != list(reversed(content.children)):
            content.clear_widgets()
            for widget in shown:
                content.add_widget(widget)

    # Not inside the layout pass that changed the heights (a box must not lose a child while
    # it lays its children out), but in the same frame: a trim on the next frame forced a
    # full redraw before the first screen could settle (~70 ms of start-up at 1920x1080).
    later: Callable[..., Any] = Clock.create_trigger(trim, -1)  # between this frame's layouts
    view.bind(size=later)
    return later


def natural_height(widget: Widget, width: float) -> float:
    """How tall ``widget`` will be at ``width``: wrapped text by its lines, vertical stacks by
    their children, spacing and padding, anything else as tall as it is (a fixed size)."""
    if isinstance(widget, TextLabel):
        return float(widget.height_at(width))
    if isinstance(widget, BoxLayout) and widget.orientation == "vertical" and widget.children:
        left, top, right, bottom = widget.padding
        inner = width - left - right
        heights = [natural_height(child, inner) for child in widget.children]
        return float(sum(heights) + widget.spacing * (len(heights) - 1) + top + bottom)
    return float(widget.height)


def _notice_panel(model: ScreenModel, m: Metrics) -> tuple[BoxLayout, tuple[TextLabel, TextLabel]]:
    """The public notice in force, on a card below the call to action; an urgent one is marked
    in words (the model's title starts 【紧急】), with the warning edge as a second signal.
    Returned with its title and body, whose words change as notices rotate."""
    assert model.notice is not None
    title, body = model.notice
    tone = "warning" if model.notice_urgent else "info"
    panel = vbox(m, spacing=m.gap * 0.6, padding=m.pad)
    Panel(panel, theme.TONE_TINTS[tone], border=theme.TONE_COLOURS[tone], radius=m.radius,
          border_width=m.border * 2)
    labels = (TextLabel(title, m.font_heading, color=theme.TEXT),
              TextLabel(body, m.font_body, color=theme.TEXT))
    for label in labels:
        panel.add_widget(label)
    return panel, labels


class _PagedBody(ScreenBody):
    """A body that pages what does not fit, with the page buttons in the footer's slot."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        self._pager = PageButtons(model, m, activate)
        self._sheet: PagedSheet | None = None  # where the pages are, for a body made of blocks

    def attach_pager(self, slot: BoxLayout, refit: Callable[[], None]) -> None:
        self._pager.attach(slot, refit)

    def local_targets(self) -> tuple[TargetModel, ...]:
        return self._pager.targets()

    def handle_local(self, target_id: str) -> bool:
        page = self._pager.turn(target_id)
        if page is None:
            return False
        self._turn_to(page)
        return True

    def _turn_to(self, page: int) -> None:
        assert self._sheet is not None, "a paged body without a sheet turns its own pages"
        self._sheet.show_page(page)


class _PagedCardBody(_PagedBody):
    """A body whose content is one card of blocks, centred, paged where it does not fit."""

    def _paged_card(self, m: Metrics, blocks: list[Block], *, spacing: float, padding: float,
                    max_width: float) -> PagedSheet:
        self._sheet = PagedSheet(self._pager, m, spacing=spacing, inset=0, padding=padding,
                                 anchor_y="center", max_width=max_width)
        self._sheet.blocks = blocks
        self.add_widget(self._sheet)
        return self._sheet


def _label_block(label: TextLabel, section: int | None = None) -> Block:
    """A text block; one taller than a page by itself splits by its lines."""

    def split(width: float, first: float, room: float) -> list[Block]:
        return [_label_block(label.like(chunk), section)
                for chunk in label.chunks_at(width, first, room)]

    return Block(label, label.height_at, section, split=split)


def _fixed(value: float, _width: float) -> float:
    return value


def _row_block(left: TextLabel, right: TextLabel, spacing: float,
               left_width: Callable[[float], float], section: int | None = None) -> Block:
    """Two labels on a row (a number and its item, a label and its value); a row taller than a
    page splits by the right-hand text's lines, the left-hand label on its first piece only."""

    def height_at(width: float) -> float:
        side = left_width(width)
        return max(left.height_at(side), right.height_at(width - side - spacing))

    def split(width: float, first: float, room: float) -> list[Block]:
        side = left_width(width)
        pieces = []
        for n, chunk in enumerate(right.chunks_at(width - side - spacing, first, room)):
            label = left.like(left.source_text if n == 0 else " ")
            if label.size_hint_x is None:
                label.width = side  # as the whole row's was (a confirm's labels, capped at 40%)
            pieces.append(_row_block(label, right.like(chunk), spacing, left_width, section))
        return pieces

    return Block(_side_by_side(left, right, spacing), height_at, section, split=split)


class MessageBody(_PagedCardBody):
    """A card tinted by tone (info, success, warning, error) with its icon, title and lines."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        tone = model.tone if model.tone in theme.TONE_COLOURS else "info"
        blocks: list[Block] = []
        if not m.side_rail:
            # In large type on a 7-inch panel the words need the room: the tone still shows in
            # the title's colour, the card's edge and the words themselves.
            icon = _centred(ToneIcon(tone, m))
            blocks.append(Block(icon, lambda _width: float(icon.height)))
        blocks.append(_label_block(TextLabel(model.title, m.font_title,
                                             color=theme.TONE_COLOURS[tone], halign="center")))
        blocks += [_label_block(TextLabel(line, m.font_body, halign="center"))
                   for line in model.lines]
        sheet = self._paged_card(m, blocks, spacing=m.gap * 1.2, padding=m.pad * 1.2,
                                 max_width=m.unit * 140)
        Panel(
            sheet.sheet,
            theme.TONE_TINTS[tone],
            border=theme.TONE_COLOURS[tone],
            radius=m.radius * 1.5,
            border_width=m.border * 2.5,
        )


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


def _header(body: ScreenBody, model: ScreenModel, m: Metrics, lines: bool = True) -> None:
    """Title and lines at the top left, for screens whose content is a list."""
    body.add_widget(TextLabel(model.title, m.font_title))
    for line in model.lines if lines else ():
        body.add_widget(TextLabel(line, m.font_body, color=theme.TEXT_MUTED))


class MenuBody(_PagedBody):
    """Options as big tiles in a grid sized to the window. When they cannot all fit (large type on
    a small screen), the menu is paged with plain 上一页 / 第1/2页 / 下一页 buttons in the footer,
    never a scroll bar a resident may not notice."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        # In large type on a 7-inch panel the instructions give way to the options: they leave
        # room for a single row of tiles otherwise, and elder mode speaks them anyway.
        _header(self, model, m, lines=not m.side_rail)
        self._m = m
        self._tiles = [Tile(option, m, activate) for option in model.options]
        self._starts = [0, len(self._tiles)]  # where each page's tiles start, and the end
        self._tile_height = m.tile_height
        # Rows of their own heights, by row over the whole menu (pages start on a row), where
        # the menu does not fit at its usual tile height; None: one height for every tile.
        self._row_heights: list[float] | None = None
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

    @property
    def pages(self) -> int:
        return len(self._starts) - 1

    def _turn_to(self, page: int) -> None:
        self._pager.page = page
        self._fill()

    def _regrid(self, *_: Any) -> None:
        m, area = self._m, self._area
        count = len(self._tiles)
        width = area.width - area.bar_width - m.gap / 2  # keep the scroll bar off the tiles
        shape = menu_grid(count, width, area.height, m)
        rows = -(-count // shape.columns)
        row = max([shape.tile_height, *self._heights_at(shape.columns, width)])
        fits = rows * row + (rows - 1) * m.gap <= area.height + 1
        self._grid.cols, self._grid.spacing = shape.columns, m.gap
        self._tile_height = shape.tile_height
        self._starts = [0, count]
        self._row_heights = None
        whole = None if fits else self._one_page(width, area.height)
        if whole is not None:
            # Every option on one screen, in tiles a finger still finds with every title's words
            # whole: the five levels of a rating (好差评) side by side, never the last one behind
            # 下一页 (large-type English on a 7-inch panel paged "Very dissatisfied" alone).
            columns, self._row_heights, gap = whole
            self._grid.cols, self._grid.spacing = columns, gap
        elif not fits:
            # Large type on a page: at most two tiles a row, so a long title wraps to two lines
            # rather than a tower of three. Then rows onto pages as they come, each row as tall
            # as its own titles need: two rows of two-line titles share a page that one row
            # with a three-line title would have left half empty.
            columns = min(shape.columns, 2) if m.elder else shape.columns
            heights = self._row_needs(columns, width)
            if max(heights, default=0.0) > area.height and columns > 1:
                # Not even one row of titles this long fits (English in large type on a 7-inch
                # panel): one tile a row, as wide as the screen, takes fewer lines.
                columns = 1
                heights = self._row_needs(columns, width)
            self._grid.cols = columns
            self._row_heights = heights
            self._starts = [0]
            used = 0.0
            for index, height in enumerate(heights):
                if used and used + m.gap + height > area.height + 1:
                    self._starts.append(index * columns)
                    used = 0.0
                used += (m.gap if used else 0.0) + height
            self._starts.append(count)
        self._pager.page = min(self._pager.page, self.pages - 1)
        self._fill()

    def _one_page(self, width: float, height: float) -> tuple[int, list[float], float] | None:
        """Columns, row heights and spacing that hold every tile in ``height``: each row as tall
        as its tallest title needs and at least the mode's minimum target (15 mm in large type),
        the room left shared out evenly, no title broken inside a word or past two lines. The
        usual spacing first, then half of it; the fewest empty cells, then the fewest columns.
        None where nothing does."""
        m, count = self._m, len(self._tiles)
        for gap in (m.gap, m.gap / 2):
            best: tuple[tuple[int, int], int, list[float]] | None = None
            for columns in range(1, count + 1):
                tile_width = (width - (columns - 1) * gap) / columns
                if not all(tile.fits_in(tile_width) for tile in self._tiles):
                    break  # narrower tiles only break the titles more
                needs = self._heights_at(columns, width)
                rows = [max([m.min_target_px, *needs[start:start + columns]])
                        for start in range(0, count, columns)]
                spare = height - sum(rows) - (len(rows) - 1) * gap
                if spare >= -1:
                    key = (len(rows) * columns - count, columns)
                    if best is None or key < best[0]:
                        best = (key, columns, [row + max(0.0, spare) / len(rows) for row in rows])
            if best is not None:
                return best[1], best[2], gap
        return None

    def _heights_at(self, columns: int, width: float) -> list[float]:
        tile_width = (width - (columns - 1) * self._m.gap) / columns
        return [tile.height_at(tile_width) for tile in self._tiles]

    def _row_needs(self, columns: int, width: float) -> list[float]:
        """Each row's height at ``columns``: its tallest title, at least the compact tile."""
        needs = self._heights_at(columns, width)
        return [max([self._m.tile_compact_height, *needs[start:start + columns]])
                for start in range(0, len(needs), columns)]

    def _fill(self) -> None:
        page = self._pager.page
        self._grid.clear_widgets()
        for tile in self._tiles[self._starts[page] : self._starts[page + 1]]:
            self._grid.add_widget(tile)
        self._pager.show(self._pager.page, self.pages)
        self._even_rows()

    def _even_rows(self, *_: Any) -> None:
        # Every tile as tall as the tallest label needs: rows of one height read as a grid.
        page = self._pager.page
        start = self._starts[page]
        shown = self._tiles[start : self._starts[page + 1]]
        if self._row_heights is not None:
            columns = max(1, int(self._grid.cols))
            for index, tile in enumerate(shown, start=start):
                tile.set_min_height(self._row_heights[index // columns])
            return
        height = max([self._tile_height, *(tile.needed_height() for tile in shown)])
        for tile in shown:
            tile.set_min_height(height)


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


class PagedSheet(AnchorLayout):  # type: ignore[misc]
    """Blocks stacked on a sheet and paged to the height there is, never scrolled: the page
    buttons (``PageButtons``) turn the pages. The sheet is as wide as the space (at most
    ``max_width``) and as tall as its page; ``padding`` is the sheet's own (a card's inside).

    Block heights are computed before layout (``TextLabel.height_at``), as Kivy will lay them
    out; ``paginate`` allows each a pixel for rounding.
    """

    def __init__(self, pager: PageButtons, m: Metrics, *, spacing: float, inset: float,
                 padding: float = 0.0, anchor_y: str = "top",
                 max_width: float = math.inf,
                 continued: Callable[[int], Block] | None = None) -> None:
        super().__init__(anchor_x="center", anchor_y=anchor_y, padding=inset)
        self._pager, self._inset, self._max_width = pager, inset, max_width
        self._continued = continued
        self.sheet = vbox(m, spacing=spacing, padding=padding)
        self.sheet.size_hint_x = None
        self._padding = padding
        self.add_widget(self.sheet)
        self.blocks: list[Block] = []
        self.pages: list[list[Block]] = [[]]
        self.first_page: Callable[[list[list[Block]]], int] | None = None
        self.bind(size=self.repage)

    @property
    def inner_width(self) -> float:
        return float(self.sheet.width) - 2 * self._padding

    @property
    def room(self) -> float:
        # All of it: the blocks' heights are Kivy's own line boxes for text broken here (with
        # WRAP_SLACK_PX, so Kivy never wraps a line once more), and ``paginate`` allows each a
        # pixel for rounding. A safety margin of 5% left the heading of a three-line item alone
        # on a 7-inch page, 3 px short, in large type.
        return float(self.height) - 2 * self._inset - 2 * self._padding

    def repage(self, *_: Any) -> None:
        self.sheet.width = max(1.0, min(self.width - 2 * self._inset, self._max_width))
        width, room = self.inner_width, self.room
        if width <= 1 or room <= 1:
            return
        self.pages = paginate(self.blocks, width, room, self.sheet.spacing, self._continued)
        page = min(self._pager.page, len(self.pages) - 1)
        if self.first_page is not None:
            page, self.first_page = self.first_page(self.pages), None
        self.show_page(page)

    def show_page(self, page: int) -> None:
        self.sheet.clear_widgets()
        for block in self.pages[page]:
            self.sheet.add_widget(block.widget)
        self._pager.show(page, len(self.pages))


class GuideBody(_PagedBody):
    """A service guide on a card, paged to fit (every material shown, none below a fold), its
    QR code beside it, or as its last page where the screen is too short for both."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        self._m = m
        self._model = model
        # A guide's title is long (English most of all): in large type, or beside a side rail,
        # a heading's size keeps it to a line or two and leaves the materials the room.
        title_font = m.font_heading if m.side_rail or m.elder else m.font_title
        self.add_widget(TextLabel(model.title, title_font))
        wide = not m.portrait
        content = BoxLayout(orientation="horizontal" if wide else "vertical", spacing=m.gap)
        self._inset = m.gap * 0.5 if m.side_rail else m.pad  # a 7-inch panel: every line counts
        self._card = self._sheet = PagedSheet(self._pager, m, spacing=m.gap * 0.8,
                                              inset=self._inset, continued=self._continued)
        _card(self._card, m)
        content.add_widget(self._card)
        self._card.blocks = self._build_blocks(model, m)
        if model.qr_data is not None and (m.compact or m.elder):
            # In large type the list needs the whole width (beside a code a 1920x1080 panel
            # held one material a page), and on a 7-inch panel there is no room for a code a
            # phone reads beside it: it gets a page of its own, the last.
            self._card.blocks.append(
                self._qr_block(model.qr_data, model.qr_caption or "", m))
        elif model.qr_data is not None:
            content.add_widget(self._qr_panel(model.qr_data, model.qr_caption or "", m, wide))
        self.add_widget(content)

    def _build_blocks(self, model: ScreenModel, m: Metrics) -> list[Block]:
        blocks = [_label_block(TextLabel(line, m.font_body, color=theme.TEXT_MUTED))
                  for line in model.lines]
        measure = measurer(m.font_body)
        for index, section in enumerate(model.sections):
            heading = TextLabel(section.heading, m.font_heading, color=theme.ACCENT)
            blocks.append(Block(heading, heading.height_at, index, heading=True))
            items = number_items(section.items)
            # At least a character wide: a narrower label would wait to be drawn ("1" alone).
            number_width = max(float(m.font_body),
                               m.gap + max((measure(n) for n, _ in items if n), default=0.0))
            for label, item in items:
                # A long item (a material and its note, in English, in large type) may be
                # taller than a 7-inch page: it splits by its lines (``_row_block``).
                text = TextLabel(item, m.font_body, pos_hint={"top": 1})
                if label is None:
                    blocks.append(_label_block(text, index))
                    continue
                number = TextLabel(label, m.font_body, color=theme.ACCENT, halign="right",
                                   size_hint_x=None, width=number_width, pos_hint={"top": 1})
                blocks.append(_row_block(number, text, m.gap * 0.5,
                                         functools.partial(_fixed, number_width), index))
        return blocks

    def _qr_block(self, data: str, caption_text: str, m: Metrics) -> Block:
        image = QrImage(data, m.qr_side)
        holder = _centred(image)
        stack = vbox(m, spacing=m.gap)
        stack.add_widget(holder)
        caption = TextLabel(caption_text, m.font_body, halign="center")
        stack.add_widget(caption)

        def height_at(width: float) -> float:
            # A page of its own: the code as large as the card leaves it, at most its usual size,
            # never under half of it (a phone may not read it then).
            room = self._card.room - m.gap - caption.height_at(width)
            side = max(m.qr_side * 0.5, min(m.qr_side, room))
            image.size = (side, side)
            holder.height = side
            return side + m.gap + caption.height_at(width)

        return Block(stack, height_at)

    def _continued(self, section: int) -> Block:
        heading = self._model.sections[section].heading
        label = TextLabel(self._model.page_continued.format(heading=heading),
                          self._m.font_heading, color=theme.ACCENT)
        return Block(label, label.height_at, section, heading=True)

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
            panel.add_widget(holder)
            panel.add_widget(caption)
            panel.add_widget(Widget())  # the rest of the panel stays empty, below

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


class ConfirmBody(_PagedCardBody):
    """What is about to happen: the title, a label/value summary on a card, and the notes."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        tight = m.side_rail
        blocks = [_label_block(TextLabel(model.title, m.font_title, halign="center"))]
        # The labels' column as wide as the longest label (a label is a word or two: "办理事项"
        # split over two lines cost a 7-inch panel in large type two lines), at most 40%.
        measure = measurer(m.font_body)
        label_width = max((measure(label) + m.gap for label, _ in model.rows), default=0.0)
        names: list[TextLabel] = []
        for label, value in model.rows:
            name = TextLabel(label, m.font_body, color=theme.TEXT_MUTED, size_hint_x=None,
                             width=label_width, halign="right", pos_hint={"top": 1})
            names.append(name)
            text = TextLabel(value, m.font_body, pos_hint={"top": 1})
            blocks.append(_row_block(name, text, m.gap,
                                     lambda width: min(label_width, width * 0.4)))
        blocks += [_label_block(TextLabel(line, m.font_body, color=theme.TEXT_MUTED,
                                          halign="center")) for line in model.lines]
        sheet = self._paged_card(m, blocks, spacing=m.gap * (0.8 if tight else 1.2),
                                 padding=m.gap if tight else m.pad * 1.2,
                                 max_width=m.unit * 140)
        _card(sheet.sheet, m)

        def cap(*_: Any) -> None:
            for name in names:
                name.width = min(label_width, sheet.inner_width * 0.4)

        sheet.sheet.bind(width=cap)


class DoneBody(MessageBody):
    """An errand finished: drawn as a notice in the success tone (tick icon, green edge, words)."""


class QrBody(ScreenBody):
    """A code to scan with a phone, as large as the screen allows, and what it is for."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        content = vbox(m, spacing=m.gap * 1.2)
        texts = [TextLabel(model.title, m.font_title, halign="center")]
        if model.qr_caption:
            texts.append(TextLabel(model.qr_caption, m.font_body, halign="center"))
        texts += [TextLabel(line, m.font_body, color=theme.TEXT_MUTED, halign="center")
                  for line in model.lines]
        content.add_widget(texts[0])
        largest = m.qr_side * 1.4
        image = QrImage(model.qr_data, largest) if model.qr_data is not None else None
        holder = _centred(image) if image is not None else None
        if holder is not None:
            content.add_widget(holder)
        for label in texts[1:]:
            content.add_widget(label)
        self.add_widget(centred_scroll(content, m, max_width=m.unit * 140))

        def fit(*_: Any) -> None:
            # The code takes the height the words leave (a short screen in large type), but
            # never less than the guide's own code at half size: 15 mm on a 7-inch panel, which a
            # phone still reads for a short address (3 px a module).
            if image is None or holder is None:
                return
            words = sum(label.height for label in texts)
            room = self.height - 2 * m.pad - words - len(texts) * content.spacing
            side = max(m.qr_side * 0.5, min(largest, room))
            image.size = (side, side)
            holder.height = side

        self.bind(height=fit)
        for label in texts:
            label.bind(height=fit)


class CameraFeed(Protocol):
    """Where the scan screen's live picture comes from (the terminal's document camera)."""

    def start(self, on_frame: Callable[[Any], None]) -> None: ...

    def stop(self) -> None: ...


class ScanBody(ScreenBody):
    """Scanning a material: the camera's live picture on the left (or on top) with the last page
    taken in its corner, small, so the resident sees it is legible before going on; beside it
    what to do and what went wrong, in the screen's tone, and the buttons one under another,
    as on a camera: a footer of four long buttons would leave a 7-inch panel no picture."""

    owns_actions = True

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        self._feed: CameraFeed | None = None
        self._preview: Any = None
        wide = m.width >= m.height
        self.orientation = "horizontal" if wide else "vertical"
        tone = model.tone if model.tone in theme.TONE_COLOURS else "info"
        # A short panel beside a side rail (7 inches, large type): every line counts, and the
        # words need the width more than the picture needs the size.
        compact = m.side_rail and m.height < 600
        # Large type on a portrait panel: the switches take a second row at the top, and the
        # words and three tall buttons under the picture need what the picture gives up.
        portrait_elder = not wide and m.elder
        share = 0.4 if compact else 0.36 if portrait_elder else 0.5 if not wide else 0.55
        picture = FloatLayout(size_hint=(share, 1) if wide else (1, share))
        if model.scan_preview:
            # Imported here: Pillow's decoder and the camera package are not start-up's business.
            from terminal.ui.preview import CameraPreview  # noqa: PLC0415

            self._preview = CameraPreview(pos_hint={"x": 0, "y": 0})
            picture.add_widget(self._preview)
            waiting = TextLabel(model.scan_no_picture, m.font_small, color=theme.ON_ACCENT,
                                halign="center", size_hint_x=0.9,
                                pos_hint={"center_x": 0.5, "center_y": 0.5})
            picture.add_widget(waiting)

            def show_waiting(_preview: Any, stalled: bool) -> None:
                waiting.opacity = 1 if stalled else 0

            self._preview.bind(stalled=show_waiting)
            show_waiting(self._preview, self._preview.stalled)
        else:
            note = TextLabel(model.lines[0] if model.lines else "", m.font_body,
                             color=theme.TONE_COLOURS[tone], halign="center", size_hint_x=0.9,
                             pos_hint={"center_x": 0.5, "center_y": 0.5})
            Panel(note, theme.TONE_TINTS[tone], border=theme.TONE_COLOURS[tone],
                  radius=m.radius, border_width=m.border * 2)
            picture.add_widget(note)
        if model.scan_thumbnail:
            picture.add_widget(_thumbnail(model.scan_thumbnail, m))
        self.add_widget(picture)
        tight = m.gap * (0.3 if compact else 0.6)
        side = vbox(m, spacing=tight)
        optional: list[Widget] = []
        if not compact and not portrait_elder:
            # On a short panel, and under the picture in large type on a portrait one, the
            # material's name and what to do say it all; the general instruction would push
            # them off the screen (it is still said aloud). Elsewhere it is the first to give
            # way should the rest not fit (large type beside the side rail of a full-HD panel).
            optional.append(TextLabel(model.title, m.font_title))
            side.add_widget(optional[-1])
        if model.scan_material:
            side.add_widget(TextLabel(model.scan_material,
                                      m.font_small if compact else m.font_body, bold=True,
                                      color=theme.ACCENT))
        lines = model.lines
        if compact and tone != "info":
            # On a 7-inch panel in large type the problem (blank platen, camera fault) is what
            # must be read; the usual instruction is on the buttons too.
            lines = lines[:1]
        after_first: list[Widget] = []
        for n, line in enumerate(lines):
            # The first line carries a problem (blank platen, camera fault) in the tone's colour.
            colour = theme.TONE_COLOURS[tone] if n == 0 and tone != "info" else theme.TEXT
            label = TextLabel(line, m.font_small if compact else m.font_body, color=colour)
            side.add_widget(label)
            if n:
                after_first.append(label)
        # Then the lines after the first, from the last up (how to go on: the buttons say it).
        optional[:0] = after_first
        column = BoxLayout(orientation="vertical", spacing=tight)
        words = centred_scroll(side, m, max_width=m.width)
        column.add_widget(words)
        give_way(words, side, optional, m, m.width)
        # Two by two beside a side rail (a 7-inch panel): one under another they leave no room
        # for the words.
        buttons = GridLayout(cols=2 if m.side_rail or not wide else 1, spacing=tight,
                             size_hint_y=None)
        buttons.bind(minimum_height=buttons.setter("height"))
        for action in model.actions:
            button = TargetButton(action, m, activate, pad_x=m.gap * 0.5,
                                  font_size=m.font_small if compact else None)
            buttons.add_widget(button)
        column.add_widget(buttons)
        self.add_widget(column)

    def attach_camera(self, feed: CameraFeed) -> None:
        """Start the live picture (main thread); ``dispose`` stops it with the screen."""
        if self._preview is None:
            return
        self._feed = feed
        self._preview.start()
        feed.start(self._preview.offer)

    def dispose(self) -> None:
        if self._preview is not None:
            self._preview.stop()
        if self._feed is not None:
            self._feed.stop()
            self._feed = None


def _thumbnail(jpeg: bytes, m: Metrics) -> Widget:
    """The last page taken, in the picture's bottom-right corner, with a white edge: a quarter
    of the picture's height, enough to see that the page is whole and sharp."""
    from kivy.graphics.texture import Texture  # noqa: PLC0415
    from kivy.uix.image import Image  # noqa: PLC0415

    from devices.camera import CameraError  # noqa: PLC0415
    from devices.camera.imaging import decode  # noqa: PLC0415

    # Decoded here, not through Kivy's image loader: that asks Pillow for the extensions it
    # knows, which imports all forty of its format plugins (PIL.Image.init) for the terminal's
    # whole life. No texture cache either: Kivy's would keep every page shown, the resident's
    # pages too.
    try:
        page = decode(jpeg, draft=(max(1, m.width // 3), max(1, m.height // 2)))
    except CameraError:
        return Widget(size_hint=(0, 0))  # a page that cannot be shown is still taken
    texture = Texture.create(size=page.size, colorfmt="rgb")
    texture.flip_vertical()  # Pillow's rows run top to bottom, GL's bottom to top
    texture.blit_buffer(page.tobytes(), colorfmt="rgb", bufferfmt="ubyte")
    # The page itself is white on the dark picture: no frame needed round it.
    return Image(texture=texture, size_hint=(0.3, 0.42), fit_mode="contain",
                 pos_hint={"right": 0.98, "y": 0.02})


class FormBody(_PagedBody):
    """Fields on the left (or above), each a box to tap into; the keypad beside (or below).

    The focused field has a thick accent edge and the words of its label; an error is written
    under its field in words, so colour is never the only signal. Fields that do not fit are
    paged (上一页 / 下一页 in the footer), the focused field's page first; the keypad stays.
    """

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(model, m, activate)
        # Beside a side rail the instructions give way to the fields (elder mode speaks them).
        _header(self, model, m, lines=not m.side_rail)
        self._m = m
        # Fields beside the keypad where there is the height for three rows of keys; otherwise
        # fields above a keypad of two rows.
        wide = not m.portrait and m.height >= 3 * m.min_target_px * 2.6
        self._area = self._sheet = PagedSheet(self._pager, m, spacing=m.gap, inset=0)
        self._area.blocks = [self._field(form_field, m, activate) for form_field in model.fields]
        focused = next((n for n, f in enumerate(model.fields) if f.focused), None)
        if focused is not None:
            # The first time: the page with the field the keys type into.
            block = self._area.blocks[focused]
            self._area.first_page = lambda pages: next(
                n for n, blocks in enumerate(pages) if block in blocks)
        content = BoxLayout(orientation="horizontal" if wide else "vertical", spacing=m.gap)
        content.add_widget(self._area)
        if model.keypad:
            content.add_widget(self._keypad(model, m, activate, wide))
        self.add_widget(content)

    @staticmethod
    def _field(form_field: FieldModel, m: Metrics, activate: Activate) -> Block:
        box = vbox(m, spacing=m.gap * 0.5)
        shown = form_field.shown or " "
        label = form_field.target.label
        colon = ": " if label.isascii() else "："
        value = TargetModel(
            form_field.target.id, f"{label}{colon}{shown}", True,
            "primary" if form_field.focused else "secondary",
        )
        # Beside a side rail a field is as tall as a finger needs, no taller: room for its error.
        button = TargetButton(value, m, activate, font_size=m.font_body,
                              min_height=m.min_target_px if m.side_rail else None)
        box.add_widget(button)
        parts: list[Callable[[float], float]] = [
            lambda width: max(float(button.min_height), button.height_at(width))
        ]
        if form_field.choices:
            row = ActionRow([TargetButton(c, m, activate) for c in form_field.choices], m,
                            align="left")
            box.add_widget(row)
            parts.append(lambda width: max(m.min_target_px, row.height_at(width)))
        if form_field.error is not None:
            error = TextLabel(f"！{form_field.error}", m.font_body, color=theme.DANGER)
            box.add_widget(error)
            parts.append(error.height_at)
        return Block(box, lambda width: sum(part(width) for part in parts)
                      + box.spacing * (len(parts) - 1))

    @staticmethod
    def _keypad(model: ScreenModel, m: Metrics, activate: Activate, wide: bool) -> Widget:
        # Four keys a row, three rows (1-4, 5-8, 9 0 删除 清空); under the fields of a short
        # landscape panel (7-inch) six keys a row, two rows, leaving the height for a field.
        cols, spacing = (4 if wide or m.portrait else 6), m.gap * 0.6
        rows = -(-len(model.keypad) // cols)
        key_height = m.min_target_px if m.side_rail else m.button_height
        font = m.font_bar if cols == 6 else m.font_button  # narrow keys: see below
        keys = [TargetButton(key, m, activate, font_size=font, min_height=key_height)
                for key in model.keypad]
        if cols == 6:
            # Two rows: the digits 1-6, then 7 8 9 0 with 删除 / 清空 a third wider (and the bar's
            # type), so that "Delete" stays whole on the narrow keys of a 7-inch panel.
            pad = BoxLayout(orientation="vertical", spacing=spacing, size_hint_y=None,
                            height=2 * key_height + spacing)
            for row_keys in (keys[:6], keys[6:]):
                row = BoxLayout(orientation="horizontal", spacing=spacing)
                for key in row_keys:
                    key.size_hint_x = 1.0 if key.source_text.isdigit() else 1.3
                    row.add_widget(key)
                pad.add_widget(row)
            return pad
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
    "scan": ScanBody,
}


def build_body(model: ScreenModel, m: Metrics, activate: Activate) -> ScreenBody:
    return BODIES[model.kind](model, m, activate)
