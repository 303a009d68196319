"""The frame around every screen: top bar (service name, countdown, the help, read-aloud,
large-text and language switches), the help strip while a help call is open, and the footer with
the screen's actions (and "more time" while the countdown runs). On a short landscape panel in
large type the switches and countdown stand in a side rail."""

from __future__ import annotations

import math
from typing import Any

from kivy.graphics import Color, Rectangle
from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.widget import Widget

from terminal.presentation import ScreenModel
from terminal.ui import theme
from terminal.ui.screens import ScreenBody, build_body
from terminal.ui.theme import Metrics
from terminal.ui.widgets import ActionRow, Activate, Pill, TargetButton, TextLabel

# Screen kinds whose body may page its content: beside a side rail, their page buttons give
# way to the countdown while it runs.
PAGING_KINDS = frozenset({"menu", "guide", "form", "message", "done", "confirm"})


class Frame(BoxLayout):  # type: ignore[misc]
    """Top bar, the screen's body, and the footer with its actions; rebuilt on every new screen."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        self._countdown: Pill | TextLabel = Pill(m.font_small, m, theme.ACCENT_PRESSED,
                                                  theme.ON_ACCENT)
        self.body: ScreenBody = build_body(model, m, activate)
        if not m.side_rail:
            super().__init__(orientation="vertical")
            self.add_widget(self._top_bar(model, m, activate))
            if model.help_lines:
                self.add_widget(self._help_strip(model, m, activate))
            self.add_widget(self.body)
            footer, lead = self._footer(model, m, activate)
            self.add_widget(footer)
            self.body.attach_pager(lead, self.refit_footer)
        else:
            # A top bar of 15 mm switches over a footer of 15 mm buttons left a 7-inch panel
            # 60 mm for the screen itself, and a paged screen's page buttons took a second row
            # of footer. Beside it, the switches, the page buttons and the countdown cost
            # width, of which a landscape panel has more than it needs.
            super().__init__(orientation="horizontal")
            column = BoxLayout(orientation="vertical")
            if model.help_lines:
                column.add_widget(self._help_strip(model, m, activate))
            column.add_widget(self.body)
            footer, _ = self._footer(model, m, activate)
            column.add_widget(footer)
            self.add_widget(column)
            rail, pages, timer = self._rail(model, m, activate)
            self.add_widget(rail)
            # The page buttons and the countdown do not both fit a rail in large type: the
            # countdown takes the page buttons' place while it runs (its last minute); any touch
            # ("more time" too) stops it and brings them back.
            if model.countdown is None or model.kind not in PAGING_KINDS:
                self.body.attach_pager(pages, lambda: None)
            if model.countdown is not None:
                self._timer(model, m, activate, timer)
        self.set_countdown(model.countdown)

    @staticmethod
    def _switches(model: ScreenModel, m: Metrics, activate: Activate,
                  *, with_help: bool = True) -> list[TargetButton]:
        """The switches (help, repeat, large text, language): on every screen, as wide as their
        words."""
        switches = [
            TargetButton(
                switch,
                m,
                activate,
                font_size=m.font_bar,
                min_height=m.switch_height,
                min_width=m.switch_min_width,
                pad_x=m.gap,
                style="inverse",
                size_hint_x=None,
                pos_hint={"center_y": 0.5},
            )
            for switch in model.switches
            if with_help or switch is not model.help_button
        ]
        for button in switches:
            button.width = button.natural_width()
        return switches

    def _rail(self, model: ScreenModel, m: Metrics,
              activate: Activate) -> tuple[BoxLayout, BoxLayout, BoxLayout]:
        """The switches one under another down the right edge, and under them two slots: a
        paged screen's page buttons, the countdown. The service name is left out (the screen's
        own title says more). In large type four switches and the countdown are taller than a
        7-inch panel: the help button then stands at the footer's left (``_footer``)."""
        switches = self._switches(model, m, activate, with_help=_help_in_rail(m, model))
        inner = max([m.switch_min_width, *(b.width for b in switches)])
        rail = BoxLayout(orientation="vertical", size_hint_x=None, width=inner + 2 * m.gap,
                         padding=(m.gap, m.gap * 0.5), spacing=m.gap * 0.4)
        for button in switches:
            button.width = inner
            button.size_hint_y = None
            rail.add_widget(button)
        slots = []
        for _ in range(2):
            slot = BoxLayout(orientation="vertical", size_hint_y=None, height=0,
                             spacing=rail.spacing)
            rail.add_widget(slot)
            slots.append(slot)
        rail.add_widget(Widget())  # the rest of the rail stays empty, below
        _fill(rail, theme.ACCENT)
        return rail, slots[0], slots[1]

    def _timer(self, model: ScreenModel, m: Metrics, activate: Activate,
               slot: BoxLayout) -> None:
        """The countdown, white on the rail's blue and wrapped to its width ("30 秒后 / 自动
        退出"), and "more time" under it."""
        self._countdown = TextLabel("", m.font_small, color=theme.ON_ACCENT, halign="center")
        slot.add_widget(self._countdown)
        if model.more_time is not None:
            slot.add_widget(TargetButton(model.more_time, m, activate, font_size=m.font_bar,
                                         style="inverse", pad_x=m.gap * 0.5))

        def fit(*_: Any) -> None:
            slot.height = sum(child.height for child in slot.children) + slot.spacing * (
                len(slot.children) - 1)

        for child in slot.children:
            child.bind(height=fit)
        fit()

    def _top_bar(self, model: ScreenModel, m: Metrics, activate: Activate) -> BoxLayout:
        """Service name, countdown and switches in one deep-blue row; where large type leaves
        the countdown no room beside the switches, it drops to a second row under them."""
        row = BoxLayout(
            orientation="horizontal",
            size_hint_y=None,
            height=m.bar_height,
            padding=(m.pad, 0),
            spacing=m.gap,
        )
        brand = TextLabel(
            model.brand, m.font_bar, color=theme.ON_ACCENT, pos_hint={"center_y": 0.5}
        )
        row.add_widget(brand)
        self._countdown.pos_hint = {"center_y": 0.5}
        # The switches are always there, top right: in large type on a narrow screen they need
        # all the room they get.
        switches = self._switches(model, m, activate)
        # The countdown only counts down: its first text is the widest it will be.
        countdown_width = self._countdown.width_for(model.countdown or "")
        switches_width = sum(b.width for b in switches) + m.gap * len(switches)
        one_row = countdown_width + switches_width + 2 * m.pad <= m.width
        # Large type on a portrait panel: four switches are wider than the screen. Help stays
        # top right, where every screen has it; the others go to the second row.
        lower: list[TargetButton] = []
        if switches_width + 2 * m.pad > m.width:
            help_id = model.help_button.id
            lower = [b for b in switches if b.target_id != help_id]
            switches = [b for b in switches if b.target_id == help_id]
        if one_row:
            row.add_widget(self._countdown)
        for button in switches:
            row.add_widget(button)

        def show_brand(*_: Any) -> None:
            # The service name only takes what the countdown and the switches leave. Squeezed
            # into a tower of lines taller than the bar, or narrower than a character, which
            # a label never draws (large type on a 7-inch or portrait screen), it is left out
            # rather than clipped: the screen's own title says more.
            fits = brand.height <= row.height and brand.width >= float(brand.font_size)
            brand.opacity = 1 if fits else 0

        brand.bind(height=show_brand, width=show_brand)
        row.bind(height=show_brand)
        show_brand()
        if one_row:
            _fill(row, theme.ACCENT)
            return row
        bar = BoxLayout(orientation="vertical", size_hint_y=None)
        rows: list[BoxLayout] = [row]
        if lower:
            # Under the help switch, right-aligned like the row above.
            switch_row = BoxLayout(orientation="horizontal", size_hint_y=None, spacing=m.gap,
                                   padding=(m.pad, 0, m.pad, m.gap * 0.4),
                                   height=max(b.height for b in lower) + m.gap * 0.4)
            switch_row.add_widget(Widget())
            for button in lower:
                switch_row.add_widget(button)
            rows.append(switch_row)
        second = AnchorLayout(anchor_x="right", anchor_y="top", size_hint_y=None,
                              padding=(m.pad, 0, m.pad, m.gap * 0.6))
        second.add_widget(self._countdown)
        rows.append(second)
        # A countdown that comes or goes rebuilds the screen, so a bar without one has no row
        # for it (an empty one was a band of blue as tall as a switch).
        counting = model.countdown is not None

        def fit(*_: Any) -> None:
            second.height = self._countdown.height + m.gap * 0.6 if counting else 0
            bar.height = sum(r.height for r in rows)

        self._countdown.bind(height=fit)
        fit()
        for part in rows:
            bar.add_widget(part)
        _fill(bar, theme.ACCENT)
        return bar

    @staticmethod
    def _help_strip(model: ScreenModel, m: Metrics, activate: Activate) -> BoxLayout:
        """A help call's state across the top of the screen, in its tone, with its button (cancel
        the call, or close the hotline's note); the screen below stays as it was."""
        tone = model.help_tone if model.help_tone in theme.TONE_COLOURS else "info"
        strip = BoxLayout(orientation="horizontal", size_hint_y=None, spacing=m.gap,
                          padding=(m.pad, m.gap * 0.5))
        words = BoxLayout(orientation="vertical", size_hint_y=None)
        title, *rest = model.help_lines
        labels = [TextLabel(title, m.font_small, color=theme.TONE_COLOURS[tone], bold=True)]
        labels += [TextLabel(line, m.font_small) for line in rest]
        for label in labels:
            words.add_widget(label)
        strip.add_widget(words)
        if model.help_cancel is not None:
            button = TargetButton(model.help_cancel, m, activate, font_size=m.font_small,
                                  min_height=m.switch_height, size_hint_x=None,
                                  pos_hint={"center_y": 0.5})
            button.width = button.natural_width()
            strip.add_widget(button)

        def fit(*_: Any) -> None:
            words.height = sum(label.height for label in labels)
            button_height = m.switch_height if model.help_cancel is not None else 0.0
            strip.height = max(words.height, button_height) + m.gap

        for label in labels:
            label.bind(height=fit)
        fit()
        _fill(strip, theme.TONE_TINTS[tone], top_rule=theme.TONE_COLOURS[tone],
              rule_width=m.border)
        return strip

    def _footer(self, model: ScreenModel, m: Metrics,
                activate: Activate) -> tuple[BoxLayout, BoxLayout]:
        """The footer, and its slot left of the actions: a paged screen's page buttons, or
        beside a side rail the countdown and "more time"."""
        extra = () if model.more_time is None or m.side_rail else (model.more_time,)
        actions = () if self.body.owns_actions else model.actions
        buttons = [TargetButton(a, m, activate) for a in (*actions, *extra)]
        row = ActionRow(buttons, m, align="center" if model.kind == "attract" else "right")
        # Beside a side rail (a 7-inch panel in large type) every pixel counts.
        side, edge = (m.gap, m.gap * 0.5) if m.side_rail else (m.pad, m.gap)
        footer = BoxLayout(size_hint_y=None, padding=(side, edge, side, edge), spacing=m.gap)
        # Left of the actions: a paged menu's 上一页 / 第1/2页 / 下一页 (the body fills it); on a
        # row of its own above them when both do not fit side by side.
        pager = BoxLayout(orientation="horizontal", size_hint=(None, None), width=0, height=0,
                          spacing=m.gap, pos_hint={"center_y": 0.5})  # level with the actions

        def fit(*_: Any) -> None:
            tallest = max([0.0, *(child.height for child in pager.children)])
            pager.height = tallest
            room = footer.width - 2 * side - m.gap
            # Side by side unless that makes the footer taller: beside the help button on a
            # 7-inch panel in large type, "Print checklist" on two lines costs a line, and a
            # row of its own cost a button's height, which the guide's pages then lacked (31
            # pages of one material each in English).
            beside = max(tallest, row.height_at(room - pager.width)) if room > pager.width \
                else math.inf
            stacked = pager.width > 0 and tallest + m.gap + row.height_at(room + m.gap) < beside
            footer.orientation = "vertical" if stacked else "horizontal"
            action_height = row.height if buttons else 0.0
            content = tallest + m.gap + action_height if stacked else max(action_height, tallest)
            footer.height = content + 2 * edge if content else m.gap

        row.bind(height=fit)
        pager.bind(children=fit, width=fit)
        footer.bind(width=fit)
        if m.side_rail and not _help_in_rail(m, model):
            # The rail has no room for it; the page buttons that share this slot elsewhere are
            # in the rail here.
            help_button = TargetButton(model.help_button, m, activate, size_hint_x=None)
            help_button.width = help_button.natural_width()
            pager.add_widget(help_button)
            pager.width = help_button.width
        fit()
        footer.add_widget(pager)
        footer.add_widget(row)
        self.refit_footer = fit
        if buttons or model.kind == "menu" or m.side_rail:
            _fill(footer, theme.SURFACE, top_rule=theme.BORDER, rule_width=m.border)
        return footer, pager

    def set_countdown(self, text: str | None) -> None:
        """Show or hide the idle countdown without rebuilding the screen (it ticks every second)."""
        if isinstance(self._countdown, TextLabel):
            self._countdown.set_text(text or "")
        else:
            self._countdown.text = text or ""
        self._countdown.opacity = 1 if text else 0

    def dispose(self) -> None:
        self.body.dispose()


