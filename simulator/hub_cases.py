"""The simulated hub's case desk: applications with scanned pages, their progress, a resident's
cases (docs/hub-api.yaml: POST /v1/cases, GET /v1/cases/{case_ref}, POST /v1/residents/cases).

A submission is multipart/form-data: a JSON part ``submission`` with the fields, then one
``image/jpeg`` part ``page`` per scanned page, in the order the submission's ``pages`` lists them.
It is checked whole before anything is stored: the item is one the hub knows, the person valid
and not refused, every required material scanned or (where allowed) deferred, every page listed,
a JPEG, within the caps and matching its SHA-256. The case is stored under the terminal's
``reference``: sending it again returns the same case (200) instead of a second one (201).

What is kept: the case row (the holder as a salted hash, the phone masked), one row per material,
and the pages as files under the hub's data directory (``<db stem>-pages/<case number>/``), which
a real platform would keep too. Progress is read off the case's timeline (``hub_progress``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import shutil
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.identifiers import SITE_PATTERN
from flows.hub import CaseStatus, Delivery, MaterialOutcome
from simulator.hub_calendar import add_working_days
from simulator.hub_db import HubDatabase, next_case_number
from simulator.hub_items import ApplicationItem
from simulator.hub_multipart import Part, boundary_of, parse_form
from simulator.hub_progress import Pace, Timeline, pace_for
from simulator.hub_records import (
    HOME_PLACE,
    delivery_address,
    processing_authority,
    refusal_for,
)
from simulator.hub_wire import (
    MAX_JSON_BYTES,
    Answer,
    Request,
    RequestError,
    aware_datetime,
    body_refused,
    error,
    id_number,
    identifier,
    iso,
    iso_date,
    masked_phone,
    reference,
    refuse,
    text,
)
from simulator.json_body import BodyRefused, parse_json_object

# What the hub takes in one submission. A page is a cropped, compressed A4 scan (the terminal
# aims at ~500 KB); ten such pages and the JSON fit the body cap with room to spare.
MAX_PAGES = 32
MAX_PAGE_BYTES = 1024 * 1024
MAX_CASE_BYTES = 8 * 1024 * 1024
MAX_MATERIALS = 32
MAX_DEFERRAL_DAYS = 90  # 容缺: the promise to bring a material runs weeks, not years
_PHONE = re.compile(r"1[3-9][0-9]{9}")
_SITE = re.compile(SITE_PATTERN)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_JPEG_START = b"\xff\xd8\xff"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_number TEXT PRIMARY KEY,
    reference TEXT NOT NULL UNIQUE,
    item_id TEXT NOT NULL,
    authority TEXT NOT NULL,
    holder_hash TEXT NOT NULL,
    phone_masked TEXT NOT NULL,
    delivery TEXT NOT NULL,
    pickup_site TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    promised_by TEXT NOT NULL,
    awaits_materials INTEGER NOT NULL,
    materials_supplied_at TEXT,
    rejected INTEGER NOT NULL DEFAULT 0,
    accept_after_s INTEGER NOT NULL,
    review_after_s INTEGER NOT NULL,
    decide_after_s INTEGER NOT NULL,
    deliver_after_s INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS cases_by_holder ON cases (holder_hash);
CREATE TABLE IF NOT EXISTS case_materials (
    case_number TEXT NOT NULL,
    material_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    pages INTEGER NOT NULL,
    deferred_until TEXT,
    PRIMARY KEY (case_number, material_id));
CREATE TABLE IF NOT EXISTS case_pages (
    case_number TEXT NOT NULL,
    material_id TEXT NOT NULL,
    page INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    file TEXT NOT NULL,
    PRIMARY KEY (case_number, material_id, page));
"""

_CASE_COLUMNS = (
    "case_number, reference, item_id, authority, phone_masked, delivery, pickup_site,"
    " terminal_id, received_at, promised_by, awaits_materials, materials_supplied_at, rejected,"
    " accept_after_s, review_after_s, decide_after_s, deliver_after_s"
)


@dataclass(frozen=True)
class StoredMaterial:
    material_id: str
    outcome: MaterialOutcome
    pages: int
    deferred_until: dt.date | None


@dataclass(frozen=True)
class StoredPage:
    material_id: str
    page: int
    size: int
    sha256: str
    path: Path


