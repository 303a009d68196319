"""The simulated hub's appointment desk: slots with capacities, booking, cancelling (预约).

Any well-formed service id and site id has slots, as any valid ID number has records: a
scenario needs no list set up first (the terminal asks with a catalogue item's id and a centre's
id). Each working day from today to the ``BOOKING_WORKING_DAYS``-th working day ahead has
half-hour periods 09:00-12:00 and 14:00-17:00 (none over lunch); each period's capacity (2-6)
and the places already taken by others come from a SHA-256 of (service, site, day, period), so
about one period in five is full from the start, the same in every run. A period that has begun
is no longer offered.

The places booked through the API live in SQLite. Taking one is a single conditional UPDATE
(``taken < capacity``) inside the database's transaction, so two residents confirming the last
place at once get one appointment and one ``slot_taken``. A resident holds at most one
appointment per service per day; booking the very slot they already hold answers that
appointment again (a retry after a lost answer), any other is ``already_booked``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from contracts.identifiers import SITE_PATTERN
from simulator.hub_calendar import add_working_days, is_working_day
from simulator.hub_db import HubDatabase, next_number
from simulator.hub_records import DECEASED, refusal_for
from simulator.hub_wire import (
    Answer,
    Request,
    RequestError,
    error,
    id_number,
    identifier,
    is_identifier,
    iso,
    iso_date,
    refuse,
    text,
)

# The terminal offers the next 7 working days; the hub takes bookings a little further out.
BOOKING_WORKING_DAYS = 15
PERIOD_MINUTES = 30
# Opening hours of the windows; no period crosses lunch.
SESSIONS = ((dt.time(9, 0), dt.time(12, 0)), (dt.time(14, 0), dt.time(17, 0)))
_SITE = re.compile(SITE_PATTERN)
_SLOT_ID = re.compile(r"(\d{8})-(\d{4})")
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32, as on documents

_SCHEMA = """
CREATE TABLE IF NOT EXISTS slot_places (
    service_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    day TEXT NOT NULL,
    start TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    taken INTEGER NOT NULL,
    PRIMARY KEY (service_id, site_id, day, start));
CREATE TABLE IF NOT EXISTS appointments (
    appointment_id TEXT PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    holder_hash TEXT NOT NULL,
    service_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    day TEXT NOT NULL,
    start TEXT NOT NULL,
    end TEXT NOT NULL,
    status TEXT NOT NULL,
    booked_at TEXT NOT NULL,
    cancelled_at TEXT);
CREATE INDEX IF NOT EXISTS appointments_by_holder ON appointments (holder_hash, service_id, day);
"""
_APPOINTMENT_COLUMNS = "appointment_id, code, service_id, site_id, day, start, end, status"


@dataclass(frozen=True)
class SimAppointment:
    """An appointment as the hub holds it, for tests and the control panel; nobody's name."""

    appointment_id: str
    code: str
    service_id: str
    site_id: str
    day: dt.date
    start: dt.time
    end: dt.time
    cancelled: bool


def periods() -> tuple[tuple[dt.time, dt.time], ...]:
    """Every period of a working day, in order."""
    found = []
    for opens, closes in SESSIONS:
        at = dt.datetime.combine(dt.date.min, opens)
        while (end := at + dt.timedelta(minutes=PERIOD_MINUTES)).time() <= closes:
            found.append((at.time(), end.time()))
            at = end
    return tuple(found)


_PERIODS = periods()
_PERIOD_ENDS = dict(_PERIODS)


def initial_places(service_id: str, site_id: str, day: dt.date, start: dt.time) -> tuple[int, int]:
    """(capacity, taken) of a period before anyone booked through this hub; deterministic."""
    key = f"sim-hub/slots/v1\x00{service_id}\x00{site_id}\x00{day}\x00{start:%H%M}"
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    capacity = 2 + digest[0] % 5
    if digest[1] % 5 == 0:
        return capacity, capacity  # booked out by residents elsewhere
    return capacity, digest[2] % capacity


def slot_id(day: dt.date, start: dt.time) -> str:
    return f"{day:%Y%m%d}-{start:%H%M}"


