"""Every way of identifying, step by step: the social security card, the ID card, the e-ID code."""

from __future__ import annotations

import dataclasses
import datetime as dt

import flows_support
import pytest
from flows_support import HOLDER, Kiosk, packaged_catalogue

from devices.base import DeviceState, IdentityDocument, StaffBadge
from flows.catalogue import Catalogue
from flows.steps import (
    CardInserted,
    CardPulled,
    CodeScanned,
    DeviceChanged,
    IdCardPresented,
    Message,
    ReadCard,
    ResolveCode,
    Text,
)

READER = "Virtual PCD 00 00"
ID_CARD = dataclasses.replace(HOLDER, document=IdentityDocument.RESIDENT_ID_CARD, card_number="",
                              expires=dt.date(2036, 5, 1))
E_CODE = "EID1:" + "x" * 32


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return packaged_catalogue()


def keys(k: Kiosk) -> list[str]:
    return [line.key for line in k.screen.lines]


def test_an_id_card_presented_goes_straight_to_the_identity_without_a_card_read(
    catalogue: Catalogue,
) -> None:
    k = Kiosk(catalogue)
    k.send(IdCardPresented(ID_CARD))
    assert k.screen_id == "identify.identity"
    assert "identify.identity.document_resident_id_card" in keys(k)
    assert not [e for e in k.effects if isinstance(e, ReadCard)]
    assert k.events("session_started")
    k.tap("continue")
    assert k.screen_id == "home.menu"
    # The card is gone from the reader already: nothing waits for it, nothing ends for it.
    k.send(CardPulled(READER))
    assert k.screen_id == "home.menu"
    k.tap("finish")
    assert k.screen_id != "take_card"


def test_the_same_identity_reaches_the_flows_whichever_way(catalogue: Catalogue) -> None:
    by_card = Kiosk(catalogue)
    by_card.send(CardInserted(READER))
    by_card.succeed(ReadCard, HOLDER)
    by_id = Kiosk(catalogue)
    by_id.send(IdCardPresented(ID_CARD))
    by_code = Kiosk(catalogue)
    by_code.send(CodeScanned("e_id", E_CODE))
    by_code.succeed(ResolveCode, dataclasses.replace(HOLDER, card_number=""))
    lines = []
    for k in (by_card, by_id, by_code):
        assert k.screen_id == "identify.identity"
        lines.append([line for line in k.screen.lines if not line.key.endswith(("document_"
                      "social_security_card", "document_resident_id_card", "document_e_code"))])
    assert lines[0] == lines[1] == lines[2]  # masked name and number, the same for all three
    shown = repr(lines[0])
    assert "欧阳娜娜" not in shown and "11010519491231002X" not in shown


@pytest.mark.parametrize(
    ("reason", "screen"),
    [
        ("residence_permit", "error.residence_permit"),
        ("foreign_permanent_resident", "error.foreign_permanent_resident"),
        ("unknown_card_type", "error.id_card_unknown_type"),
        ("card_removed", "error.id_card_moved"),
        ("read_failed", "error.id_card_read"),
        ("checksum", "error.id_card_read"),
    ],
)
def test_an_id_card_that_gave_no_identity_says_why_and_starts_nothing(
    catalogue: Catalogue, reason: str, screen: str
) -> None:
    k = Kiosk(catalogue)
    k.send(IdCardPresented(None, reason))
    assert k.screen_id == screen
    assert not k.events("session_started")
    assert [e.fields["reason"] for e in k.events("id_card_refused")] == [reason]
    k.tap("continue")
    assert k.screen_id == "attract"


def test_an_expired_id_card_is_declined(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue, now=dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC))
    k.send(IdCardPresented(dataclasses.replace(ID_CARD, expires=dt.date(2026, 12, 6))))
    assert k.screen_id == "error.id_card_expired"
    assert not k.events("session_started")
    # Its last valid day is still valid.
    k = Kiosk(catalogue, now=dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC))
    k.send(IdCardPresented(dataclasses.replace(ID_CARD, expires=dt.date(2026, 12, 7))))
    assert k.screen_id == "identify.identity"


