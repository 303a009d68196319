"""What a resident sees on a View, in one language: the model the UI draws and the API reports.

Pure: no Kivy, no clock, no I/O. The Kivy screens render a ``ScreenModel`` and the automation API
serialises the same model with ``describe``, so tests read exactly the strings on the glass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flows.steps import Action, Attract, Guide, Menu, Message, Progress, Text, View, t

LANG_TOGGLE = "lang.toggle"

Bounds = tuple[int, int, int, int]  # x, y, width, height in window pixels, origin top-left

_KINDS: dict[type, str] = {
    Attract: "attract",
    Message: "message",
    Progress: "progress",
    Menu: "menu",
    Guide: "guide",
}


class TextSource(Protocol):
    """Anything that renders a ``Text`` in a language (``terminal.i18n.Translator``)."""

    def text(self, t: Text, lang: str) -> str: ...


@dataclass(frozen=True)
class TargetModel:
    """A touch target as drawn: its stable id, its label in the display language."""

    id: str
    label: str
    enabled: bool
    style: str  # "primary" | "secondary" | "danger"


@dataclass(frozen=True)
class SectionModel:
    heading: str
    items: tuple[str, ...]


@dataclass(frozen=True)
class ScreenModel:
    """One screen, translated: what the resident sees, in display order."""

    screen: str
    kind: str  # "attract" | "message" | "progress" | "menu" | "guide"
    language: str
    brand: str
    title: str
    lines: tuple[str, ...]
    options: tuple[TargetModel, ...]
    sections: tuple[SectionModel, ...]
    qr_data: str | None
    qr_caption: str | None
    actions: tuple[TargetModel, ...]
    toggle: TargetModel
    tone: str | None
    countdown_s: int | None
    countdown: str | None

    @property
    def texts(self) -> tuple[str, ...]:
        """Every visible non-button text in display order (button labels are in ``targets``)."""
        # The countdown sits in the top bar, between the service name and the language switch.
        out: list[str] = [self.brand]
        if self.countdown is not None:
            out.append(self.countdown)
        out += [self.title, *self.lines]
        for section in self.sections:
            out.append(section.heading)
            out.extend(section.items)
        if self.qr_caption is not None:
            out.append(self.qr_caption)
        return tuple(out)

    @property
    def targets(self) -> tuple[TargetModel, ...]:
        """Options, then footer actions, then the language switch (always present, always last)."""
        return (*self.options, *self.actions, self.toggle)


def _target(action: Action, tr: TextSource, lang: str) -> TargetModel:
    return TargetModel(action.id, tr.text(action.label, lang), action.enabled, str(action.style))


def present(view: View, tr: TextSource, lang: str) -> ScreenModel:
    """Translate ``view`` into ``lang``."""
    screen = view.screen
    options = screen.options if isinstance(screen, Menu) else ()
    sections: tuple[SectionModel, ...] = ()
    qr_data: str | None = None
    qr_caption: str | None = None
    if isinstance(screen, Guide):
        sections = tuple(
            SectionModel(tr.text(s.heading, lang), tuple(tr.text(i, lang) for i in s.items))
            for s in screen.sections
        )
        qr_data = screen.qr_data
        if qr_data is not None:
            # A QR without words is a puzzle to many residents; say what it is for.
            qr_caption = tr.text(screen.qr_caption or t("ui.qr_hint"), lang)
    countdown = (
        None
        if view.countdown_s is None
        else tr.text(t("ui.countdown", seconds=str(view.countdown_s)), lang)
    )
    return ScreenModel(
        screen=screen.screen,
        kind=_KINDS[type(screen)],
        language=lang,
        brand=tr.text(t("ui.brand"), lang),
        title=tr.text(screen.title, lang),
        lines=tuple(tr.text(line, lang) for line in screen.lines),
        options=tuple(_target(o, tr, lang) for o in options),
        sections=sections,
        qr_data=qr_data,
        qr_caption=qr_caption,
        actions=tuple(_target(a, tr, lang) for a in screen.actions),
        toggle=TargetModel(LANG_TOGGLE, tr.text(t("ui.language.switch"), lang), True, "secondary"),
        tone=str(screen.tone) if isinstance(screen, Message) else None,
        countdown_s=view.countdown_s,
        countdown=countdown,
    )


def describe_model(
    model: ScreenModel, bounds: Mapping[str, Bounds | None] | None = None
) -> dict[str, Any]:
    """The automation API's JSON for a model; ``bounds`` adds each target's on-screen box."""
    targets: list[dict[str, Any]] = []
    for target in model.targets:
        entry: dict[str, Any] = {"id": target.id, "label": target.label, "enabled": target.enabled}
        if bounds is not None:
            box = bounds.get(target.id)
            # None: the target exists but is scrolled out of sight right now.
            entry["bounds"] = list(box) if box is not None else None
        targets.append(entry)
    return {
        "screen": model.screen,
        "kind": model.kind,
        "title": model.title,
        "texts": list(model.texts),
        "targets": targets,
        "language": model.language,
        "countdown_s": model.countdown_s,
        "tone": model.tone,
    }


def describe(
    view: View, tr: TextSource, lang: str, bounds: Mapping[str, Bounds | None] | None = None
) -> dict[str, Any]:
    """``GET /screen``: what the resident sees and can touch on ``view`` in ``lang``."""
    return describe_model(present(view, tr, lang), bounds)
