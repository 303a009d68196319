"""The adapter's ApplicationHub calls against the real simulated hub over loopback: every call,
every refusal, idempotency, the slot race, deadlines (a submission's scaled to its size), the hub
down or slow, answers that are not the hub's, and nothing personal in errors or logs."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from flows.hub import (
    Appointment,
    CaseStatus,
    CaseSubmission,
    CaseUnknown,
    Delivery,
    ErrandRefused,
    HubError,
    HubUnavailable,
    MaterialEntry,
    MaterialOutcome,
    Report,
    ScannedPage,
    SlotTaken,
)
from flows.identity import check_character
from simulator.hub import CHINA_STANDARD_TIME, SimHub
from simulator.hub_records import DECEASED, SPECIAL_PEOPLE, delivery_address
from terminal.hub_client import MAX_PAGE_BYTES, HttpServiceHub

PERSON = "34052419800101001X"  # valid, listed nowhere, has an address on record
OTHER = "510107199211300021"
NO_ADDRESS = "330106198506120015"
PHONE = "13912345678"
TERMINAL = "T-0042"
MONDAY = dt.datetime(2025, 3, 3, 9, 40, tzinfo=CHINA_STANDARD_TIME)
TUESDAY = dt.date(2025, 3, 4)
SERVICE = "social_security_window"
SITE = "ruian-tangxia"
HOUR = 3600.0


def jpeg(size: int = 2000, fill: int = 0) -> bytes:
    return b"\xff\xd8\xff\xe0" + bytes([fill]) * (size - 6) + b"\xff\xd9"


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[SimHub]:
    with SimHub(db_path=tmp_path / "hub.sqlite", clock=lambda: MONDAY) as hub:
        yield hub


@pytest.fixture
def client(hub: SimHub) -> Iterator[HttpServiceHub]:
    adapter = HttpServiceHub(hub.url, timeout_s=2.0)
    yield adapter
    adapter.close()


def submission(
    reference: str = "T-0042-20250303-0001",
    *,
    id_number: str = PERSON,
    item_id: str = "resident_pension_enrollment",
    page_size: int = 2000,
    delivery: Delivery = Delivery.MAIL,
    photo: MaterialOutcome = MaterialOutcome.NOT_APPLICABLE,
) -> CaseSubmission:
    scanned = [("id_card", 2), ("household_register", 1), ("social_security_card", 1),
               ("enrollment_form", 1)]  # fmt: skip
    deferred_until = dt.date(2025, 3, 10) if photo is MaterialOutcome.DEFERRED else None
    return CaseSubmission(
        reference=reference,
        item_id=item_id,
        id_number=id_number,
        phone=PHONE,
        delivery=delivery,
        pickup_site=SITE if delivery is Delivery.PICKUP else "",
        materials=(
            *(MaterialEntry(m, MaterialOutcome.SCANNED, n) for m, n in scanned),
            MaterialEntry("photo", photo, 0, deferred_until),
        ),
        pages=tuple(
            ScannedPage(m, page, jpeg(page_size, fill=index))
            for index, (m, n) in enumerate(scanned)
            for page in range(1, n + 1)
        ),
        terminal_id=TERMINAL,
        submitted_at=MONDAY,
    )


def report(reference: str = "T-0042-R-0001", **changes: Any) -> Report:
    fields: dict[str, Any] = {
        "reference": reference, "problem": "materials_unclear", "item_id": "minimum_subsistence",
        "phone": PHONE, "terminal_id": TERMINAL, "screen": "guide.materials", "filed_at": MONDAY,
    } | changes  # fmt: skip
    return Report(**fields)


def with_check(first17: str) -> str:
    return first17 + check_character(first17)


def assert_nothing_personal_in(exc: BaseException, *values: str) -> None:
    seen: BaseException | None = exc
    while seen is not None:
        for value in values:
            assert value not in str(seen)
            assert value not in repr(seen)
            assert value not in repr(seen.args)
        seen = seen.__cause__ or seen.__context__


def a_free_slot(client: HttpServiceHub, day: dt.date = TUESDAY) -> Any:
    return next(slot for slot in client.slots(SERVICE, SITE, day) if slot.free > 0)


# --- delivery address ------------------------------------------------------------------------


def test_the_address_on_record_or_none(client: HttpServiceHub) -> None:
    address = client.delivery_address(PERSON)
    assert address is not None
    assert address.text == delivery_address(PERSON)
    assert PERSON not in repr(address) and address.text not in repr(address)
    assert client.delivery_address(NO_ADDRESS) is None
    with pytest.raises(ErrandRefused) as caught:
        client.delivery_address(PERSON[:-1] + "5")
    assert caught.value.reason == "invalid_id"
    assert_nothing_personal_in(caught.value, PERSON[:-1] + "5")


# --- submissions -----------------------------------------------------------------------------


def test_a_submission_is_accepted_with_its_pages_intact(
    client: HttpServiceHub, hub: SimHub
) -> None:
    sent = submission(page_size=500_000)
    accepted = client.submit_case(sent)
    assert accepted.reference == sent.reference
    assert accepted.case_number == "SB20250303000001"
    assert accepted.authority == "安徽省人力资源和社会保障厅"
    assert accepted.cross_region  # decided where the resident is registered, not here
    assert accepted.received_at == MONDAY.replace(second=0)
    assert accepted.received_at.utcoffset() == dt.timedelta(hours=8)
    [case] = hub.cases()
    assert [p.path.read_bytes() for p in case.pages] == [p.jpeg for p in sent.pages]
    assert [(p.material_id, p.page) for p in case.pages] == [
        (p.material_id, p.page) for p in sent.pages
    ]


def test_a_submission_sent_again_is_the_same_case(client: HttpServiceHub, hub: SimHub) -> None:
    first = client.submit_case(submission())
    assert client.submit_case(submission()) == first
    assert len(hub.cases()) == 1


def test_a_submission_whose_answer_was_lost_is_one_case_when_sent_again(hub: SimHub) -> None:
    # The hub stores the case, but the answer comes after the terminal gave up.
    hub.set_fault("slow", delay_s=2.0)
    impatient = HttpServiceHub(hub.url, timeout_s=0.3, upload_bytes_per_s=1e9)
    with pytest.raises(HubUnavailable):
        impatient.submit_case(submission())
    impatient.close()
    hub.set_fault("ok")
    client = HttpServiceHub(hub.url, timeout_s=2.0)
    assert client.submit_case(submission()).case_number == "SB20250303000001"
    client.close()
    assert len(hub.cases()) == 1


@pytest.mark.parametrize("person", list(SPECIAL_PEOPLE.values()), ids=lambda p: p.refusal)
def test_a_special_person_is_refused_with_their_reason(
    client: HttpServiceHub, person: Any
) -> None:
    with pytest.raises(ErrandRefused) as caught:
        client.submit_case(submission(id_number=person.id_number))
    assert caught.value.reason == person.refusal
    assert_nothing_personal_in(caught.value, person.id_number, PHONE)


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        (submission(item_id="no_such_item"), "unknown_errand"),
        (submission(id_number=PERSON[:-1] + "5"), "invalid_id"),
        # Only the guide's deferrable materials may be deferred; the photo is, the form not.
        (
            CaseSubmission(**{
                **submission().__dict__,
                "materials": (*submission().materials[:3], MaterialEntry(
                    "enrollment_form", MaterialOutcome.DEFERRED, 0, dt.date(2025, 3, 10))),
                "pages": submission().pages[:4],
            }),
            "materials_incomplete",
        ),
        # Mail, with no address on record: a refusal the port has no own reason for.
        (submission(id_number=NO_ADDRESS), "refused"),
    ],
)  # fmt: skip
def test_a_submission_the_hub_will_not_take_is_refused(
    client: HttpServiceHub, hub: SimHub, sent: CaseSubmission, reason: str
) -> None:
    with pytest.raises(ErrandRefused) as caught:
        client.submit_case(sent)
    assert caught.value.reason == reason
    assert_nothing_personal_in(caught.value, sent.id_number, PHONE)
    assert hub.cases() == []


def test_a_pickup_with_a_deferred_photo_is_taken(client: HttpServiceHub, hub: SimHub) -> None:
    sent = submission(id_number=NO_ADDRESS, delivery=Delivery.PICKUP,
                      photo=MaterialOutcome.DEFERRED)  # fmt: skip
    client.submit_case(sent)
    [case] = hub.cases()
    assert (case.delivery, case.pickup_site) == (Delivery.PICKUP, SITE)


def test_a_submission_over_the_caps_is_never_sent(client: HttpServiceHub, hub: SimHub) -> None:
    big = submission()
    oversized = CaseSubmission(**{
        **big.__dict__, "pages": (ScannedPage("id_card", 1, jpeg(MAX_PAGE_BYTES + 1)),
                                  *big.pages[1:]),
    })  # fmt: skip
    with pytest.raises(ValueError, match="larger than"):
        client.submit_case(oversized)
    # Nine pages of a whole megabyte: each within its cap, all over the body's.
    heavy = CaseSubmission(**{
        **big.__dict__,
        "pages": tuple(ScannedPage("id_card", n, jpeg(MAX_PAGE_BYTES)) for n in range(1, 10)),
    })  # fmt: skip
    with pytest.raises(ValueError, match="larger than"):
        client.submit_case(heavy)
    naive = CaseSubmission(**{**big.__dict__, "submitted_at": dt.datetime(2025, 3, 3, 9, 40)})
    with pytest.raises(ValueError, match="timezone"):
        client.submit_case(naive)
    assert hub.cases() == []


def test_a_submissions_deadline_grows_with_its_size(hub: SimHub) -> None:
    # At 1 MB/s the 2.5 MB body earns 2.5 s on top of the 0.5 s every call has: a hub holding
    # the answer for 1 s is then waited for, though an errand would have given up.
    client = HttpServiceHub(hub.url, timeout_s=0.5, upload_bytes_per_s=1_000_000)
    hub.set_fault("slow", delay_s=1.0)
    assert client.submit_case(submission(page_size=500_000)).case_number == "SB20250303000001"
    with pytest.raises(HubUnavailable):
        client.delivery_address(PERSON)
    # And it still ends: held longer than the scaled deadline, it gives up at that deadline.
    hub.set_fault("slow", delay_s=10.0)
    started = time.monotonic()
    with pytest.raises(HubUnavailable, match="timed out"):
        client.submit_case(submission("T-0042-20250303-0002", page_size=500_000))
    assert 2.5 < time.monotonic() - started < 4.0
    client.close()


# --- progress --------------------------------------------------------------------------------


def test_progress_by_case_number_and_by_reference_moves_with_the_clock(
    client: HttpServiceHub, hub: SimHub
) -> None:
    accepted = client.submit_case(submission())
    progress = client.case_progress(accepted.case_number)
    assert progress.status is CaseStatus.RECEIVED
    assert progress.case_number == accepted.case_number
    assert progress.item_id == "resident_pension_enrollment"
    assert progress.received_on == dt.date(2025, 3, 3)
    assert progress.promised_by == dt.date(2025, 3, 10)
    hub.advance(HOUR)
    assert client.case_progress(accepted.reference).status is CaseStatus.ACCEPTED
    hub.advance(6 * 24 * HOUR)
    delivered = client.case_progress(accepted.reference)
    assert delivered.status is CaseStatus.DELIVERED
    assert delivered.updated_at <= hub.now()
    assert delivered.case_number == accepted.case_number


def test_an_unknown_case_is_case_unknown(client: HttpServiceHub) -> None:
    for reference in ("SB20250303999999", "T-0042-never-sent", "../health", ""):
        with pytest.raises(CaseUnknown) as caught:
            client.case_progress(reference)
        assert caught.value.reason == "case_unknown"


def test_a_deferred_material_holds_the_case_until_it_comes(
    client: HttpServiceHub, hub: SimHub
) -> None:
    accepted = client.submit_case(submission(photo=MaterialOutcome.DEFERRED))
    hub.advance(10 * 24 * HOUR)
    assert client.case_progress(accepted.case_number).status is CaseStatus.AWAITING_MATERIALS
    hub.supply_materials(accepted.case_number)
    hub.advance(10 * 24 * HOUR)
    assert client.case_progress(accepted.case_number).status is CaseStatus.DELIVERED


def test_a_residents_cases_newest_first(client: HttpServiceHub, hub: SimHub) -> None:
    assert client.cases_of(PERSON) == ()
    first = client.submit_case(submission())
    hub.advance(HOUR)
    second = client.submit_case(submission("T-0042-20250303-0002"))
    cases = client.cases_of(PERSON)
    assert [c.case_number for c in cases] == [second.case_number, first.case_number]
    assert [c.status for c in cases] == [CaseStatus.RECEIVED, CaseStatus.ACCEPTED]
    assert client.cases_of(OTHER) == ()


# --- appointments ----------------------------------------------------------------------------


def test_slots_booking_listing_and_cancelling(client: HttpServiceHub, hub: SimHub) -> None:
    slots = client.slots(SERVICE, SITE, TUESDAY)
    assert len(slots) == 12
    assert (slots[0].start, slots[0].end, slots[0].day) == (dt.time(9), dt.time(9, 30), TUESDAY)
    slot = a_free_slot(client)
    booked = client.book(PERSON, SERVICE, SITE, slot.slot_id)
    assert booked == Appointment(booked.appointment_id, booked.code, SERVICE, SITE, TUESDAY,
                                 slot.start, slot.end)  # fmt: skip
    assert next(s for s in client.slots(SERVICE, SITE, TUESDAY) if s.slot_id == slot.slot_id)\
        .free == slot.free - 1  # fmt: skip
    assert client.book(PERSON, SERVICE, SITE, slot.slot_id) == booked  # a retry: the same one
    assert client.appointments_of(PERSON) == (booked,)

    client.cancel(PERSON, booked.appointment_id)
    client.cancel(PERSON, booked.appointment_id)  # idempotent
    assert client.appointments_of(PERSON) == ()
    assert next(s for s in client.slots(SERVICE, SITE, TUESDAY) if s.slot_id == slot.slot_id)\
        == slot  # fmt: skip


def test_a_site_in_chinese_travels_in_the_query(client: HttpServiceHub) -> None:
    site = "塘下镇便民服务中心"
    slot = a_free_slot_at(client, site)
    assert client.book(PERSON, SERVICE, site, slot.slot_id).site_id == site


def a_free_slot_at(client: HttpServiceHub, site: str) -> Any:
    return next(slot for slot in client.slots(SERVICE, site, TUESDAY) if slot.free > 0)


def test_a_full_slot_is_slot_taken(client: HttpServiceHub, hub: SimHub) -> None:
    slot = a_free_slot(client)
    hub.fill_slot(SERVICE, SITE, TUESDAY, slot.start)
    with pytest.raises(SlotTaken) as caught:
        client.book(PERSON, SERVICE, SITE, slot.slot_id)
    assert caught.value.reason == "slot_taken"
    assert_nothing_personal_in(caught.value, PERSON)


def test_two_terminals_confirming_the_last_place_one_wins(hub: SimHub) -> None:
    adapters = [HttpServiceHub(hub.url, timeout_s=5.0) for _ in range(2)]
    slot = a_free_slot(adapters[0])
    hub.fill_slot(SERVICE, SITE, TUESDAY, slot.start, leave=1)
    outcomes: list[object] = []
    ready = threading.Barrier(2)

    def confirm(adapter: HttpServiceHub, person: str) -> None:
        ready.wait()
        try:
            outcomes.append(adapter.book(person, SERVICE, SITE, slot.slot_id))
        except SlotTaken as taken:
            outcomes.append(taken)

    threads = [threading.Thread(target=confirm, args=(a, p))
               for a, p in zip(adapters, (PERSON, OTHER), strict=True)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    for adapter in adapters:
        adapter.close()
    assert sorted(type(o).__name__ for o in outcomes) == ["Appointment", "SlotTaken"]
    assert len(hub.appointments()) == 1


def test_booking_refusals(client: HttpServiceHub) -> None:
    first, second = [s for s in client.slots(SERVICE, SITE, TUESDAY) if s.free > 0][:2]
    client.book(PERSON, SERVICE, SITE, first.slot_id)
    # One per service per day: its own reason, so the screen can say so.
    with pytest.raises(ErrandRefused) as caught:
        client.book(PERSON, SERVICE, SITE, second.slot_id)
    assert caught.value.reason == "already_booked"
    with pytest.raises(ErrandRefused) as caught:
        client.book(OTHER, SERVICE, SITE, "20250308-0900")  # a Saturday
    assert caught.value.reason == "refused"
    deceased = next(p for p in SPECIAL_PEOPLE.values() if p.refusal == DECEASED)
    with pytest.raises(ErrandRefused) as caught:
        client.book(deceased.id_number, SERVICE, SITE, second.slot_id)
    assert caught.value.reason == DECEASED
    with pytest.raises(ErrandRefused) as caught:
        client.cancel(OTHER, "YY20250303000001")  # not theirs
    assert caught.value.reason == "refused"
    assert_nothing_personal_in(caught.value, OTHER)


# --- reports ---------------------------------------------------------------------------------


def test_a_report_is_filed_once_however_often_it_is_sent(
    client: HttpServiceHub, hub: SimHub
) -> None:
    filed = client.file_report(report())
    assert filed.reference == "T-0042-R-0001"
    assert filed.hub_reference == "BC20250303000001"
    assert filed.callback_by == dt.datetime(2025, 3, 4, 17, 0, tzinfo=CHINA_STANDARD_TIME)
    assert client.file_report(report()) == filed
    assert len(hub.reports()) == 1
    assert client.file_report(report("T-0042-R-0002", phone="", item_id="")).hub_reference == (
        "BC20250303000002"
    )


def test_a_report_the_hub_will_not_take_is_final(client: HttpServiceHub) -> None:
    with pytest.raises(ErrandRefused) as caught:
        client.file_report(report(phone="12345"))
    assert caught.value.reason == "refused"
    with pytest.raises(ValueError, match="timezone"):
        client.file_report(report(filed_at=dt.datetime(2025, 3, 3, 9, 40)))


# --- the hub in trouble, for every call ------------------------------------------------------

CALLS: dict[str, Callable[[HttpServiceHub], object]] = {
    "delivery_address": lambda c: c.delivery_address(PERSON),
    "submit_case": lambda c: c.submit_case(submission()),
    "case_progress": lambda c: c.case_progress("SB20250303000001"),
    "cases_of": lambda c: c.cases_of(PERSON),
    "slots": lambda c: c.slots(SERVICE, SITE, TUESDAY),
    "book": lambda c: c.book(PERSON, SERVICE, SITE, "20250304-0900"),
    "appointments_of": lambda c: c.appointments_of(PERSON),
    "cancel": lambda c: c.cancel(PERSON, "YY20250303000001"),
    "file_report": lambda c: c.file_report(report()),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_every_call_is_unavailable_when_the_hub_is_down_or_failing(
    hub: SimHub, call: Callable[[HttpServiceHub], object]
) -> None:
    client = HttpServiceHub(hub.url, timeout_s=1.0)
    hub.set_fault("down")
    started = time.monotonic()
    with pytest.raises(HubUnavailable) as caught:
        call(client)
    assert time.monotonic() - started < 1.0
    assert_nothing_personal_in(caught.value, PERSON, PHONE)
    hub.set_fault("error")
    with pytest.raises(HubUnavailable):
        call(client)
    client.close()


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_every_call_gives_up_at_its_deadline_when_the_hub_is_slow(
    hub: SimHub, call: Callable[[HttpServiceHub], object]
) -> None:
    client = HttpServiceHub(hub.url, timeout_s=0.4, upload_bytes_per_s=1e9)
    hub.set_fault("slow", delay_s=5.0)
    started = time.monotonic()
    with pytest.raises(HubUnavailable, match="timed out"):
        call(client)
    assert 0.3 < time.monotonic() - started < 1.2
    client.close()


def test_nothing_personal_reaches_the_logs(
    client: HttpServiceHub, hub: SimHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    accepted = client.submit_case(submission())
    client.case_progress(accepted.reference)
    client.cases_of(PERSON)
    client.delivery_address(PERSON)
    slot = a_free_slot(client)
    appointment = client.book(PERSON, SERVICE, SITE, slot.slot_id)
    client.appointments_of(PERSON)
    client.cancel(PERSON, appointment.appointment_id)
    client.file_report(report())
    with pytest.raises(ErrandRefused):
        client.submit_case(submission("T-0042-x", id_number=next(iter(SPECIAL_PEOPLE))))
    hub.set_fault("down")
    with pytest.raises(HubUnavailable):
        client.cases_of(PERSON)
    ours = [r.getMessage() for r in caplog.records if r.name == "terminal.hub_client"]
    assert ours
    address = delivery_address(PERSON)
    assert address is not None
    for value in (PERSON, PHONE, address, next(iter(SPECIAL_PEOPLE))):
        assert value not in caplog.text  # httpx's and httpcore's lines included
    # The adapter's own lines name the call, not the path (a case number, an appointment id).
    assert not any("/v1/" in line for line in ours)


# --- answers that are not the hub's ----------------------------------------------------------


class _Fixed(BaseHTTPRequestHandler):
    """Answers every request with the server's one canned (status, body)."""

    server: _FixedServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815  # http.server's names