def test_a_long_term_id_card_never_expires(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.send(IdCardPresented(dataclasses.replace(ID_CARD, expires=None)))
    assert k.screen_id == "identify.identity"


def test_an_id_card_with_a_wrong_check_digit_is_the_invalid_id_screen(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.send(IdCardPresented(dataclasses.replace(ID_CARD, id_number="110105194912310021")))
    assert k.screen_id == "error.invalid_id"


def test_an_id_card_replaces_a_guide_session_but_never_an_identified_one(
    catalogue: Catalogue,
) -> None:
    k = Kiosk(catalogue)
    k.tap("guides")
    assert k.engine.flow_stack == ("guides",)
    k.send(IdCardPresented(ID_CARD))
    assert k.engine.flow_stack == ("identify",)
    k.tap("continue")
    other = dataclasses.replace(ID_CARD, id_number="34052419800101001X", name="李四")
    k.send(IdCardPresented(other))
    assert k.engine.flow_stack == ("identify", "home")  # someone else's card waved nearby


def test_an_e_id_code_is_resolved_by_the_hub(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.send(CodeScanned("e_id", E_CODE))
    assert k.screen_id == "identify.resolving_code"
    effect = k.awaited(ResolveCode)
    assert isinstance(effect, ResolveCode) and effect.code == E_CODE
    assert E_CODE not in repr(effect)
    assert [e.fields for e in k.events("code_scanned")] == [{"kind": "e_id"}]
    k.succeed(ResolveCode, HOLDER)
    assert k.screen_id == "identify.identity"
    assert "identify.identity.document_e_code" in keys(k)
    assert k.engine.in_session


@pytest.mark.parametrize(
    ("reason", "screen"),
    [
        ("code_expired", "error.code_expired"),
        ("code_used", "error.code_used"),
        ("code_unknown", "error.code_foreign"),
        ("hub_unavailable", "error.code_not_checked"),
        ("hub_error", "error.code_not_checked"),
    ],
)
def test_a_refused_e_id_code_says_why(catalogue: Catalogue, reason: str, screen: str) -> None:
    k = Kiosk(catalogue)
    k.send(CodeScanned("e_id", E_CODE))
    k.fail(ResolveCode, reason)
    assert k.screen_id == screen
    assert isinstance(k.screen, Message) and k.screen.actions  # a way back to the start
    assert [e.fields["detail"] for e in k.events("session_ended")] == [reason]


def test_an_e_id_code_replaces_a_guide_session(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    k.tap("guides")
    k.send(CodeScanned("e_id", E_CODE))
    assert k.screen_id == "identify.resolving_code"


def test_a_listed_badge_opens_maintenance_and_an_unlisted_one_is_refused(
    catalogue: Catalogue,
) -> None:
    k = Kiosk(catalogue)
    k.send(CardInserted(READER))
    k.succeed(ReadCard, StaffBadge("04FFFFFFFFFFFF"))
    assert k.screen_id == "error.unsupported_card"
    assert len(k.events("badge_refused")) == 1
    assert not k.engine.in_maintenance
    k.send(CardPulled(READER))
    k.send(CardInserted(READER))
    k.succeed(ReadCard, StaffBadge(flows_support.STAFF_UID))
    assert k.screen_id == "maintenance.menu"
    assert k.engine.in_maintenance
    # UIDs are credentials: in no event.
    for out in k.outputs:
        assert flows_support.STAFF_UID not in repr(out.effects)
        assert "04FFFFFFFFFFFF" not in repr(out.effects)


def test_the_badge_list_can_change_at_run_time(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue, staff_badges=frozenset())
    k.send(CardInserted(READER))
    k.succeed(ReadCard, StaffBadge(flows_support.STAFF_UID))
    assert k.screen_id == "error.unsupported_card"
    k.send(CardPulled(READER))
    k.engine.set_staff_badges(frozenset({flows_support.STAFF_UID.lower()}))
    k.send(CardInserted(READER))
    k.succeed(ReadCard, StaffBadge(flows_support.STAFF_UID))
    assert k.screen_id == "maintenance.menu"


def test_the_attract_screen_names_only_the_ways_whose_devices_work(catalogue: Catalogue) -> None:
    k = Kiosk(catalogue)
    assert "attract.id_card" not in keys(k) and "attract.e_code" not in keys(k)
    k.send(DeviceChanged("id_reader", DeviceState.ok()))
    k.send(DeviceChanged("scanner", DeviceState.ok()))
    assert "attract.id_card" in keys(k) and "attract.e_code" in keys(k)
    k.send(DeviceChanged("id_reader", DeviceState.fault("offline")))
    assert "attract.id_card" not in keys(k)
    assert all(isinstance(line, Text) for line in k.screen.lines)


def test_the_proof_errand_goes_on_to_the_rating_by_a_tap_when_no_card_is_held(
    catalogue: Catalogue,
) -> None:
    from flows_support import DOCUMENT  # noqa: PLC0415

    from flows.steps import CheckPrinter, PrintReceipt, RunErrand  # noqa: PLC0415

    k = Kiosk(catalogue)
    k.send(IdCardPresented(ID_CARD))
    k.tap("continue")
    k.tap("errand.ssc_enrollment_proof")
    k.tap("confirm")
    k.succeed(CheckPrinter, DeviceState.ok())
    k.succeed(RunErrand, DOCUMENT)
    k.succeed(PrintReceipt)
    assert k.screen_id == "proof.done"
    assert [a.id for a in k.screen.actions] == ["rate"]
    k.send(CardPulled(READER))  # somebody else's card: nothing of this session's
    assert k.screen_id == "proof.done"
    k.tap("rate")
    assert k.screen_id == "rating.choose"
