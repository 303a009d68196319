"""The ``help_ack`` command: operations say who is coming to a help call; the screen shows it.

The command arrives on the telemetry agent's thread; whether its help id is the call open on this
screen is the engine's to say, on the main thread. The handler hands it over and waits briefly for
the answer, so the ack tells the operator the truth: shown, or failed because the call is no
longer open here (cancelled by the resident, or long over).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from contracts.identifiers import IDENTIFIER_PATTERN
from flows.steps import HelpAcknowledged
from terminal.commands import CommandError

ANSWER_WAIT_S = 3.0  # the main thread answers within a frame; a frozen UI fails the command
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_LONG_NUMBER = re.compile(r"\d{7,}")  # a phone number has no business on a public screen


class HelpAckArgs(BaseModel):
    """``help_ack``'s args (DESIGN 6): the call's id, staff's display name, minutes to arrive."""

    model_config = ConfigDict(extra="forbid", strict=True)

    help_id: str = Field(pattern=f"^{IDENTIFIER_PATTERN}$")
    staff: str = Field(min_length=1, max_length=32)
    minutes: int = Field(ge=1, le=240)

    @field_validator("staff")
    @classmethod
    def _displayable(cls, staff: str) -> str:
        if not staff.strip() or _CONTROL.search(staff):
            raise ValueError("a display name of printable characters")
        if _LONG_NUMBER.search(staff):
            raise ValueError("a display name, not a number (it is shown on a public screen)")
        return staff.strip()


# Hands an acknowledgement to the engine on the main thread and calls back with whether the
# call was open there.
Deliver = Callable[[HelpAcknowledged, Callable[[bool], None]], None]


def help_ack_handler(deliver: Deliver) -> Callable[[HelpAckArgs], dict[str, JsonValue]]:
    """The command handler for ``help_ack`` (runs on the commands thread)."""

    def handle(args: HelpAckArgs) -> dict[str, JsonValue]:
        answered = threading.Event()
        shown: list[bool] = []

        def done(open_here: bool) -> None:
            shown.append(open_here)
            answered.set()

        deliver(HelpAcknowledged(args.help_id, args.staff, args.minutes), done)
        if not answered.wait(ANSWER_WAIT_S):
            raise CommandError("the terminal's screen did not answer in time; not shown")
        if not shown[0]:
            raise CommandError("no help call with this id is open on this terminal "
                               "(cancelled by the resident, or over)")
        return {"shown": True}

    return handle
