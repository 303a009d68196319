"""The monitor's batch of messages read and not yet stored: bounded, in order, at most a batch
at a time, due when full, when its first message has waited long enough, or at once for a
status (a Will shows offline without a batch wait)."""

from __future__ import annotations

from contracts.mqtt import utc_now
from fleet.monitor import _Arrival, _Batch


def arrival(n: int) -> _Arrival:
    return (f"kiosk/v1/T-{n}/heartbeat", b"{}", False, 1, n, 1)


def mids(taken: list[tuple[_Arrival, object]]) -> list[int]:
    return [a[4] for a, _ in taken]


def test_batches_come_in_order_and_at_most_as_big_as_asked() -> None:
    batch = _Batch(5, 0.2, 100)
    for n in range(7):
        assert batch.add(arrival(n), utc_now(), 10.0)
    assert mids(batch.take()) == [0, 1, 2, 3, 4]
    assert mids(batch.take()) == [5, 6]
    assert batch.due_at() is None


def test_a_full_batch_refuses_what_is_over_its_bound() -> None:
    batch = _Batch(2, 0.2, 3)
    assert all(batch.add(arrival(n), utc_now(), 0.0) for n in range(3))
    assert not batch.add(arrival(3), utc_now(), 0.0)
    assert mids(batch.take()) == [0, 1]
    assert batch.add(arrival(4), utc_now(), 0.0)


def test_a_batch_is_due_after_its_wait_or_at_once_when_full() -> None:
    batch = _Batch(3, 0.2, 100)
    assert batch.due_at() is None
    batch.add(arrival(1), utc_now(), 10.0)
    batch.add(arrival(2), utc_now(), 10.1)
    assert batch.due_at() == 10.0 + 0.2  # counted from its oldest message
    batch.add(arrival(3), utc_now(), 10.15)
    assert batch.due_at() == 10.0  # full: now


def test_a_status_makes_the_batch_due_at_once() -> None:
    batch = _Batch(500, 5.0, 1000)
    batch.add(arrival(1), utc_now(), 10.0)
    batch.add(("kiosk/v1/T-1/status", b"{}", False, 1, 2, 1), utc_now(), 10.1, urgent=True)
    assert batch.due_at() == 10.0
    batch.take()
    batch.add(arrival(3), utc_now(), 11.0)
    assert batch.due_at() == 11.0 + 5.0  # the next batch waits again
