"""The fleet store's two databases behind one small interface: SQLite (one instance, a file, zero
set-up) and PostgreSQL (``postgresql://...``, psycopg 3: what several monitor instances share).

The store's SQL is written once, with ``?`` placeholders and what both databases share
(``ON CONFLICT``, ``RETURNING``, partial indexes); every difference between the two is here:

========================  ===========================  =====================================
                          SQLite                       PostgreSQL
========================  ===========================  =====================================
placeholders              ``?``                        ``%s``
a writing transaction     ``BEGIN IMMEDIATE``          ``BEGIN`` (READ COMMITTED, row locks)
larger of two values      ``MAX(a, b)``                ``GREATEST(a, b)`` (as written)
an alert's id             ``INTEGER PRIMARY KEY``      ``BIGINT GENERATED ALWAYS AS IDENTITY``
arrival order of acks     the hidden ``rowid``         an identity column named ``rowid``
schema migration lock     the write lock               ``pg_advisory_xact_lock``
a dropped connection      (a file: none)               reconnected on the next statement
========================  ===========================  =====================================

Both connections run in autocommit mode and the store opens its transactions itself, so a read
outside one sees the latest commit and holds no lock.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    import psycopg

# How long SQLite waits for another writer (the dashboard, a second process) to finish.
BUSY_TIMEOUT_S = 5.0
# PostgreSQL: how long to wait for the server when (re)connecting, and for a lock in a statement.
CONNECT_TIMEOUT_S = 5
# The advisory lock (a 64-bit key) that migrations run under: one instance migrates, the others
# wait and find the schema current.
MIGRATION_LOCK = 0x6B696F736B  # "kiosk"

_URL_SCHEMES = ("postgresql://", "postgres://")
# Parameters per statement: SQLite allows 32,766, PostgreSQL 65,535.
_PARAMETERS_MAX = 16_000


class Cursor(Protocol):
    """What the store reads from a statement's result: the same on both databases."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


def is_postgres(target: Path | str) -> bool:
    return isinstance(target, str) and target.startswith(_URL_SCHEMES)


def redacted(target: Path | str) -> str:
    """``target`` for a log line: a URL's password replaced by ``***``."""
    if not is_postgres(target):
        return str(target)
    parts = urlsplit(str(target))
    if parts.password is None:
        return str(target)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def column_names(cursor: Cursor) -> list[str]:
    return [str(c[0]) for c in cursor.description]


