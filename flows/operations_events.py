"""Building operations events the flows report: typed names, codes only, never personal data."""

from __future__ import annotations

import re

from flows.catalogue import CatalogueItem
from flows.event_names import EventType
from flows.steps import RecordEvent

_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def code(reason: str) -> str:
    """An outcome's reason as it may go into an event: a short code, or ``other``.

    Reasons come from the effect runner; if one ever carried free text it must not reach telemetry.
    """
    return reason if _CODE.match(reason) else "other"


def event(event_type: EventType, severity: str = "info", **fields: str | int) -> RecordEvent:
    # A plain dict: the effect runner serialises it to JSON as it is.
    return RecordEvent(event_type, severity, dict(fields))


def errand_failed(item: CatalogueItem, stage: str, reason: str) -> RecordEvent:
    return event(EventType.ERRAND_FAILED, "warning", errand_id=item.id, stage=stage, reason=reason)
