"""The fleet's store: what every terminal last said, its events and a day of activity.

SQLite by default (one instance and zero set-up: a file the monitor creates and migrates itself);
PostgreSQL when given a ``postgresql://`` URL, which is what several monitor instances share. The
logic is written once; ``fleet.db`` holds every difference between the two databases. Writes
come in batches (``apply``: one transaction for a few hundred messages), because a fleet of ten
thousand terminals at a 30 s interval sends over 300 heartbeats a second and one commit each would
be the bottleneck.

Several instances on one PostgreSQL database: a shared subscription deals a terminal's messages
to any of them, so two batches may hold the same terminal at once. ``apply`` locks the batch's
terminal rows first, in one statement and in the order of their ids (an upsert that inserts a
missing row and locks an existing one without writing it), so a terminal's row is read, updated
and written by one transaction at a time (no update lost, the heartbeat window exact) and two
transactions never wait for each other in a circle. Migrations run under an advisory lock, and
the alert sweep's lease is one row taken with a conditional update.

Nothing personal is stored: the contract carries none, and ``contracts.mqtt`` has already refused
any event field that looks personal before a record gets here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts.mqtt import CommandPayload, DeviceReport, HeartbeatPayload
from fleet.accounts import Role
from fleet.alerts import Condition, RecentEvent, TerminalFacts
from fleet.availability import SERVING_STATES
from fleet.db import BUSY_TIMEOUT_S, Database, column_names, connect, redacted
from fleet.ingest import Ack, Event, Heartbeat, Ota, Seen, Status
from fleet.liveness import DEFAULT_INTERVAL_S, Liveness, Presence
from fleet.seq_window import SeqWindow, Verdict

SCHEMA_VERSION = 5
# The dashboard's chart of a terminal's last day: heartbeats and sessions in buckets this long.
ACTIVITY_BUCKET_S = 300
__all__ = ["BUSY_TIMEOUT_S", "SCHEMA_VERSION", "FleetStore", "StoreError"]

_SCHEMA_V1 = """
CREATE TABLE terminals (
    tid TEXT PRIMARY KEY,
    site TEXT,
    version TEXT,
    online INTEGER,
    bdseq INTEGER,
    boot_id TEXT,
    status_since DOUBLE PRECISION,
    last_heartbeat DOUBLE PRECISION,
    interval_s DOUBLE PRECISION NOT NULL,
    hb_top BIGINT,
    hb_seen BIGINT NOT NULL DEFAULT 0,
    uptime_s DOUBLE PRECISION,
    state TEXT,
    devices TEXT NOT NULL DEFAULT '{}',
    system TEXT NOT NULL DEFAULT '{}',
    outbox INTEGER,
    counters TEXT NOT NULL DEFAULT '{}',
    ota TEXT,
    heartbeats BIGINT NOT NULL DEFAULT 0,
    events BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE events (
    tid TEXT NOT NULL,
    seq BIGINT NOT NULL,
    type TEXT NOT NULL,
    severity TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL,
    received DOUBLE PRECISION NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (tid, seq)
);
CREATE INDEX events_by_time ON events (received);
CREATE TABLE activity (
    tid TEXT NOT NULL,
    bucket DOUBLE PRECISION NOT NULL,
    heartbeats INTEGER NOT NULL,
    sessions INTEGER NOT NULL,
    PRIMARY KEY (tid, bucket)
);
CREATE TABLE acks (
    request_id TEXT NOT NULL,
    tid TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    result TEXT,
    ts DOUBLE PRECISION NOT NULL,
    received DOUBLE PRECISION NOT NULL
);
CREATE INDEX acks_by_request ON acks (request_id);
"""

_SCHEMA_V2 = """
CREATE TABLE commands (
    request_id TEXT PRIMARY KEY,
    tid TEXT NOT NULL,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    sent_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX commands_by_terminal ON commands (tid, sent_at);
"""

_SCHEMA_V3 = """
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    tid TEXT NOT NULL,
    site TEXT,
    cause TEXT NOT NULL,
    severity TEXT NOT NULL,
    detail TEXT NOT NULL,
    state TEXT NOT NULL,
    opened_at DOUBLE PRECISION NOT NULL,
    acked_at DOUBLE PRECISION,
    acked_by TEXT,
    resolved_at DOUBLE PRECISION
);
CREATE UNIQUE INDEX one_alert_per_cause ON alerts (tid, cause) WHERE state <> 'resolved';
CREATE INDEX alerts_by_state ON alerts (state, opened_at);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
)
"""

# The dashboard's accounts (password hashes and token digests only), its sessions, the help calls
# operators answered, and the secret its session cookies are signed with (shared by instances).
_SCHEMA_V4 = """
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    password TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE api_tokens (
    digest TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE web_sessions (
    digest TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE help_acks (
    tid TEXT NOT NULL,
    help_id TEXT NOT NULL,
    staff TEXT NOT NULL,
    minutes INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    acked_by TEXT NOT NULL,
    acked_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tid, help_id)
);
CREATE INDEX events_by_type ON events (type, received);
CREATE TABLE web_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""

# Availability: how many of a bucket's heartbeats said the terminal could serve.
_SCHEMA_V5 = """
ALTER TABLE activity ADD COLUMN serving INTEGER NOT NULL DEFAULT 0
"""

# Each entry takes the schema from its index to the next version; never edit a released one.
_MIGRATIONS: tuple[str, ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3, _SCHEMA_V4, _SCHEMA_V5)


class StoreError(RuntimeError):
    """The database cannot be used (a newer schema than this code knows, a broken file)."""


@dataclass(frozen=True)
class TerminalView:
    """One terminal as the API and the dashboard show it."""

    tid: str
    site: str | None
    version: str | None
    liveness: Liveness
    last_seen: dt.datetime | None
    state: str | None
    devices: dict[str, dict[str, str]]
    system: dict[str, Any]
    outbox: int | None
    counters: dict[str, Any]
    heartbeats: int
    events: int


@dataclass(frozen=True)
class EventView:
    tid: str
    seq: int
    type: str
    severity: str
    ts: dt.datetime
    received: dt.datetime
    fields: dict[str, Any]


@dataclass(frozen=True)
class CommandView:
    """A command as sent, and every ack received for it, in order."""

    request_id: str
    tid: str
    name: str
    args: dict[str, Any]
    sent_at: dt.datetime
    expires_at: dt.datetime
    acks: list[tuple[str, str | None]]  # (status, error)


class AlertState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class AlertView:
    id: int
    tid: str
    site: str | None
    cause: str
    severity: str
    detail: str
    state: AlertState
    opened_at: dt.datetime
    acked_at: dt.datetime | None
    acked_by: str | None
    resolved_at: dt.datetime | None


@dataclass(frozen=True)
class SweepResult:
    opened: list[AlertView]
    resolved: list[AlertView]


@dataclass
class BatchResult:
    """What one ``apply`` took and refused, for the monitor's counters."""

    heartbeats: int = 0
    events: int = 0
    statuses: int = 0
    acks: int = 0
    duplicates: int = 0
    too_old: int = 0
    terminals: set[str] = field(default_factory=set)


def _epoch(when: dt.datetime) -> float:
    return when.timestamp()


def _when(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def _presence(values: dict[str, Any]) -> Presence:
    """A terminal row's connection state."""
    online = values["online"]
    return Presence(
        online=None if online is None else bool(online), bdseq=values["bdseq"],
        boot_id=values["boot_id"], since=_when(values["status_since"]),
        last_heartbeat=_when(values["last_heartbeat"]),
        interval_s=values["interval_s"] or DEFAULT_INTERVAL_S)


@dataclass
class _Row:
    """A terminal's row while a batch is applied to it."""

    presence: Presence
    window: SeqWindow
    values: dict[str, Any]
    latest: HeartbeatPayload | None = None  # the batch's newest heartbeat, serialised at save


# A heartbeat's devices as plain dicts, in one call (a model_dump per device cost more).
_DEVICES: TypeAdapter[dict[str, DeviceReport]] = TypeAdapter(dict[str, DeviceReport])

# Columns a batch writes to a terminal's row, in the order of _SAVE_TERMINAL's values.
_PLAIN_COLUMNS = ("site", "version", "state", "uptime_s", "outbox", "ota", "heartbeats",
                  "events", "duplicates")
_SAVED_COLUMNS = (*_PLAIN_COLUMNS, "devices", "system", "counters", "online", "bdseq",
                  "boot_id", "status_since", "last_heartbeat", "interval_s", "hb_top", "hb_seen")
_SAVE_TERMINAL = (("tid", *_SAVED_COLUMNS),
                  f"ON CONFLICT (tid) DO UPDATE SET"
                  f" {', '.join(f'{c} = excluded.{c}' for c in _SAVED_COLUMNS)}")
# Each of a batch's terminals, in id order: its row inserted if missing, locked if not (on
# PostgreSQL ``DO UPDATE ... WHERE false`` locks the row and writes nothing; SQLite's write lock
# is already the whole file's). Until the transaction ends no other instance touches the row.
# (One multi-row statement: PostgreSQL takes VALUES rows, and so their locks, in order.)
_LOCK_TERMINAL = (("tid", "interval_s"),
                  "ON CONFLICT (tid) DO UPDATE SET tid = excluded.tid WHERE false")
_ADD_ACTIVITY = (("tid", "bucket", "heartbeats", "sessions", "serving"),
                 "ON CONFLICT (tid, bucket) DO UPDATE SET heartbeats = activity.heartbeats"
                 " + excluded.heartbeats, sessions = GREATEST(activity.sessions,"
                 " excluded.sessions), serving = activity.serving + excluded.serving")
# Terminal ids per IN (...) list: SQLite allows 32,766 parameters; a batch has a few hundred.
_IN_LIST_MAX = 500


class FleetStore:
    """The store over a SQLite file or a PostgreSQL database (``postgresql://user@host/db``);
    one connection: the monitor's writer has its own, and a reader (the dashboard, a test) opens
    another on the same file or database."""

    def __init__(self, path: Path | str) -> None:
        try:
            self._db: Database = connect(path)
        except Exception as e:  # sqlite3.Error, psycopg.Error: the CLI says which store and why
            raise StoreError(f"cannot open {redacted(path)}: {e}") from e
        try:
            self._migrate()
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Database]:
        with self._db.transaction() as db:
            yield db

    def _migrate(self) -> None:
        with self._transaction() as db:
            db.lock_for_migration()  # PostgreSQL: instances starting together migrate once
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreError(f"the database has schema {version}; this monitor knows up to "
                                 f"{SCHEMA_VERSION}: upgrade the fleet tools")
            for step in _MIGRATIONS[version:]:
                for statement in filter(str.strip, step.split(";")):
                    db.execute(db.ddl(statement))
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            else:
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    # --- writing ---------------------------------------------------------------------------------

    def apply(self, batch: Sequence[Seen]) -> BatchResult:
        """Store ``batch`` in one transaction, in order; repeats are counted, not stored twice.

        Per batch, not per message: the batch's terminals are locked in one statement, read in
        one query and written in one multi-row upsert, a terminal's newest heartbeat alone is
        serialised, and activity is summed per terminal and bucket first (ingest ran at half the
        rate one message at a time).
        """
        result = BatchResult()
        with self._transaction() as db:
            tids = sorted({record.tid for record in batch})
            db.insert_rows("terminals", _LOCK_TERMINAL[0],
                           [(tid, DEFAULT_INTERVAL_S) for tid in tids], _LOCK_TERMINAL[1])
            rows = self._load_rows(db, tids)
            activity: dict[tuple[str, float], list[int]] = {}
            for record in batch:
                self._apply_one(db, rows[record.tid], record, result, activity)
            db.insert_rows("activity", _ADD_ACTIVITY[0],
                           [(tid, bucket, beats, sessions, serving)
                            for (tid, bucket), (beats, sessions, serving)
                            in sorted(activity.items())], _ADD_ACTIVITY[1])
            self._save_rows(db, rows)
            result.terminals = set(rows)
        return result

    def _load_rows(self, db: Database, tids: list[str]) -> dict[str, _Row]:
        """The batch's terminal rows (locked, each there: ``_LOCK_TERMINAL`` inserted any
        missing)."""
        rows: dict[str, _Row] = {}
        for start in range(0, len(tids), _IN_LIST_MAX):
            chunk = tids[start:start + _IN_LIST_MAX]
            cursor = db.execute(f"SELECT * FROM terminals WHERE tid IN"
                                f" ({', '.join('?' for _ in chunk)})", chunk)
            names = column_names(cursor)
            for found in cursor:
                values = dict(zip(names, found, strict=True))
                rows[values["tid"]] = _Row(
                    _presence(values), SeqWindow.from_stored(values["hb_top"], values["hb_seen"]),
                    values)
        for tid in set(tids) - rows.keys():
            rows[tid] = _Row(Presence(), SeqWindow(),
                             {"heartbeats": 0, "events": 0, "duplicates": 0})
        return rows

    def _apply_one(self, db: Database, row: _Row, record: Seen, result: BatchResult,
                   activity: dict[tuple[str, float], list[int]]) -> None:
        match record:
            case Status(payload=status):
                result.statuses += 1
                if status.online and status.boot_id != row.presence.boot_id:
                    # A new boot counts its heartbeats from 0 again.
                    row.window = SeqWindow()
                    row.values["uptime_s"] = None
                taken = row.presence.on_status(status, record.received)
                if taken is not row.presence:  # not a late Will, whose version may be old
                    row.presence = taken
                    row.values.update(site=status.site, version=status.version)
            case Heartbeat(payload=beat):
                uptime = row.values.get("uptime_s")
                if uptime is not None and beat.uptime_s + 2 * beat.interval_s < uptime:
                    # Uptime went back: the terminal restarted and its birth is still on its way
                    # (another instance has it); its seq starts again.
                    row.window = SeqWindow()
                verdict, row.window = row.window.check(beat.seq)
                if verdict is not Verdict.NEW:
                    result.duplicates += verdict is Verdict.REPEAT
                    result.too_old += verdict is Verdict.TOO_OLD
                    row.values["duplicates"] += 1
                    return
                row.presence = row.presence.on_heartbeat(beat, record.received)
                if row.presence.last_heartbeat == record.received:  # the newest: its figures
                    row.latest = beat
                    row.values["uptime_s"] = beat.uptime_s
                row.values["heartbeats"] += 1
                result.heartbeats += 1
                bucket = _epoch(record.received) // ACTIVITY_BUCKET_S * ACTIVITY_BUCKET_S
                counts = activity.setdefault((record.tid, bucket), [0, 0, 0])
                counts[0] += 1
                counts[1] = max(counts[1], beat.counters.sessions)
                counts[2] += beat.state in SERVING_STATES
            case Event(payload=event):
                cursor = db.execute(
                    "INSERT INTO events (tid, seq, type, severity, ts, received, fields)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tid, seq) DO NOTHING",
                    (record.tid, event.seq, event.type, event.severity, _epoch(event.ts),
                     _epoch(record.received), json.dumps(event.fields, ensure_ascii=False)))
                if cursor.rowcount == 1:
                    row.values["events"] += 1
                    result.events += 1
                else:
                    row.values["duplicates"] += 1
                    result.duplicates += 1
            case Ack(payload=ack):
                db.execute(
                    "INSERT INTO acks (request_id, tid, status, error, result, ts, received)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (record.request_id, record.tid, ack.status, ack.error,
                     None if ack.result is None else json.dumps(ack.result, ensure_ascii=False),
                     _epoch(ack.ts), _epoch(record.received)))
                result.acks += 1
            case Ota(payload=ota):
                row.values["ota"] = ota.model_dump_json()

    @staticmethod
    def _save_rows(db: Database, rows: dict[str, _Row]) -> None:
        params = []
        for tid, row in rows.items():
            p, beat = row.presence, row.latest
            if beat is not None:
                row.values.update(
                    state=beat.state, version=beat.version, outbox=beat.outbox,
                    devices=json.dumps(_DEVICES.dump_python(beat.devices)),
                    system=beat.system.model_dump_json(),
                    counters=beat.counters.model_dump_json())
            params.append((
                tid, *(row.values.get(k) for k in _PLAIN_COLUMNS),
                row.values.get("devices") or "{}", row.values.get("system") or "{}",
                row.values.get("counters") or "{}",
                None if p.online is None else int(p.online), p.bdseq, p.boot_id,
                None if p.since is None else _epoch(p.since),
                None if p.last_heartbeat is None else _epoch(p.last_heartbeat),
                p.interval_s, row.window.top, row.window.stored()))
        db.insert_rows("terminals", _SAVE_TERMINAL[0], params, _SAVE_TERMINAL[1])

    def record_command(self, request_id: str, tid: str, payload: CommandPayload) -> None:
        """Remember a command sent (at its payload's ``ts``), so its acks (stored by the monitor)
        have a name and a time."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO commands (request_id, tid, name, args, sent_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING",
                (request_id, tid, payload.name, json.dumps(payload.args, ensure_ascii=False),
                 _epoch(payload.ts), _epoch(payload.expires_at)))

    def take_lease(self, name: str, holder: str, now: dt.datetime, ttl_s: float) -> bool:
        """Hold (or keep holding) the lease ``name`` until ``now + ttl_s``; False while another
        holder's lease runs. What must run once per fleet (alert sweeps) runs under one."""
        until = _epoch(now) + ttl_s
        with self._transaction() as db:
            db.execute("INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
                       " ON CONFLICT (name) DO NOTHING", (name, holder, until))
            taken = db.execute(
                "UPDATE leases SET holder = ?, expires_at = ? WHERE name = ? AND"
                " (holder = ? OR expires_at < ?)", (holder, until, name, holder, _epoch(now)))
            return taken.rowcount == 1

    def sweep_alerts(self, holding: Sequence[Condition], now: dt.datetime) -> SweepResult:
        """Open an alert for each condition without one, resolve each alert whose condition is
        gone; an acknowledged alert stays acknowledged while its condition holds."""
        with self._transaction() as db:
            active = {(a.tid, a.cause): a for a in self._alerts(
                db, "WHERE state <> 'resolved'", ())}
            sites = dict(db.execute("SELECT tid, site FROM terminals").fetchall())
            wanted = {(c.tid, str(c.cause)): c for c in holding}
            opened_ids = []
            for key, condition in wanted.items():
                if key in active:
                    continue
                (alert_id,) = db.execute(
                    "INSERT INTO alerts (tid, site, cause, severity, detail, state, opened_at)"
                    " VALUES (?, ?, ?, ?, ?, 'open', ?) RETURNING id",
                    (condition.tid, sites.get(condition.tid), str(condition.cause),
                     str(condition.severity), condition.detail, _epoch(now))).fetchone()
                opened_ids.append(int(alert_id))
            gone = [a.id for key, a in active.items() if key not in wanted]
            for alert_id in gone:
                db.execute("UPDATE alerts SET state = 'resolved', resolved_at = ? WHERE id = ?",
                           (_epoch(now), alert_id))
            ids = [*opened_ids, *gone]
            changed = {a.id: a for a in self._alerts(
                db, f"WHERE id IN ({', '.join('?' for _ in ids)})", ids)} if ids else {}
        return SweepResult([changed[i] for i in opened_ids if i in changed],
                           [changed[i] for i in gone])

    def acknowledge_alert(self, alert_id: int, by: str, now: dt.datetime) -> AlertView | None:
        """An operator has seen it; a resolved alert stays resolved. None for no such alert."""
        with self._transaction() as db:
            db.execute("UPDATE alerts SET state = 'acknowledged', acked_at = ?, acked_by = ?"
                       " WHERE id = ? AND state = 'open'", (_epoch(now), by, alert_id))
            found = self._alerts(db, "WHERE id = ?", (alert_id,))
        return found[0] if found else None

    # --- reading ---------------------------------------------------------------------------------

    def alerts(self, state: AlertState | None = None) -> list[AlertView]:
        """Alerts newest first, all or in one state."""
        if state is None:
            return self._alerts(self._db, "ORDER BY opened_at DESC, id DESC", ())
        return self._alerts(self._db, "WHERE state = ? ORDER BY opened_at DESC, id DESC",
                            (str(state),))

    @staticmethod
    def _alerts(db: Database, where: str, params: Sequence[Any]) -> list[AlertView]:
        rows = db.execute(
            "SELECT id, tid, site, cause, severity, detail, state, opened_at, acked_at, acked_by,"
            f" resolved_at FROM alerts {where}", tuple(params))
        return [AlertView(i, tid, site, cause, severity, detail, AlertState(state),
                          _when(opened) or dt.datetime.min, _when(acked), by, _when(resolved))
                for i, tid, site, cause, severity, detail, state, opened, acked, by, resolved
                in rows]

    def alert_facts(self, now: dt.datetime, since: dt.datetime
                    ) -> list[tuple[TerminalFacts, list[RecentEvent]]]:
        """Every terminal as the alert rules read it, with its events received since ``since``."""
        events: dict[str, list[RecentEvent]] = {}
        for tid, kind, received, fields in self._db.execute(
                "SELECT tid, type, received, fields FROM events WHERE received >= ?",
                (_epoch(since),)):
            events.setdefault(tid, []).append(
                RecentEvent(kind, _when(received) or since, json.loads(fields)))
        return [(TerminalFacts(v.tid, v.liveness, v.last_seen, v.devices, v.system, v.outbox),
                 events.get(v.tid, [])) for v in self.terminals(now)]

    def command(self, request_id: str) -> CommandView | None:
        found = self._db.execute(
            "SELECT request_id, tid, name, args, sent_at, expires_at FROM commands"
            " WHERE request_id = ?", (request_id,)).fetchone()
        if found is None:
            return None
        rid, tid, name, args, sent_at, expires_at = found
        acks = [(status, error) for _, status, error in self.acks(request_id)]
        return CommandView(rid, tid, name, json.loads(args), _when(sent_at) or dt.datetime.min,
                           _when(expires_at) or dt.datetime.min, acks)

    def terminals(self, now: dt.datetime) -> list[TerminalView]:
        """Every terminal known, by id, with its liveness at ``now``."""
        cursor = self._db.execute("SELECT * FROM terminals ORDER BY tid")
        names = column_names(cursor)
        return [self._view(dict(zip(names, found, strict=True)), now) for found in cursor]

    def terminal(self, tid: str, now: dt.datetime) -> TerminalView | None:
        cursor = self._db.execute("SELECT * FROM terminals WHERE tid = ?", (tid,))
        found = cursor.fetchone()
        if found is None:
            return None
        return self._view(dict(zip(column_names(cursor), found, strict=True)), now)

    def events(self, tid: str, limit: int = 50) -> list[EventView]:
        """A terminal's latest events, newest first."""
        rows = self._db.execute(
            "SELECT tid, seq, type, severity, ts, received, fields FROM events WHERE tid = ?"
            " ORDER BY seq DESC LIMIT ?", (tid, limit))
        return [EventView(t, seq, kind, severity, _when(ts) or dt.datetime.min,
                          _when(received) or dt.datetime.min, json.loads(fields))
                for t, seq, kind, severity, ts, received, fields in rows]

    def acks(self, request_id: str) -> list[tuple[str, str, str | None]]:
        """Every ack of a command as (tid, status, error), in the order they arrived."""
        return [(tid, status, error) for tid, status, error in self._db.execute(
            "SELECT tid, status, error FROM acks WHERE request_id = ? ORDER BY received, rowid",
            (request_id,))]

    def serving_buckets(self, since: dt.datetime, until: dt.datetime,
                        tid: str | None = None) -> dict[str, list[float]]:
        """Per terminal (or for ``tid`` alone), the activity buckets in [since, until) with a
        heartbeat that said it could serve (the input of ``fleet.availability``)."""
        found: dict[str, list[float]] = {}
        only = "" if tid is None else " AND tid = ?"
        for terminal, bucket in self._db.execute(
                "SELECT tid, bucket FROM activity WHERE bucket >= ? AND bucket < ? AND"
                f" serving > 0{only}",
                (_epoch(since), _epoch(until), *(() if tid is None else (tid,)))):
            found.setdefault(terminal, []).append(float(bucket))
        return found

    def activity(self, tid: str, since: dt.datetime) -> list[tuple[dt.datetime, int, int]]:
        """(bucket start, heartbeats, sessions so far today) for the chart, oldest first."""
        return [(_when(bucket) or since, beats, sessions) for bucket, beats, sessions in
                self._db.execute(
                    "SELECT bucket, heartbeats, sessions FROM activity WHERE tid = ? AND"
                    " bucket >= ? ORDER BY bucket", (tid, _epoch(since)))]

    def prune(self, before: dt.datetime) -> int:
        """Forget events and activity older than ``before`` (the configured days); rows gone."""
        with self._transaction() as db:
            gone = db.execute("DELETE FROM events WHERE received < ?", (_epoch(before),)).rowcount
            gone += db.execute("DELETE FROM activity WHERE bucket < ?",
                               (_epoch(before),)).rowcount
            gone += db.execute("DELETE FROM acks WHERE received < ?", (_epoch(before),)).rowcount
        return gone

    @staticmethod
    def _view(values: dict[str, Any], now: dt.datetime) -> TerminalView:
        presence = _presence(values)
        return TerminalView(
            tid=values["tid"], site=values["site"], version=values["version"],
            liveness=presence.liveness(now), last_seen=presence.last_seen(),
            state=values["state"], devices=json.loads(values["devices"]),
            system=json.loads(values["system"]), outbox=values["outbox"],
            counters=json.loads(values["counters"]), heartbeats=values["heartbeats"],
            events=values["events"])


    # --- accounts and dashboard queries ---------------------------------------------------------

    def add_user(self, name: str, role: Role, password_hash: str, now: dt.datetime) -> bool:
        """A new dashboard account (its password already hashed); False if the name is taken."""
        with self._transaction() as db:
            return db.execute(
                "INSERT INTO users (name, role, password, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO NOTHING",
                (name, str(role), password_hash, _epoch(now))).rowcount == 1

    def user(self, name: str) -> UserRecord | None:
        found = self._db.execute("SELECT name, role, password FROM users WHERE name = ?",
                                 (name,)).fetchone()
        return None if found is None else UserRecord(found[0], Role(found[1]), found[2])

    def add_token(self, name: str, role: Role, digest: str, now: dt.datetime) -> bool:
        """An API token by its SHA-256 only; False if a token of that name exists."""
        with self._transaction() as db:
            return db.execute(
                "INSERT INTO api_tokens (digest, name, role, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING", (digest, name, str(role), _epoch(now))).rowcount == 1

    def token(self, digest: str) -> TokenRecord | None:
        found = self._db.execute("SELECT name, role FROM api_tokens WHERE digest = ?",
                                 (digest,)).fetchone()
        return None if found is None else TokenRecord(found[0], Role(found[1]))

    def open_session(self, digest: str, username: str, expires_at: dt.datetime,
                     now: dt.datetime) -> None:
        """A logged-in browser (by its session id's SHA-256); sessions past their end go."""
        with self._transaction() as db:
            db.execute("DELETE FROM web_sessions WHERE expires_at < ?", (_epoch(now),))
            db.execute("INSERT INTO web_sessions (digest, username, expires_at) VALUES (?, ?, ?)",
                       (digest, username, _epoch(expires_at)))

    def session_user(self, digest: str, now: dt.datetime) -> UserRecord | None:
        """The account of a session still running, if the account still exists."""
        found = self._db.execute(
            "SELECT u.name, u.role, u.password FROM web_sessions s JOIN users u"
            " ON u.name = s.username WHERE s.digest = ? AND s.expires_at >= ?",
            (digest, _epoch(now))).fetchone()
        return None if found is None else UserRecord(found[0], Role(found[1]), found[2])

    def close_session(self, digest: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM web_sessions WHERE digest = ?", (digest,))

    def web_secret(self, name: str) -> str:
        """A random secret kept in the store (made on first use), so every dashboard instance
        and restart signs cookies alike."""
        with self._transaction() as db:
            db.execute("INSERT INTO web_secrets (name, value) VALUES (?, ?)"
                       " ON CONFLICT (name) DO NOTHING", (name, secrets.token_hex(32)))
            return str(db.execute("SELECT value FROM web_secrets WHERE name = ?",
                                  (name,)).fetchone()[0])

    def help_requests(self, since: dt.datetime) -> list[HelpRequestRecord]:
        """Every ``help_requested`` event received since ``since``, newest first, each with
        whether it was cancelled and how an operator answered it."""
        cancelled = {(tid, json.loads(fields).get("help_id")) for tid, fields in self._db.execute(
            "SELECT tid, fields FROM events WHERE type = 'help_cancelled' AND received >= ?",
            (_epoch(since),))}
        answered = {(tid, help_id): HelpAckRecord(staff, minutes, request_id, by,
                                                  _when(at) or since)
                    for tid, help_id, staff, minutes, request_id, by, at in self._db.execute(
                        "SELECT tid, help_id, staff, minutes, request_id, acked_by, acked_at"
                        " FROM help_acks WHERE acked_at >= ?", (_epoch(since),))}
        found = []
        for tid, site, received, text in self._db.execute(
                "SELECT e.tid, t.site, e.received, e.fields FROM events e LEFT JOIN terminals t"
                " ON t.tid = e.tid WHERE e.type = 'help_requested' AND e.received >= ?"
                " ORDER BY e.received DESC, e.tid", (_epoch(since),)):
            fields = json.loads(text)
            help_id = str(fields.get("help_id", ""))
            found.append(HelpRequestRecord(
                tid=tid, site=site, help_id=help_id, screen=str(fields.get("screen", "")),
                elder_mode=bool(fields.get("elder_mode", False)),
                requested_at=_when(received) or since,
                cancelled=(tid, help_id) in cancelled, answer=answered.get((tid, help_id))))
        return found

    def record_help_ack(self, tid: str, help_id: str, answer: HelpAckRecord) -> bool:
        """Remember that an operator answered a help call; False if one already had."""
        with self._transaction() as db:
            return db.execute(
                "INSERT INTO help_acks (tid, help_id, staff, minutes, request_id, acked_by,"
                " acked_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tid, help_id) DO NOTHING",
                (tid, help_id, answer.staff, answer.minutes, answer.request_id, answer.acked_by,
                 _epoch(answer.acked_at))).rowcount == 1

    def recent_commands(self, limit: int = 50, tid: str | None = None) -> list[CommandView]:
        """The latest commands sent (to one terminal or any), newest first, with their acks."""
        where, params = ("WHERE tid = ?", (tid, limit)) if tid is not None else ("", (limit,))
        ids = [rid for (rid,) in self._db.execute(
            f"SELECT request_id FROM commands {where} ORDER BY sent_at DESC, request_id"
            " LIMIT ?", params)]
        return [view for rid in ids if (view := self.command(rid)) is not None]

    def ack_details(self, request_id: str) -> list[AckRecord]:
        """Every ack of a command with its result and times, in the order they arrived."""
        return [AckRecord(tid, status, error, None if result is None else json.loads(result),
                          _when(ts) or dt.datetime.min, _when(received) or dt.datetime.min)
                for tid, status, error, result, ts, received in self._db.execute(
                    "SELECT tid, status, error, result, ts, received FROM acks"
                    " WHERE request_id = ? ORDER BY received, rowid", (request_id,))]

    def message_totals(self) -> tuple[dict[str, int], dict[str, int]]:
        """Messages the store took, by kind, and those it refused as repeats: what ``/metrics``
        can tell without the monitor's own counters (refusals before the store are not here)."""
        beats, events, repeats = self._db.execute(
            "SELECT COALESCE(SUM(heartbeats), 0), COALESCE(SUM(events), 0),"
            " COALESCE(SUM(duplicates), 0) FROM terminals").fetchone()
        (acks,) = self._db.execute("SELECT COUNT(*) FROM acks").fetchone()
        return ({"heartbeat": int(beats), "event": int(events), "ack": int(acks)},
                {"duplicate": int(repeats)})


# --- accounts and dashboard queries: their records ------------------------------------------------


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: Role
    password_hash: str


@dataclass(frozen=True)
class TokenRecord:
    name: str
    role: Role


@dataclass(frozen=True)
class HelpAckRecord:
    """How an operator answered a help call: the ``help_ack`` command sent."""

    staff: str
    minutes: int
    request_id: str
    acked_by: str
    acked_at: dt.datetime


@dataclass(frozen=True)
class HelpRequestRecord:
    tid: str
    site: str | None
    help_id: str
    screen: str
    elder_mode: bool
    requested_at: dt.datetime
    cancelled: bool
    answer: HelpAckRecord | None


@dataclass(frozen=True)
class AckRecord:
    tid: str
    status: str
    error: str | None
    result: dict[str, Any] | None
    ts: dt.datetime
    received: dt.datetime
