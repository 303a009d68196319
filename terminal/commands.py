"""Command dispatch for the telemetry agent (DESIGN 6): validation, expiry and idempotent acks.

A command is rejected whole (bad payload, expired, expiring too far ahead, unknown name, bad args)
or accepted and then run. Every accepted command's acks are remembered in a small SQLite store
before they are sent, until the command itself expires, so a repeated request id (also after a
restart) gets the very same ack instead of running the command again; a replay after that is
rejected as expired. Rejections are not remembered: each is what the same payload gets again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from contracts.mqtt import (
    COMMAND_LIFETIME_MAX,
    AckPayload,
    AckStatus,
    CommandPayload,
    PayloadError,
    describe_validation_error,
    encode,
    is_code,
    parse_payload,
    utc_now,
)
from contracts.personal import personal_data_reason
from terminal.sqlite_store import (
    StoreDamaged,
    StoreError,
    StoreUnavailable,
    classify,
    open_store,
    set_aside,
    write_transaction,
)

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted by a restart before it finished; not retried"
# Past its expiry a command is rejected anyway; a day more covers a clock set right meanwhile.
REMEMBER_AFTER_EXPIRY = dt.timedelta(days=1)
COMMAND_LOG_MAX = 100_000  # remembered commands; more within a week is a flood, answered busy
_PRUNE_EVERY_S = 600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS command_acks (
    request_id TEXT    PRIMARY KEY,
    ack        TEXT    NOT NULL,
    final      INTEGER NOT NULL,
    keep_until REAL    NOT NULL  -- seconds since the epoch: the command's expiry and a margin
);
CREATE INDEX IF NOT EXISTS command_acks_keep_until ON command_acks (keep_until);
"""


