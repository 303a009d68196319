"""What a flow step shows and asks for: typed screens, input events and requested effects.

A flow never touches a device or the network. It returns a ``Transition``: the screen to show now
and the effects it wants performed. The effect runner performs them and feeds each outcome back as
an ``EffectDone`` event. The UI renders screens generically, one widget class per screen kind, and
the automation API serialises the very same objects, so tests see exactly what a resident sees.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts.rating import RatingLevel
from devices.base import CardHolder, DeviceState, Receipt
from flows.event_names import EventType
from flows.hub import CaseAccepted, ReportFiled, ScannedPage
from flows.hub_queries import HubQuery, Lodgeable
from flows.maintenance_report import MaintenanceTask

# --- text ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Text:
    """A translation key and its parameters; the UI looks the key up in the display language.

    Parameters are plain strings shown as they are (already masked where personal) or nested
    ``Text`` values translated in turn.
    """

    key: str
    params: Mapping[str, str | Text] = field(default_factory=dict)


def t(key: str, **params: str | Text) -> Text:
    """Shorthand: ``t("identity.name", name="张*")``."""
    return Text(key, params)


# --- screens (step results) ---------------------------------------------------------------------


class ActionStyle(enum.StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"
    DANGER = "danger"


@dataclass(frozen=True)
class Action:
    """Something the resident can touch; ``id`` is stable and is what a tap names."""

    id: str
    label: Text
    enabled: bool = True
    style: ActionStyle = ActionStyle.SECONDARY


class Tone(enum.StrEnum):
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class PublicNotice:
    """A public notice (政务公开) as the attract screen shows it, under the call to action."""

    title: Text
    body: Text
    urgent: bool = False


@dataclass(frozen=True)
class Attract:
    """The idle screen: invites a resident to insert a card or browse the guides, and rotates the
    public notices in force below that. No session exists behind it."""

    screen: str
    title: Text
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    idle_timeout_s: int | None = None
    notice: PublicNotice | None = None


@dataclass(frozen=True)
class Message:
    """Text and a few buttons: the identity shown, 'take your card', thanks, or an error."""

    screen: str
    title: Text
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    tone: Tone = Tone.INFO
    idle_timeout_s: int | None = 60


@dataclass(frozen=True)
class Progress:
    """Work under way (reading the card, asking the hub, printing); nothing to touch."""

    screen: str
    title: Text
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    idle_timeout_s: int | None = None


@dataclass(frozen=True)
class Menu:
    """A choice among ``options`` (errands, rating levels), plus navigation ``actions``."""

    screen: str
    title: Text
    options: tuple[Action, ...]
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    idle_timeout_s: int | None = 60


@dataclass(frozen=True)
class GuideSection:
    heading: Text
    items: tuple[Text, ...]


@dataclass(frozen=True)
class Guide:
    """A service guide (办事指南): facts, every material listed at once, and a QR code."""

    screen: str
    title: Text
    sections: tuple[GuideSection, ...]
    qr_data: str | None = None
    qr_caption: Text | None = None
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    idle_timeout_s: int | None = 120


@dataclass(frozen=True)
class SummaryRow:
    """One label/value line of a confirm screen; ``value`` is already masked where personal."""

    label: Text
    value: str | Text


@dataclass(frozen=True)
class Confirm:
    """What the resident is about to do, as label/value rows, and the buttons to go on or back."""

    screen: str
    title: Text
    rows: tuple[SummaryRow, ...]
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    idle_timeout_s: int | None = 60


@dataclass(frozen=True)
class Done:
    """An errand finished: what happened and what to take (the card, the receipt)."""

    screen: str
    title: Text
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    idle_timeout_s: int | None = 60


@dataclass(frozen=True)
class ShowQr:
    """A code to scan with a phone, large, with what it is for."""

    screen: str
    title: Text
    qr_data: str
    qr_caption: Text
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    idle_timeout_s: int | None = 60


class FieldKind(enum.StrEnum):
    """What an on-screen keypad enters: no free Chinese text entry on an unattended kiosk."""

    DIGITS = "digits"  # a phone number, a count, a code: 0-9 only
    DATE = "date"  # YYYY-MM-DD, typed as eight digits
    CHOICE = "choice"  # one of a few options, tapped


@dataclass(frozen=True)
class FormField:
    """One field of a form as shown: ``shown`` is the value as the screen may show it (masked
    where personal); ``error`` says what is wrong with it, in words."""

    id: str
    label: Text
    kind: FieldKind
    shown: str = ""
    choices: tuple[Action, ...] = ()
    hint: Text | None = None
    error: Text | None = None


@dataclass(frozen=True)
class Form:
    """Fields filled through the on-screen keypad (digits, dates) or by tapping a choice.

    Targets: ``field.<id>`` focuses a field; ``key.0``..``key.9``, ``key.delete`` and
    ``key.clear`` edit the focused one; choices are the fields' own actions. A whole value can
    also arrive at once as ``TextEntered`` (the automation API's ``/text``).
    """

    screen: str
    title: Text
    fields: tuple[FormField, ...]
    focus: str | None = None
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    idle_timeout_s: int | None = 60


@dataclass(frozen=True, repr=False)
class Scan:
    """Scanning one material on the document camera: the live preview (drawn by the UI from the
    camera itself), the pages taken so far, and capture / retake / add a page / done.

    ``thumbnail`` is the last page taken (a small JPEG): personal, never in a repr or a log;
    the automation API reports only whether there is one.
    """

    screen: str
    title: Text
    material: Text
    pages: int
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    thumbnail: bytes | None = None
    preview: bool = True  # False: the camera is not usable, say why in ``lines`` instead
    tone: Tone = Tone.INFO
    idle_timeout_s: int | None = 120

    def __repr__(self) -> str:
        return f"Scan({self.screen!r}, pages={self.pages})"


KEYPAD: tuple[str, ...] = (*(f"key.{digit}" for digit in "1234567890"), "key.delete", "key.clear")


Screen = Attract | Message | Progress | Menu | Guide | Confirm | Done | ShowQr | Form | Scan


def screen_actions(screen: Screen) -> tuple[Action, ...]:
    """Every touch target on a screen, options first (a form: its fields, choices and keys)."""
    if isinstance(screen, Form):
        return (*form_targets(screen), *screen.actions)
    options = screen.options if isinstance(screen, Menu) else ()
    return options + screen.actions


def form_targets(form: Form) -> tuple[Action, ...]:
    """A form's own targets: each field, each choice, and the keypad while a keyed field has
    the focus."""
    targets: list[Action] = []
    for form_field in form.fields:
        targets.append(Action(f"field.{form_field.id}", form_field.label))
        targets += form_field.choices
    focused = next((f for f in form.fields if f.id == form.focus), None)
    if focused is not None and focused.kind is not FieldKind.CHOICE:
        targets += [Action(key, Text(f"ui.{key}")) for key in KEYPAD]
    return tuple(targets)


# --- input events --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tap:
    """The resident touched the target with this id."""

    target: str


@dataclass(frozen=True)
class CardInserted:
    """A card was seen in a reader; the flow decides whether to read it."""

    reader: str


@dataclass(frozen=True)
class CardPulled:
    """The card left the reader."""

    reader: str


@dataclass(frozen=True)
class Tick:
    """The clock moved on; carries no time, the engine asks its clock."""


@dataclass(frozen=True, repr=False)
class TextEntered:
    """A whole value for the form field ``target`` (``field.<id>``), typed at once."""

    target: str
    text: str

    def __repr__(self) -> str:
        return f"TextEntered({self.target!r}, <text>)"


@dataclass(frozen=True)
class DeviceChanged:
    """A device's state changed (``printer``, ``card_reader``): screens tell the truth about it."""

    device: str
    state: DeviceState


@dataclass(frozen=True, repr=False)
class Returned:
    """A sub-flow this step called has finished; ``value`` is what it handed back."""

    flow: str
    value: object = None

    def __repr__(self) -> str:
        return f"Returned({self.flow!r}, <value>)"


@dataclass(frozen=True, repr=False)
class CodeScanned:
    """The scanner read a code: ``kind`` is ``receipt`` (a case's progress QR),
    ``appointment``, ``e_id`` (an e-ID code from a phone) or ``unknown``; ``reference`` is what
    a known code carries (the case or appointment reference; an e-ID code's whole text, a
    credential that goes to the hub and nowhere else), never the raw text of an unknown one,
    which may be personal."""

    def __repr__(self) -> str:
        return f"CodeScanned({self.kind!r}, <reference>)"

    kind: str
    reference: str = ""


@dataclass(frozen=True, repr=False)
class IdCardPresented:
    """A resident ID card was presented to the SAM reader and read at once (it is shown and
    taken away, never held in a slot): ``holder``, or None with ``reason`` saying why not
    (``residence_permit``, ``foreign_permanent_resident``, ``unknown_card_type``, ``card_removed``,
    ``card_data_invalid``, ``read_failed``...)."""

    holder: CardHolder | None
    reason: str = ""

    def __repr__(self) -> str:
        return f"IdCardPresented(<redacted>, reason={self.reason!r})"


@dataclass(frozen=True)
class HelpAcknowledged:
    """Operations answered a help call (the ``help_ack`` command): who is coming, and when."""

    help_id: str
    staff: str  # a display name staff chose to show, such as 王工; not a resident's data
    minutes: int


# --- effects and their outcomes ------------------------------------------------------------------


@dataclass(frozen=True)
class ReadCard:
    """Read the identity from the card in ``reader``."""

    reader: str


@dataclass(frozen=True, repr=False)
class RunErrand:
    """Run an instant errand at the hub for the card holder (returns a document to print)."""

    errand_id: str
    holder: CardHolder

    def __repr__(self) -> str:
        return f"RunErrand({self.errand_id!r}, <redacted>)"


@dataclass(frozen=True, repr=False)
class ResolveCode:
    """Ask the hub who an e-ID code (一码办, from a phone) belongs to -> ``CardHolder``, or
    ``Failed`` with ``code_expired``, ``code_used``, ``code_unknown``, ``hub_unavailable`` or
    ``hub_error``. The code is an opaque, short-lived token: never parsed here, never logged."""

    code: str

    def __repr__(self) -> str:
        return "ResolveCode(<code>)"


@dataclass(frozen=True)
class Maintain:
    """A maintenance task, asked for only from the staff badge's menu (flows.maintenance_report
    says what each answers)."""

    task: MaintenanceTask


@dataclass(frozen=True)
class CheckPrinter:
    """Ask the printer for its status before committing to a job."""


@dataclass(frozen=True, repr=False)
class PrintReceipt:
    receipt: Receipt

    def __repr__(self) -> str:
        return "PrintReceipt(<receipt>)"


@dataclass(frozen=True)
class SubmitRating:
    """Send a 好差评 rating to the hub (queued in the outbox until the hub confirms)."""

    errand_id: str
    case_number: str
    level: RatingLevel


@dataclass(frozen=True)
class RecordEvent:
    """An operations event for the MQTT ``event`` topic; never personal data in ``fields``."""

    type: EventType
    severity: str = "info"
    fields: Mapping[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class AskHub:
    """Ask the hub one question (flows.hub_queries); answered with that query's typed result."""

    query: HubQuery


@dataclass(frozen=True)
class Lodge:
    """Hand an application or a 办不成事 report to the terminal's submission queue: sent at once
    if the hub answers, else stored encrypted and sent later -> ``Lodged``."""

    item: Lodgeable


@dataclass(frozen=True)
class Lodged:
    """``Lodge``'s outcome: the terminal's reference, and the hub's answer when it came now
    (``None``: stored on this terminal, to be sent automatically; the receipt says so)."""

    reference: str
    answer: CaseAccepted | ReportFiled | None


@dataclass(frozen=True)
class CapturePage:
    """Take one page of ``material_id`` with the document camera -> ``ScannedPage`` (cropped
    and compressed); fails ``blank_page`` when nothing lies on the platen."""

    material_id: str
    page: int


@dataclass(frozen=True, repr=False)
class Captured:
    """``CapturePage``'s outcome: the page as it goes to the hub, and a small JPEG to show."""

    page: ScannedPage
    thumbnail: bytes

    def __repr__(self) -> str:
        return f"Captured({self.page!r})"


Effect = (
    ReadCard | RunErrand | CheckPrinter | PrintReceipt | SubmitRating | RecordEvent | AskHub
    | Lodge | CapturePage | ResolveCode | Maintain
)


@dataclass(frozen=True)
class Succeeded:
    """An effect finished; ``value`` is the effect's typed result (see each effect's docstring)."""

    value: object = None


@dataclass(frozen=True)
class Failed:
    """An effect failed; ``reason`` is a stable code such as ``paper_out``."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class EffectDone:
    effect: Effect
    outcome: Succeeded | Failed


Event = (
    Tap | TextEntered | CardInserted | CardPulled | Tick | EffectDone | Returned | DeviceChanged
    | HelpAcknowledged | CodeScanned | IdCardPresented
)


@dataclass(frozen=True)
class Transition:
    """What a flow answers to an event: the screen to show and the effects to run."""

    screen: Screen
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class HelpStatus:
    """What the screen's help strip says (flows.help_call); ``waiting``: the idle timeout
    waits meanwhile."""

    help_id: str
    lines: tuple[Text, ...]
    tone: Tone
    cancel: Text  # the label of the strip's button (cancel the call / close the note)
    waiting: bool


@dataclass(frozen=True)
class View:
    """What the UI shows: the current screen, once the resident has gone idle the seconds left,
    and whether the session is in the large-type, voice-guided elder mode (长辈模式)."""

    screen: Screen
    countdown_s: int | None = None
    elder: bool = False
    help: HelpStatus | None = None
