"""What a resident sees on a View, in one language: the model the UI draws and the API reports.

Pure: no Kivy, no clock, no I/O. The Kivy screens render a ``ScreenModel`` and the automation API
serialises the same model with ``describe``, so tests read exactly the strings on the glass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flows.engine import MODE_TOGGLE
from flows.help_call import HELP_CALL, HELP_CANCEL
from flows.steps import (
    Action,
    Attract,
    Confirm,
    Done,
    Form,
    Guide,
    Menu,
    Message,
    Progress,
    Scan,
    ShowQr,
    Text,
    View,
    form_targets,
    t,
)

LANG_TOGGLE = "lang.toggle"
SPEAK = "speech.repeat"  # read this screen aloud (again), in any mode
MORE_TIME = "more_time"  # shown with the countdown: any touch restarts the timer (WCAG 2.2.1)

Bounds = tuple[int, int, int, int]  # x, y, width, height in window pixels, origin top-left

_KINDS: dict[type, str] = {
    Attract: "attract",
    Message: "message",
    Progress: "progress",
    Menu: "menu",
    Guide: "guide",
    Confirm: "confirm",
    Done: "done",
    ShowQr: "qr",
    Form: "form",
    Scan: "scan",
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
class FieldModel:
    """A form field as drawn: the field itself is a target (tap to type into it)."""

    target: TargetModel
    kind: str  # "digits" | "date" | "choice"
    shown: str  # the value as shown (masked where personal)
    error: str | None
    focused: bool
    choices: tuple[TargetModel, ...]


@dataclass(frozen=True)
class ScreenModel:
    """One screen, translated: what the resident sees, in display order."""

    screen: str
    kind: str  # "attract" | "message" | "progress" | "menu" | "guide" | "confirm" | "done" | "qr"
    language: str
    brand: str
    title: str
    lines: tuple[str, ...]
    options: tuple[TargetModel, ...]
    sections: tuple[SectionModel, ...]
    rows: tuple[tuple[str, str], ...]  # a confirm screen's label/value summary
    fields: tuple[FieldModel, ...]  # a form's fields
    keypad: tuple[TargetModel, ...]  # a form's keys while a keyed field has the focus
    qr_data: str | None
    qr_caption: str | None
    actions: tuple[TargetModel, ...]
    toggle: TargetModel
    mode_toggle: TargetModel
    speak: TargetModel
    tone: str | None
    countdown_s: int | None
    countdown: str | None
    more_time: TargetModel | None
    elder: bool
    # 上一页 / 下一页, "第{page}/{pages}页" and "{heading}（续）": for a menu or a guide the UI
    # pages because it cannot show all of it at once
    page_previous: str
    page_next: str
    page_of: str
    page_continued: str
    notice: tuple[str, str] | None  # the attract screen's public notice: title, body
    notice_urgent: bool
    speech: str  # what voice guidance says: title and instructions, nothing personal
    # 呼叫帮助 on every screen, and while a call is open the strip saying so, with its button
    help_button: TargetModel
    help_lines: tuple[str, ...] = ()
    help_cancel: TargetModel | None = None
    help_tone: str | None = None
    # A scan screen: the material being scanned, pages taken, the last page's thumbnail (JPEG,
    # never in the automation API: it is the resident's document), and whether to show the live
    # preview (False: the camera is down, the lines say so).
    scan_material: str | None = None
    scan_pages: int = 0
    scan_thumbnail: bytes | None = field(default=None, repr=False)
    scan_preview: bool = False
    scan_no_picture: str = ""  # said over the live picture while no frame arrives

    @property
    def texts(self) -> tuple[str, ...]:
        """Every visible non-button text in display order (button labels are in ``targets``)."""
        # The countdown sits in the top bar, between the service name and the language switch.
        out: list[str] = [self.brand]
        if self.countdown is not None:
            out.append(self.countdown)
        out += [*self.help_lines, self.title]
        if self.scan_material is not None:
            out.append(self.scan_material)
        out += list(self.lines)
        for label, value in self.rows:
            out += [label, value]
        if self.notice is not None:
            out += list(self.notice)
        for form_field in self.fields:
            out += [form_field.target.label, form_field.shown]
            if form_field.error is not None:
                out.append(form_field.error)
        for section in self.sections:
            out.append(section.heading)
            out.extend(section.items)
        if self.qr_caption is not None:
            out.append(self.qr_caption)
        return tuple(out)

    @property
    def switches(self) -> tuple[TargetModel, ...]:
        """The top bar's switches: call for help, read aloud, large text (长辈模式), then the
        language."""
        return (self.help_button, self.speak, self.mode_toggle, self.toggle)

    @property
    def targets(self) -> tuple[TargetModel, ...]:
        """Options, footer actions, "more time" while the countdown shows, the help strip's
        button, then the switches."""
        extra: tuple[TargetModel, ...] = () if self.more_time is None else (self.more_time,)
        if self.help_cancel is not None:
            extra += (self.help_cancel,)
        form: list[TargetModel] = []
        for form_field in self.fields:
            form += [form_field.target, *form_field.choices]
        return (*self.options, *form, *self.keypad, *self.actions, *extra, *self.switches)


def _target(action: Action, tr: TextSource, lang: str) -> TargetModel:
    return TargetModel(action.id, tr.text(action.label, lang), action.enabled, str(action.style))


def _speakable(text: Text) -> bool:
    """Only texts built from translations alone are spoken: any plain parameter may be a value
    about the resident (a masked name, an ID number, a case number), never said aloud in public."""
    return all(isinstance(value, Text) and _speakable(value) for value in text.params.values())


def speech_for(view: View, tr: TextSource, lang: str) -> str:
    """The title and the instructions of ``view`` as voice guidance says them."""
    screen = view.screen
    # A scan screen says which material to place, between what to do and what went wrong.
    material = (screen.material,) if isinstance(screen, Scan) else ()
    parts = [screen.title, *material, *screen.lines]
    return "\n".join(tr.text(text, lang) for text in parts if _speakable(text))


def _notice(screen: object, tr: TextSource, lang: str) -> tuple[str, str] | None:
    if not isinstance(screen, Attract) or screen.notice is None:
        return None
    notice = screen.notice
    # Urgency said in words, not by colour alone: 【紧急】系统维护通知.
    title = t("ui.notice.urgent", title=notice.title) if notice.urgent else notice.title
    return tr.text(title, lang), tr.text(notice.body, lang)


def present(view: View, tr: TextSource, lang: str) -> ScreenModel:
    """Translate ``view`` into ``lang``."""
    screen = view.screen
    options = screen.options if isinstance(screen, Menu) else ()
    sections: tuple[SectionModel, ...] = ()
    qr_data: str | None = None
    qr_caption: str | None = None
    rows: tuple[tuple[str, str], ...] = ()
    fields: tuple[FieldModel, ...] = ()
    keypad: tuple[TargetModel, ...] = ()
    if isinstance(screen, Form):
        fields = tuple(
            FieldModel(
                target=TargetModel(f"field.{f.id}", tr.text(f.label, lang), True, "secondary"),
                kind=str(f.kind),
                shown=f.shown,
                error=None if f.error is None else tr.text(f.error, lang),
                focused=f.id == screen.focus,
                choices=tuple(_target(c, tr, lang) for c in f.choices),
            )
            for f in screen.fields
        )
        keypad = tuple(
            _target(a, tr, lang) for a in form_targets(screen) if a.id.startswith("key.")
        )
    if isinstance(screen, Confirm):
        rows = tuple(
            (tr.text(row.label, lang),
             row.value if isinstance(row.value, str) else tr.text(row.value, lang))
            for row in screen.rows
        )
    if isinstance(screen, ShowQr):
        qr_data = screen.qr_data
        qr_caption = tr.text(screen.qr_caption, lang)
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
        rows=rows,
        fields=fields,
        keypad=keypad,
        qr_data=qr_data,
        qr_caption=qr_caption,
        actions=tuple(_target(a, tr, lang) for a in screen.actions),
        toggle=TargetModel(LANG_TOGGLE, tr.text(t("ui.language.switch"), lang), True, "secondary"),
        speak=TargetModel(
            SPEAK, tr.text(t("ui.speech.repeat" if view.elder else "ui.speech.read"), lang),
            True, "secondary",
        ),
        mode_toggle=TargetModel(
            MODE_TOGGLE,
            tr.text(t("ui.mode.normal" if view.elder else "ui.mode.elder"), lang),
            True,
            "secondary",
        ),
        scan_material=tr.text(screen.material, lang) if isinstance(screen, Scan) else None,
        scan_pages=screen.pages if isinstance(screen, Scan) else 0,
        scan_thumbnail=screen.thumbnail if isinstance(screen, Scan) else None,
        scan_preview=screen.preview if isinstance(screen, Scan) else False,
        scan_no_picture=tr.text(t("ui.scan.no_picture"), lang) if isinstance(screen, Scan)
        else "",
        tone=str(screen.tone) if isinstance(screen, Message | Scan) else (
            "success" if isinstance(screen, Done) else None
        ),
        countdown_s=view.countdown_s,
        countdown=countdown,
        more_time=(
            None
            if view.countdown_s is None
            else TargetModel(MORE_TIME, tr.text(t("ui.more_time"), lang), True, "primary")
        ),
        elder=view.elder,
        notice=_notice(screen, tr, lang),
        notice_urgent=isinstance(screen, Attract) and screen.notice is not None
        and screen.notice.urgent,
        page_previous=tr.text(t("ui.page.previous"), lang),
        page_next=tr.text(t("ui.page.next"), lang),
        page_of=tr.text(t("ui.page.of", page="{page}", pages="{pages}"), lang),
        page_continued=tr.text(t("ui.page.continued", heading="{heading}"), lang),
        speech=speech_for(view, tr, lang),
        help_button=TargetModel(HELP_CALL, tr.text(t("ui.help.call"), lang), True, "secondary"),
        help_lines=() if view.help is None else tuple(tr.text(x, lang) for x in view.help.lines),
        help_cancel=None if view.help is None else TargetModel(
            HELP_CANCEL, tr.text(view.help.cancel, lang), True, "secondary"),
        help_tone=None if view.help is None else str(view.help.tone),
    )


def describe_model(
    model: ScreenModel,
    bounds: Mapping[str, Bounds | None] | None = None,
    extra: tuple[TargetModel, ...] = (),
    spoken: str | None = None,
) -> dict[str, Any]:
    """The automation API's JSON for a model; ``bounds`` adds each target's on-screen box;
    ``extra`` are the UI's own targets (page buttons of a menu too long for the screen);
    ``spoken`` is what voice guidance said for this screen (None: nothing)."""
    targets: list[dict[str, Any]] = []
    for target in (*model.targets, *extra):
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
        "mode": "elder" if model.elder else "normal",
        "spoken": spoken,
        # A scan screen says how many pages are taken and whether one is shown, never the page.
        **({"scan": {"pages": model.scan_pages, "thumbnail": model.scan_thumbnail is not None,
                     "preview": model.scan_preview}} if model.kind == "scan" else {}),
    }


def describe(
    view: View, tr: TextSource, lang: str, bounds: Mapping[str, Bounds | None] | None = None
) -> dict[str, Any]:
    """``GET /screen``: what the resident sees and can touch on ``view`` in ``lang``."""
    return describe_model(present(view, tr, lang), bounds)
