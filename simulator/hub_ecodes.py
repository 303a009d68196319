"""The simulated hub's e-ID code desk (电子社保卡 / 一码办): short-lived codes that resolve once.

The control panel plays the resident's phone: ``issue`` makes a code for a person (what the
phone would show), the terminal scans it and asks ``POST /v1/identity/codes/resolve``. A code
resolves once, within its life (``DEFAULT_CODE_TTL_S`` unless the issuer says otherwise, on the
hub's clock): again it is ``code_used`` (409), after its life ``code_expired`` (410), and anything
this hub did not issue ``code_unknown`` (404).

The code is ``contracts.codes.E_ID_PREFIX`` and ``secrets.token_urlsafe``: 256 random bits, so
nobody guesses one. The table keeps the code's SHA-256, not the code, so the file gives no code
that would resolve; it keeps the person's ID number and name only while the code can still
resolve, and blanks them once it is used or has expired.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
import sqlite3
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from contracts.codes import E_ID_PREFIX, is_e_id_code
from flows.identity import InvalidIdNumber, validate_id_number
from simulator.hub_db import HubDatabase
from simulator.hub_records import birth_date
from simulator.hub_wire import CHINA_STANDARD_TIME, Answer, Request, error, identifier, text

DEFAULT_CODE_TTL_S = 120.0  # about what a phone's 一码办 screen shows a code for
MAX_CODE_TTL_S = 24 * 3600.0  # longer is no short-lived code; a test never needs more
_TOKEN_BYTES = 32  # token_urlsafe(32): 43 characters, within E_ID_TOKEN_PATTERN's 22-64
# Longer than any e-ID code (5 + 64); a longer string is refused unread as a bad request.
_MAX_CODE_CHARS = 256
_MAX_NAME_CHARS = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS e_id_codes (
    code_hash TEXT PRIMARY KEY,
    id_number TEXT NOT NULL,
    name TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT,
    used_by TEXT);
"""

_BAD_REQUEST = error(400, "bad_request", "code and terminal_id are required strings")


@dataclass(frozen=True)
class SimCode:
    """A code as the hub holds it, for tests: never the code itself, and whether it still holds
    a person (it does only while it can resolve)."""

    issued_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None
    used_by: str | None
    holds_person: bool


class ECodeDesk:
    """e-ID codes over the hub's database and clock."""

    def __init__(self, db: HubDatabase, *, now: Callable[[], dt.datetime]) -> None:
        self._db = db
        self._now = now
        db.schema(_SCHEMA)

    def issue(self, id_number: str, name: str, *, ttl_s: float = DEFAULT_CODE_TTL_S) -> str:
        """A new code for this person, valid ``ttl_s`` seconds from now on the hub's clock.

        ValueError (naming what is wrong, never the value) for an ID number that fails GB 11643,
        a name that is empty, over 64 characters or holds control characters, or a ``ttl_s``
        outside (0, 1 day].
        """
        try:
            number = validate_id_number(id_number)
        except InvalidIdNumber as invalid:
            raise ValueError(f"not a valid ID number ({invalid.reason})") from None
        holder_name = name.strip() if isinstance(name, str) else ""
        if not 0 < len(holder_name) <= _MAX_NAME_CHARS or any(
            unicodedata.category(char) == "Cc" for char in holder_name
        ):
            raise ValueError(
                f"the name must be 1-{_MAX_NAME_CHARS} characters without control characters"
            )
        if not (math.isfinite(ttl_s) and 0 < ttl_s <= MAX_CODE_TTL_S):
            raise ValueError(f"ttl_s must be above 0 and at most {MAX_CODE_TTL_S:.0f} s")
        code = E_ID_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
        if not is_e_id_code(code):  # the terminal would never send it: a bug here, not there
            raise AssertionError("issued an e-ID code outside its own pattern")
        issued_at = self._now()
        with self._db.transaction() as db:
            _forget_the_expired(db, issued_at)
            db.execute(
                "INSERT INTO e_id_codes (code_hash, id_number, name, issued_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (_hash(code), number, holder_name, _moment(issued_at),
                 _moment(issued_at + dt.timedelta(seconds=ttl_s))),
            )  # fmt: skip
        return code

    def resolve(self, request: Request) -> Answer:
        """POST /v1/identity/codes/resolve: 200 the person, once; 404, 409 or 410 otherwise."""
        body = request.json()
        code = text(body, "code", _BAD_REQUEST, max_chars=_MAX_CODE_CHARS)
        terminal_id = identifier(body, "terminal_id", _BAD_REQUEST)
        now = self._now()
        with self._db.transaction() as db:
            _forget_the_expired(db, now)
            row = db.execute(
                "SELECT id_number, name, expires_at, used_at FROM e_id_codes"
                " WHERE code_hash = ?",
                (_hash(code),),
            ).fetchone()
            # Checked in this order and in one transaction: two terminals scanning the same
            # code at once get one person and one code_used.
            if row is None:
                return error(404, "code_unknown", "this hub issued no such code")
            id_number, name, expires_at, used_at = row
            if used_at is not None:
                return error(409, "code_used", "the code was used already")
            if dt.datetime.fromisoformat(expires_at) <= now:
                return error(410, "code_expired", "the code has expired")
            db.execute(
                "UPDATE e_id_codes SET used_at = ?, used_by = ?, id_number = '', name = ''"
                " WHERE code_hash = ?",
                (_moment(now), terminal_id, _hash(code)),
            )
        return Answer(
            200,
            {
                "id_number": id_number,
                "name": name,
                # GB 11643: the 17th digit is odd for a man, even for a woman.
                "sex": "male" if int(id_number[16]) % 2 else "female",
                "birth_date": birth_date(id_number).isoformat(),
            },
        )

    def codes(self) -> list[SimCode]:
        """Every code issued, in the order issued."""
        with self._db.transaction() as db:
            rows = db.execute(
                "SELECT issued_at, expires_at, used_at, used_by, id_number != ''"
                " FROM e_id_codes ORDER BY rowid"
            ).fetchall()
        return [
            SimCode(
                issued_at=dt.datetime.fromisoformat(row[0]),
                expires_at=dt.datetime.fromisoformat(row[1]),
                used_at=dt.datetime.fromisoformat(row[2]) if row[2] is not None else None,
                used_by=row[3],
                holds_person=bool(row[4]),
            )
            for row in rows
        ]


def _forget_the_expired(db: sqlite3.Connection, now: dt.datetime) -> None:
    """Blank the person of every code past its life: nobody can resolve it any more."""
    db.execute(
        "UPDATE e_id_codes SET id_number = '', name = '' WHERE id_number != '' AND expires_at <= ?",
        (_moment(now),),
    )


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


def _moment(moment: dt.datetime) -> str:
    """A time in UTC+8 to the microsecond, always the same length, so SQL compares it as text."""
    return moment.astimezone(CHINA_STANDARD_TIME).isoformat(timespec="microseconds")
