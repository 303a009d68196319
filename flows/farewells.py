"""What a resident sees once a session has ended, whatever flow ended it (no personal data)."""

from __future__ import annotations

from flows.platform import Farewell
from flows.steps import Tone, t

THANKS_TIMEOUT_S = 8

CARD_REMOVED = Farewell(
    "notice.card_removed",
    t("notice.card_removed.title"),
    (t("notice.card_removed.body"),),
    Tone.WARNING,
)
SESSION_ERROR = Farewell(
    "notice.session_error",
    t("notice.session_error.title"),
    (t("notice.session_error.body"),),
    Tone.ERROR,
)
UNSUPPORTED_CARD = Farewell(
    "error.unsupported_card",
    t("error.unsupported_card.title"),
    (t("error.unsupported_card.body"),),
    Tone.ERROR,
)
INVALID_ID = Farewell(
    "error.invalid_id", t("error.invalid_id.title"), (t("error.invalid_id.body"),), Tone.ERROR
)
CARD_READ_FAILED = Farewell(
    "error.card_read", t("error.card_read.title"), (t("error.card_read.body"),), Tone.ERROR
)
THANKS = Farewell(
    "thanks", t("thanks.title"), (t("thanks.body"),), Tone.SUCCESS, timeout_s=THANKS_TIMEOUT_S
)
CODE_UNKNOWN = Farewell(
    "notice.code_unknown", t("notice.code_unknown.title"), (t("notice.code_unknown.body"),),
    Tone.WARNING,
)
CODE_APPOINTMENT = Farewell(
    "notice.code_appointment", t("notice.code_appointment.title"),
    (t("notice.code_appointment.body"),), Tone.INFO,
)


def _error(screen: str, tone: Tone = Tone.ERROR) -> Farewell:
    return Farewell(screen, t(f"{screen}.title"), (t(f"{screen}.body"),), tone)


# A resident ID card presented to the SAM reader that gave no identity.
RESIDENCE_PERMIT = _error("error.residence_permit", Tone.WARNING)
FOREIGN_PERMANENT_RESIDENT = _error("error.foreign_permanent_resident", Tone.WARNING)
ID_CARD_UNKNOWN_TYPE = _error("error.id_card_unknown_type", Tone.WARNING)
ID_CARD_MOVED = _error("error.id_card_moved", Tone.WARNING)
ID_CARD_READ_FAILED = _error("error.id_card_read")
ID_CARD_EXPIRED = _error("error.id_card_expired")
# An e-ID code the hub would not resolve.
CODE_EXPIRED = _error("error.code_expired", Tone.WARNING)
CODE_USED = _error("error.code_used", Tone.WARNING)
CODE_FOREIGN = _error("error.code_foreign", Tone.WARNING)
CODE_NOT_CHECKED = _error("error.code_not_checked")