@dataclass(frozen=True)
class SimCase:
    """A case as the hub holds it, for tests and the control panel; nothing that names anyone."""

    case_number: str
    reference: str
    item_id: str
    authority: str
    status: CaseStatus
    received_at: dt.datetime
    updated_at: dt.datetime
    promised_by: dt.date
    delivery: Delivery
    pickup_site: str
    terminal_id: str
    phone_masked: str
    materials: tuple[StoredMaterial, ...]
    pages: tuple[StoredPage, ...]


@dataclass(frozen=True)
class _Material:
    material_id: str
    outcome: MaterialOutcome
    pages: int
    deferred_until: dt.date | None


@dataclass(frozen=True, repr=False)
class _Page:
    material_id: str
    page: int
    sha256: str
    jpeg: bytes


@dataclass(frozen=True, repr=False)
class _Submission:
    reference: str
    item: ApplicationItem
    id_number: str
    phone: str
    delivery: Delivery
    pickup_site: str
    materials: tuple[_Material, ...]
    pages: tuple[_Page, ...]
    terminal_id: str
    submitted_at: dt.datetime


_INVALID = error(422, "invalid_submission", "a submission field is missing or not valid")


class CaseDesk:
    """Submissions, progress and a resident's cases, over the hub's database and clock."""

    def __init__(
        self,
        db: HubDatabase,
        *,
        items: Mapping[str, ApplicationItem],
        now: Callable[[], dt.datetime],
        pages_dir: Path,
    ) -> None:
        self._db = db
        self._items = items
        self._now = now
        self._pages_dir = pages_dir
        db.schema(_SCHEMA)

    # --- the API ---------------------------------------------------------------------------

    def submit(self, request: Request) -> Answer:
        """POST /v1/cases: 201 with a new case, 200 with the case this reference already made."""
        try:
            boundary = boundary_of(request.content_type)
        except BodyRefused as refusal:
            raise body_refused(refusal) from None
        raw = request.read_body(MAX_CASE_BYTES)
        try:
            parts = parse_form(raw, boundary, max_parts=MAX_PAGES + 1)
        except BodyRefused as refusal:
            raise body_refused(refusal) from None
        submission = self._read_submission(parts)
        holder_hash = self._db.holder_hash(submission.id_number)
        received_at = self._now().replace(microsecond=0)
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT item_id, holder_hash, case_number FROM cases WHERE reference = ?",
                (submission.reference,),
            ).fetchone()
            if row is not None:
                if (row[0], row[1]) != (submission.item.item_id, holder_hash):
                    raise refuse(
                        409, "reference_conflict", "this reference names another submission"
                    )
                return Answer(200, self._accepted(db, str(row[2])) | {"status": "duplicate"})
            case_number = self._store(db, submission, holder_hash, received_at)
            return Answer(201, self._accepted(db, case_number) | {"status": "created"})

    def progress(self, case_ref: str) -> Answer:
        """GET /v1/cases/{case_ref}: by case number or by the terminal's reference."""
        with self._db.transaction() as db:
            row = db.execute(
                f"SELECT {_CASE_COLUMNS} FROM cases WHERE case_number = ? OR reference = ?",
                (case_ref, case_ref),
            ).fetchone()
        if row is None:
            raise refuse(404, "case_unknown", "no case has this number or reference")
        return Answer(200, self._progress_body(row))

    def of_resident(self, request: Request) -> Answer:
        """POST /v1/residents/cases: the resident's cases, newest first."""
        body = request.json()
        person = id_number(body, error(400, "bad_request", "id_number is required"))
        holder_hash = self._db.holder_hash(person)
        with self._db.transaction() as db:
            rows = db.execute(
                f"SELECT {_CASE_COLUMNS} FROM cases WHERE holder_hash = ?"
                " ORDER BY received_at DESC, case_number DESC LIMIT 100",
                (holder_hash,),
            ).fetchall()
        return Answer(200, {"cases": [self._progress_body(row) for row in rows]})

    def item_of(self, case_number: str) -> str | None:
        """The item a case was lodged for, or None if this hub holds no such case."""
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT item_id FROM cases WHERE case_number = ?", (case_number,)
            ).fetchone()
        return None if row is None else str(row[0])

    # --- control (tests, the control panel) -------------------------------------------------

    def cases(self) -> list[SimCase]:
        """Every case, in the order received."""
        with self._db.transaction() as db:
            rows = db.execute(f"SELECT {_CASE_COLUMNS} FROM cases ORDER BY rowid").fetchall()
            materials = db.execute(
                "SELECT case_number, material_id, outcome, pages, deferred_until"
                " FROM case_materials ORDER BY rowid"
            ).fetchall()
            pages = db.execute(
                "SELECT case_number, material_id, page, size, sha256, file FROM case_pages"
                " ORDER BY rowid"
            ).fetchall()
        stored_materials: dict[str, list[StoredMaterial]] = {}
        for m in materials:
            deferred_until = None if m[4] is None else dt.date.fromisoformat(m[4])
            stored_materials.setdefault(m[0], []).append(
                StoredMaterial(m[1], MaterialOutcome(m[2]), m[3], deferred_until)
            )
        stored_pages: dict[str, list[StoredPage]] = {}
        for page in pages:
            stored_pages.setdefault(page[0], []).append(
                StoredPage(page[1], page[2], page[3], page[4], self._pages_dir / page[5])
            )
        now = self._now()
        found = []
        for row in rows:
            status, updated_at = _timeline(row).status_at(now)
            found.append(
                SimCase(
                    case_number=row[0],
                    reference=row[1],
                    item_id=row[2],
                    authority=row[3],
                    status=status,
                    received_at=dt.datetime.fromisoformat(row[8]),
                    updated_at=updated_at,
                    promised_by=dt.date.fromisoformat(row[9]),
                    delivery=Delivery(row[5]),
                    pickup_site=row[6],
                    terminal_id=row[7],
                    phone_masked=row[4],
                    materials=tuple(stored_materials.get(row[0], ())),
                    pages=tuple(stored_pages.get(row[0], ())),
                )
            )
        return found

    def supply_materials(self, case_number: str) -> None:
        """The deferred materials of a case arrived (at the window): its review can start."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "UPDATE cases SET materials_supplied_at = ?"
                " WHERE case_number = ? AND awaits_materials = 1 AND materials_supplied_at IS NULL",
                (iso(self._now()), case_number),
            )
            if cursor.rowcount == 0 and not _exists(db, case_number):
                raise KeyError(case_number)

    def reject_case(self, case_number: str) -> None:
        """Staff will decide against this case: it ends at ``rejected`` when decided."""
        with self._db.transaction() as db:
            if db.execute(
                "UPDATE cases SET rejected = 1 WHERE case_number = ?", (case_number,)
            ).rowcount == 0:
                raise KeyError(case_number)

    # --- reading a submission ---------------------------------------------------------------

    def _read_submission(self, parts: list[Part]) -> _Submission:
        if not parts or parts[0].name != "submission":
            raise refuse(400, "bad_request", "the first part must be the JSON part 'submission'")
        if parts[0].content_type != "application/json":
            raise refuse(400, "bad_request", "the part 'submission' must be application/json")
        if any(part.name != "page" for part in parts[1:]):
            raise refuse(400, "bad_request", "parts after 'submission' must all be named 'page'")
        try:
            body = parse_json_object(parts[0].data, max_bytes=MAX_JSON_BYTES)
        except BodyRefused as refusal:
            raise body_refused(refusal) from None
        case_reference = reference(body, "reference", _INVALID)
        item_id = body.get("item_id")
        item = self._items.get(item_id) if isinstance(item_id, str) else None
        if item is None:
            raise refuse(404, "unknown_errand", "no application item has this id")
        person = id_number(body, _INVALID)
        received_on = self._now().date()
        refused_for = refusal_for(person, received_on)
        if refused_for is not None:
            raise refuse(409, refused_for, f"submission refused: {refused_for}")
        phone = body.get("phone")
        if not isinstance(phone, str) or not _PHONE.fullmatch(phone):
            raise refuse(422, "invalid_submission", "phone must be an 11-digit mobile number")
        delivery, pickup_site = _delivery(body)
        if delivery is Delivery.MAIL and delivery_address(person) is None:
            raise refuse(422, "no_address", "no address on record for mail delivery")
        materials = _materials(body, item, received_on)
        pages = _pages(body, parts[1:], materials)
        return _Submission(
            reference=case_reference,
            item=item,
            id_number=person,
            phone=phone,
            delivery=delivery,
            pickup_site=pickup_site,
            materials=materials,
            pages=pages,
            terminal_id=identifier(body, "terminal_id", _INVALID),
            submitted_at=aware_datetime(body, "submitted_at", _INVALID),
        )

    # --- storing ----------------------------------------------------------------------------

    def _store(
        self,
        db: sqlite3.Connection,
        submission: _Submission,
        holder_hash: str,
        received_at: dt.datetime,
    ) -> str:
        item = submission.item
        case_number = next_case_number(db, received_at.strftime("%Y%m%d"))
        pace = pace_for(submission.reference, item.time_limit_working_days)
        promised_by = add_working_days(received_at.date(), item.time_limit_working_days)
        awaits = any(m.outcome is MaterialOutcome.DEFERRED for m in submission.materials)
        db.execute(
            "INSERT INTO cases (case_number, reference, item_id, authority, holder_hash,"
            " phone_masked, delivery, pickup_site, terminal_id, submitted_at, received_at,"
            " promised_by, awaits_materials, accept_after_s, review_after_s, decide_after_s,"
            " deliver_after_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (case_number, submission.reference, item.item_id,
             processing_authority(item.department_id, submission.id_number), holder_hash,
             masked_phone(submission.phone), submission.delivery.value, submission.pickup_site,
             submission.terminal_id, iso(submission.submitted_at), iso(received_at),
             promised_by.isoformat(), int(awaits), pace.accept_after_s, pace.review_after_s,
             pace.decide_after_s, pace.deliver_after_s),
        )  # fmt: skip
        db.executemany(
            "INSERT INTO case_materials VALUES (?, ?, ?, ?, ?)",
            [
                (case_number, m.material_id, m.outcome.value, m.pages,
                 None if m.deferred_until is None else m.deferred_until.isoformat())
                for m in submission.materials
            ],
        )  # fmt: skip
        folder = self._pages_dir / case_number
        # A folder left by a case whose transaction rolled back holds nothing anyone refers to.
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for index, page in enumerate(submission.pages, start=1):
            name = f"{index:02d}.jpg"  # never the material id: it came from the request
            (folder / name).write_bytes(page.jpeg)
            db.execute(
                "INSERT INTO case_pages VALUES (?, ?, ?, ?, ?, ?)",
                (case_number, page.material_id, page.page, len(page.jpeg), page.sha256,
                 f"{case_number}/{name}"),
            )  # fmt: skip
        return case_number

    def _accepted(self, db: sqlite3.Connection, case_number: str) -> dict[str, Any]:
        row = db.execute(
            "SELECT reference, case_number, authority, received_at, item_id, promised_by"
            " FROM cases WHERE case_number = ?",
            (case_number,),
        ).fetchone()
        return {
            "reference": row[0],
            "case_number": row[1],
            "authority": row[2],
            # 异地通办: decided by an authority outside the county that received it.
            "cross_region": not str(row[2]).startswith(HOME_PLACE),
            "received_at": row[3],
            "item_id": row[4],
            "promised_by": row[5],
        }

    def _progress_body(self, row: tuple[Any, ...]) -> dict[str, Any]:
        status, updated_at = _timeline(row).status_at(self._now())
        return {
            "case_number": row[0],
            "reference": row[1],
            "item_id": row[2],
            "status": status.value,
            "received_on": dt.datetime.fromisoformat(row[8]).date().isoformat(),
            "updated_at": iso(updated_at),
            "promised_by": row[9],
        }


def _timeline(row: tuple[Any, ...]) -> Timeline:
    """A case row (``_CASE_COLUMNS``) as its timeline."""
    return Timeline(
        received_at=dt.datetime.fromisoformat(row[8]),
        promised_by=dt.date.fromisoformat(row[9]),
        pace=Pace(row[13], row[14], row[15], row[16]),
        awaits_materials=bool(row[10]),
        materials_supplied_at=None if row[11] is None else dt.datetime.fromisoformat(row[11]),
        rejected=bool(row[12]),
    )


def _exists(db: sqlite3.Connection, case_number: str) -> bool:
    found = db.execute("SELECT 1 FROM cases WHERE case_number = ?", (case_number,)).fetchone()
    return found is not None


def _delivery(body: Mapping[str, Any]) -> tuple[Delivery, str]:
    try:
        delivery = Delivery(str(body.get("delivery")))
    except ValueError:
        raise RequestError(_INVALID) from None
    site = body.get("pickup_site")
    if not isinstance(site, str):
        raise RequestError(_INVALID)
    if delivery is Delivery.PICKUP and not _SITE.fullmatch(site):
        raise refuse(422, "invalid_submission", "pickup needs a pickup_site")
    if delivery is Delivery.MAIL and site:
        raise refuse(422, "invalid_submission", "pickup_site is only for pickup")
    return delivery, site


def _materials(
    body: Mapping[str, Any], item: ApplicationItem, received_on: dt.date
) -> tuple[_Material, ...]:
    raw = body.get("materials")
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_MATERIALS:
        raise RequestError(_INVALID)
    materials: list[_Material] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise RequestError(_INVALID)
        material_id = identifier(entry, "material_id", _INVALID)
        try:
            outcome = MaterialOutcome(str(entry.get("outcome")))
        except ValueError:
            raise RequestError(_INVALID) from None
        pages = entry.get("pages")
        if type(pages) is not int or not 0 <= pages <= MAX_PAGES:  # bool is an int
            raise RequestError(_INVALID)
        if (outcome is MaterialOutcome.SCANNED) != (pages > 0):
            raise refuse(422, "invalid_submission", "a scanned material has pages, others none")
        deferred_until = None
        if outcome is MaterialOutcome.DEFERRED:
            deferred_until = iso_date(entry.get("deferred_until"), _INVALID)
            if not received_on < deferred_until <= received_on + dt.timedelta(MAX_DEFERRAL_DAYS):
                raise refuse(
                    422, "invalid_submission",
                    f"deferred_until must be within {MAX_DEFERRAL_DAYS} days from tomorrow",
                )  # fmt: skip
        elif entry.get("deferred_until") is not None:
            raise RequestError(_INVALID)
        if item.material(material_id) is None or any(
            m.material_id == material_id for m in materials
        ):
            raise refuse(422, "invalid_submission", "a material is unknown or listed twice")
        materials.append(_Material(material_id, outcome, pages, deferred_until))
    given = {m.material_id: m.outcome for m in materials}
    for rule in item.materials:
        given_as = given.get(rule.material_id)
        missing = given_as is None and not rule.optional
        bad_deferral = given_as is MaterialOutcome.DEFERRED and not rule.deferrable
        bad_skip = given_as is MaterialOutcome.NOT_APPLICABLE and not rule.optional
        if missing or bad_deferral or bad_skip:
            # 容缺 covers only what the guide marks deferrable; the rest must be there.
            raise refuse(422, "materials_incomplete", "a required material is missing")
    return tuple(materials)


def _pages(
    body: Mapping[str, Any], parts: list[Part], materials: tuple[_Material, ...]
) -> tuple[_Page, ...]:
    listed = body.get("pages")
    if not isinstance(listed, list) or len(listed) != len(parts):
        raise refuse(422, "invalid_submission", "pages must list every page part, in order")
    pages: list[_Page] = []
    for index, (entry, part) in enumerate(zip(listed, parts, strict=True), start=1):
        if not isinstance(entry, dict):
            raise RequestError(_INVALID)
        material_id = identifier(entry, "material_id", _INVALID)
        number = entry.get("page")
        digest = text(entry, "sha256", _INVALID)
        if type(number) is not int or not 1 <= number <= MAX_PAGES or not _SHA256.fullmatch(
            digest
        ):
            raise RequestError(_INVALID)
        if part.content_type != "image/jpeg" or not part.data.startswith(_JPEG_START):
            raise refuse(422, "invalid_submission", f"page part {index} is not a JPEG")
        if len(part.data) > MAX_PAGE_BYTES:
            raise refuse(
                413, "too_large", f"page part {index} is larger than {MAX_PAGE_BYTES} bytes"
            )
        if hashlib.sha256(part.data).hexdigest() != digest:
            raise refuse(422, "invalid_submission", f"page part {index} does not match its sha256")
        pages.append(_Page(material_id, number, digest, part.data))
    for material in materials:
        numbers = sorted(p.page for p in pages if p.material_id == material.material_id)
        if numbers != list(range(1, material.pages + 1)):
            raise refuse(422, "invalid_submission", "pages do not match the materials' counts")
    if len(pages) != sum(m.pages for m in materials):
        raise refuse(422, "invalid_submission", "a page belongs to no scanned material")
    return tuple(pages)
