"""A durable SQLite outbox: items are written first and deleted only once delivery is confirmed.

Generic over ``kind`` ("event" for MQTT events; the hub submissions reuse it with their own kind).
Each item also gets a per-kind ``seq`` that grows by one per item and is never reused, even after
the item is deleted, the process restarts, the WAL is lost or a damaged file is replaced; receivers
use it to drop duplicates. The payload is stored as given: whoever puts personal data here (a hub
submission) encrypts it first.

What the outbox promises under each storage fault (docs/OPERATIONS.md repeats it for operators):

- Disk full, or storage failing or read-only: the file is kept as it is. New items wait in memory
  (up to ``hold_max``), in order, and are stored, numbered and delivered once the storage takes
  writes again; ``health()`` reports ``disk_full`` / ``io_error`` / ``read_only`` meanwhile.
- A damaged file (fails ``PRAGMA quick_check`` at start, or a write reports corruption later): what
  can still be read is salvaged into a fresh file, the damaged one is kept beside it for a
  technician, and ``health()`` reports ``outbox_replaced`` until the next start.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devices.base import DeviceState
from terminal.sqlite_store import (
    StoreDamaged,
    StoreError,
    StoreUnavailable,
    Synchronous,
    classify,
    open_store,
    set_aside,
    write_transaction,
)
from terminal.state_file import write_atomic

if TYPE_CHECKING:
    from terminal.sqlite_salvage import ColumnKind

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

HOLD_MAX = 5000  # items held in memory while the storage refuses writes (a few MB at most)
RETRY_INTERVAL_S = 2.0  # how often a faulted outbox tries its storage again, at most
# Seqs are reserved in blocks in a small file beside the database, written (and synced) once per
# block: after a crash the next seq starts past the block, so a seq the WAL lost is never reused.
SEQ_BLOCK = 100
REPLACED = "outbox_replaced"


@dataclass(frozen=True)
class OutboxItem:
    id: int
    kind: str
    seq: int
    payload_json: str
    created_at: float  # seconds since the epoch


class OutboxUnavailable(Exception):
    """The item could not be stored, nor held until the storage recovers (the hold is full)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"outbox unavailable ({reason}) and its memory hold is full")
        self.reason = reason


@dataclass(frozen=True)
class _Held:
    kind: str
    build: Callable[[int], str]
    created_at: float


