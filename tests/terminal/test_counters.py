"""Daily counters count the flows' operations events and start again at local midnight."""

import datetime as dt

from flows.event_names import EventType
from flows.steps import RecordEvent
from terminal.counters import DailyCounters


def test_counts_each_kind_and_rolls_over_at_midnight() -> None:
    day = [dt.date(2026, 11, 21)]
    counters = DailyCounters(lambda: day[0])
    counters.count(RecordEvent("session_started"))
    counters.count(RecordEvent("errand_completed", fields={"errand_id": "x"}))
    counters.count(RecordEvent("receipt_printed"))
    counters.count(RecordEvent("rating_submitted", fields={"level": 5}))
    counters.count(RecordEvent("rating_submitted", fields={"level": 9}))  # not a level: ignored
    snap = counters.snapshot()
    assert snap["sessions"] == 1
    assert snap["completed_errands"] == 1
    assert snap["receipts"] == 1
    assert snap["ratings"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}
    day[0] = dt.date(2026, 11, 22)
    assert counters.snapshot()["sessions"] == 0


def test_a_maintenance_visit_is_not_a_resident_session() -> None:
    counters = DailyCounters(lambda: dt.date(2026, 12, 7))
    counters.count(RecordEvent(EventType.SESSION_STARTED))
    counters.count(RecordEvent(EventType.SESSION_STARTED))  # the badge's read
    counters.count(RecordEvent(EventType.MAINTENANCE_ENTERED))
    assert counters.snapshot()["sessions"] == 1
