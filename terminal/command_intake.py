"""Commands from the broker to their final acks: one at a time, none lost, none acked in silence.

A command arrives on paho's network thread and waits here (at most ``capacity``); the ``commands``
thread runs it through the dispatcher. Everything that must leave for it (its acks, then the
PUBACK that tells the broker the command is safe) goes through one FIFO in that order, so the
broker never hears "taken" before the ack is on its way, and an ack paho cannot queue right now
(its outgoing queue is full during a burst) waits its turn instead of being dropped. A command
beyond ``capacity`` is rejected "busy" at once: an answer, never silence.

Only the commands thread publishes: a paho callback never waits on our lock while we wait on
paho's (the network thread only appends and notifies).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from contracts.mqtt import MAX_PAYLOAD_BYTES, ack_topic
from terminal.commands import CommandDispatcher
from terminal.mqtt_link import Delivery, InboundMessage

log = logging.getLogger(__name__)

BUSY = "busy: the terminal has too many commands waiting; send it again later"
RETRY_FULL_QUEUE_S = 0.05  # paho's outgoing queue was full: try the head of the FIFO again


class CommandLink(Protocol):
    """What the intake needs of the MQTT link."""

    def publish(self, topic: str, payload: bytes, qos: int = 0,
                retain: bool = False) -> Delivery: ...

    def acknowledge(self, message: InboundMessage) -> None: ...


@dataclass(frozen=True)
class _Ack:
    request_id: str
    ack_json: str


@dataclass(frozen=True)
class _Puback:
    message: InboundMessage


class CommandIntake:
    """The queue of received commands, the commands thread, and the ordered way out."""

    def __init__(
        self,
        terminal_id: str,
        link: CommandLink,
        dispatcher: CommandDispatcher,
        *,
        capacity: int,
    ) -> None:
        self._terminal_id = terminal_id
        self._link = link
        self._dispatcher = dispatcher
        self._capacity = capacity
        self._cond = threading.Condition()
        self._waiting: collections.deque[tuple[str, InboundMessage]] = collections.deque()
        self._outgoing: collections.deque[_Ack | _Puback] = collections.deque()
        self._stopping = False
        self._busy = RateLimitedCount("commands rejected busy: too many waiting")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="commands", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # --- from the dispatcher (commands thread) and paho (network thread) -----------------------

    def send_ack(self, request_id: str, ack_json: str) -> None:
        """The dispatcher's way out: queued in order, published as soon as paho takes it."""
        with self._cond:
            self._outgoing.append(_Ack(request_id, ack_json))
        self._flush()

    def receive(self, request_id: str, message: InboundMessage) -> None:
        """Network thread: queue a command, or answer "busy" when too many wait already."""
        if len(message.payload) > MAX_PAYLOAD_BYTES:
            # Rejected unread: only a prefix waits here (enough to say "too large").
            message = InboundMessage(message.topic, message.payload[:MAX_PAYLOAD_BYTES + 1],
                                     message.qos, message.mid, message.connection)
        with self._cond:
            if len(self._waiting) < self._capacity:
                self._waiting.append((request_id, message))
            else:
                # Not run and not remembered: the same request id may come again and then run.
                self._outgoing.append(_Ack(request_id, self._dispatcher.rejection(BUSY)))
                self._outgoing.append(_Puback(message))
                self._busy.count()
            self._cond.notify_all()

    # --- the commands thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stopping or self._waiting or self._outgoing,
                                    timeout=1.0)
                if self._stopping:
                    break
                work = self._waiting.popleft() if self._waiting else None
            if not self._flush():
                # paho's queue is full: give the broker a moment to acknowledge what it has.
                with self._cond:
                    self._cond.wait(RETRY_FULL_QUEUE_S)
            if work is None:
                continue
            request_id, message = work
            try:
                self._dispatcher.handle(request_id, message.payload)
            except Exception:  # a bug here must not keep the broker's slot for us for good
                log.exception("command %s could not be handled", request_id)
            with self._cond:
                self._outgoing.append(_Puback(message))
            self._flush()
        self._flush()  # what can still leave does; the broker redelivers unacknowledged commands

    def _flush(self) -> bool:
        """Send the FIFO's head until it is empty (True) or paho refuses an ack (False)."""
        while True:
            with self._cond:
                if not self._outgoing:
                    return True
                head = self._outgoing[0]
            if isinstance(head, _Ack):
                delivery = self._link.publish(ack_topic(self._terminal_id, head.request_id),
                                              head.ack_json.encode("utf-8"), qos=1)
                if delivery.error is not None:
                    return False
            else:
                self._link.acknowledge(head.message)
            with self._cond:
                self._outgoing.popleft()


class RateLimitedCount:
    """Counts an event that can come thousands of times a second (a command burst) and logs it
    once, then at most every ``every_s`` with the count since, instead of once per event."""

    def __init__(self, what: str, every_s: float = 10.0) -> None:
        self._what = what
        self._every_s = every_s
        self._lock = threading.Lock()
        self._since_logged = 0
        self._next_log = 0.0

    def count(self) -> None:
        with self._lock:
            self._since_logged += 1
            now = time.monotonic()
            if now < self._next_log:
                return
            count, self._since_logged = self._since_logged, 0
            self._next_log = now + self._every_s
        log.warning("%s (%d since the last report)", self._what, count)