class Database:
    """One connection to either database; ``execute`` takes the store's SQL as written."""

    postgres: bool = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        raise NotImplementedError

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    tail: str = "") -> None:
        """``INSERT INTO table (columns) VALUES (...), (...) tail`` for ``rows``, in order, in as
        few statements as the parameter limits allow (one statement of 500 rows is several
        times faster than 500, and on PostgreSQL: see there)."""
        if not rows:
            return
        head = f"INSERT INTO {table} ({', '.join(columns)})"
        width = len(columns)
        per_statement = max(1, _PARAMETERS_MAX // width)
        one = f"({', '.join('?' for _ in range(width))})"
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            self.execute(f"{head} VALUES {', '.join(one for _ in chunk)} {tail}",
                         [value for row in chunk for value in row])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        raise NotImplementedError
        yield self  # pragma: no cover

    def lock_for_migration(self) -> None:
        """Within a transaction: be the only instance migrating until it ends."""

    def ddl(self, statement: str) -> str:
        """A migration's statement as this database writes it."""
        return statement

    def close(self) -> None:
        raise NotImplementedError


def connect(target: Path | str) -> Database:
    """PostgreSQL for a ``postgresql://`` URL, otherwise a SQLite file at ``target``."""
    if is_postgres(target):
        return PostgresDatabase(str(target))
    return SqliteDatabase(Path(target))


class SqliteDatabase(Database):
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers (the dashboard) never block ingest
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never torn

    @staticmethod
    @functools.lru_cache(maxsize=512)
    def _sql(sql: str) -> str:
        return sql.replace("GREATEST(", "MAX(")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self._db.execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(self._sql(sql), params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        self._db.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first write
        try:
            yield self
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()


# PostgreSQL spellings of the two SQLite-only pieces of the schema.
_PG_DDL = (
    ("id INTEGER PRIMARY KEY", "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    ("CREATE TABLE acks (", "CREATE TABLE acks (\n    rowid BIGINT GENERATED ALWAYS AS IDENTITY,"),
)
_PLACEHOLDER = re.compile(r"\?")


class PostgresDatabase(Database):
    """psycopg 3 in autocommit mode. A connection found closed or broken (the server restarted,
    the network dropped it) is opened again: a read, or a transaction's BEGIN, that finds it
    dropped runs once more on a new one; a transaction it breaks in the middle fails as a whole,
    for the caller (the monitor) to try again."""

    postgres = True

    def __init__(self, url: str) -> None:
        import psycopg  # noqa: PLC0415  (only a PostgreSQL store needs it)

        self._psycopg = psycopg
        self._url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._in_transaction = False
        # The temporary tables this connection has (forgotten with it, and at a rollback, which
        # may have undone the one made in that transaction).
        self._staging: set[str] = set()
        self._connection()

    def _connection(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if self._in_transaction:  # a transaction never spans two connections
                raise self._psycopg.OperationalError("the connection was lost in a transaction")
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            self._staging = set()
            self._conn = conn = self._psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                application_name="kiosk-fleet")
        return conn

    @staticmethod
    @functools.lru_cache(maxsize=512)
    def _sql(sql: str) -> str:
        return _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))

    def _lost(self, conn: psycopg.Connection[Any], error: Exception) -> bool:
        """Whether ``error`` was the connection dropping (a server restart, a failover) outside
        a transaction: then the statement may run once more on a new connection."""
        return (isinstance(error, self._psycopg.OperationalError) and not self._in_transaction
                and (conn.closed or conn.broken))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        conn = self._connection()
        try:
            return conn.execute(self._sql(sql), tuple(params))
        except Exception as e:
            if not self._lost(conn, e):
                raise
        return self._connection().execute(self._sql(sql), tuple(params))

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(p) for p in params]
        if rows:
            with self._connection().cursor() as cursor:
                cursor.executemany(self._sql(sql), rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        conn = self._connection()
        try:
            conn.execute("BEGIN")
        except Exception as e:
            if not self._lost(conn, e):
                raise
            conn = self._connection()
            conn.execute("BEGIN")
        self._in_transaction = True
        try:
            yield self
        except BaseException:
            self._in_transaction = False
            self._staging = set()
            if not (conn.closed or conn.broken):
                with contextlib.suppress(self._psycopg.Error):
                    conn.execute("ROLLBACK")
            raise
        self._in_transaction = False
        conn.execute("COMMIT")

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                    tail: str = "") -> None:
        """``COPY`` the rows into a temporary table like ``table``, then one ``INSERT ...
        SELECT`` in their order: a VALUES list of thousands of parameters, or arrays of them,
        cost psycopg more to parse or dump than the server to run (COPY rows are formatted in C).
        """
        if not rows:
            return
        conn = self._connection()
        staging = f"incoming_{table}"
        if staging not in self._staging:
            conn.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table}"
                         " INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            self._staging.add(staging)
        names = ", ".join(columns)
        with conn.cursor() as cursor:
            with cursor.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging}"
                           f" ORDER BY {columns[0]} {self._sql(tail)}")
            cursor.execute(f"DELETE FROM {staging}")

    def lock_for_migration(self) -> None:
        self.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def ddl(self, statement: str) -> str:
        for sqlite_form, postgres_form in _PG_DDL:
            statement = statement.replace(sqlite_form, postgres_form)
        return statement

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
