"""The names of operations events (the MQTT ``event`` topic's ``type``), as one typed list."""

from __future__ import annotations

import enum


class EventType(enum.StrEnum):
    """Every event the terminal reports; fields are listed in docs/OPERATIONS.md."""

    SESSION_STARTED = "session_started"
    SESSION_ENDED = "session_ended"
    GUIDE_VIEWED = "guide_viewed"
    ERRAND_COMPLETED = "errand_completed"
    RECEIPT_PRINTED = "receipt_printed"
    ERRAND_FAILED = "errand_failed"
    RATING_SUBMITTED = "rating_submitted"
    RATING_SKIPPED = "rating_skipped"
    CARD_LEFT_IN_READER = "card_left_in_reader"
    EFFECT_TIMEOUT = "effect_timeout"
    FLOW_ERROR = "flow_error"
    DEVICE_FAULT = "device_fault"
    AUTOMATION_REFUSED = "automation_refused"
    CONTENT_INVALID = "content_invalid"
    PROGRESS_VIEWED = "progress_viewed"
    APPLICATION_LODGED = "application_lodged"
    APPOINTMENT_BOOKED = "appointment_booked"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    REPORT_FILED = "report_filed"
    CODE_SCANNED = "code_scanned"
    HELP_REQUESTED = "help_requested"
    HELP_CANCELLED = "help_cancelled"
    BADGE_REFUSED = "badge_refused"
    ID_CARD_REFUSED = "id_card_refused"
    MAINTENANCE_ENTERED = "maintenance_entered"
    MAINTENANCE_LEFT = "maintenance_left"
    PAPER_REFILLED = "paper_refilled"
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    DOOR_OPENED = "door_opened"
    DOOR_CLOSED = "door_closed"
    TAMPER = "tamper"
    TEMPERATURE_HIGH = "temperature_high"
    CONTROLLER_RESET = "controller_reset"
