"""Applications and 办不成事 reports: sealed on disk first, sent to the hub, deleted once confirmed.

``lodge`` (an application with its pages) and ``lodge_report`` give the item the terminal's own
reference, ``L-<terminal>-<yyyymmdd>-<nnnn>`` (the hub's idempotency key and what a receipt prints
while no case number is known), seal it into a file (``terminal.sealed_store``: AES-GCM, fsynced,
renamed into place) and only then try the hub, for at most ``send_now_s``. The answer tells the
truth for the receipt: ``accepted`` / ``filed`` when the hub answered in time, else queued under
the local reference. A ``submission-sender`` thread sends what is queued, oldest first, with
backoff while the hub is down, and deletes each item once the hub confirmed it.

Files, not the SQLite outbox: pages can be megabytes, which would go through SQLite's page cache
and WAL twice; one file per item is written once and deleted whole. Beside them, a small SQLite
index (no personal data) keeps the reference counter and which local reference became which
case number, so a queued receipt's reference is understood here after it was sent.

What happens to an item that cannot go:

- The hub refuses it for good (``flows.hub.FINAL_REFUSALS``): it moves, still sealed, to the
  ``refused`` shelf for a technician and ``on_set_aside`` hears of it; it is not retried.
- It cannot be opened (cut short, altered, another key): it moves to the ``unreadable`` shelf,
  likewise; nothing is ever deleted unread.
- The disk cannot take it (less than the record and ``reserve_bytes`` free): ``lodge`` raises
  ``QueueRefused`` with reason ``disk_full`` and nothing of the item is left behind.

Nothing personal reaches a log line or an exception message: references, kinds, reasons, sizes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from devices.base import DeviceState
from flows.clock import CHINA_ZONE
from flows.hub import (
    FINAL_REFUSALS,
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
    Report,
    ReportFiled,
    ScannedPage,
)
from terminal.sealed_store import (
    FreeBytes,
    RecordFile,
    RecordUnreadable,
    SealedStore,
    Sealer,
    StorageRefused,
)
from terminal.sqlite_store import (
    StoreDamaged,
    StoreError,
    StoreUnavailable,
    classify,
    free_bytes,
    open_store,
    set_aside,
    write_transaction,
)

log = logging.getLogger(__name__)

CASE = "case"
REPORT = "report"
REFUSED_SHELF = "refused"
UNREADABLE_SHELF = "unreadable"
RECORDS_DIR = "submissions"
INDEX_FILE = "submissions.sqlite"
SEND_NOW_S = 5.0  # how long a resident waits for the hub before the receipt says "queued"
# Kept free beside the records: the outbox, the logs and SQLite's journals need room to work.
RESERVE_BYTES = 32 * 1024 * 1024
# How long the index remembers which reference became which case number: longer than any
# promised date, so a receipt can be looked up until the case is long decided.
KEEP_DAYS = 400
# When the index had to be made anew while records of earlier runs exist, today's numbers start
# past this, so no reference is handed out twice (a repeated reference would be taken by the hub
# as the earlier item sent again, and this one lost).
RENUMBER_JUMP = 1000
_REFERENCE = re.compile(r"L-(?P<terminal>[A-Za-z0-9][A-Za-z0-9._:-]*)-(?P<day>\d{8})-(?P<n>\d{4,})")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lodged (
    reference   TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,    -- case | report
    item_id     TEXT NOT NULL,    -- the catalogue item; nothing personal
    received_at TEXT NOT NULL,    -- ISO 8601 in UTC
    answer      TEXT,             -- the case number (or the hub's report reference) once sent
    sent_at     TEXT,             -- ISO 8601 in UTC
    set_aside   TEXT              -- why it was kept aside (a stable code), if it was
);
CREATE TABLE IF NOT EXISTS reference_days (
    day  TEXT PRIMARY KEY,        -- yyyymmdd in the terminal's zone
    last INTEGER NOT NULL
);
"""


