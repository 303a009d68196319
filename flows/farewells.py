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
