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

from devices.base import CardHolder, Receipt

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
class Attract:
    """The idle screen: invites a resident to insert a card. No session exists behind it."""

    screen: str
    title: Text
    lines: tuple[Text, ...] = ()
    actions: tuple[Action, ...] = ()
    idle_timeout_s: int | None = None


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


Screen = Attract | Message | Progress | Menu | Guide


def screen_actions(screen: Screen) -> tuple[Action, ...]:
    """Every touch target on a screen, options first."""
    options = screen.options if isinstance(screen, Menu) else ()
    return options + screen.actions


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
    level: int  # 5 = 非常满意 ... 1 = 非常不满意


@dataclass(frozen=True)
class RecordEvent:
    """An operations event for the MQTT ``event`` topic; never personal data in ``fields``."""

    type: str
    severity: str = "info"
    fields: Mapping[str, str | int | float | bool] = field(default_factory=dict)


Effect = ReadCard | RunErrand | CheckPrinter | PrintReceipt | SubmitRating | RecordEvent


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


Event = Tap | CardInserted | CardPulled | Tick | EffectDone


@dataclass(frozen=True)
class Transition:
    """What a flow answers to an event: the screen to show and the effects to run."""

    screen: Screen
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True)
class View:
    """What the UI shows: the current screen and, once the resident has gone idle, seconds left."""

    screen: Screen
    countdown_s: int | None = None
