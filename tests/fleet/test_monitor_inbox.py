"""The queue between the monitor's network thread and its writer: bounded, in order, batches that
wait for their first message and then to fill, and an idle flag that never says idle too soon."""

from __future__ import annotations

import threading
import time

from contracts.mqtt import utc_now
from fleet.monitor import _Arrival, _Inbox


def arrival(n: int) -> _Arrival:
    return _Arrival(f"kiosk/v1/T-{n}/heartbeat", b"{}", False, 0, n, utc_now())


def test_batches_come_in_order_and_at_most_as_big_as_asked() -> None:
    inbox = _Inbox(100)
    for n in range(7):
        assert inbox.put(arrival(n))
    assert [a.mid for a in inbox.take(5, 1.0, 0.0)] == [0, 1, 2, 3, 4]
    assert [a.mid for a in inbox.take(5, 1.0, 0.0)] == [5, 6]
    assert inbox.empty()


def test_a_full_inbox_refuses() -> None:
    inbox = _Inbox(2)
    assert inbox.put(arrival(1)) and inbox.put(arrival(2))
    assert not inbox.put(arrival(3))
    assert [a.mid for a in inbox.take(10, 0.0, 0.0)] == [1, 2]


def test_an_empty_take_waits_for_the_first_then_gives_up() -> None:
    inbox = _Inbox(10)
    began = time.monotonic()
    assert inbox.take(10, 0.1, 0.1) == []
    assert 0.09 <= time.monotonic() - began < 1.0
    assert inbox.idle


def test_a_take_is_woken_by_its_first_message_and_by_a_full_batch() -> None:
    inbox = _Inbox(10)
    timer = threading.Timer(0.05, lambda: [inbox.put(arrival(n)) for n in range(3)])
    timer.start()
    began = time.monotonic()
    batch = inbox.take(3, 5.0, 5.0)
    timer.join()
    assert len(batch) in (1, 2, 3) and time.monotonic() - began < 2.0


def test_a_batch_waits_to_fill_no_longer_than_told() -> None:
    inbox = _Inbox(10)
    inbox.put(arrival(1))
    began = time.monotonic()
    assert [a.mid for a in inbox.take(5, 1.0, 0.1)] == [1]
    assert 0.09 <= time.monotonic() - began < 1.0


def test_idle_only_once_the_writer_comes_back_to_an_empty_inbox() -> None:
    inbox = _Inbox(10)
    assert inbox.idle
    inbox.put(arrival(1))
    assert not inbox.idle
    assert len(inbox.take(5, 0.0, 0.0)) == 1
    assert not inbox.idle  # taken, not yet stored: the writer has not come back
    assert inbox.take(5, 0.0, 0.0) == []
    assert inbox.idle
