"""Ratings survive a hub outage in the outbox and reach the real simulated hub once it is back."""

import datetime as dt
import time
from pathlib import Path

from flows.hub import RatingSubmission
from flows.steps import SubmitRating
from simulator.hub import SimHub
from simulator.hub_records import ERRAND_SSC_ENROLLMENT_PROOF
from terminal.hub_client import HttpServiceHub
from terminal.outbox import Outbox
from terminal.ratings import KIND, REJECTED_KIND, RatingQueue

NOW = dt.datetime(2026, 11, 21, 23, 5, tzinfo=dt.UTC)



def issued_case(hub: SimHub) -> str:
    """A case number the hub really issued: it refuses ratings for any other."""
    return HttpServiceHub(hub.url).run_errand(
        ERRAND_SSC_ENROLLMENT_PROOF, "34052419800101001X", "T-1").case_number


def test_a_rating_made_while_the_hub_is_down_arrives_after_it_returns(tmp_path: Path) -> None:
    hub = SimHub(db_path=tmp_path / "hub.sqlite")
    hub.start()
    try:
        outbox = Outbox(tmp_path / "outbox.sqlite", synchronous="FULL")
        queue = RatingQueue(outbox, HttpServiceHub(hub.url, timeout_s=2), terminal_id="T-1",
                            now=lambda: NOW)
        case_number = issued_case(hub)
        hub.set_fault("down")
        assert queue.submit(SubmitRating("ssc_enrollment_proof", case_number, 5))
        assert queue.flush() == 1, "the hub is down: the rating must stay queued"
        # A restart of the terminal keeps it: a new outbox on the same file still holds it.
        outbox.close()
        outbox = Outbox(tmp_path / "outbox.sqlite", synchronous="FULL")
        queue = RatingQueue(outbox, HttpServiceHub(hub.url, timeout_s=2), terminal_id="T-1",
                            now=lambda: NOW)
        hub.set_fault("ok")
        assert queue.flush() == 0
        [stored] = hub.ratings()
        assert (stored.case_number, stored.level, stored.terminal_id) == (case_number, 5, "T-1")
    finally:
        hub.stop()


def test_the_sender_thread_delivers_without_being_asked(tmp_path: Path) -> None:
    hub = SimHub(db_path=tmp_path / "hub.sqlite")
    hub.start()
    outbox = Outbox(tmp_path / "outbox.sqlite")
    queue = RatingQueue(outbox, HttpServiceHub(hub.url, timeout_s=2), terminal_id="T-1",
                        now=lambda: NOW, retry_min_s=0.05)
    queue.start()
    try:
        queue.submit(SubmitRating("ssc_enrollment_proof", issued_case(hub), 3))
        deadline = time.monotonic() + 5
        while outbox.count(KIND) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert outbox.count(KIND) == 0
        assert [r.level for r in hub.ratings()] == [3]
    finally:
        queue.stop()
        hub.stop()


def test_a_rating_the_hub_refuses_for_good_is_kept_aside_and_does_not_block(
    tmp_path: Path,
) -> None:
    hub = SimHub(db_path=tmp_path / "hub.sqlite")
    hub.start()
    try:
        outbox = Outbox(tmp_path / "outbox.sqlite")
        queue = RatingQueue(outbox, HttpServiceHub(hub.url, timeout_s=2), terminal_id="T-1",
                            now=lambda: NOW)
        case_number = issued_case(hub)
        queue.submit(SubmitRating("ssc_enrollment_proof", case_number, 9))  # no such level
        queue.submit(SubmitRating("ssc_enrollment_proof", "SB20261121999999", 4))  # never issued
        queue.submit(SubmitRating("ssc_enrollment_proof", case_number, 4))
        assert queue.flush() == 0
        assert outbox.count(REJECTED_KIND) == 2
        assert [r.level for r in hub.ratings()] == [4]
    finally:
        hub.stop()


def test_our_side_failing_keeps_the_rating_queued_and_the_sender_alive(tmp_path: Path) -> None:
    class FlakyHub:
        """The adapter cannot be built at first (a CA file missing), then the hub takes it."""

        def __init__(self) -> None:
            self.calls = 0
            self.taken: list[str] = []

        def run_errand(self, errand_id: str, id_number: str, terminal_id: str) -> None:
            raise AssertionError("not used")

        def submit_rating(self, rating: RatingSubmission) -> None:
            self.calls += 1
            if self.calls == 1:
                raise FileNotFoundError("hub-ca.pem")
            self.taken.append(rating.case_number)

    hub = FlakyHub()
    outbox = Outbox(tmp_path / "outbox.sqlite")
    queue = RatingQueue(outbox, hub, terminal_id="T-1", now=lambda: NOW,  # type: ignore[arg-type]
                        retry_min_s=0.05)
    queue.start()
    try:
        queue.submit(SubmitRating("ssc_enrollment_proof", "SB20261121000009", 5))
        deadline = time.monotonic() + 5
        while not hub.taken and time.monotonic() < deadline:
            time.sleep(0.02)
        assert hub.taken == ["SB20261121000009"]
        assert outbox.count(REJECTED_KIND) == 0
    finally:
        queue.stop()
