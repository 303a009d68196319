"""The frame around every screen: top bar (service name, countdown, language switch) and footer."""

from __future__ import annotations

from typing import Any

from kivy.graphics import Color, Rectangle
from kivy.uix.boxlayout import BoxLayout

from terminal.presentation import ScreenModel
from terminal.ui import theme
from terminal.ui.screens import ScreenBody, build_body
from terminal.ui.theme import Metrics
from terminal.ui.widgets import ActionRow, Activate, Pill, TargetButton, TextLabel


class Frame(BoxLayout):  # type: ignore[misc]
    """Top bar, the screen's body, and the footer with its actions; rebuilt on every new screen."""

    def __init__(self, model: ScreenModel, m: Metrics, activate: Activate) -> None:
        super().__init__(orientation="vertical")
        self.add_widget(self._top_bar(model, m, activate))
        self.body: ScreenBody = build_body(model, m, activate)
        self.add_widget(self.body)
        self.add_widget(self._footer(model, m, activate))
        self.set_countdown(model.countdown)

    def _top_bar(self, model: ScreenModel, m: Metrics, activate: Activate) -> BoxLayout:
        bar = BoxLayout(
            orientation="horizontal",
            size_hint_y=None,
            height=m.bar_height,
            padding=(m.pad, 0),
            spacing=m.gap,
        )
        _fill(bar, theme.ACCENT)
        bar.add_widget(
            TextLabel(
                model.brand,
                m.font_small * 1.1,
                color=theme.ON_ACCENT,
                pos_hint={"center_y": 0.5},
            )
        )
        self._countdown = Pill(m.font_small, m, theme.ACCENT_PRESSED, theme.ON_ACCENT)
        self._countdown.pos_hint = {"center_y": 0.5}
        bar.add_widget(self._countdown)
        toggle = TargetButton(
            model.toggle,
            m,
            activate,
            font_size=m.font_small * 1.1,
            min_height=max(float(theme.MIN_TOUCH_PX), m.bar_height * 0.74),
            style="inverse",
            size_hint_x=None,
            pos_hint={"center_y": 0.5},
        )
        toggle.width = toggle.natural_width()
        bar.add_widget(toggle)
        return bar

    def _footer(self, model: ScreenModel, m: Metrics, activate: Activate) -> BoxLayout:
        buttons = [TargetButton(a, m, activate) for a in model.actions]
        row = ActionRow(buttons, m, align="center" if model.kind == "attract" else "right")
        footer = BoxLayout(size_hint_y=None, padding=(m.pad, m.gap, m.pad, m.gap))

        def fit(*_: Any) -> None:
            footer.height = row.height + 2 * m.gap if buttons else m.gap

        row.bind(height=fit)
        fit()
        footer.add_widget(row)
        if buttons:
            _fill(footer, theme.SURFACE, top_rule=theme.BORDER, rule_width=m.border)
        return footer

    def set_countdown(self, text: str | None) -> None:
        """Show or hide the idle countdown without rebuilding the screen (it ticks every second)."""
        self._countdown.text = text or ""
        self._countdown.opacity = 1 if text else 0

    def dispose(self) -> None:
        self.body.dispose()


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