def _help_in_rail(m: Metrics, model: ScreenModel) -> bool:
    """Whether the side rail holds the help switch: four switches, and under them the countdown
    and "more time" or a paged screen's page buttons (about four switches' height) where they
    may show, within the screen's height. Else the help button stands at the footer's left."""
    # A paged screen's page buttons share the rail with the countdown: count either as two.
    below = model.countdown is not None or model.kind in PAGING_KINDS
    return (8 if below else 4) * (m.switch_height + m.gap) + m.gap <= m.height


def _fill(
    widget: BoxLayout, colour: theme.Rgba, top_rule: theme.Rgba | None = None, rule_width: float = 1
) -> None:
    """A flat background (and optional rule along the top edge) following the widget's box."""
    with widget.canvas.before:
        Color(*colour)
        back = Rectangle()
        if top_rule is not None:
            Color(*top_rule)
        rule = Rectangle(size=(0, 0))

    def follow(*_: Any) -> None:
        # y + height, not .top: Kivy's cached ``top`` may not be updated yet inside this callback.
        back.pos, back.size = widget.pos, widget.size
        if top_rule is not None:
            rule.pos = (widget.x, widget.y + widget.height - rule_width)
            rule.size = (widget.width, rule_width)

    widget.bind(pos=follow, size=follow)
    follow()
