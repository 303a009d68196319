"""A durable SQLite outbox: items are written first and deleted only once delivery is confirmed.

Generic over ``kind`` ("event" for MQTT events; the hub submissions reuse it with their own kind).
Each item also gets a per-kind ``seq`` that grows by one per item and is never reused, even after
the item is deleted or the process restarts; receivers use it to drop duplicates. The payload is
stored as given: whoever puts personal data here (a hub submission) encrypts it first.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids are never reused
    kind       TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    payload    TEXT    NOT NULL,
    created_at REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind_id ON outbox (kind, id);
CREATE TABLE IF NOT EXISTS outbox_seq (
    kind TEXT    PRIMARY KEY,
    last INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    seq: int
    payload_json: str
    created_at: float  # seconds since the epoch


class Outbox:
    """Thread-safe: one connection behind a lock; every call is one short transaction.

    ``synchronous="NORMAL"`` (WAL) survives a crash of the process at no fsync per write, which
    keeps ``put`` well under a millisecond; a power cut can lose the last moments. ``"FULL"``
    survives that too at one fsync per write: use it where a lost item is a lost application.
    """

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout_s: float = 5.0,
    ) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open(path, synchronous, busy_timeout_s)
        except sqlite3.DatabaseError:
            # A damaged file must not keep an unattended terminal from starting: keep it aside for
            # a technician and start empty.
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            log.exception("outbox %s is unreadable; moved to %s", path, aside)
            path.replace(aside)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    path.with_name(path.name + suffix).unlink()
            self._db = self._open(path, synchronous, busy_timeout_s)

    @staticmethod
    def _open(path: Path, synchronous: str, busy_timeout_s: float) -> sqlite3.Connection:
        db = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM outbox").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    @property
    def path(self) -> Path:
        return self._path

    def put(self, kind: str, payload_json: str) -> int:
        """Store one item; return its id."""
        return self.put_numbered(kind, lambda _seq: payload_json).id

    def put_numbered(self, kind: str, build: Callable[[int], str]) -> OutboxItem:
        """Store one item whose payload contains its own seq: ``build(seq)`` makes the payload.

        The seq is taken and the item stored in one transaction, so a crash leaves no gap.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "INSERT INTO outbox_seq (kind, last) VALUES (?, 1) "
                    "ON CONFLICT (kind) DO UPDATE SET last = last + 1 RETURNING last",
                    (kind,),
                ).fetchone()
                seq = int(row[0])
                payload_json = build(seq)
                created_at = time.time()
                cursor = self._db.execute(
                    "INSERT INTO outbox (kind, seq, payload, created_at) VALUES (?, ?, ?, ?)",
                    (kind, seq, payload_json, created_at),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        item_id = cursor.lastrowid
        assert item_id is not None  # an INSERT always sets it
        return OutboxItem(item_id, kind, seq, payload_json, created_at)

    def pending(self, kind: str, limit: int = 100) -> list[OutboxItem]:
        """The oldest ``limit`` items of ``kind``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, seq, payload, created_at FROM outbox "
                "WHERE kind = ? ORDER BY id LIMIT ?",
                (kind, limit),
            ).fetchall()
        return [OutboxItem(int(r[0]), str(r[1]), int(r[2]), str(r[3]), float(r[4])) for r in rows]

    def mark_done(self, item_id: int) -> None:
        """Delete an item whose delivery is confirmed; deleting twice is harmless."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))

    def count(self, kind: str | None = None) -> int:
        with self._lock:
            if kind is None:
                row = self._db.execute("SELECT count(*) FROM outbox").fetchone()
            else:
                row = self._db.execute(
                    "SELECT count(*) FROM outbox WHERE kind = ?", (kind,)
                ).fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
