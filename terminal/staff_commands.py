"""The staff-side commands (DESIGN 6): ``set_staff_badges``, ``restart_app`` and ``test_print``.

They arrive on the telemetry agent's command thread. None of them interrupts a resident: a
restart or a test print asked for while someone is being served fails with a message saying so
(operations retry; a command is never half done).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from devices.base import DeviceError, Receipt
from terminal.commands import CommandError
from terminal.staff_badges import MAX_BADGES, BadgeListError, StaffBadges


class SetStaffBadgesArgs(BaseModel):
    """``set_staff_badges``: the whole list of badge UIDs (hex), replacing the current one."""

    model_config = ConfigDict(extra="forbid", strict=True)

    badges: list[str] = Field(max_length=MAX_BADGES)


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


def set_staff_badges_handler(
    badges: StaffBadges, apply: Callable[[frozenset[str]], None]
) -> Callable[[SetStaffBadgesArgs], dict[str, JsonValue]]:
    """Keep the list, then hand it to the engine (``apply`` posts it to the main thread)."""

    def handle(args: SetStaffBadgesArgs) -> dict[str, JsonValue]:
        try:
            kept = badges.replace(args.badges)
        except BadgeListError as e:
            raise CommandError(str(e)) from None
        except OSError as e:
            raise CommandError(f"the list could not be saved ({type(e).__name__})") from None
        apply(kept)
        return {"count": len(kept)}

    return handle


def restart_app_handler(
    serving: Callable[[], bool], restart: Callable[[], None]
) -> Callable[[NoArgs], dict[str, JsonValue]]:
    """Restart the application (systemd brings it back), unless a resident is being served."""

    def handle(_args: NoArgs) -> dict[str, JsonValue]:
        if serving():
            raise CommandError("a resident is being served; try again when the terminal is idle")
        restart()
        return {"restarting": True}

    return handle


def print_test_page_handler(
    serving: Callable[[], bool],
    page: Callable[[], Receipt],
    print_receipt: Callable[[Receipt], None],
) -> Callable[[NoArgs], dict[str, JsonValue]]:
    """Print the maintenance test page (no personal data on it), unless a resident is served."""

    def handle(_args: NoArgs) -> dict[str, JsonValue]:
        if serving():
            raise CommandError("a resident is being served; try again when the terminal is idle")
        try:
            print_receipt(page())
        except DeviceError as e:
            raise CommandError(f"not printed: {e.reason}") from None
        return {"printed": True}

    return handle