class _FixedServer(ThreadingHTTPServer):
    daemon_threads = True
    answer: tuple[int, bytes] = (200, b"{}")


@pytest.fixture
def fixed() -> Iterator[tuple[_FixedServer, HttpServiceHub]]:
    server = _FixedServer(("127.0.0.1", 0), _Fixed)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    adapter = HttpServiceHub(f"http://127.0.0.1:{server.server_address[1]}", timeout_s=2.0)
    try:
        yield server, adapter
    finally:
        adapter.close()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


_PROGRESS = (b'{"case_number": "SB1", "reference": "R1", "item_id": "x", "status": "%s",'
             b' "received_on": "2025-03-03", "updated_at": "%s"}')  # fmt: skip
_NOON = b"2025-03-03T09:40:00Z"
_ACCEPTED = (b'{"reference": "%s", "case_number": "SB1", "authority": "x",'
             b' "received_at": "%s"}')  # fmt: skip


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        (CALLS["delivery_address"], (200, b'{"address": 42}')),
        (CALLS["delivery_address"], (200, b"{}")),  # the key is required, null is not absence
        (CALLS["submit_case"], (201, _ACCEPTED % (b"another", b"2025-03-03T09:40:00+08:00"))),
        (CALLS["submit_case"], (201, _ACCEPTED % (b"T-0042-20250303-0001", b"2025-03-03T09:40"))),
        (lambda c: c.case_progress("R1"), (200, _PROGRESS % (b"queued", _NOON))),
        (lambda c: c.case_progress("R1"), (200, _PROGRESS % (b"lost", _NOON))),
        (lambda c: c.case_progress("R2"), (200, _PROGRESS % (b"accepted", _NOON))),
        (CALLS["slots"], (200, b'{"slots": [{"slot_id": "a", "day": "2025-03-05", "start": "09:00",'
                               b' "end": "09:30", "free": 1}]}')),
        (CALLS["slots"], (200, b'{"slots": [{"slot_id": "a", "day": "2025-03-04", "start": "09:00",'
                               b' "end": "09:30", "free": -1}]}')),
        (CALLS["book"], (201, b'{"appointment_id": "1", "code": "c", "service_id": "other",'
                              b' "site_id": "ruian-tangxia", "day": "2025-03-04", "start": "09:00",'
                              b' "end": "09:30"}')),
        (CALLS["file_report"], (201, b'{"reference": "T-0042-R-0001", "hub_reference": "B",'
                                     b' "callback_by": "tomorrow"}')),
        (CALLS["cancel"], (404, b"<html>not found</html>")),  # a proxy, not the hub
        (CALLS["cases_of"], (415, b'{"error": "unsupported_media_type"}')),
    ],
)  # fmt: skip
def test_an_answer_the_terminal_cannot_use_is_bad_answer(
    fixed: tuple[_FixedServer, HttpServiceHub],
    call: Callable[[HttpServiceHub], object],
    answer: tuple[int, bytes],
) -> None:
    server, adapter = fixed
    server.answer = answer
    with pytest.raises(HubError) as caught:
        call(adapter)
    assert caught.value.reason == "bad_answer"
    assert not isinstance(caught.value, ErrandRefused | HubUnavailable)


def test_a_well_formed_progress_from_elsewhere_is_read(
    fixed: tuple[_FixedServer, HttpServiceHub],
) -> None:
    server, adapter = fixed
    # A case lodged at a window has no terminal reference; the hub may omit what is optional.
    server.answer = (
        200,
        b'{"case_number": "SB1", "item_id": "x", "status": "in_review",'
        b' "received_on": "2025-03-03", "updated_at": "2025-03-03T01:40:00Z"}',
    )
    progress = adapter.case_progress("SB1")
    assert progress.status is CaseStatus.IN_REVIEW
    assert progress.promised_by is None
    assert progress.updated_at == dt.datetime(2025, 3, 3, 1, 40, tzinfo=dt.UTC)


def test_only_a_positive_upload_rate_is_accepted() -> None:
    with pytest.raises(ValueError, match="upload_bytes_per_s"):
        HttpServiceHub("http://127.0.0.1:1", upload_bytes_per_s=0)


def test_people_with_and_without_an_address_exist_among_the_test_people() -> None:
    # The fixtures above rely on these two facts of the synthetic records.
    assert delivery_address(PERSON) is not None
    assert delivery_address(NO_ADDRESS) is None
    assert with_check(PERSON[:17]) == PERSON