class QueueRefused(Exception):
    """The item could not be stored, so it was not taken; ``reason``: ``disk_full``,
    ``too_large``, ``io_error``, ``read_only``, ``locked`` (as the storage said)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"submission not stored ({reason})")
        self.reason = reason


@dataclass(frozen=True)
class Lodged:
    """An application as lodged: sent (the hub's answer) or stored and queued (``accepted`` is
    None): then the receipt prints ``reference`` and says the application is queued."""

    reference: str
    accepted: CaseAccepted | None

    @property
    def queued(self) -> bool:
        return self.accepted is None

    @property
    def case_number(self) -> str | None:
        return self.accepted.case_number if self.accepted else None


@dataclass(frozen=True)
class ReportLodged:
    """A 办不成事 report as lodged: filed (the hub's answer) or stored and queued."""

    reference: str
    filed: ReportFiled | None

    @property
    def queued(self) -> bool:
        return self.filed is None


@dataclass(frozen=True)
class Backlog:
    """The queue for heartbeats: items waiting, the oldest's age, and items kept aside."""

    pending: int
    oldest_age_s: float | None
    set_aside: int


@dataclass(frozen=True)
class SetAside:
    """An item kept aside for a technician; ``reason`` is a refusal or unreadability code."""

    reference: str
    kind: str
    reason: str


class SubmissionHub(Protocol):
    """The two calls of ``flows.hub.ApplicationHub`` the queue makes."""

    def submit_case(self, submission: CaseSubmission) -> CaseAccepted: ...

    def file_report(self, report: Report) -> ReportFiled: ...


@dataclass(frozen=True)
class _Item:
    kind: str
    reference: str
    value: CaseSubmission | Report


@dataclass(frozen=True)
class _Sent:
    answer: CaseAccepted | ReportFiled


@dataclass(frozen=True)
class _Refused:
    error: HubError


@dataclass(frozen=True)
class _Later:
    hub_down: bool  # True: stop this round (the hub, or its adapter, is not there)


_Outcome = _Sent | _Refused | _Later


class SubmissionQueue:
    """Thread-safe. Build it once; ``start()`` the sender; ``close()`` at the end.

    ``directory``: the terminal's data directory (records in ``submissions/``, the index in
    ``submissions.sqlite``). ``now``: aware wall time, for the index's timestamps.
    """

    def __init__(
        self,
        directory: Path,
        hub: SubmissionHub,
        sealer: Sealer,
        *,
        terminal_id: str,
        now: Callable[[], dt.datetime],
        zone: dt.tzinfo = CHINA_ZONE,
        send_now_s: float = SEND_NOW_S,
        retry_min_s: float = 2.0,
        retry_max_s: float = 120.0,
        reserve_bytes: int = RESERVE_BYTES,
        free: FreeBytes = free_bytes,
        on_set_aside: Callable[[SetAside], None] | None = None,
    ) -> None:
        self._hub = hub
        self._terminal_id = terminal_id
        self._now = now
        self._zone = zone
        self._send_now_s = send_now_s
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._reserve_bytes = reserve_bytes
        self._free = free
        self.on_set_aside = on_set_aside
        self._lock = threading.Lock()  # the index connection and the fields below
        self._in_flight: set[str] = set()
        self._unrecorded: dict[str, tuple[str, str]] = {}  # sent, the index not yet told
        self._last_refusal: str | None = None  # why the last item could not be stored
        self._refused_bytes = 0  # and how big it was
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        records_dir = directory / RECORDS_DIR
        earlier_records = records_dir.exists()
        self._records = SealedStore(records_dir, sealer, reserve_bytes=reserve_bytes, free=free)
        self._index_path = directory / INDEX_FILE
        self._db: sqlite3.Connection | None = None
        self._db_problem: str | None = None
        # A new index beside records of earlier runs: numbers of today may have been used.
        self._jump = RENUMBER_JUMP if earlier_records and not self._index_path.exists() else 0
        with self._lock:
            self._connect()

    # --- lodging -------------------------------------------------------------------------------

    def lodge(self, submission: CaseSubmission) -> Lodged:
        """Store an application (fsynced) under a new local reference, then try the hub for up
        to ``send_now_s``. QueueRefused when it cannot be stored; the hub's final refusal
        (ErrandRefused) when it refused at once (the item is then kept aside, not queued)."""
        self._check_new(submission.reference, submission.terminal_id)
        reference = self._reserve(CASE, submission.item_id, submission.submitted_at)
        numbered = dataclasses.replace(submission, reference=reference)
        item = _Item(CASE, reference, numbered)
        self._store(item, encode_case(numbered))
        answer = self._send_now(item)
        assert answer is None or isinstance(answer, CaseAccepted)
        return Lodged(reference, answer)

    def lodge_report(self, report: Report) -> ReportLodged:
        """As ``lodge``, for a 办不成事 report."""
        self._check_new(report.reference, report.terminal_id)
        reference = self._reserve(REPORT, report.item_id, report.filed_at)
        numbered = dataclasses.replace(report, reference=reference)
        item = _Item(REPORT, reference, numbered)
        self._store(item, encode_report(numbered))
        answer = self._send_now(item)
        assert answer is None or isinstance(answer, ReportFiled)
        return ReportLodged(reference, answer)

    def _check_new(self, reference: str, terminal_id: str) -> None:
        if reference:
            raise ValueError("the queue gives the reference: lodge with reference=''")
        if terminal_id != self._terminal_id:
            raise ValueError("lodged for another terminal")

    def _reserve(self, kind: str, item_id: str, at: dt.datetime) -> str:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("a lodged item needs an aware time")
        day = at.astimezone(self._zone).strftime("%Y%m%d")
        with self._lock:
            db = self._database()
            try:
                with write_transaction(db):
                    row = db.execute("SELECT last FROM reference_days WHERE day = ?",
                                     (day,)).fetchone()
                    number = max(int(row[0]) if row else 0, self._floor(day)) + 1
                    reference = f"L-{self._terminal_id}-{day}-{number:04d}"
                    db.execute("INSERT INTO reference_days (day, last) VALUES (?, ?) "
                               "ON CONFLICT (day) DO UPDATE SET last = excluded.last",
                               (day, number))
                    db.execute("INSERT INTO lodged (reference, kind, item_id, received_at) "
                               "VALUES (?, ?, ?, ?)", (reference, kind, item_id, _utc(at)))
            except sqlite3.Error as error:
                raise self._refuse(classify(error, self._index_path.parent).reason) from None
        return reference

    def _floor(self, day: str) -> int:
        """Past any number of ``day`` in a record file, and past the jump after a new index."""
        used = [int(m["n"]) for r in self._all_record_files()
                if (m := _REFERENCE.fullmatch(r.record_id)) and m["day"] == day]
        return max([self._jump, *used])

    def _store(self, item: _Item, plaintext: bytes) -> None:
        """Write the sealed item durably, claimed for the attempt that follows: the sender
        must not pick it up meanwhile and send it a second time."""
        self._claim(item.reference)
        try:
            self._records.put(item.kind, item.reference, plaintext)
        except StorageRefused as error:
            self._release(item.reference)
            with self._lock:
                self._execute("DELETE FROM lodged WHERE reference = ?", (item.reference,))
                raise self._refuse(error.reason, len(plaintext)) from None
        except BaseException:
            self._release(item.reference)
            raise
        with self._lock:
            self._last_refusal = None

    def _refuse(self, reason: str, size: int = 1024 * 1024) -> QueueRefused:
        log.error("a submission could not be stored (%s); it was not taken", reason)
        self._last_refusal = reason
        self._refused_bytes = size
        return QueueRefused(reason)

    def _send_now(self, item: _Item) -> CaseAccepted | ReportFiled | None:
        """The hub's answer if it came within ``send_now_s``; None: queued (the attempt may
        still finish in the background, as the sender would have). ``item`` is claimed."""
        outcome: list[_Outcome] = []
        done = threading.Event()

        def attempt() -> None:
            try:
                outcome.append(self._deliver(item))
            finally:
                self._release(item.reference)
                done.set()

        threading.Thread(target=attempt, name="submission-now", daemon=True).start()
        if done.wait(self._send_now_s) and outcome:
            result = outcome[0]
            if isinstance(result, _Sent):
                return result.answer
            if isinstance(result, _Refused):
                raise result.error
        self._wake.set()  # queued: the sender takes it from here
        return None

    # --- sending -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="submission-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def close(self) -> None:
        self.stop()
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def flush(self) -> int:
        """Send what is queued now, oldest first; return how many are still waiting. Stops at
        the first sign the hub is down; skips items another thread is sending."""
        with self._lock:
            self._record_unrecorded()
        for record in self._queued_oldest_first():
            if self._stop.is_set():
                break
            if not self._claim(record.record_id):
                continue
            try:
                item = self._load(record)
                outcome: _Outcome | None = self._deliver(item) if item else None
            finally:
                self._release(record.record_id)
            if isinstance(outcome, _Later) and outcome.hub_down:
                break
        return len(self._records.records())

    def _run(self) -> None:
        delay = self._retry_min_s
        while not self._stop.is_set():
            try:
                left = self.flush()
            except Exception:  # the disk or the index failing: try again later
                log.exception("submission queue failed; retrying")
                left = -1
            if left == 0:
                delay = self._retry_min_s
                self._wake.wait()
            else:
                # The hub (or the disk) is unwell: back off, but wake at once for a new item.
                self._wake.wait(delay)
                delay = min(delay * 2, self._retry_max_s)
            self._wake.clear()

    def _claim(self, reference: str) -> bool:
        with self._lock:
            if reference in self._in_flight:
                return False
            self._in_flight.add(reference)
            return True

    def _release(self, reference: str) -> None:
        with self._lock:
            self._in_flight.discard(reference)

    def _queued_oldest_first(self) -> list[RecordFile]:
        return sorted(self._records.records(), key=_order)

    def _load(self, record: RecordFile) -> _Item | None:
        """The queued item, or None when it is gone (sent meanwhile) or had to be set aside."""
        try:
            plaintext = self._records.get(record.kind, record.record_id)
        except FileNotFoundError:
            return None
        except RecordUnreadable as error:
            log.error("queued %s cannot be opened: %s", record.kind, error)
            self._set_aside(record.kind, record.record_id, UNREADABLE_SHELF, error.reason)
            return None
        try:
            value: CaseSubmission | Report = (
                decode_case(plaintext) if record.kind == CASE else decode_report(plaintext))
            if value.reference != record.record_id:
                raise ValueError("the record names another reference")
        except (ValueError, KeyError, TypeError, struct.error):
            log.error("queued %s %s does not decode; kept aside", record.kind, record.record_id)
            self._set_aside(record.kind, record.record_id, UNREADABLE_SHELF, "undecodable")
            return None
        return _Item(record.kind, record.record_id, value)

    def _deliver(self, item: _Item) -> _Outcome:
        """One attempt at the hub; the item is deleted when confirmed, set aside when refused."""
        answer: CaseAccepted | ReportFiled
        try:
            if isinstance(item.value, CaseSubmission):
                answer = self._hub.submit_case(item.value)
            else:
                answer = self._hub.file_report(item.value)
        except HubUnavailable:
            return _Later(hub_down=True)
        except HubError as error:
            if error.reason not in FINAL_REFUSALS:
                log.warning("hub error for %s %s (%s); retried later",
                            item.kind, item.reference, error.reason)
                return _Later(hub_down=False)
            self._set_aside(item.kind, item.reference, REFUSED_SHELF, error.reason)
            return _Refused(error)
        except Exception as error:
            # Our side failing (the adapter cannot be built, a bad CA file): nothing about this
            # item is wrong, so it waits. Only the type is logged: a message could quote data.
            log.error("sending %s %s failed (%s); it stays queued",
                      item.kind, item.reference, type(error).__name__)
            return _Later(hub_down=True)
        if answer.reference != item.reference:
            log.error("the hub answered %s %s for another reference", item.kind, item.reference)
            self._set_aside(item.kind, item.reference, REFUSED_SHELF, "bad_answer")
            return _Refused(ErrandRefused("answer for another reference", reason="bad_answer"))
        number = answer.case_number if isinstance(answer, CaseAccepted) else answer.hub_reference
        with self._lock:
            self._unrecorded[item.reference] = (number, _utc(self._now()))
            self._record_unrecorded()
        self._records.delete(item.kind, item.reference)  # confirmed: nothing personal stays
        log.info("%s %s sent", item.kind, item.reference)
        return _Sent(answer)

    def _set_aside(self, kind: str, reference: str, shelf: str, reason: str) -> None:
        try:
            self._records.set_aside(kind, reference, shelf)
        except FileNotFoundError:
            return  # moved or sent by another thread meanwhile
        log.warning("%s %s kept aside on the %s shelf (%s)", kind, reference, shelf, reason)
        with self._lock:
            self._execute("UPDATE lodged SET set_aside = ? WHERE reference = ?",
                          (reason, reference))
        if self.on_set_aside is not None:
            try:
                self.on_set_aside(SetAside(reference, kind, reason))
            except Exception:  # a listener's bug must not stop the queue
                log.exception("set-aside listener failed")

    def _record_unrecorded(self) -> None:
        """Tell the index which references were sent (again, after the index refused once)."""
        for reference, (number, sent_at) in list(self._unrecorded.items()):
            if self._execute("UPDATE lodged SET answer = ?, sent_at = ? WHERE reference = ?",
                             (number, sent_at, reference)):
                del self._unrecorded[reference]

    # --- looking up and reporting --------------------------------------------------------------

    def lookup(self, reference: str) -> CaseProgress | None:
        """A case of this terminal by its local reference: QUEUED while it waits here, RECEIVED
        with the case number once the hub took it, NOT_SUBMITTED once it was kept aside (the
        hub refused it, or it could not be read back); None for anything else (not ours, a
        report, forgotten)."""
        match = _REFERENCE.fullmatch(reference)
        if match is None or match["terminal"] != self._terminal_id:
            return None
        with self._lock:
            rows = self._query("SELECT kind, item_id, received_at, answer, sent_at, set_aside "
                               "FROM lodged WHERE reference = ?", (reference,))
            unrecorded = self._unrecorded.get(reference)
        kind, item_id, received_at, answer, sent_at, aside = (
            rows[0] if rows else (CASE, "", None, None, None, None))
        if kind != CASE:
            return None
        if unrecorded is not None:
            answer, sent_at = unrecorded
        received_on = dt.datetime.strptime(match["day"], "%Y%m%d").date()
        if answer:
            return CaseProgress(case_number=str(answer), item_id=str(item_id),
                                status=CaseStatus.RECEIVED, received_on=received_on,
                                updated_at=dt.datetime.fromisoformat(str(sent_at)))
        if aside:
            # A receipt with this reference is in someone's hands: "unknown" would send them
            # back to the terminal; this sends them to a window, where staff find it aside.
            updated = (dt.datetime.fromisoformat(str(received_at)) if received_at
                       else dt.datetime.combine(received_on, dt.time(), self._zone))
            return CaseProgress(case_number=reference, item_id=str(item_id),
                                status=CaseStatus.NOT_SUBMITTED, received_on=received_on,
                                updated_at=updated)
        if self._records.exists(CASE, reference):
            updated = (dt.datetime.fromisoformat(str(received_at)) if received_at
                       else dt.datetime.combine(received_on, dt.time(), self._zone))
            return CaseProgress(case_number=reference, item_id=str(item_id),
                                status=CaseStatus.QUEUED, received_on=received_on,
                                updated_at=updated)
        return None

    def backlog(self) -> Backlog:
        """Items waiting (both kinds), the oldest's age in seconds, and items kept aside."""
        waiting = self._records.records()
        oldest = min((r.stored_at for r in waiting), default=None)
        kept = sum(len(self._records.records(shelf=s)) for s in (REFUSED_SHELF, UNREADABLE_SHELF))
        return Backlog(pending=len(waiting),
                       oldest_age_s=None if oldest is None else max(0.0, time.time() - oldest),
                       set_aside=kept)

    def health(self) -> DeviceState:
        """For the device monitor: ``fault`` while items cannot be taken (the index's storage
        or a full disk), ``degraded`` while items are kept aside for a technician."""
        with self._lock:
            if self._db is None:
                self._connect()
            problem = self._db_problem
            refusal = self._last_refusal
            refused_bytes = self._refused_bytes
        if problem is not None:
            return DeviceState.fault(problem)
        if refusal == "disk_full":
            # Until an item of that size would fit again (or the next one is stored).
            free = self._free(self._records.directory)
            if free is None or free < self._reserve_bytes + refused_bytes:
                return DeviceState.fault("disk_full")
        if self.backlog().set_aside:
            return DeviceState.degraded("submissions_set_aside")
        return DeviceState.ok()

    # --- the index -----------------------------------------------------------------------------

    def _all_record_files(self) -> list[RecordFile]:
        return [*self._records.records(),
                *self._records.records(shelf=REFUSED_SHELF),
                *self._records.records(shelf=UNREADABLE_SHELF)]

    def _connect(self) -> None:
        """Open the index, or set a damaged one aside and start a new one, or note why not."""
        try:
            db = open_store(self._index_path, _SCHEMA, synchronous="FULL", busy_timeout_s=5.0)
        except StoreDamaged as error:
            log.error("submission index damaged (%s); set aside, numbering jumps ahead", error)
            try:
                set_aside(self._index_path, "damaged")
                db = open_store(self._index_path, _SCHEMA, synchronous="FULL",
                                busy_timeout_s=5.0)
            except (OSError, StoreError) as again:
                self._db_problem = getattr(again, "reason", "io_error")
                return
            self._jump = RENUMBER_JUMP
        except StoreUnavailable as error:
            if self._db_problem != error.reason:
                log.error("submission index unavailable (%s)", error.reason)
            self._db_problem = error.reason
            return
        self._db = db
        self._db_problem = None
        self._tidy()

    def _database(self) -> sqlite3.Connection:
        if self._db is None:
            self._connect()
        if self._db is None:
            raise self._refuse(self._db_problem or "io_error")
        return self._db

    def _tidy(self) -> None:
        """After a crash: delete records the hub had confirmed; forget what is long past."""
        for record in self._records.records():
            rows = self._query("SELECT answer FROM lodged WHERE reference = ?",
                               (record.record_id,))
            if rows and rows[0][0]:
                log.warning("%s %s was confirmed before a stop; deleting it",
                            record.kind, record.record_id)
                self._records.delete(record.kind, record.record_id)
        cutoff = _utc(self._now() - dt.timedelta(days=KEEP_DAYS))
        self._execute("DELETE FROM lodged WHERE received_at < ? AND set_aside IS NULL", (cutoff,))
        oldest_day = (self._now().astimezone(self._zone) - dt.timedelta(days=KEEP_DAYS))
        self._execute("DELETE FROM reference_days WHERE day < ?", (oldest_day.strftime("%Y%m%d"),))

    def _execute(self, sql: str, args: tuple[object, ...]) -> bool:
        """One write to the index; False (logged) when the storage refuses it."""
        if self._db is None:
            return False
        try:
            with write_transaction(self._db):
                self._db.execute(sql, args)
        except sqlite3.Error as error:
            log.error("submission index write failed (%s)",
                      classify(error, self._index_path.parent).reason)
            return False
        return True

    def _query(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        if self._db is None:
            return []
        try:
            return [tuple(row) for row in self._db.execute(sql, args).fetchall()]
        except sqlite3.Error as error:
            log.error("submission index read failed (%s)",
                      classify(error, self._index_path.parent).reason)
            return []


def _utc(when: dt.datetime) -> str:
    # One offset for every stored time, so the index's times compare as strings.
    return when.astimezone(dt.UTC).isoformat()


def _order(record: RecordFile) -> tuple[str, int, str]:
    match = _REFERENCE.fullmatch(record.record_id)
    if match is None:  # not one of ours (never written by this queue): last
        return ("99999999", 0, record.record_id)
    return (match["day"], int(match["n"]), record.record_id)


# --- what is sealed ---------------------------------------------------------------------------
#
# An application: a 4-byte length, a JSON header (every field, and each page's size), then the
# pages' JPEG bytes one after the other; pages are megabytes, and base64 in JSON would add a third.

_LENGTH = struct.Struct(">I")
_FORMAT = 1


def encode_case(submission: CaseSubmission) -> bytes:
    header = {
        "v": _FORMAT,
        "reference": submission.reference,
        "item_id": submission.item_id,
        "id_number": submission.id_number,
        "phone": submission.phone,
        "delivery": submission.delivery.value,
        "pickup_site": submission.pickup_site,
        "materials": [
            {"material_id": m.material_id, "outcome": m.outcome.value, "pages": m.pages,
             "deferred_until": m.deferred_until.isoformat() if m.deferred_until else None}
            for m in submission.materials
        ],
        "pages": [{"material_id": p.material_id, "page": p.page, "bytes": len(p.jpeg)}
                  for p in submission.pages],
        "terminal_id": submission.terminal_id,
        "submitted_at": submission.submitted_at.isoformat(),
    }
    encoded = json.dumps(header, ensure_ascii=False).encode("utf-8")
    return b"".join([_LENGTH.pack(len(encoded)), encoded, *(p.jpeg for p in submission.pages)])


def decode_case(data: bytes) -> CaseSubmission:
    """The inverse of ``encode_case``; ValueError (KeyError, TypeError) for anything else."""
    (length,) = _LENGTH.unpack_from(data)
    header = json.loads(data[_LENGTH.size:_LENGTH.size + length].decode("utf-8"))
    if header["v"] != _FORMAT:
        raise ValueError("unknown record format")
    offset = _LENGTH.size + length
    pages = []
    for page in header["pages"]:
        size = int(page["bytes"])
        pages.append(ScannedPage(str(page["material_id"]), int(page["page"]),
                                 data[offset:offset + size]))
        offset += size
    if offset != len(data):
        raise ValueError("page bytes do not add up")
    materials = tuple(
        MaterialEntry(str(m["material_id"]), MaterialOutcome(m["outcome"]), int(m["pages"]),
                      dt.date.fromisoformat(m["deferred_until"]) if m["deferred_until"] else None)
        for m in header["materials"]
    )
    return CaseSubmission(
        reference=str(header["reference"]),
        item_id=str(header["item_id"]),
        id_number=str(header["id_number"]),
        phone=str(header["phone"]),
        delivery=Delivery(header["delivery"]),
        pickup_site=str(header["pickup_site"]),
        materials=materials,
        pages=tuple(pages),
        terminal_id=str(header["terminal_id"]),
        submitted_at=_aware(header["submitted_at"]),
    )


def encode_report(report: Report) -> bytes:
    return json.dumps({
        "v": _FORMAT,
        "reference": report.reference,
        "problem": report.problem,
        "item_id": report.item_id,
        "phone": report.phone,
        "terminal_id": report.terminal_id,
        "screen": report.screen,
        "filed_at": report.filed_at.isoformat(),
    }, ensure_ascii=False).encode("utf-8")


def decode_report(data: bytes) -> Report:
    fields = json.loads(data.decode("utf-8"))
    if fields["v"] != _FORMAT:
        raise ValueError("unknown record format")
    return Report(
        reference=str(fields["reference"]),
        problem=str(fields["problem"]),
        item_id=str(fields["item_id"]),
        phone=str(fields["phone"]),
        terminal_id=str(fields["terminal_id"]),
        screen=str(fields["screen"]),
        filed_at=_aware(fields["filed_at"]),
    )


def _aware(text: object) -> dt.datetime:
    when = dt.datetime.fromisoformat(str(text))
    if when.tzinfo is None:
        raise ValueError("a stored time lost its zone")
    return when