class _SeqReservations:
    """The seq file: per kind, the highest seq that may have been handed out, and whether the
    last run closed the outbox cleanly (then the database is trusted as it is)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reserved: dict[str, int] = {}
        self.clean = True
        self.floor_default = 0  # for kinds the file does not name, when it could not be read
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            self.reserved = {str(k): int(v) for k, v in document["reserved"].items()}
            self.clean = bool(document["clean"])
        except FileNotFoundError:
            pass  # a new terminal, or one from before seq reservations: the database is all
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # Unreadable: jump ahead to the clock, so seqs still only grow (as bdseq does).
            log.warning("outbox seq file %s unreadable; seqs continue from the clock", path)
            self.clean = False
            self.floor_default = int(time.time())

    def floor(self, kind: str) -> int:
        return max(self.reserved.get(kind, 0), self.floor_default)

    def save(self, reserved: dict[str, int], *, clean: bool) -> None:
        """Write the file first, then believe it: a reservation not on disk protects nothing."""
        write_atomic(self.path, json.dumps({"reserved": reserved, "clean": clean}))
        self.reserved = dict(reserved)
        self.clean = clean


class Outbox:
    """Thread-safe: one connection behind a lock; every call is one short transaction.

    ``synchronous="NORMAL"`` (WAL) survives a crash of the process at no fsync per write, which
    keeps ``put`` well under a millisecond; a power cut can lose the last moments. ``"FULL"``
    survives that too at one fsync per write: use it where a lost item is a lost application.

    ``on_health`` is called (outside the lock, from whichever thread noticed) when ``health()``
    changes, so a fault shows in the next heartbeat rather than at the next device poll.
    """

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout_s: float = 5.0,
        hold_max: int = HOLD_MAX,
        retry_interval_s: float = RETRY_INTERVAL_S,
        on_health: Callable[[DeviceState], None] | None = None,
    ) -> None:
        self._path = path
        self._synchronous: Synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        self._hold_max = hold_max
        self._retry_interval_s = retry_interval_s
        self.on_health = on_health
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._held: collections.deque[_Held] = collections.deque()
        self._undeleted: dict[int, str] = {}  # delivered, but the delete did not reach the disk
        self._fault: str | None = None  # why the storage refuses writes now
        self._replaced = False  # a damaged file was set aside during this run
        self._next_attempt = 0.0
        self._opened = False  # a database was adopted during this run
        self._reported = DeviceState.ok()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._seqs = _SeqReservations(path.with_name(path.name + ".seq"))
        with self._lock:
            self._connect()
        self._notify()

    @property
    def path(self) -> Path:
        return self._path

    # --- storing -------------------------------------------------------------------------------

    def put(self, kind: str, payload_json: str) -> OutboxItem | None:
        """Store one item; see ``put_numbered``."""
        return self.put_numbered(kind, lambda _seq: payload_json)

    def put_numbered(self, kind: str, build: Callable[[int], str]) -> OutboxItem | None:
        """Store one item whose payload contains its own seq: ``build(seq)`` makes the payload.

        The seq is taken and the item stored in one transaction, so a crash leaves no gap.
        Returns None when the storage refuses writes now: the item is then held in memory, in
        order, and stored (and only then numbered) once it recovers. Raises OutboxUnavailable
        when even the hold is full, and whatever ``build`` raises.
        """
        with self._lock:
            held = _Held(kind, build, time.time())
            if self._held or self._db is None:
                self._recover(force=False)
            if self._held or self._db is None:
                item = None
                self._hold(held)
            else:
                try:
                    item = self._store(held)
                except StoreError as error:
                    self._failed(error)
                    item = None
                    self._hold(held)
        self._notify()
        return item

    def _hold(self, held: _Held) -> None:
        if len(self._held) >= self._hold_max:
            raise OutboxUnavailable(self._fault or "unknown")
        self._held.append(held)

    def _store(self, held: _Held) -> OutboxItem:
        db = self._db
        assert db is not None
        try:
            with write_transaction(db):
                row = db.execute(
                    "SELECT last FROM outbox_seq WHERE kind = ?", (held.kind,)
                ).fetchone()
                # Past anything handed out before is settled when a database is adopted; a kind
                # never seen starts after the clock floor when the seq file was unreadable.
                seq = (int(row[0]) if row else self._seqs.floor_default) + 1
                db.execute(
                    "INSERT INTO outbox_seq (kind, last) VALUES (?, ?) "
                    "ON CONFLICT (kind) DO UPDATE SET last = excluded.last",
                    (held.kind, seq),
                )
                payload_json = held.build(seq)
                cursor = db.execute(
                    "INSERT INTO outbox (kind, seq, payload, created_at) VALUES (?, ?, ?, ?)",
                    (held.kind, seq, payload_json, held.created_at),
                )
                if seq > self._seqs.reserved.get(held.kind, 0):
                    # Inside the transaction: if the reservation cannot be written, nothing is.
                    self._seqs.save({**self._seqs.reserved, held.kind: seq + SEQ_BLOCK},
                                    clean=False)
        except (sqlite3.Error, OSError) as error:
            raise classify(error, self._path.parent) from None
        item_id = cursor.lastrowid
        assert item_id is not None  # an INSERT always sets it
        return OutboxItem(item_id, held.kind, seq, payload_json, held.created_at)

    # --- reading and confirming ----------------------------------------------------------------

    def pending(self, kind: str, limit: int = 100) -> list[OutboxItem]:
        """The oldest ``limit`` stored items of ``kind``, oldest first (held ones are not yet
        stored, so not yet numbered: they come once the storage took them)."""
        with self._lock:
            if self._db is None or self._held:
                self._recover(force=False)
            rows = self._read(
                "SELECT id, kind, seq, payload, created_at FROM outbox "
                "WHERE kind = ? ORDER BY id LIMIT ?",
                (kind, limit + len(self._undeleted)),
            )
            items = [OutboxItem(int(r[0]), str(r[1]), int(r[2]), str(r[3]), float(r[4]))
                     for r in rows if int(r[0]) not in self._undeleted]
        self._notify()
        return items[:limit]

    def mark_done(self, item_id: int) -> None:
        """Delete an item whose delivery is confirmed; deleting twice is harmless. If the
        storage refuses the delete, the item is no longer handed out and is deleted later."""
        with self._lock:
            kind = self._kind_of(item_id)
            self._undeleted[item_id] = kind
            self._delete_undeleted()
        self._notify()

    def move(self, item_id: int, kind: str) -> None:
        """Give a stored item another kind (kept aside, say), in one transaction."""
        with self._lock:
            if self._db is None:
                raise OutboxUnavailable(self._fault or "unknown")
            try:
                with write_transaction(self._db):
                    self._db.execute("UPDATE outbox SET kind = ? WHERE id = ?", (kind, item_id))
            except sqlite3.Error as error:
                store_error = classify(error, self._path.parent)
                self._failed(store_error)
                raise OutboxUnavailable(store_error.reason) from None
        self._notify()

    def count(self, kind: str | None = None) -> int:
        """Items waiting: stored (and not yet confirmed) plus held in memory."""
        with self._lock:
            if kind is None:
                rows = self._read("SELECT count(*) FROM outbox", ())
                undeleted = len(self._undeleted)
                held = len(self._held)
            else:
                rows = self._read("SELECT count(*) FROM outbox WHERE kind = ?", (kind,))
                undeleted = sum(1 for k in self._undeleted.values() if k == kind)
                held = sum(1 for h in self._held if h.kind == kind)
        self._notify()
        stored = int(rows[0][0]) if rows else 0
        return max(0, stored - undeleted) + held

    # --- health --------------------------------------------------------------------------------

    def health(self) -> DeviceState:
        """The outbox as a device for heartbeats: ``fault`` while the storage refuses writes
        (``disk_full``, ``io_error``, ``read_only``, ``locked``), ``degraded`` with
        ``outbox_replaced`` once a damaged file was set aside this run, else ok. A faulted
        outbox tries its storage again here, so it recovers even when nothing is being put."""
        with self._lock:
            if self._fault is not None or self._held or self._undeleted:
                self._recover(force=False)
            state = self._state()
        self._notify()
        return state

    def _state(self) -> DeviceState:
        if self._fault is not None:
            return DeviceState.fault(self._fault)
        if self._replaced:
            return DeviceState.degraded(REPLACED)
        return DeviceState.ok()

    def _notify(self) -> None:
        with self._lock:
            state = self._state()
            changed = state != self._reported
            self._reported = state
        if changed and self.on_health is not None:
            try:
                self.on_health(state)
            except Exception:  # a listener's bug must not break storing
                log.exception("outbox health listener failed")

    def close(self) -> None:
        with self._lock:
            if self._held:
                self._recover(force=True)
            if self._held:
                log.error("outbox closing with %d items it could not store", len(self._held))
            if self._db is not None:
                self._db.close()  # checkpoints the WAL into the database
                self._db = None
                if self._fault is None and not self._undeleted:
                    with contextlib.suppress(OSError):
                        self._seqs.save(self._seqs.reserved, clean=True)

    # --- the storage behind it -----------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        return open_store(self._path, _SCHEMA, synchronous=self._synchronous,
                          busy_timeout_s=self._busy_timeout_s)

    def _connect(self) -> None:
        """Open the database, or replace a damaged one, or note why the storage refuses."""
        created = not self._path.exists()
        try:
            db = self._open()
        except StoreDamaged as error:
            log.error("outbox %s is damaged (%s)", self._path, error)
            self._replace_damaged()
            return
        except StoreUnavailable as error:
            self._unavailable(error)
            return
        # Only the first open of a run can follow a crash; a reopen after a full disk continues
        # the seqs this process knows, without a gap.
        self._use(db, jump=created or (not self._seqs.clean and not self._opened), salvaged=[])

    def _replace_damaged(self) -> None:
        """Salvage what can be read, keep the damaged file aside, and carry on with a fresh one."""
        salvaged = self._salvage()
        try:
            aside = set_aside(self._path, "damaged")
        except OSError as error:
            self._unavailable(classify(error, self._path.parent))
            return
        log.error("outbox set aside as %s for a technician; %d items salvaged into a fresh one",
                  aside.name, len(salvaged))
        self._replaced = True
        try:
            db = self._open()
        except StoreError as error:  # a fresh file is not damaged: the storage is failing
            self._unavailable(StoreUnavailable(str(error), reason=error.reason))
            return
        self._use(db, jump=True, salvaged=salvaged)

    def _use(self, db: sqlite3.Connection, *, jump: bool,
             salvaged: list[tuple[object, ...]]) -> None:
        try:
            self._adopt(db, jump=jump, salvaged=salvaged)
        except (sqlite3.Error, OSError) as error:
            db.close()
            self._unavailable(classify(error, self._path.parent))
            return
        if self._db is not None:  # a connection the storage had broken, kept for reading
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = db
        self._opened = True
        if self._fault is not None:  # _adopt wrote: the storage takes writes again
            log.warning("outbox storage is back (was %s)", self._fault)
            self._fault = None

    def _adopt(self, db: sqlite3.Connection, *, jump: bool,
               salvaged: list[tuple[object, ...]]) -> None:
        """Make an opened database current: salvaged rows back in, seqs past anything that may
        have been handed out before (after a crash, a lost WAL or a replaced file), and the seq
        file marked in use, so that a crash from now on reads as one at the next start."""
        with write_transaction(db):
            for row in salvaged:
                db.execute("INSERT OR IGNORE INTO outbox (id, kind, seq, payload, created_at) "
                           "VALUES (?, ?, ?, ?, ?)", row)
            stored = dict(db.execute("SELECT kind, max(seq) FROM outbox GROUP BY kind"))
            lasts = dict(db.execute("SELECT kind, last FROM outbox_seq"))
            reserved = dict(self._seqs.reserved)
            for kind in set(stored) | set(lasts) | (set(reserved) if jump else set()):
                last = max(int(stored.get(kind) or 0), int(lasts.get(kind) or 0))
                if jump:
                    last = max(last, self._seqs.floor(kind))
                db.execute("INSERT INTO outbox_seq (kind, last) VALUES (?, ?) "
                           "ON CONFLICT (kind) DO UPDATE SET last = excluded.last", (kind, last))
                reserved[kind] = max(reserved.get(kind, 0), last)
            self._seqs.save(reserved, clean=False)

    def _salvage(self) -> list[tuple[object, ...]]:
        """Whatever rows of a damaged file can still be read: SQLite's scan from both ends of the
        table, joined by the rows read from the table's leaf pages directly, which SQLite cannot
        reach when a page above them (the table's root, say) is damaged."""
        rows: dict[int, tuple[object, ...]] = {}
        with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False)) as db:
            for order in ("ASC", "DESC"):
                # A scan stops at the first unreadable page; the other direction reads past it.
                with contextlib.suppress(sqlite3.Error):
                    for row in db.execute("SELECT id, kind, seq, payload, created_at FROM outbox "
                                          f"ORDER BY id {order}"):
                        rows[int(row[0])] = tuple(row)
        by_sql = len(rows)
        # The outbox table of _SCHEMA, column by column.
        columns: tuple[ColumnKind, ...] = ("rowid_alias", "text", "integer", "text", "real")
        try:
            # Imported only now: the page reader is needed only for a damaged file, and building
            # its types took ~5 ms of every start-up.
            from terminal.sqlite_salvage import salvage_table_rows  # noqa: PLC0415

            from_pages = salvage_table_rows(self._path, columns=columns)
        except Exception:  # a bug in the page reader must not keep the outbox from starting
            log.exception("outbox %s: reading its pages failed", self._path)
            from_pages = []
        for page_row in from_pages:
            rows.setdefault(page_row.rowid, page_row.values)  # SQLite's reading comes first
        log.warning("outbox %s: %d rows salvaged by SQLite, %d more from its leaf pages",
                    self._path, by_sql, len(rows) - by_sql)
        return [rows[i] for i in sorted(rows)]

    def _failed(self, error: StoreError) -> None:
        """A store error during work: a damaged file is replaced now, anything else waited out."""
        if isinstance(error, StoreDamaged):
            log.error("outbox damaged at run time (%s)", error)
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None
            self._replace_damaged()
        else:
            self._unavailable(error)

    def _unavailable(self, error: StoreError) -> None:
        # The connection stays: on a full disk it still reads, so what is stored keeps being
        # delivered. Recovery tries a fresh connection (SQLite's can stay broken after an I/O
        # error even once the storage is back).
        if self._fault != error.reason:
            log.error("outbox cannot write (%s); holding new items in memory", error)
        self._fault = error.reason
        self._next_attempt = time.monotonic() + self._retry_interval_s

    def _recover(self, *, force: bool) -> None:
        """Reopen if needed, then store what is held and delete what was confirmed meanwhile."""
        if not force and time.monotonic() < self._next_attempt:
            return
        self._next_attempt = time.monotonic() + self._retry_interval_s
        if self._db is None or self._fault is not None:
            self._connect()
            if self._db is None or self._fault is not None:
                return
        while self._held:
            try:
                self._store(self._held[0])
            except StoreError as error:
                self._failed(error)
                return
            except Exception:  # the caller's build() failing: that item can never be stored
                log.exception("a held %s item could not be built; dropped", self._held[0].kind)
            self._held.popleft()
        self._delete_undeleted()

    def _delete_undeleted(self) -> None:
        if self._db is None or not self._undeleted:
            return
        ids = list(self._undeleted)
        try:
            with write_transaction(self._db):
                self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
        except sqlite3.Error as error:
            self._failed(classify(error, self._path.parent))
            return
        for item_id in ids:
            del self._undeleted[item_id]

    def _read(self, sql: str, args: tuple[object, ...]) -> list[tuple[Any, ...]]:
        for _attempt in range(2):  # once more on a replaced (or reopened) database
            if self._db is None:
                return []
            try:
                return [tuple(row) for row in self._db.execute(sql, args).fetchall()]
            except sqlite3.Error as error:
                self._failed(classify(error, self._path.parent))
        return []

    def _kind_of(self, item_id: int) -> str:
        rows = self._read("SELECT kind FROM outbox WHERE id = ?", (item_id,))
        return str(rows[0][0]) if rows else ""
