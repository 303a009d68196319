"""Opening the terminal's SQLite stores so that a full disk, failing storage and a damaged file are
told apart: only a damaged file is set aside; the others are waited out with the file kept.

SQLite reports a full disk as SQLITE_FULL during a write, but as an I/O error when it cannot even
grow its shared-memory file at open (seen on tmpfs: SQLITE_IOERR_SHMSIZE), and that connection
stays broken after space returns. So an I/O error with almost no free space is a full disk, and a
store that failed is reopened, not reused.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

Synchronous = Literal["NORMAL", "FULL"]

# Primary SQLite result codes (the low byte of an extended code).
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26
# Below this, an I/O error is taken for a full disk: SQLite needs a few pages and a 32 kB
# shared-memory file to do anything at all.
NEARLY_FULL_BYTES = 256 * 1024
_SIDE_FILES = ("-wal", "-shm")


class StoreError(Exception):
    """A store cannot be used as it is; ``reason`` is a stable code for heartbeats and events."""

    reason = "store_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class StoreUnavailable(StoreError):
    """The file is fine but the storage under it is not (full, failing, read-only, locked):
    keep the file and try again later."""

    reason = "io_error"


class StoreDamaged(StoreError):
    """The file itself is damaged (fails its integrity check, or is not a database at all)."""

    reason = "damaged"


def free_bytes(directory: Path) -> int | None:
    try:
        stats = os.statvfs(directory)
    except OSError:
        return None
    return stats.f_bavail * stats.f_frsize


def classify(error: sqlite3.Error | OSError, directory: Path) -> StoreError:
    """What a failure of a store in ``directory`` means for the terminal; never the value."""
    if isinstance(error, OSError):
        code = _SQLITE_FULL if error.errno == 28 else _SQLITE_IOERR  # 28: ENOSPC
    else:
        code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StoreDamaged(f"store damaged: {_describe(error)}")
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StoreUnavailable(f"store locked: {_describe(error)}", reason="locked")
    if code == _SQLITE_READONLY:
        return StoreUnavailable(f"storage read-only: {_describe(error)}", reason="read_only")
    if code == _SQLITE_FULL:
        return StoreUnavailable(f"disk full: {_describe(error)}", reason="disk_full")
    free = free_bytes(directory)
    if free is not None and free < NEARLY_FULL_BYTES:
        return StoreUnavailable(f"disk full ({free} bytes free): {_describe(error)}",
                                reason="disk_full")
    return StoreUnavailable(f"storage failing: {_describe(error)}", reason="io_error")


def _describe(error: BaseException) -> str:
    name = getattr(error, "sqlite_errorname", None)
    return f"{name}: {error}" if name else f"{type(error).__name__}: {error}"


def open_store(
    path: Path, schema: str, *, synchronous: Synchronous, busy_timeout_s: float
) -> sqlite3.Connection:
    """Open (or create) the store at ``path`` in WAL mode, check it, and apply ``schema``.

    Raises StoreDamaged when the file fails ``PRAGMA quick_check`` (a page zeroed by a failing
    card passes a plain ``SELECT count(*)`` and breaks every write afterwards), StoreUnavailable
    when the storage will not let it open; the connection is closed either way.
    """
    db: sqlite3.Connection | None = None
    try:
        db = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        # Deleted rows are overwritten, whatever the library's build default: nothing delivered
        # lingers in free pages, and a salvage never brings a delivered item back.
        db.execute("PRAGMA secure_delete=ON")
        problems = [str(row[0]) for row in db.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise StoreDamaged(f"store fails its integrity check: {problems[0][:200]}")
        db.executescript(schema)
    except StoreError:
        if db is not None:
            db.close()
        raise
    except sqlite3.Error as error:
        if db is not None:
            db.close()
        raise classify(error, path.parent) from None
    return db


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; on failure roll back if SQLite has not already.

    After SQLITE_FULL, SQLite has rolled the transaction back itself, and a ROLLBACK then raises
    "cannot rollback - no transaction is active", which would hide the real error.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise


def set_aside(path: Path, reason: str) -> Path:
    """Move a damaged store (and its WAL and shared-memory files) aside for a technician; return
    the new name of the main file. The store's own name is then free for a fresh one."""
    aside = path.with_name(f"{path.name}.{reason}-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", *_SIDE_FILES):
        source = path.with_name(path.name + suffix)
        with contextlib.suppress(FileNotFoundError):
            source.replace(aside.with_name(aside.name + suffix))
    return aside