class CommandError(Exception):
    """Raised by a command handler to fail with a message that is sent back in the ack.

    Only this message travels; any other exception is reported as an internal error by type name,
    because arbitrary exception text may carry anything.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


A = TypeVar("A", bound=BaseModel)
CommandResult = Mapping[str, JsonValue] | None


class NoArgs(BaseModel):
    """Arguments of a command that takes none."""

    model_config = ConfigDict(extra="forbid", strict=True)


@dataclass(frozen=True)
class _Command:
    args_model: type[BaseModel]
    handler: Callable[[Any], CommandResult]


@dataclass(frozen=True)
class _AckRecord:
    ack_json: str
    final: bool


class CommandLog:
    """Accepted commands' request ids and the last ack each got, kept until the command expires
    (plus a margin), persisted with ``synchronous=FULL`` so a duplicate after a crash or a power
    cut is answered with the same ack instead of running the command again.

    Raises StoreUnavailable from ``put`` when the storage refuses the write: the caller must then
    not run the command, as it could not promise to run it only once.
    """

    def __init__(self, path: Path, *, limit: int = COMMAND_LOG_MAX,
                 now: Callable[[], float] = time.time) -> None:
        self._path = path
        self._limit = limit
        self._now = now
        self._db: sqlite3.Connection | None = None
        self._closed = False
        self._next_prune = 0.0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._open()
        self._import_legacy(path.with_name("mqtt_commands.json"))

    def _open(self) -> None:
        try:
            self._db = open_store(self._path, _SCHEMA, synchronous="FULL", busy_timeout_s=5.0)
        except StoreDamaged as error:
            # Without it, a replay of a command from the last week could run again; that is the
            # price of a damaged file, and the log says so.
            aside = set_aside(self._path, "damaged")
            log.error("command log damaged (%s); set aside as %s, starting a new one",
                      error, aside.name)
            with contextlib.suppress(StoreError):
                self._db = open_store(self._path, _SCHEMA, synchronous="FULL",
                                      busy_timeout_s=5.0)
        except StoreUnavailable as error:
            log.error("command log unavailable (%s); commands are refused until it is back",
                      error)

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            # A handler still running when the agent stopped must not write over what the next
            # start records (INTERRUPTED) for its command.
            raise StoreUnavailable("command log closed")
        if self._db is None:
            self._open()
        if self._db is None:
            raise StoreUnavailable("command log unavailable")
        return self._db

    def _import_legacy(self, legacy: Path) -> None:
        """Take over the acks of the JSON log that earlier versions kept, then remove it."""
        try:
            entries = json.loads(legacy.read_text(encoding="utf-8"))["entries"]
            keep_until = self._now() + COMMAND_LIFETIME_MAX.total_seconds()
            for entry in entries:
                self.put(str(entry["request_id"]), str(entry["ack"]), bool(entry["final"]),
                         keep_until=keep_until)
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, StoreError):
            log.warning("legacy command log %s unreadable; not taken over", legacy)
        with contextlib.suppress(OSError):
            legacy.unlink()

    def get(self, request_id: str) -> _AckRecord | None:
        try:
            row = self._connection().execute(
                "SELECT ack, final FROM command_acks WHERE request_id = ? AND keep_until >= ?",
                (request_id, self._now()),
            ).fetchone()
        except sqlite3.Error as error:
            self._failed(error)
            raise classify(error, self._path.parent) from None
        return _AckRecord(str(row[0]), bool(row[1])) if row else None

    def unfinished(self) -> list[str]:
        """Request ids accepted but never finished (the process stopped while running them)."""
        try:
            rows = self._connection().execute(
                "SELECT request_id FROM command_acks WHERE final = 0"
            ).fetchall()
        except (sqlite3.Error, StoreError):
            return []
        return [str(row[0]) for row in rows]

    def full(self) -> bool:
        self._prune()
        try:
            (count,) = self._connection().execute("SELECT count(*) FROM command_acks").fetchone()
        except (sqlite3.Error, StoreError):
            return False  # put() will say what is wrong
        return int(count) >= self._limit

    def put(self, request_id: str, ack_json: str, final: bool, *, keep_until: float) -> None:
        db = self._connection()
        try:
            with write_transaction(db):
                db.execute(
                    "INSERT INTO command_acks (request_id, ack, final, keep_until) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET "
                    "ack = excluded.ack, final = excluded.final, keep_until = excluded.keep_until",
                    (request_id, ack_json, int(final), keep_until),
                )
        except sqlite3.Error as error:
            self._failed(error)
            raise classify(error, self._path.parent) from None

    def close(self) -> None:
        self._closed = True
        if self._db is not None:
            self._db.close()
            self._db = None

    def _prune(self) -> None:
        now = self._now()
        if now < self._next_prune or self._db is None:
            return
        self._next_prune = now + _PRUNE_EVERY_S
        with contextlib.suppress(sqlite3.Error):
            self._db.execute("DELETE FROM command_acks WHERE keep_until < ? AND final = 1", (now,))

    def _failed(self, error: sqlite3.Error) -> None:
        # Reopen at the next call: after a full disk the connection can stay broken.
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if isinstance(classify(error, self._path.parent), StoreDamaged):
            try:
                aside = set_aside(self._path, "damaged")
            except OSError:
                log.exception("command log damaged at run time and cannot be set aside")
                return
            log.error("command log damaged at run time; set aside as %s", aside.name)


def result_problem(value: JsonValue, key: str = "result") -> str | None:
    """Why a command result must not be sent (it looks personal), or None."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            problem = result_problem(v, str(k))
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for item in value:
            problem = result_problem(item, key)
            if problem:
                return problem
        return None
    return personal_data_reason(key, value)


