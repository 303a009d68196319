"""The simulated hub's document desk: proofs issued by instant errands (一证通办), and ratings.

A document is kept by its verification code with its case number, errand, title, time, terminal
and the holder as a salted hash, which is what checking a printed proof by its QR code needs.
A rating is kept once per case: the first stands.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from flows.hub import RatingSubmission
from simulator.hub_db import HubDatabase, next_case_number

# Crockford's base32: no I, L, O or U, so a code read off paper is typed back without confusion.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class DocumentDesk:
    """Issued documents (一证通办) and ratings, over the hub's database."""

    def __init__(self, db: HubDatabase) -> None:
        self._db = db
        db.schema(
            """
            CREATE TABLE IF NOT EXISTS documents (
                verification_code TEXT PRIMARY KEY,
                case_number TEXT NOT NULL UNIQUE,
                errand_id TEXT NOT NULL,
                title TEXT NOT NULL,
                issued_at TEXT NOT NULL,
                terminal_id TEXT NOT NULL,
                holder_hash TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS ratings (
                case_number TEXT PRIMARY KEY,
                errand_id TEXT NOT NULL,
                level INTEGER NOT NULL,
                terminal_id TEXT NOT NULL,
                rated_at TEXT NOT NULL);
            """
        )

    def issue(
        self,
        *,
        errand_id: str,
        title: str,
        holder_hash: str,
        terminal_id: str,
        issued_at: dt.datetime,
    ) -> tuple[str, str]:
        """Record a new document; return its case number and verification code."""
        with self._db.transaction() as db:
            case_number = next_case_number(db, issued_at.strftime("%Y%m%d"))
            code = _new_verification_code()
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?, ?)",
                (code, case_number, errand_id, title, issued_at.isoformat(), terminal_id,
                 holder_hash),
            )  # fmt: skip
        return case_number, code

    def document(self, code: str) -> dict[str, Any] | None:
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT errand_id, title, issued_at, terminal_id FROM documents"
                " WHERE verification_code = ?",
                (code,),
            ).fetchone()
        if row is None:
            return None
        return {"errand_id": row[0], "title": row[1], "issued_at": row[2], "terminal_id": row[3]}

    def case_errand(self, case_number: str) -> str | None:
        """The errand a case number was issued for, or None if this hub never issued it."""
        with self._db.transaction() as db:
            row = db.execute(
                "SELECT errand_id FROM documents WHERE case_number = ?", (case_number,)
            ).fetchone()
        return None if row is None else str(row[0])

    def add_rating(self, rating: RatingSubmission) -> bool:
        """Store a rating; False when this case was rated before (the first rating stands)."""
        with self._db.transaction() as db:
            cursor = db.execute(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?) ON CONFLICT (case_number) DO NOTHING",
                (rating.case_number, rating.errand_id, rating.level, rating.terminal_id,
                 rating.rated_at.isoformat()),
            )  # fmt: skip
            return cursor.rowcount == 1

    def ratings(self) -> list[RatingSubmission]:
        with self._db.transaction() as db:
            rows = db.execute(
                # Rows are never deleted, so rowid order is the order of first receipt.
                "SELECT case_number, errand_id, level, terminal_id, rated_at FROM ratings"
                " ORDER BY rowid"
            ).fetchall()
        return [
            RatingSubmission(row[0], row[1], row[2], row[3], dt.datetime.fromisoformat(row[4]))
            for row in rows
        ]


def _new_verification_code() -> str:
    """Four groups of four Crockford base32 characters: 80 random bits, e.g. ``7K2D-QX9M-...``."""
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
    return "-".join(chars[i : i + 4] for i in range(0, 16, 4))
