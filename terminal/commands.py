"""Command dispatch for the telemetry agent (DESIGN 6): validation, expiry and idempotent acks.

A command is rejected whole (bad payload, expired, unknown name, bad args) or accepted and then
run; every ack is remembered in a small persistent log before it is sent, so a repeated request id
(also after a restart) gets the very same ack instead of running the command again.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, JsonValue, ValidationError

from contracts.mqtt import (
    AckPayload,
    AckStatus,
    CommandPayload,
    PayloadError,
    describe_validation_error,
    encode,
    is_code,
    parse_payload,
    personal_data_reason,
)
from terminal.state_file import write_atomic

log = logging.getLogger(__name__)

COMMAND_LOG_MAX = 256
INTERRUPTED = "interrupted by a restart before it finished; not retried"


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


@dataclass
class _AckRecord:
    ack_json: str
    final: bool


class CommandLog:
    """Recent request ids and the ack each got, persisted so a duplicate after a restart is
    answered with the same ack instead of running the command again."""

    def __init__(self, path: Path, limit: int = COMMAND_LOG_MAX) -> None:
        self._path = path
        self._limit = limit
        self._entries: OrderedDict[str, _AckRecord] = OrderedDict()
        self._load()

    def _load(self) -> None:
        try:
            document = json.loads(self._path.read_text(encoding="utf-8"))
            for entry in document["entries"]:
                self._entries[str(entry["request_id"])] = _AckRecord(
                    str(entry["ack"]), bool(entry["final"])
                )
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("command log %s unreadable; starting a new one", self._path)
            self._entries.clear()

    def get(self, request_id: str) -> _AckRecord | None:
        return self._entries.get(request_id)

    def unfinished(self) -> list[str]:
        """Request ids accepted but never finished (the process stopped while running them)."""
        return [rid for rid, rec in self._entries.items() if not rec.final]

    def put(self, request_id: str, ack_json: str, final: bool) -> None:
        self._entries[request_id] = _AckRecord(ack_json, final)
        self._entries.move_to_end(request_id)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)
        document = {
            "entries": [
                {"request_id": rid, "ack": rec.ack_json, "final": rec.final}
                for rid, rec in self._entries.items()
            ]
        }
        try:
            write_atomic(self._path, json.dumps(document))
        except OSError:
            log.exception("could not persist the command log to %s", self._path)


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

    ``send_ack(request_id, ack_json)`` publishes an ack. Not thread-safe: the agent calls
    ``handle`` from its one commands thread, so commands run one at a time.
    """

    def __init__(self, log_path: Path, send_ack: Callable[[str, str], None]) -> None:
        self._log = CommandLog(log_path)
        self._send_ack = send_ack
        self._commands: dict[str, _Command] = {}

    def register(
        self, name: str, args_model: type[A], handler: Callable[[A], CommandResult]
    ) -> None:
        if not is_code(name):
            raise ValueError("command names are lower-case codes")
        self._commands[name] = _Command(args_model, handler)

    def fail_unfinished(self) -> None:
        """Close the commands the last shutdown cut short: perhaps half-done, so reported failed,
        never rerun."""
        for request_id in self._log.unfinished():
            self._ack(request_id, "failed", error=INTERRUPTED)

    def _ack(
        self,
        request_id: str,
        status: AckStatus,
        *,
        error: str | None = None,
        result: Mapping[str, JsonValue] | None = None,
    ) -> None:
        ack = AckPayload(status=status, error=error[:256] if error else None,
                         result=dict(result) if result is not None else None)
        ack_json = encode(ack).decode("utf-8")
        # Remember before sending: a duplicate arriving after a crash gets this, not a rerun.
        self._log.put(request_id, ack_json, final=ack.final)
        self._send_ack(request_id, ack_json)

    def handle(self, request_id: str, payload: bytes) -> None:
        known = self._log.get(request_id)
        if known is not None:
            # Final by now: commands run one at a time, and fail_unfinished() closed any that a
            # shutdown cut short. The duplicate gets the very same ack; the command does not run
            # again.
            log.info("command %s is a duplicate; repeating its ack", request_id)
            self._send_ack(request_id, known.ack_json)
            return
        try:
            command = parse_payload(CommandPayload, payload)
        except PayloadError as e:
            self._ack(request_id, "rejected", error=e.message)
            return
        if command.expired():
            self._ack(request_id, "rejected", error=f"command expired at "
                      f"{command.expires_at.isoformat(timespec='seconds')}")
            return
        registered = self._commands.get(command.name)
        if registered is None:
            self._ack(request_id, "rejected", error=f"unknown command '{command.name}'")
            return
        try:
            args = registered.args_model.model_validate(command.args)
        except ValidationError as e:
            self._ack(request_id, "rejected", error=f"bad args: {describe_validation_error(e)}")
            return

        log.info("command %s: %s accepted", request_id, command.name)
        self._ack(request_id, "accepted")
        try:
            result = registered.handler(args)
        except CommandError as e:
            self._ack(request_id, "failed", error=e.message)
            return
        except Exception as e:
            log.exception("command %s: %s failed", request_id, command.name)
            self._ack(request_id, "failed", error=f"internal error ({type(e).__name__})")
            return
        result = dict(result) if result is not None else {}
        problem = result_problem(result)
        if problem is not None:
            self._ack(request_id, "failed", error=f"result withheld: {problem}")
            return
        try:
            self._ack(request_id, "succeeded", result=result)
        except ValidationError:
            self._ack(request_id, "failed", error="handler returned a result that is not JSON")
