"""Helpers shared by the flow tests: a resident, an issued document, and a driver for the engine."""

from __future__ import annotations

import datetime as dt

from devices.base import CardHolder, FieldLine, QrCode, Receipt, Sex, TextLine
from flows.catalogue import Catalogue
from flows.clock import FakeClock
from flows.engine import Output, SessionEngine
from flows.hub import DocumentField, ErrandDocument
from flows.steps import Effect, EffectDone, Event, Failed, RecordEvent, Screen, Succeeded, Tap, Tick
from flows.working_days import WorkingCalendar

HOLDER = CardHolder(
    id_number="11010519491231002X",
    name="欧阳娜娜",
    sex=Sex.FEMALE,
    birth_date=dt.date(1949, 12, 31),
    card_number="A12345678",
    region_code="110105",
    expires=None,
)
STAFF_UID = "04A1B2C3D4E580"  # a listed staff badge

DOCUMENT = ErrandDocument(
    errand_id="ssc_enrollment_proof",
    title="社会保险参保证明",
    case_number="CASE-2025-000123",
    verification_code="7K3Q-9XPA",
    verify_url="https://hub.example.com/verify/7K3Q9XPA",
    issued_at=dt.datetime(2025, 3, 14, 1, 0, tzinfo=dt.UTC),
    fields=(
        DocumentField("参保险种", "城乡居民基本养老保险"),
        DocumentField("参保状态", "正常参保"),
        DocumentField("累计缴费月数", "180"),
    ),
)


def receipt_strings(receipt: Receipt) -> list[str]:
    """Every string a receipt prints, in order: text, labels and values, QR data and caption."""
    out: list[str] = []
    for block in receipt.blocks:
        if isinstance(block, TextLine):
            out.append(block.text)
        elif isinstance(block, FieldLine):
            out += [block.label, block.value]
        elif isinstance(block, QrCode):
            out += [block.data, block.caption]
    return out


class Kiosk:
    """A SessionEngine with a fake clock, fed like the terminal feeds it, keeping every output."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        idle_timeout_s: int = 60,
        countdown_visible_s: int = 20,
        effect_timeout_s: int = 120,
        now: dt.datetime | None = None,
        staff_badges: frozenset[str] = frozenset({STAFF_UID}),
    ) -> None:
        self.clock = FakeClock(now)
        self.engine = SessionEngine(
            catalogue=catalogue,
            clock=self.clock,
            terminal_id="T-0001",
            idle_timeout_s=idle_timeout_s,
            countdown_visible_s=countdown_visible_s,
            effect_timeout_s=effect_timeout_s,
            calendar=packaged_calendar(),
            staff_badges=staff_badges,
        )
        self.outputs: list[Output] = [self.engine.start()]

    def send(self, event: Event) -> Output:
        out = self.engine.handle(event)
        self.outputs.append(out)
        return out

    @property
    def out(self) -> Output:
        return self.outputs[-1]

    @property
    def screen(self) -> Screen:
        return self.out.view.screen

    @property
    def screen_id(self) -> str:
        return self.screen.screen

    @property
    def effects(self) -> tuple[Effect, ...]:
        return self.out.effects

    def tap(self, target: str) -> Output:
        return self.send(Tap(target))

    def wait(self, seconds: float) -> Output:
        self.clock.advance(seconds)
        return self.send(Tick())

    def awaited(self, kind: type) -> Effect:
        found = [e for e in self.effects if isinstance(e, kind)]
        assert len(found) == 1, f"expected one {kind.__name__} in {self.effects}"
        return found[0]

    def succeed(self, kind: type, value: object = None) -> Output:
        return self.send(EffectDone(self.awaited(kind), Succeeded(value)))

    def fail(self, kind: type, reason: str) -> Output:
        return self.send(EffectDone(self.awaited(kind), Failed(reason)))

    def events(self, event_type: str) -> list[RecordEvent]:
        return [
            e
            for out in self.outputs
            for e in out.effects
            if isinstance(e, RecordEvent) and e.type == event_type
        ]


def packaged_catalogue() -> Catalogue:
    """The catalogue the terminal ships with."""
    import tomllib  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from flows.catalogue import parse_catalogue  # noqa: PLC0415

    path = Path(__file__).resolve().parents[2] / "terminal/content/catalogue.toml"
    with path.open("rb") as f:
        return parse_catalogue(tomllib.load(f))


def to_home(kiosk: Kiosk, reader: str = "Virtual PCD 00 00") -> Kiosk:
    """Insert the shared resident's card and go on to the home menu."""
    from flows.steps import CardInserted, ReadCard  # noqa: PLC0415

    kiosk.send(CardInserted(reader))
    kiosk.succeed(ReadCard, HOLDER)
    kiosk.tap("continue")
    assert kiosk.screen_id == "home.menu"
    return kiosk


def packaged_calendar() -> WorkingCalendar:
    """The holiday calendar the terminal ships with (2026 and on, as published)."""
    import tomllib  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from flows.working_days import parse_calendar  # noqa: PLC0415

    path = Path(__file__).resolve().parents[2] / "terminal/content/holidays.toml"
    with path.open("rb") as f:
        return parse_calendar(tomllib.load(f))
