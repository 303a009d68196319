"""Appointments (预约): service, centre, a working day, a period with places, confirm, a slip."""

from __future__ import annotations

import dataclasses
import datetime as dt

from flows_support import HOLDER, Kiosk, packaged_catalogue, receipt_strings, to_home

from devices.base import DeviceState
from flows.hub import Appointment, Slot
from flows.hub_queries import AppointmentsQuery, BookSlot, CancelAppointment, SlotsQuery
from flows.steps import AskHub, CheckPrinter, Menu, PrintReceipt

CATALOGUE = packaged_catalogue()
MONDAY = dt.date(2025, 3, 17)  # the fake clock stands on Friday 14 March 2025
SLOTS = (Slot("s1", MONDAY, dt.time(9), dt.time(9, 30), 2),
         Slot("s2", MONDAY, dt.time(9, 30), dt.time(10), 0))
BOOKED = Appointment("a1", "ABCD-EFGH", "resident_pension_enrollment", "simulator", MONDAY,
                     dt.time(9), dt.time(9, 30))


def _at_slots() -> Kiosk:
    kiosk = to_home(Kiosk(CATALOGUE))
    kiosk.tap("service.appointment")
    kiosk.tap("service.resident_pension_enrollment")
    kiosk.tap("centre.simulator")
    assert kiosk.screen_id == "appointment.day"
    return kiosk


def test_the_days_offered_are_the_next_seven_working_days() -> None:
    kiosk = _at_slots()
    menu = kiosk.screen
    assert isinstance(menu, Menu)
    assert [o.id for o in menu.options] == [
        f"day.2025-03-{d}" for d in ("17", "18", "19", "20", "21", "24", "25")]


def test_a_period_is_booked_and_its_slip_carries_the_appointment_qr() -> None:
    kiosk = _at_slots()
    kiosk.tap("day.2025-03-17")
    ask = kiosk.awaited(AskHub)
    assert isinstance(ask, AskHub)
    assert ask.query == SlotsQuery("resident_pension_enrollment", "simulator", MONDAY)
    kiosk.succeed(AskHub, SLOTS)
    menu = kiosk.screen
    assert isinstance(menu, Menu)
    assert [(o.id, o.enabled) for o in menu.options] == [("slot.s1", True), ("slot.s2", False)]
    kiosk.tap("slot.s2")  # full: nothing happens
    assert kiosk.screen_id == "appointment.slot"
    kiosk.tap("slot.s1")
    kiosk.tap("book")
    book = kiosk.awaited(AskHub)
    assert isinstance(book, AskHub) and book.query == BookSlot(
        HOLDER.id_number, "resident_pension_enrollment", "simulator", "s1")
    kiosk.succeed(AskHub, BOOKED)
    assert kiosk.screen_id == "appointment.booked"
    kiosk.tap("print")
    kiosk.succeed(CheckPrinter, DeviceState.ok())
    printed = kiosk.awaited(PrintReceipt)
    assert isinstance(printed, PrintReceipt)
    strings = receipt_strings(printed.receipt)
    assert "ABCD-EFGH" in strings and "2025年3月17日 09:00-09:30" in strings
    assert any("/v1/appointments/ABCD-EFGH?c=" in s for s in strings)
    assert HOLDER.name not in "".join(strings)


def test_a_period_taken_meanwhile_brings_the_periods_back_with_the_reason() -> None:
    kiosk = _at_slots()
    kiosk.tap("day.2025-03-17")
    kiosk.succeed(AskHub, SLOTS)
    kiosk.tap("slot.s1")
    kiosk.tap("book")
    kiosk.fail(AskHub, "slot_taken")
    assert kiosk.screen_id == "appointment.slots_loading"
    kiosk.succeed(AskHub, (dataclasses.replace(SLOTS[0], free=0), SLOTS[1],
                           Slot("s3", MONDAY, dt.time(10), dt.time(10, 30), 1)))
    assert kiosk.screen_id == "appointment.slot"
    assert kiosk.screen.lines[0].key == "appointment.slot.taken"


def test_a_full_day_says_so() -> None:
    kiosk = _at_slots()
    kiosk.tap("day.2025-03-17")
    kiosk.succeed(AskHub, (SLOTS[1],))
    assert kiosk.screen_id == "appointment.no_slots"
    kiosk.tap("back")
    assert kiosk.screen_id == "appointment.day"


def test_an_appointment_is_cancelled_by_card() -> None:
    kiosk = to_home(Kiosk(CATALOGUE))
    kiosk.tap("service.appointment")
    kiosk.tap("mine")
    ask = kiosk.awaited(AskHub)
    assert isinstance(ask, AskHub) and ask.query == AppointmentsQuery(HOLDER.id_number)
    kiosk.succeed(AskHub, (BOOKED,))
    kiosk.tap("appointment.a1")
    assert kiosk.screen_id == "appointment.cancel_confirm"
    kiosk.tap("cancel_it")
    cancel = kiosk.awaited(AskHub)
    assert isinstance(cancel, AskHub)
    assert cancel.query == CancelAppointment(HOLDER.id_number, "a1")
    kiosk.succeed(AskHub, None)
    assert kiosk.screen_id == "appointment.cancelled"
    assert [dict(e.fields) for e in kiosk.events("appointment_cancelled")] == [
        {"service_id": "resident_pension_enrollment"}]


def test_the_hub_down_offers_a_retry_of_what_failed() -> None:
    kiosk = _at_slots()
    kiosk.tap("day.2025-03-17")
    kiosk.fail(AskHub, "hub_unavailable")
    assert kiosk.screen_id == "appointment.hub_unavailable"
    kiosk.tap("retry")
    retried = kiosk.awaited(AskHub)
    assert isinstance(retried, AskHub) and isinstance(retried.query, SlotsQuery)
