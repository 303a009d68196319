"""Commands from the dashboard: checked, recorded in the store and published through
``fleet.commands``, with a broker that is down told apart from a command that is wrong.

Each send is a short MQTT 5 connection (connect, publish at QoS 1, wait for the PUBACK,
disconnect): an operator sends a command a minute at most, and a connection held open would only
be one more thing to go stale at 3 a.m. The acks come back through the monitor, which stores them
beside the command; the dashboard reads them from the store.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleet.commands import (
    DEFAULT_TTL_S,
    Command,
    CommandError,
    CommandSender,
    build_commands,
)

PUBLISH_TIMEOUT_S = 5.0
HELP_MINUTES_MAX = 240
STAFF_MAX_CHARS = 32
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LONG_NUMBER = re.compile(r"\d{7,}")  # a phone number has no business on a public screen


class BadCommand(ValueError):
    """The command cannot be sent as asked (the client's mistake: 422)."""


class BrokerDown(RuntimeError):
    """The broker could not be reached or did not take the command (503)."""


@dataclass(frozen=True)
class Broker:
    host: str
    port: int


def check_staff(staff: object) -> str:
    """The display name a terminal shows to the resident who called for help."""
    if not isinstance(staff, str) or not staff.strip():
        raise BadCommand("staff: a display name is needed")
    staff = staff.strip()
    if len(staff) > STAFF_MAX_CHARS or _CONTROL.search(staff):
        raise BadCommand(f"staff: 1-{STAFF_MAX_CHARS} characters, no control characters")
    if _LONG_NUMBER.search(staff):
        raise BadCommand("staff: a display name, not a number (it is shown on a public screen)")
    return staff


def check_minutes(minutes: object) -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not (
            1 <= minutes <= HELP_MINUTES_MAX):
        raise BadCommand(f"minutes: a whole number from 1 to {HELP_MINUTES_MAX}")
    return minutes


def check_ttl(ttl_s: object) -> float:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not math.isfinite(ttl_s):
        raise BadCommand("ttl_s: a number of seconds")
    return float(ttl_s)


class Dispatcher:
    """Sends one command to one terminal."""

    def __init__(self, broker: Broker | None) -> None:
        self.broker = broker

    def prepare(self, tid: str, name: str, args: dict[str, Any],
                ttl_s: float = DEFAULT_TTL_S) -> Command:
        """The command as it will be sent; BadCommand for a name, args or ttl terminals refuse."""
        try:
            [command] = build_commands([tid], name, args, ttl_s=ttl_s)
        except CommandError as e:
            raise BadCommand(str(e)) from None
        return command

    def send(self, command: Command, record: Callable[[Command], None]) -> None:
        """Publish ``command``, ``record``-ing it once the broker is reached (so the monitor's
        acks find it); BrokerDown when no broker takes it. Blocks for at most the connect and
        publish timeouts: run it off the event loop."""
        if self.broker is None:
            raise BrokerDown("this dashboard runs without a broker (--broker): it cannot send")
        try:
            with CommandSender(self.broker.host, self.broker.port) as sender:
                record(command)
                sender.send([command], timeout_s=PUBLISH_TIMEOUT_S)
        except CommandError as e:
            raise BrokerDown(str(e)) from None
        except OSError as e:  # a socket error after connecting (the broker went away)
            raise BrokerDown(f"the broker connection failed: {e.strerror or e}") from None