class CommandDispatcher:
    """The registered commands and the ack log; ``handle`` runs one command to its final ack.

    ``send_ack(request_id, ack_json)`` hands an ack to the link, in order. Not thread-safe: the
    agent calls ``handle`` from its one commands thread, so commands run one at a time.
    """

    def __init__(
        self,
        log_path: Path,
        send_ack: Callable[[str, str], None],
        *,
        max_lifetime: dt.timedelta = COMMAND_LIFETIME_MAX,
        now: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._log = CommandLog(log_path, now=lambda: now().timestamp())
        self._send_ack = send_ack
        self._max_lifetime = max_lifetime
        self._now = now
        self._commands: dict[str, _Command] = {}

    def register(
        self, name: str, args_model: type[A], handler: Callable[[A], CommandResult]
    ) -> None:
        if not is_code(name):
            raise ValueError("command names are lower-case codes")
        self._commands[name] = _Command(args_model, handler)

    def close(self) -> None:
        self._log.close()

    def fail_unfinished(self) -> None:
        """Close the commands the last shutdown cut short: perhaps half-done, so reported failed,
        never rerun."""
        for request_id in self._log.unfinished():
            with contextlib.suppress(StoreError):
                self._ack(request_id, "failed", error=INTERRUPTED,
                          keep_until=self._now().timestamp()
                          + self._max_lifetime.total_seconds())

    @staticmethod
    def rejection(error: str) -> str:
        """The ack JSON rejecting a command with ``error``; thread-safe (it only builds text)."""
        return _ack_json("rejected", error=error)

    def reject(self, request_id: str, error: str) -> None:
        """Reject a command without running or remembering it: each rejection is what the same
        payload would get again."""
        self._send(request_id, self.rejection(error))

    def handle(self, request_id: str, payload: bytes) -> None:
        """Run one command to its final ack (or repeat the ack a duplicate already got)."""
        try:
            known = self._log.get(request_id)
        except StoreError as e:
            self.reject(request_id, f"terminal storage unavailable ({e.reason}); not run")
            return
        if known is not None:
            # Final by now: commands run one at a time, and fail_unfinished() closed any that a
            # shutdown cut short. The duplicate gets the very same ack; the command does not run
            # again.
            log.info("command %s is a duplicate; repeating its ack", request_id)
            self._send(request_id, known.ack_json)
            return
        checked = self._check(payload)
        if isinstance(checked, str):
            self.reject(request_id, checked)
            return
        command, registered, args = checked
        keep_until = (command.expires_at + REMEMBER_AFTER_EXPIRY).timestamp()
        try:
            # Remembered before it runs: a duplicate arriving later, even after a crash, gets
            # this ack (or INTERRUPTED), never a second run.
            self._ack(request_id, "accepted", keep_until=keep_until)
        except StoreError as e:
            self.reject(request_id, f"terminal storage unavailable ({e.reason}); not run")
            return
        log.info("command %s: %s accepted", request_id, command.name)
        status, error, result = self._run(request_id, command.name, registered, args)
        try:
            self._ack(request_id, status, error=error, result=result, keep_until=keep_until)
        except StoreError:
            # The outcome could not be remembered: send it anyway; a duplicate would read
            # "accepted" and, after a restart, INTERRUPTED, never a second run.
            self._send(request_id, _ack_json(status, error=error, result=result))

    def _check(self, payload: bytes) -> tuple[CommandPayload, _Command, BaseModel] | str:
        """The command, its handler and its validated args; or why it is rejected whole."""
        try:
            command = parse_payload(CommandPayload, payload)
        except PayloadError as e:
            return e.message
        now = self._now()
        if command.expired(now):
            return f"command expired at {command.expires_at.isoformat(timespec='seconds')}"
        if command.too_far_ahead(now, self._max_lifetime):
            return (f"expires_at is more than {_days(self._max_lifetime)} ahead; "
                    "a command lives at most that")
        registered = self._commands.get(command.name)
        if registered is None:
            return f"unknown command '{command.name}'"
        try:
            args = registered.args_model.model_validate(command.args)
        except ValidationError as e:
            return f"bad args: {describe_validation_error(e)}"
        if self._log.full():
            return "busy: too many commands remembered this week; try later"
        return command, registered, args

    def _run(
        self, request_id: str, name: str, registered: _Command, args: BaseModel
    ) -> tuple[AckStatus, str | None, Mapping[str, JsonValue] | None]:
        try:
            result = registered.handler(args)
        except CommandError as e:
            return "failed", e.message, None
        except Exception as e:
            log.exception("command %s: %s failed", request_id, name)
            return "failed", f"internal error ({type(e).__name__})", None
        result = dict(result) if result is not None else {}
        problem = result_problem(result)
        if problem is not None:
            return "failed", f"result withheld: {problem}", None
        try:
            _ack_json("succeeded", result=result)
        except (ValidationError, ValueError, TypeError):
            return "failed", "handler returned a result that is not JSON", None
        return "succeeded", None, result

    def _ack(
        self,
        request_id: str,
        status: AckStatus,
        *,
        keep_until: float,
        error: str | None = None,
        result: Mapping[str, JsonValue] | None = None,
    ) -> None:
        ack_json = _ack_json(status, error=error, result=result)
        # Remember before sending: a duplicate arriving after a crash gets this, not a rerun.
        self._log.put(request_id, ack_json, final=status != "accepted", keep_until=keep_until)
        self._send(request_id, ack_json)

    def _send(self, request_id: str, ack_json: str) -> None:
        try:
            self._send_ack(request_id, ack_json)
        except Exception:  # the link failing must not lose the command's place in the log
            log.exception("sending the ack of command %s failed", request_id)


def _ack_json(
    status: AckStatus, *, error: str | None = None, result: Mapping[str, JsonValue] | None = None
) -> str:
    ack = AckPayload(status=status, error=error[:256] if error else None,
                     result=dict(result) if result is not None else None)
    return encode(ack).decode("utf-8")


def _days(span: dt.timedelta) -> str:
    days = span.total_seconds() / 86400
    return f"{days:g} days" if days != 1 else "1 day"
