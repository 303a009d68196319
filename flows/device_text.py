"""What a device's state means to a resident, in one line; which devices an errand needs."""

from __future__ import annotations

from collections.abc import Mapping

from devices.base import DeviceState
from flows.steps import Text, t

# Printer reasons with their own message; anything else gets the generic one.
PRINTER_REASONS = frozenset({"paper_out", "cover_open", "offline", "no_response"})


def printer_line(reason: str) -> Text:
    """What a printer fault means to a resident, one line."""
    known = reason if reason in PRINTER_REASONS else "other"
    return t(f"error.printer.{known}")


def device_line(device: str, reason: str) -> Text:
    """Why a device cannot be used right now, one line."""
    if device == "printer":
        return printer_line(reason)
    return t(f"error.device.{device}")


def first_unusable(
    needs: frozenset[str], devices: Mapping[str, DeviceState]
) -> tuple[str, str] | None:
    """The first needed device known to be unusable and its reason; None when all can be used.

    A device never heard of yet counts as usable: the errand checks it again before it commits.
    """
    for device in sorted(needs):
        state = devices.get(device)
        if state is not None and not state.usable:
            return device, state.reason or "fault"
    return None
