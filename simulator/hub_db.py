"""The simulated hub's SQLite file: one connection, one lock, the salt and the numbering.

Each desk (documents and ratings in ``hub``, cases, appointments, reports) creates its own tables
through ``schema`` and works inside ``transaction``. The hub's load is a few requests a minute, so
one connection shared by the request threads and serialised by a lock keeps SQLite free of
"database is locked" and makes every check-then-write (the last free place of a slot, a reference
sent twice) atomic without further thought.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

# ID numbers have few possible values, so the hash is deliberately slow; the salt is per database.
_HOLDER_HASH_ROUNDS = 50_000


class HubDatabase:
    """The connection, the lock that serialises it and the per-database salt."""

    def __init__(self, db_path: Path) -> None:
        self.path = db_path
        self._db = sqlite3.connect(db_path, timeout=5.0, check_same_thread=False)
        # What is blanked or deleted is overwritten in the file, not left in a free page: an
        # e-ID code's person is blanked once the code is used, and must be gone then.
        self._db.execute("PRAGMA secure_delete = ON")
        self._lock = threading.Lock()
        self.schema(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS case_sequence (
                day TEXT PRIMARY KEY, last INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS number_sequence (
                series TEXT NOT NULL, day TEXT NOT NULL, last INTEGER NOT NULL,
                PRIMARY KEY (series, day));
            """
        )
        with self.transaction() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'holder_salt'").fetchone()
            if row is None:
                self._salt = secrets.token_bytes(16)
                db.execute("INSERT INTO meta (key, value) VALUES ('holder_salt', ?)", (self._salt,))
            else:
                self._salt = bytes(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def schema(self, script: str) -> None:
        """Create tables and indexes (``IF NOT EXISTS``: an older file gains the new ones)."""
        with self._lock, self._db:
            self._db.executescript(script)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, held alone; committed on leaving, rolled back on an exception."""
        with self._lock, self._db:
            yield self._db

    def holder_hash(self, id_number: str) -> str:
        """A salted, slow hash of the ID number: all the hub keeps of who someone is."""
        digest = hashlib.pbkdf2_hmac(
            "sha256", id_number.encode("ascii"), self._salt, _HOLDER_HASH_ROUNDS
        )
        return digest.hex()


def next_case_number(db: sqlite3.Connection, day: str) -> str:
    """``SB{yyyymmdd}{nnnnnn}``: 办件编号, one sequence per day for documents and cases alike.

    Call inside ``HubDatabase.transaction`` so the number and the row using it commit together.
    """
    row = db.execute(
        "INSERT INTO case_sequence (day, last) VALUES (?, 1)"
        " ON CONFLICT (day) DO UPDATE SET last = last + 1 RETURNING last",
        (day,),
    ).fetchone()
    return f"SB{day}{int(row[0]):06d}"


def next_number(db: sqlite3.Connection, series: str, day: str) -> str:
    """``{series}{yyyymmdd}{nnnnnn}`` from a sequence of its own (appointments, reports)."""
    row = db.execute(
        "INSERT INTO number_sequence (series, day, last) VALUES (?, ?, 1)"
        " ON CONFLICT (series, day) DO UPDATE SET last = last + 1 RETURNING last",
        (series, day),
    ).fetchone()
    return f"{series}{day}{int(row[0]):06d}"