class AppointmentDesk:
    """Slots, bookings and cancellations over the hub's database and clock."""

    def __init__(self, db: HubDatabase, *, now: Callable[[], dt.datetime]) -> None:
        self._db = db
        self._now = now
        db.schema(_SCHEMA)

    # --- the API ---------------------------------------------------------------------------

    def slots(self, request: Request) -> Answer:
        """GET /v1/slots?service_id=&site_id=&day=: the periods still offered, with free places."""
        bad = error(400, "bad_request", "service_id, site_id and day (YYYY-MM-DD) are required")
        service_id = request.one_query("service_id", bad)
        site_id = request.one_query("site_id", bad)
        day = iso_date(request.one_query("day", bad), bad)
        if not is_identifier(service_id) or not _SITE.fullmatch(site_id):
            raise RequestError(bad)
        offered = [p for p in _PERIODS if self._offered(day, p[0])]
        with self._db.transaction() as db:
            booked = {
                row[0]: (int(row[1]), int(row[2]))
                for row in db.execute(
                    "SELECT start, capacity, taken FROM slot_places"
                    " WHERE service_id = ? AND site_id = ? AND day = ?",
                    (service_id, site_id, day.isoformat()),
                )
            }
        slots = []
        for start, end in offered:
            capacity, taken = booked.get(
                f"{start:%H:%M}", initial_places(service_id, site_id, day, start)
            )
            slots.append(
                {
                    "slot_id": slot_id(day, start),
                    "day": day.isoformat(),
                    "start": f"{start:%H:%M}",
                    "end": f"{end:%H:%M}",
                    "capacity": capacity,
                    "free": max(0, capacity - taken),
                }
            )
        return Answer(
            200, {"service_id": service_id, "site_id": site_id, "day": day.isoformat(),
                  "slots": slots},
        )  # fmt: skip

    def book(self, request: Request) -> Answer:
        """POST /v1/appointments: 201 booked, 200 the same slot again, 409 full or one already."""
        body = request.json()
        bad = error(400, "bad_request", "id_number, service_id, site_id and slot_id are required")
        service_id = identifier(body, "service_id", bad)
        site_id = text(body, "site_id", bad)
        raw_slot = text(body, "slot_id", bad)
        if not _SITE.fullmatch(site_id):
            raise RequestError(bad)
        person = id_number(body, bad)
        day, start = self._slot(raw_slot)
        if refusal_for(person, self._now().date()) == DECEASED:
            raise refuse(409, DECEASED, f"booking refused: {DECEASED}")
        holder_hash = self._db.holder_hash(person)
        with self._db.transaction() as db:
            held = db.execute(
                f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments WHERE holder_hash = ?"
                " AND service_id = ? AND day = ? AND status = 'booked'",
                (holder_hash, service_id, day.isoformat()),
            ).fetchone()
            if held is not None:
                if (held[3], held[5]) == (site_id, f"{start:%H:%M}"):
                    return Answer(200, _appointment_body(held))
                raise refuse(
                    409, "already_booked", "one appointment per service and day; cancel it first"
                )
            if not _take_place(db, service_id, site_id, day, start):
                raise refuse(409, "slot_taken", "this slot has no free place left")
            row = self._new_appointment(
                db, holder_hash, service_id=service_id, site_id=site_id, day=day, start=start
            )
        return Answer(201, _appointment_body(row))

    def of_resident(self, request: Request) -> Answer:
        """POST /v1/residents/appointments: booked appointments not yet over, soonest first."""
        body = request.json()
        person = id_number(body, error(400, "bad_request", "id_number is required"))
        holder_hash = self._db.holder_hash(person)
        now = self._now()
        with self._db.transaction() as db:
            rows = db.execute(
                f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments"
                " WHERE holder_hash = ? AND status = 'booked' ORDER BY day, start",
                (holder_hash,),
            ).fetchall()
        upcoming = [row for row in rows if _moment(row[4], row[6], now) > now]
        return Answer(200, {"appointments": [_appointment_body(row) for row in upcoming]})

    def cancel(self, appointment_id: str, request: Request) -> Answer:
        """POST /v1/appointments/{id}/cancel: frees the place; cancelling again answers the same."""
        body = request.json()
        person = id_number(body, error(400, "bad_request", "id_number is required"))
        holder_hash = self._db.holder_hash(person)
        now = self._now()
        with self._db.transaction() as db:
            row = db.execute(
                f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments"
                " WHERE appointment_id = ? AND holder_hash = ?",
                (appointment_id, holder_hash),
            ).fetchone()
            # Someone else's appointment is as unknown as one that does not exist.
            if row is None:
                raise refuse(404, "unknown_appointment", "no such appointment of this person")
            if row[7] == "booked":
                if _moment(row[4], row[5], now) <= now:
                    raise refuse(409, "too_late", "the appointment has begun or is over")
                db.execute(
                    "UPDATE appointments SET status = 'cancelled', cancelled_at = ?"
                    " WHERE appointment_id = ?",
                    (iso(now), appointment_id),
                )
                db.execute(
                    "UPDATE slot_places SET taken = taken - 1 WHERE service_id = ? AND site_id = ?"
                    " AND day = ? AND start = ? AND taken > 0",
                    (row[2], row[3], row[4], row[5]),
                )
        return Answer(200, {"appointment_id": appointment_id, "status": "cancelled"})

    # --- control ----------------------------------------------------------------------------

    def fill_slot(
        self, service_id: str, site_id: str, day: dt.date, start: dt.time, *, leave: int = 0
    ) -> None:
        """Others take the places of a period until ``leave`` are free (0: full)."""
        if start not in _PERIOD_ENDS:
            raise ValueError("no period starts at that time")
        capacity, _taken = initial_places(service_id, site_id, day, start)
        with self._db.transaction() as db:
            db.execute(
                "INSERT INTO slot_places VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (service_id, site_id, day, start) DO UPDATE SET"
                " taken = MAX(0, capacity - ?)",
                (service_id, site_id, day.isoformat(), f"{start:%H:%M}", capacity,
                 max(0, capacity - leave), leave),
            )  # fmt: skip

    def appointments(self) -> list[SimAppointment]:
        """Every appointment ever booked here, cancelled ones included, in booking order."""
        with self._db.transaction() as db:
            rows = db.execute(
                f"SELECT {_APPOINTMENT_COLUMNS} FROM appointments ORDER BY rowid"
            ).fetchall()
        return [
            SimAppointment(
                row[0], row[1], row[2], row[3], dt.date.fromisoformat(row[4]),
                dt.time.fromisoformat(row[5]), dt.time.fromisoformat(row[6]),
                cancelled=row[7] == "cancelled",
            )
            for row in rows
        ]  # fmt: skip

    # --- helpers ----------------------------------------------------------------------------

    def _offered(self, day: dt.date, start: dt.time) -> bool:
        now = self._now()
        today = now.date()
        if not today <= day <= add_working_days(today, BOOKING_WORKING_DAYS):
            return False
        if not is_working_day(day):
            return False
        return dt.datetime.combine(day, start, now.tzinfo) > now

    def _slot(self, raw: str) -> tuple[dt.date, dt.time]:
        unknown = refuse(404, "unknown_slot", "no slot with this id is offered")
        match = _SLOT_ID.fullmatch(raw)
        if match is None:
            raise unknown
        try:
            day = dt.datetime.strptime(match[1], "%Y%m%d").date()
            start = dt.datetime.strptime(match[2], "%H%M").time()
        except ValueError:
            raise unknown from None
        if start not in _PERIOD_ENDS or not self._offered(day, start):
            raise unknown
        return day, start

    def _new_appointment(
        self,
        db: sqlite3.Connection,
        holder_hash: str,
        *,
        service_id: str,
        site_id: str,
        day: dt.date,
        start: dt.time,
    ) -> tuple[Any, ...]:
        now = self._now()
        appointment_id = next_number(db, "YY", now.strftime("%Y%m%d"))
        chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        row = (appointment_id, f"{chars[:4]}-{chars[4:]}", service_id, site_id, day.isoformat(),
               f"{start:%H:%M}", f"{_PERIOD_ENDS[start]:%H:%M}", "booked")  # fmt: skip
        db.execute(
            "INSERT INTO appointments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (row[0], row[1], holder_hash, *row[2:], iso(now)),
        )
        return row


def _take_place(
    db: sqlite3.Connection, service_id: str, site_id: str, day: dt.date, start: dt.time
) -> bool:
    """One place of the period, if one is free; False when it is full."""
    capacity, taken = initial_places(service_id, site_id, day, start)
    key = (service_id, site_id, day.isoformat(), f"{start:%H:%M}")
    db.execute(
        "INSERT INTO slot_places VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (*key, capacity, taken),
    )
    cursor = db.execute(
        "UPDATE slot_places SET taken = taken + 1 WHERE service_id = ? AND site_id = ?"
        " AND day = ? AND start = ? AND taken < capacity",
        key,
    )
    return cursor.rowcount == 1


def _moment(day: str, time: str, now: dt.datetime) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time.fromisoformat(time), now.tzinfo)


def _appointment_body(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "appointment_id": row[0],
        "code": row[1],
        "service_id": row[2],
        "site_id": row[3],
        "day": row[4],
        "start": row[5],
        "end": row[6],
    }
