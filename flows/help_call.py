"""Calls for help (帮办): the button on every screen, staff's answer, and the hotline if none comes.

Help is not a flow: it is on every screen, in a session or not, and calling it must not lose the
resident's place. The engine owns one ``HelpDesk``; a call publishes ``help_requested`` (help id,
screen id, elder mode: nothing personal) and the screen carries a strip saying help is called.
Operations answer with the ``help_ack`` command (staff display name, minutes), which the terminal
turns into a ``HelpAcknowledged`` event: the strip then says who is coming. Without an answer
within ``answer_within_s`` the strip gives the service hotline (12345) and the centre's opening
hours instead, so nobody waits at night for staff who are not there. While staff are called or on
their way the idle timeout waits too: a resident waiting for help must not be timed out of their
errand.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flows.clock import Clock
from flows.event_names import EventType
from flows.operations_events import event
from flows.steps import HelpAcknowledged, HelpStatus, RecordEvent, Tone, t

HELP_CALL = "help.call"  # the help button, on every screen
HELP_CANCEL = "help.cancel"  # on the strip: cancel the call (or close the hotline's note)
ARRIVAL_GRACE_S = 600  # after the minutes staff said, the strip stays this long, then goes
HOTLINE_SHOWN_S = 300  # how long the hotline's note stays unless closed


class _Stage(enum.Enum):
    CALLED = "called"  # published, no answer yet
    COMING = "coming"  # staff answered: who, and in how many minutes
    HOTLINE = "hotline"  # nobody answered in time: the hotline and opening hours instead


@dataclass
class _Call:
    help_id: str
    stage: _Stage
    since: float  # monotonic seconds when the current stage began
    staff: str = ""
    minutes: int = 0


class HelpDesk:
    """At most one help call at a time, as of the clock; see the module docstring."""

    def __init__(
        self,
        clock: Clock,
        *,
        answer_within_s: int = 180,
        hotline: str = "12345",
        opening_hours: str = "",
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:12],
    ) -> None:
        if answer_within_s <= 0:
            raise ValueError("answer_within_s must be positive")
        self._clock = clock
        self._answer_within_s = answer_within_s
        self._hotline = hotline
        self._opening_hours = opening_hours
        self._new_id = new_id
        self._call: _Call | None = None

    @property
    def waiting(self) -> bool:
        """True while staff are called or on their way (the idle timeout waits)."""
        self._advance()
        return self._call is not None and self._call.stage is not _Stage.HOTLINE

    def call(self, screen: str, elder: bool) -> tuple[RecordEvent, ...]:
        """The help button: a new call, unless one is already open (tapping again changes
        nothing, and staff are not called twice)."""
        self._advance()
        if self._call is not None and self._call.stage is not _Stage.HOTLINE:
            return ()
        help_id = self._new_id()
        self._call = _Call(help_id, _Stage.CALLED, self._clock.monotonic())
        return (event(EventType.HELP_REQUESTED, "warning", help_id=help_id, screen=screen,
                      elder_mode=elder),)

    def cancel(self) -> tuple[RecordEvent, ...]:
        """The strip's button: cancel an open call (operations hear of it), or close the note."""
        self._advance()
        call, self._call = self._call, None
        if call is None or call.stage is _Stage.HOTLINE:
            return ()
        return (event(EventType.HELP_CANCELLED, help_id=call.help_id),)

    def acknowledged(self, ack: HelpAcknowledged) -> bool:
        """Staff answered; True when it is the call open here (a late answer after the hotline
        note still counts: someone is coming after all)."""
        self._advance()
        call = self._call
        if call is None or call.help_id != ack.help_id:
            return False
        self._call = _Call(call.help_id, _Stage.COMING, self._clock.monotonic(), ack.staff,
                           ack.minutes)
        return True

    def status(self) -> HelpStatus | None:
        """The strip as of now; None when there is no call."""
        self._advance()
        call = self._call
        if call is None:
            return None
        match call.stage:
            case _Stage.CALLED:
                return HelpStatus(call.help_id, (t("help.called.title"), t("help.called.body")),
                                  Tone.INFO, t("help.cancel"), waiting=True)
            case _Stage.COMING:
                coming = t("help.coming.title", staff=call.staff, minutes=str(call.minutes))
                return HelpStatus(call.help_id, (coming, t("help.coming.body")), Tone.SUCCESS,
                                  t("help.cancel"), waiting=True)
            case _Stage.HOTLINE:
                hours = (t("help.hotline.hours", hours=self._opening_hours)
                         if self._opening_hours else t("help.hotline.no_hours"))
                return HelpStatus(call.help_id,
                                  (t("help.hotline.title"),
                                   t("help.hotline.body", hotline=self._hotline), hours),
                                  Tone.WARNING, t("help.close"), waiting=False)

    def _advance(self) -> None:
        """Move the call on by the clock: unanswered -> hotline; arrived or shown long enough
        -> gone."""
        call = self._call
        if call is None:
            return
        elapsed = self._clock.monotonic() - call.since
        if call.stage is _Stage.CALLED and elapsed >= self._answer_within_s:
            self._call = _Call(call.help_id, _Stage.HOTLINE,
                               call.since + self._answer_within_s)
        elif (call.stage is _Stage.COMING and elapsed >= call.minutes * 60 + ARRIVAL_GRACE_S) or (
            call.stage is _Stage.HOTLINE and elapsed >= HOTLINE_SHOWN_S
        ):
            self._call = None
