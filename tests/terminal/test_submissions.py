"""The submission queue: sealed on disk before the resident is told, sent at once or later, deleted
once the hub confirms, kept aside when refused or unreadable, surviving a kill, refusing a full
disk cleanly, and never writing personal data in clear or into a log.

The hub is a small fake at the port (``ApplicationHub``): the HTTP adapter and the simulated hub
are tested elsewhere, and this fake can be told to be down, slow, refusing or broken.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flows.hub import (
    Appointment,
    CaseAccepted,
    CaseProgress,
    CaseStatus,
    CaseSubmission,
    Delivery,
    ErrandRefused,
    HubError,
    HubUnavailable,
    MaterialEntry,
    MaterialOutcome,
    PostalAddress,
    Report,
    ReportFiled,
    ScannedPage,
    Slot,
)
from terminal.sealed_store import KEY_FILE, Sealer
from terminal.submissions import (
    CASE,
    INDEX_FILE,
    RECORDS_DIR,
    REFUSED_SHELF,
    UNREADABLE_SHELF,
    QueueRefused,
    SetAside,
    SubmissionQueue,
)

TERMINAL = "T-1"
# 09:30 on 7 December 2026 in Beijing.
NOW = dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.UTC)
ID_NUMBER = "110101199003074514"
PHONE = "13812345678"
PERSONAL = (ID_NUMBER, PHONE)


class FakeHub:
    """The ApplicationHub port as the queue uses it: answers as told, counts every call.

    Idempotent on the reference, like the real hub: the case number is derived from it."""

    def __init__(self) -> None:
        self.mode = "up"  # up | down | refuse | error | broken
        self.mode_for: dict[str, str] = {}  # a reference answered otherwise than the rest
        self.delay_s = 0.0
        self.calls: collections.Counter[str] = collections.Counter()
        self.cases: dict[str, CaseSubmission] = {}
        self.reports: dict[str, Report] = {}
        self._lock = threading.Lock()

    def _answer(self, reference: str) -> None:
        with self._lock:
            self.calls[reference] += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        mode = self.mode_for.get(reference, self.mode)
        if mode == "down":
            raise HubUnavailable("hub down")
        if mode == "refuse":
            raise ErrandRefused("not eligible", reason="not_eligible")
        if mode == "error":
            raise HubError("500", reason="hub_error")
        if mode == "broken":  # an adapter bug whose message quotes what it was given
            raise RuntimeError(f"cannot encode {ID_NUMBER} {PHONE}")

    def submit_case(self, submission: CaseSubmission) -> CaseAccepted:
        self._answer(submission.reference)
        self.cases[submission.reference] = submission
        return CaseAccepted(submission.reference, case_number(submission.reference),
                            "县人力资源和社会保障局", NOW)

    def file_report(self, report: Report) -> ReportFiled:
        self._answer(report.reference)
        self.reports[report.reference] = report
        return ReportFiled(report.reference, "R" + report.reference[-4:], NOW)

    # The rest of the port; the queue never calls these.
    def delivery_address(self, id_number: str) -> PostalAddress | None:
        raise NotImplementedError

    def case_progress(self, reference: str) -> CaseProgress:
        raise NotImplementedError

    def cases_of(self, id_number: str) -> tuple[CaseProgress, ...]:
        raise NotImplementedError

    def slots(self, service_id: str, site_id: str, day: dt.date) -> tuple[Slot, ...]:
        raise NotImplementedError

    def book(self, id_number: str, service_id: str, site_id: str, slot_id: str) -> Appointment:
        raise NotImplementedError

    def appointments_of(self, id_number: str) -> tuple[Appointment, ...]:
        raise NotImplementedError

    def cancel(self, id_number: str, appointment_id: str) -> None:
        raise NotImplementedError


def case_number(reference: str) -> str:
    return "SQ2026" + reference.rsplit("-", 1)[-1]


def pages(count: int = 3, size: int = 300_000) -> tuple[ScannedPage, ...]:
    return tuple(ScannedPage("id_card_copy" if n < 2 else "household_register", n + 1,
                             bytes([n + 1]) * 8 + os.urandom(size - 8))
                 for n in range(count))


def submission(at: dt.datetime = NOW, page_count: int = 3,
               page_size: int = 300_000) -> CaseSubmission:
    scanned = pages(page_count, page_size)
    return CaseSubmission(
        reference="",
        item_id="pension_survivor_benefit",
        id_number=ID_NUMBER,
        phone=PHONE,
        delivery=Delivery.MAIL,
        pickup_site="",
        materials=(
            MaterialEntry("id_card_copy", MaterialOutcome.SCANNED, pages=2),
            MaterialEntry("household_register", MaterialOutcome.SCANNED, pages=1),
            MaterialEntry("death_certificate", MaterialOutcome.DEFERRED,
                          deferred_until=dt.date(2026, 12, 21)),
        ),
        pages=scanned[:page_count],
        terminal_id=TERMINAL,
        submitted_at=at,
    )


def report(at: dt.datetime = NOW) -> Report:
    return Report(reference="", problem="no_such_service", item_id="", phone=PHONE,
                  terminal_id=TERMINAL, screen="home.menu", filed_at=at)


class Rig:
    """A queue on a data directory, reopened as the terminal would be after a restart."""

    def __init__(self, root: Path, hub: FakeHub, **options: object) -> None:
        self.root = root
        self.hub = hub
        self.options = options
        self.set_aside: list[SetAside] = []
        self.queue = self.open()

    def open(self) -> SubmissionQueue:
        options: dict[str, object] = {"send_now_s": 2.0, "retry_min_s": 0.02, **self.options}
        queue = SubmissionQueue(self.root, self.hub, Sealer.from_key_file(self.root / KEY_FILE),
                                terminal_id=TERMINAL, now=lambda: NOW,
                                on_set_aside=self.set_aside.append,
                                **options)  # type: ignore[arg-type]
        return queue

    def reopen(self) -> SubmissionQueue:
        self.queue.close()
        self.queue = self.open()
        return self.queue

    def record_files(self, shelf: str = "") -> list[str]:
        base = self.root / RECORDS_DIR / shelf
        return sorted(p.name for p in base.iterdir() if p.is_file()) if base.exists() else []


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub()


@pytest.fixture
def rig(tmp_path: Path, hub: FakeHub) -> Iterator[Rig]:
    made = Rig(tmp_path / "data", hub)
    yield made
    made.queue.close()


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def nothing_personal_in_clear(root: Path, scanned: tuple[ScannedPage, ...] = ()) -> None:
    for path in files_under(root):
        content = path.read_bytes()
        for value in PERSONAL:
            assert value.encode() not in content, path
        for page in scanned:
            assert page.jpeg[:64] not in content, path


# --- sent at once, or queued: the receipt tells the truth ------------------------------------


def test_with_the_hub_up_an_application_is_sent_at_once_and_nothing_stays(rig: Rig) -> None:
    lodged = rig.queue.lodge(submission())
    assert lodged.reference == "L-T-1-20261207-0001"
    assert not lodged.queued
    assert lodged.case_number == case_number(lodged.reference)
    sent = rig.hub.cases[lodged.reference]
    assert [len(p.jpeg) for p in sent.pages] == [300_000] * 3
    assert [p.material_id for p in sent.pages] == ["id_card_copy", "id_card_copy",
                                                   "household_register"]
    assert rig.record_files() == []  # confirmed: deleted
    progress = rig.queue.lookup(lodged.reference)
    assert progress is not None
    assert (progress.case_number, progress.status) == (lodged.case_number, CaseStatus.RECEIVED)
    assert progress.received_on == dt.date(2026, 12, 7)
    nothing_personal_in_clear(rig.root, sent.pages)


def test_the_pages_sent_are_the_pages_lodged_byte_for_byte(rig: Rig) -> None:
    rig.hub.mode = "down"
    lodged_submission = submission()
    lodged = rig.queue.lodge(lodged_submission)
    assert lodged.queued
    rig.hub.mode = "up"
    assert rig.queue.flush() == 0
    sent = rig.hub.cases[lodged.reference]
    assert sent.pages == lodged_submission.pages
    assert sent.materials == lodged_submission.materials
    assert (sent.id_number, sent.phone, sent.submitted_at) == (ID_NUMBER, PHONE, NOW)


def test_with_the_hub_down_it_is_stored_sealed_and_queued_then_sent(rig: Rig) -> None:
    rig.hub.mode = "down"
    lodged_submission = submission()
    lodged = rig.queue.lodge(lodged_submission)
    assert lodged.queued
    assert lodged.case_number is None
    assert rig.record_files() == [f"{lodged.reference}.case"]
    nothing_personal_in_clear(rig.root, lodged_submission.pages)
    progress = rig.queue.lookup(lodged.reference)
    assert progress is not None
    assert (progress.case_number, progress.status) == (lodged.reference, CaseStatus.QUEUED)
    assert progress.item_id == "pension_survivor_benefit"
    backlog = rig.queue.backlog()
    assert backlog.pending == 1
    assert backlog.oldest_age_s is not None
    assert 0 <= backlog.oldest_age_s < 60
    assert rig.queue.flush() == 1  # still down: it waits
    rig.hub.mode = "up"
    assert rig.queue.flush() == 0
    assert rig.record_files() == []
    progress = rig.queue.lookup(lodged.reference)
    assert progress is not None
    assert (progress.case_number, progress.status) == (case_number(lodged.reference),
                                                       CaseStatus.RECEIVED)
    assert rig.queue.backlog().pending == 0
    assert rig.queue.backlog().oldest_age_s is None


def test_a_report_is_queued_and_sent_the_same_way(rig: Rig) -> None:
    rig.hub.mode = "down"
    lodged = rig.queue.lodge_report(report())
    assert lodged.queued
    assert rig.record_files() == [f"{lodged.reference}.report"]
    assert rig.queue.lookup(lodged.reference) is None  # not a case
    rig.hub.mode = "up"
    assert rig.queue.flush() == 0
    assert rig.hub.reports[lodged.reference].phone == PHONE
    filed = rig.queue.lodge_report(report())
    assert filed.filed is not None
    assert filed.filed.reference == filed.reference == "L-T-1-20261207-0002"


def test_a_slow_hub_gets_a_queued_receipt_and_the_late_answer_is_still_used(
    tmp_path: Path, hub: FakeHub
) -> None:
    rig = Rig(tmp_path, hub, send_now_s=0.1)
    try:
        hub.delay_s = 0.5
        lodged = rig.queue.lodge(submission())
        assert lodged.queued  # the resident is not kept waiting, and not told "sent"
        rig.queue.start()  # the sender runs meanwhile: it must not send it a second time
        wait_for(lambda: not rig.record_files())
        progress = rig.queue.lookup(lodged.reference)
        assert progress is not None
        assert progress.status is CaseStatus.RECEIVED
        time.sleep(0.2)
        assert hub.calls[lodged.reference] == 1
    finally:
        rig.queue.close()


# --- references ---------------------------------------------------------------------------------


def test_references_count_per_day_in_the_terminal_zone_and_survive_a_restart(rig: Rig) -> None:
    rig.hub.mode = "down"
    first = rig.queue.lodge(submission(page_count=1, page_size=100)).reference
    second = rig.queue.lodge_report(report()).reference
    # 16:30 UTC is already 8 December in Beijing: a new day, a new count.
    late = dt.datetime(2026, 12, 7, 16, 30, tzinfo=dt.UTC)
    third = rig.queue.lodge(submission(at=late, page_count=1, page_size=100)).reference
    assert (first, second, third) == ("L-T-1-20261207-0001", "L-T-1-20261207-0002",
                                      "L-T-1-20261208-0001")
    rig.reopen()
    assert rig.queue.lodge(submission(page_count=1, page_size=100)).reference == (
        "L-T-1-20261207-0003")


def test_a_lost_index_never_hands_out_a_reference_twice(rig: Rig) -> None:
    rig.queue.lodge(submission(page_count=1, page_size=100))  # sent: only the index knew 0001
    rig.queue.close()
    (rig.root / INDEX_FILE).unlink()
    reference = rig.open().lodge(submission(page_count=1, page_size=100)).reference
    assert reference == "L-T-1-20261207-1001"


def test_a_damaged_index_is_set_aside_and_numbering_jumps_ahead(rig: Rig) -> None:
    rig.hub.mode = "down"
    queued = rig.queue.lodge(submission(page_count=1, page_size=100)).reference
    rig.queue.close()
    (rig.root / INDEX_FILE).write_bytes(b"this is not a database" * 100)
    queue = rig.open()
    rig.queue = queue
    assert queue.lodge(submission(page_count=1, page_size=100)).reference == (
        "L-T-1-20261207-1001")
    assert any(p.name.startswith(f"{INDEX_FILE}.damaged") for p in rig.root.iterdir())
    # The queued item is still known as queued (from its file) and still sent.
    progress = queue.lookup(queued)
    assert progress is not None
    assert progress.status is CaseStatus.QUEUED
    rig.hub.mode = "up"
    assert queue.flush() == 0
    assert set(rig.hub.cases) == {queued, "L-T-1-20261207-1001"}


def test_lookup_understands_only_this_terminals_case_references(rig: Rig) -> None:
    rig.hub.mode = "down"
    rig.queue.lodge(submission(page_count=1, page_size=100))
    assert rig.queue.lookup("L-T-1-20261207-0001") is not None
    for other in ["L-T-2-20261207-0001", "L-T-1-20261207-0002", "SQ20260001", "",
                  "L-T-1-2026120-0001"]:
        assert rig.queue.lookup(other) is None, other


def test_a_reference_given_by_the_caller_or_another_terminal_is_refused(rig: Rig) -> None:
    with pytest.raises(ValueError, match="reference"):
        rig.queue.lodge(dataclasses.replace(submission(), reference="L-T-1-20261207-0099"))
    with pytest.raises(ValueError, match="another terminal"):
        rig.queue.lodge(dataclasses.replace(submission(), terminal_id="T-2"))


# --- refusals and errors ----------------------------------------------------------------------


def test_a_final_refusal_is_kept_aside_sealed_reported_and_not_retried(rig: Rig) -> None:
    rig.hub.mode = "down"
    refused = rig.queue.lodge(submission(page_count=1, page_size=1000)).reference
    fine = rig.queue.lodge(submission(page_count=1, page_size=1000)).reference
    rig.hub.mode = "up"
    rig.hub.mode_for[refused] = "refuse"
    assert rig.queue.flush() == 0
    assert set(rig.hub.cases) == {fine}  # the refused one did not block the other
    assert rig.record_files(REFUSED_SHELF) == [f"{refused}.case"]
    assert rig.set_aside == [SetAside(refused, CASE, "not_eligible")]
    nothing_personal_in_clear(rig.root)
    asked = rig.hub.calls[refused]
    rig.queue.flush()
    assert rig.hub.calls[refused] == asked  # never again
    # Its receipt is in someone's hands: a lookup says where to go, not "unknown".
    progress = rig.queue.lookup(refused)
    assert progress is not None and progress.status is CaseStatus.NOT_SUBMITTED
    assert progress.case_number == refused
    assert rig.queue.backlog().set_aside == 1
    assert rig.queue.health().reason == "submissions_set_aside"


def test_a_refusal_at_once_reaches_the_caller_and_the_item_is_kept_aside(rig: Rig) -> None:
    rig.hub.mode = "refuse"
    with pytest.raises(ErrandRefused) as refused:
        rig.queue.lodge(submission(page_count=1, page_size=1000))
    assert refused.value.reason == "not_eligible"
    assert rig.record_files() == []
    assert rig.record_files(REFUSED_SHELF) == ["L-T-1-20261207-0001.case"]
    assert rig.set_aside == [SetAside("L-T-1-20261207-0001", CASE, "not_eligible")]


def test_a_passing_hub_error_keeps_the_item_queued_and_the_next_one_goes(rig: Rig) -> None:
    rig.hub.mode = "down"
    first = rig.queue.lodge(submission(page_count=1, page_size=100)).reference
    second = rig.queue.lodge(submission(page_count=1, page_size=100)).reference
    rig.hub.mode = "up"
    rig.hub.mode_for[first] = "error"
    assert rig.queue.flush() == 1
    assert set(rig.hub.cases) == {second}
    assert rig.record_files() == [f"{first}.case"]
    del rig.hub.mode_for[first]
    assert rig.queue.flush() == 0


def test_an_adapter_failure_keeps_it_queued_and_logs_nothing_personal(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig.hub.mode = "broken"
    lodged = rig.queue.lodge(submission(page_count=1, page_size=100))
    assert lodged.queued
    assert rig.queue.flush() == 1
    assert "RuntimeError" in caplog.text
    for value in PERSONAL:
        assert value not in caplog.text


# --- crash safety ------------------------------------------------------------------------------

_KILLED_CHILD = textwrap.dedent("""
    import datetime as dt, os, signal, sys
    sys.path.insert(0, sys.argv[2])
    from test_submissions import FakeHub, Rig, submission, report
    from pathlib import Path
    hub = FakeHub()
    hub.mode = "down"
    rig = Rig(Path(sys.argv[1]), hub)
    print(rig.queue.lodge(submission()).reference, flush=True)
    print(rig.queue.lodge_report(report()).reference, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no close, no clean stop: as a power cut's process
""")


def test_a_queue_killed_after_lodging_still_sends_everything_when_reopened(
    tmp_path: Path, hub: FakeHub
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_CHILD, str(tmp_path), str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    case_reference, report_reference = done.stdout.split()
    rig = Rig(tmp_path, hub)
    try:
        progress = rig.queue.lookup(case_reference)
        assert progress is not None
        assert progress.status is CaseStatus.QUEUED
        assert rig.queue.flush() == 0
        assert set(hub.cases) == {case_reference}
        assert set(hub.reports) == {report_reference}
        assert len(hub.cases[case_reference].pages) == 3
        assert rig.queue.lodge(submission(page_count=1, page_size=100)).reference == (
            "L-T-1-20261207-0003")
    finally:
        rig.queue.close()


def test_a_record_confirmed_just_before_a_crash_is_deleted_at_the_next_start(rig: Rig) -> None:
    rig.hub.mode = "down"
    reference = rig.queue.lodge(submission(page_count=1, page_size=100)).reference
    rig.queue.close()
    # The index was told it was sent; the crash came before the file was deleted.
    with sqlite3.connect(rig.root / INDEX_FILE) as db:
        db.execute("UPDATE lodged SET answer = 'SQ1', sent_at = ? WHERE reference = ?",
                   (NOW.isoformat(), reference))
    queue = rig.open()
    rig.queue = queue
    assert rig.record_files() == []
    progress = queue.lookup(reference)
    assert progress is not None
    assert progress.case_number == "SQ1"


def test_half_written_and_cut_short_records_are_detected_not_sent_and_kept(rig: Rig) -> None:
    rig.hub.mode = "down"
    whole = rig.queue.lodge(submission(page_count=1, page_size=1000)).reference
    cut = rig.queue.lodge(submission(page_count=2, page_size=100_000)).reference
    rig.queue.close()
    records = rig.root / RECORDS_DIR
    # A write that never reached its rename (the resident was never told "stored") ...
    (records / ".L-T-1-20261207-0003.case.tmp").write_bytes(b"KSR1" + b"\0" * 500)
    # ... and a stored record the storage cut short afterwards.
    path = records / f"{cut}.case"
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 3)
    queue = rig.open()
    rig.queue = queue
    assert not (records / ".L-T-1-20261207-0003.case.tmp").exists()
    rig.hub.mode = "up"
    assert queue.flush() == 0
    assert set(rig.hub.cases) == {whole}
    assert rig.record_files(UNREADABLE_SHELF) == [f"{cut}.case"]
    assert rig.set_aside == [SetAside(cut, CASE, "auth_failed")]


# --- tamper and keys ---------------------------------------------------------------------------


def test_a_flipped_byte_or_swapped_records_fail_authentication_and_are_kept(rig: Rig) -> None:
    rig.hub.mode = "down"
    a = rig.queue.lodge(submission(page_count=1, page_size=1000)).reference
    b = rig.queue.lodge(submission(page_count=1, page_size=1000)).reference
    c = rig.queue.lodge(submission(page_count=1, page_size=1000)).reference
    records = rig.root / RECORDS_DIR
    flipped = bytearray((records / f"{a}.case").read_bytes())
    flipped[100] ^= 0x01
    (records / f"{a}.case").write_bytes(bytes(flipped))
    # b and c trade places: each is whole and sealed under this key, but not under that name.
    os.rename(records / f"{b}.case", records / "swap")
    os.rename(records / f"{c}.case", records / f"{b}.case")
    os.rename(records / "swap", records / f"{c}.case")
    rig.hub.mode = "up"
    assert rig.queue.flush() == 0
    assert rig.hub.cases == {}
    assert rig.record_files(UNREADABLE_SHELF) == sorted(f"{r}.case" for r in (a, b, c))
    assert {(s.reference, s.reason) for s in rig.set_aside} == {
        (a, "auth_failed"), (b, "auth_failed"), (c, "auth_failed")}
    assert rig.queue.health().reason == "submissions_set_aside"


def test_records_sealed_under_a_lost_key_are_kept_for_a_technician(rig: Rig) -> None:
    rig.hub.mode = "down"
    reference = rig.queue.lodge(submission(page_count=1, page_size=1000)).reference
    rig.queue.close()
    (rig.root / KEY_FILE).unlink()  # lost: the next start makes a new one
    queue = rig.open()
    rig.queue = queue
    rig.hub.mode = "up"
    assert queue.flush() == 0
    assert rig.hub.cases == {}
    assert rig.record_files(UNREADABLE_SHELF) == [f"{reference}.case"]
    assert rig.set_aside == [SetAside(reference, CASE, "wrong_key")]


def test_a_key_file_others_can_read_stops_the_queue_from_being_built(rig: Rig) -> None:
    rig.queue.close()
    (rig.root / KEY_FILE).chmod(0o644)
    from terminal.sealed_store import KeyFileRefused  # noqa: PLC0415

    with pytest.raises(KeyFileRefused, match="0644"):
        rig.open()


# --- a full disk -------------------------------------------------------------------------------


def test_too_little_free_space_refuses_cleanly_with_disk_full(tmp_path: Path, hub: FakeHub) -> None:
    free = {"bytes": 10 * 1024 * 1024}
    rig = Rig(tmp_path, hub, reserve_bytes=1024 * 1024, free=lambda _p: free["bytes"])
    try:
        hub.mode = "down"
        kept = rig.queue.lodge(submission(page_count=3, page_size=1_000_000)).reference
        free["bytes"] = 3 * 1024 * 1024  # 3 MB of pages and 1 MB of reserve do not fit
        with pytest.raises(QueueRefused) as refused:
            rig.queue.lodge(submission(page_count=3, page_size=1_000_000))
        assert refused.value.reason == "disk_full"
        for value in PERSONAL:
            assert value not in str(refused.value)
        assert rig.record_files() == [f"{kept}.case"]  # nothing half-written beside it
        assert rig.queue.lookup("L-T-1-20261207-0002") is None
        assert rig.queue.health().reason == "disk_full"
        assert hub.calls["L-T-1-20261207-0002"] == 0  # never sent what it could not keep
        free["bytes"] = 100 * 1024 * 1024
        assert rig.queue.health().reason == ""
        assert rig.queue.lodge(submission(page_count=1, page_size=100)).reference == (
            "L-T-1-20261207-0003")
    finally:
        rig.queue.close()


_FULL_DISK_CHILD = textwrap.dedent("""
    import json, subprocess, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from test_submissions import FakeHub, Rig, submission
    from terminal.submissions import QueueRefused
    mount = Path(sys.argv[1])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    found = {}
    hub = FakeHub()
    hub.mode = "down"
    rig = Rig(mount / "data", hub, reserve_bytes=0)
    found["kept"] = rig.queue.lodge(submission(page_count=1, page_size=1_000_000)).reference
    try:  # refused by the free-space check, before a byte is written
        rig.queue.lodge(submission(page_count=2, page_size=1_200_000))
        found["checked"] = "stored"
    except QueueRefused as e:
        found["checked"] = e.reason
    # The check fooled (it thinks there is room): the write itself meets the full disk.
    rig.queue.close()
    blind = Rig(mount / "data", hub, reserve_bytes=0, free=lambda _p: 1 << 40)
    try:
        blind.queue.lodge(submission(page_count=2, page_size=1_200_000))
        found["written"] = "stored"
    except QueueRefused as e:
        found["written"] = e.reason
    found["files"] = sorted(p.name for p in (mount / "data" / "submissions").iterdir())
    hub.mode = "up"
    found["left"] = blind.queue.flush()
    found["sent"] = sorted(hub.cases)
    found["pages_intact"] = [len(p.jpeg) for c in hub.cases.values() for p in c.pages]
    found["next"] = blind.queue.lodge(submission(page_count=1, page_size=100)).reference
    blind.queue.close()
    print(json.dumps(found))
""")


def test_a_real_full_disk_refuses_with_disk_full_and_leaves_no_partial_record(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a private tmpfs needs root and unshare (CI runs as root)")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-c",
         _FULL_DISK_CHILD, str(mountpoint), str(Path(__file__).parent)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["checked"] == "disk_full"
    assert found["written"] == "disk_full"
    assert found["files"] == [f"{found['kept']}.case"]  # no temporary, no partial record
    assert found["left"] == 0
    assert found["sent"] == [found["kept"]]
    assert found["pages_intact"] == [1_000_000]
    # 0002 was refused by the free-space check, 0003 by the write itself (its number had been
    # taken, so the index was writable: the disk refused the record's bytes).
    assert found["next"] == "L-T-1-20261207-0004"


# --- concurrency -------------------------------------------------------------------------------


def test_lodging_from_many_threads_while_the_sender_runs_sends_each_exactly_once(
    tmp_path: Path, hub: FakeHub
) -> None:
    rig = Rig(tmp_path, hub, send_now_s=0.0)
    hub.delay_s = 0.005
    rig.queue.start()
    references: list[str] = []
    lock = threading.Lock()

    def resident(n: int) -> None:
        for i in range(8):
            if (n + i) % 3 == 0:
                lodged_reference = rig.queue.lodge_report(report()).reference
            else:
                lodged_reference = rig.queue.lodge(
                    submission(page_count=1, page_size=2000)).reference
            with lock:
                references.append(lodged_reference)

    try:
        threads = [threading.Thread(target=resident, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(references)) == 32
        wait_for(lambda: set(hub.cases) | set(hub.reports) == set(references))
        wait_for(lambda: rig.queue.backlog().pending == 0)
        time.sleep(0.1)
        assert all(count == 1 for count in hub.calls.values()), hub.calls
        assert rig.record_files() == []
        assert sorted(references) == [f"L-T-1-20261207-{n:04d}" for n in range(1, 33)]
    finally:
        rig.queue.close()


def test_the_sender_thread_delivers_what_waited_through_an_outage(
    tmp_path: Path, hub: FakeHub
) -> None:
    rig = Rig(tmp_path, hub)
    try:
        hub.mode = "down"
        reference = rig.queue.lodge(submission(page_count=1, page_size=100)).reference
        rig.queue.start()
        time.sleep(0.1)
        assert rig.queue.backlog().pending == 1
        hub.mode = "up"
        wait_for(lambda: reference in hub.cases)
        wait_for(lambda: rig.queue.backlog().pending == 0)
    finally:
        rig.queue.close()


# --- the session's scans ----------------------------------------------------------------------


def test_pages_of_a_queued_application_survive_the_sessions_wipe(rig: Rig) -> None:
    # The session's pages are the intake flow's (flows/intake.py, wiped with the session); the
    # queue's sealed copy is what stays.
    expected = pages(3, 50_000)
    rig.hub.mode = "down"
    lodged = rig.queue.lodge(dataclasses.replace(submission(), pages=expected))
    nothing_personal_in_clear(rig.root, expected)
    rig.hub.mode = "up"
    assert rig.queue.flush() == 0
    assert rig.hub.cases[lodged.reference].pages == expected


def test_nothing_personal_reaches_the_index_or_the_logs(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig.hub.mode = "down"
    rig.queue.lodge(submission(page_count=1, page_size=1000))
    rig.queue.lodge_report(report())
    rig.hub.mode = "refuse"
    rig.queue.flush()
    rig.hub.mode = "up"
    rig.queue.lodge(submission(page_count=1, page_size=1000))
    rig.queue.close()
    nothing_personal_in_clear(rig.root)
    assert caplog.records  # it did log: sent, kept aside
    for value in PERSONAL:
        assert value not in caplog.text
