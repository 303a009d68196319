"""Ratings (好差评) go through the outbox to the hub, retried until the hub confirms them.

A rating carries the case number, the errand and the level, nothing personal, so it is stored in
clear. A resident's rating must survive a hub outage and a power cut: it is written to SQLite with
``synchronous=FULL`` by the caller's outbox before the resident is thanked.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable

from flows.hub import HubError, HubUnavailable, RatingSubmission, ServiceHub
from flows.steps import SubmitRating
from terminal.outbox import Outbox, OutboxItem, OutboxUnavailable

log = logging.getLogger(__name__)

KIND = "hub_rating"
REJECTED_KIND = "hub_rating_rejected"  # kept for a technician; the hub refused it for good


class RatingQueue:
    """``submit`` stores a rating durably; a daemon thread sends what is pending to the hub."""

    def __init__(
        self,
        outbox: Outbox,
        hub: ServiceHub,
        *,
        terminal_id: str,
        now: Callable[[], dt.datetime],
        retry_min_s: float = 2.0,
        retry_max_s: float = 120.0,
    ) -> None:
        self._outbox = outbox
        self._hub = hub
        self._terminal_id = terminal_id
        self._now = now
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, rating: SubmitRating) -> bool:
        payload = {
            "case_number": rating.case_number,
            "errand_id": rating.errand_id,
            "level": rating.level,
            "terminal_id": self._terminal_id,
            "rated_at": self._now().isoformat(),
        }
        try:
            # None means held in memory while the storage refuses writes: stored and sent
            # once it recovers (the outbox's fault shows in the heartbeat meanwhile).
            self._outbox.put(KIND, json.dumps(payload, ensure_ascii=False))
        except OutboxUnavailable as e:
            log.error("rating lost: %s", e)
            return False
        self._wake.set()
        return True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rating-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def flush(self) -> int:
        """Send what is pending now, batch after batch; return how many are left.

        Stops at the first outage (the hub down, or its adapter not buildable yet).
        """
        while not self._stop.is_set():
            batch = self._outbox.pending(KIND)
            if not batch:
                break
            for item in batch:
                if not self._send(item):
                    return self._outbox.count(KIND)
        return self._outbox.count(KIND)

    def _send(self, item: OutboxItem) -> bool:
        """True when the item left the queue (confirmed or refused for good)."""
        try:
            data = json.loads(item.payload_json)
            rating = RatingSubmission(
                case_number=data["case_number"],
                errand_id=data["errand_id"],
                level=int(data["level"]),
                terminal_id=data["terminal_id"],
                rated_at=dt.datetime.fromisoformat(data["rated_at"]),
            )
        except (KeyError, TypeError, ValueError):
            return self._set_aside(item, "unreadable")
        try:
            self._hub.submit_rating(rating)
        except HubUnavailable:
            return False
        except HubError as e:  # refused for good (ErrandRefused is one too)
            return self._set_aside(item, e.reason)
        except Exception:
            # Not the hub's answer but our side failing (the adapter cannot be built, a bad CA
            # file): nothing about this rating is wrong, so it waits, and the reason is logged.
            log.exception("sending rating %d failed; it stays queued", item.id)
            return False
        self._outbox.mark_done(item.id)
        return True

    def _set_aside(self, item: OutboxItem, reason: str) -> bool:
        # Retrying a rating the hub will never take would block every later one behind it.
        log.warning("rating %d refused for good (%s); kept aside", item.id, reason)
        try:
            self._outbox.move(item.id, REJECTED_KIND)  # one transaction: never both, never none
        except OutboxUnavailable:
            return False  # tried again once the storage takes writes
        return True

    def _run(self) -> None:
        delay = self._retry_min_s
        while not self._stop.is_set():
            try:
                left = self.flush()
            except Exception:  # the outbox itself failing (disk full, locked): try again later
                log.exception("rating queue failed; retrying")
                left = -1
            if left == 0:
                delay = self._retry_min_s
                self._wake.wait()
            else:
                # The hub (or the disk) is unwell: back off, but wake at once for a new rating.
                self._wake.wait(delay)
                delay = min(delay * 2, self._retry_max_s)
            self._wake.clear()
