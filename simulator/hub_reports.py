"""The simulated hub's 办不成事 desk: reports of what could not be done, and when staff call back.

A report is stored under the terminal's ``reference``; sending it again answers the stored one
(200) instead of filing a second (201). The hub promises a call back by 17:00 on the first
working day after the day it received the report ("within one working day"). Of the phone it
keeps only the masked form: nobody calls anyone from a simulator.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simulator.hub_calendar import add_working_days
from simulator.hub_db import HubDatabase, next_number
from simulator.hub_wire import (
    Answer,
    Request,
    RequestError,
    aware_datetime,
    error,
    identifier,
    is_identifier,
    iso,
    masked_phone,
    reference,
    text,
)

CALLBACK_TIME = dt.time(17, 0)
_PHONE = re.compile(r"1[3-9][0-9]{9}")
_SCREEN_CHARS = 128

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    reference TEXT PRIMARY KEY,
    hub_reference TEXT NOT NULL UNIQUE,
    problem TEXT NOT NULL,
    item_id TEXT NOT NULL,
    phone_masked TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    screen TEXT NOT NULL,
    filed_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    callback_by TEXT NOT NULL);
"""


@dataclass(frozen=True)
class SimReport:
    """A report as the hub holds it, for tests and the control panel."""

    reference: str
    hub_reference: str
    problem: str
    item_id: str
    phone_masked: str
    terminal_id: str
    screen: str
    filed_at: dt.datetime
    callback_by: dt.datetime


_INVALID = error(422, "invalid_report", "a report field is missing or not valid")


class ReportDesk:
    """Reports over the hub's database and clock."""

    def __init__(self, db: HubDatabase, *, now: Callable[[], dt.datetime]) -> None:
        self._db = db
        self._now = now
        db.schema(_SCHEMA)

    def file(self, request: Request) -> Answer:
        """POST /v1/reports: 201 filed, 200 when this reference was filed before."""
        body = request.json()
        report_reference = reference(body, "reference", _INVALID)
        problem = identifier(body, "problem", _INVALID)
        item_id = _optional(body, "item_id", is_identifier)
        phone = _optional(body, "phone", lambda value: _PHONE.fullmatch(value) is not None)
        terminal_id = identifier(body, "terminal_id", _INVALID)
        screen = text(body, "screen", _INVALID, max_chars=_SCREEN_CHARS)
        filed_at = aware_datetime(body, "filed_at", _INVALID)
        now = self._now().replace(microsecond=0)
        callback_day = add_working_days(now.date(), 1)
        callback_by = dt.datetime.combine(callback_day, CALLBACK_TIME, now.tzinfo)
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT reference, hub_reference, callback_by FROM reports WHERE reference = ?",
                (report_reference,),
            ).fetchone()
            if row is not None:
                return Answer(200, _filed(row) | {"status": "duplicate"})
            hub_reference = next_number(db, "BC", now.strftime("%Y%m%d"))
            db.execute(
                "INSERT INTO reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (report_reference, hub_reference, problem, item_id, masked_phone(phone),
                 terminal_id, screen, iso(filed_at), iso(now), iso(callback_by)),
            )  # fmt: skip
        return Answer(201, _filed((report_reference, hub_reference, iso(callback_by))) | {
            "status": "created"
        })

    def reports(self) -> list[SimReport]:
        """Every report, in the order first received."""
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT reference, hub_reference, problem, item_id, phone_masked, terminal_id,"
                " screen, filed_at, callback_by FROM reports ORDER BY rowid"
            ).fetchall()
        return [
            SimReport(
                reference=row[0],
                hub_reference=row[1],
                problem=row[2],
                item_id=row[3],
                phone_masked=row[4],
                terminal_id=row[5],
                screen=row[6],
                filed_at=dt.datetime.fromisoformat(row[7]),
                callback_by=dt.datetime.fromisoformat(row[8]),
            )
            for row in rows
        ]


def _optional(body: Mapping[str, Any], key: str, valid: Callable[[str], bool]) -> str:
    """A field that is "" when not given, else must be valid."""
    value = body.get(key)
    if not isinstance(value, str) or (value and not valid(value)):
        raise RequestError(_INVALID)
    return value


def _filed(row: tuple[Any, ...]) -> dict[str, Any]:
    return {"reference": row[0], "hub_reference": row[1], "callback_by": row[2]}
