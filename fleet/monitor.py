"""`kiosk-fleet monitor`: takes every terminal's messages off the broker into the fleet store.

MQTT 5, persistent session. Heartbeats, events and acks come through shared subscriptions
(``$share/fleet/kiosk/v1/+/...``), so N monitors on one broker or a cluster split them, each
message to one of them. Statuses and OTA states are retained, and a broker sends no retained
message to a shared subscription (MQTT 5, 4.8.2), so every monitor subscribes to those directly:
they are one per connection, and storing one twice changes nothing.

One thread does everything: it drives paho through its external-loop calls (``loop_read``,
``loop_write``, ``loop_misc`` on our own ``select``), gathers what arrives into a batch, and
when the batch is full or has waited long enough, reads it, stores it in one transaction and
only then acknowledges its QoS 1 messages. (Two threads, paho's network thread and a writer,
cost ingest a good share of its time in handing the GIL back and forth.) A monitor killed before
its commit leaves the messages unacknowledged and the broker delivers them again to its session.

Heartbeats are QoS 0 from the terminal (the contract), but the monitor subscribes to them at
QoS 1: a broker set to upgrade outgoing QoS to the subscription's (mosquitto
``upgrade_outgoing_qos``, EMQX ``upgrade_qos``, VerneMQ ``upgrade_outgoing_qos``) then holds
each one until the monitor has stored it, like an event, and queues those it deals to a killed
instance's session until it returns: none is lost. A broker that does not upgrade delivers them
at QoS 0, as before (those an instance held unstored when it died are lost).

The monitor asks for a Receive Maximum equal to its bound (``queue_max``): the broker keeps no
more than that many QoS 1 messages unacknowledged on its way to the monitor, so while the
database is away the batch grows to the bound and the broker holds the rest; the connection is
kept alive meanwhile.

An instance's session outlives it (``session_expiry_s``) so that a restart loses nothing, and
while it lasts a broker may go on dealing it a share of the shared subscriptions (mosquitto
does). ``retire`` ends one for good: it takes the session, unsubscribes, stores what the broker
still delivers, and disconnects with Session Expiry 0.
"""

from __future__ import annotations

import datetime as dt
import logging
import select
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from contracts.mqtt import TOPIC_PREFIX, utc_now
from fleet.ingest import Refusal, Seen, read_message
from fleet.lean_client import LeanClient
from fleet.store import FleetStore
from fleet.sweeper import SWEEP_EVERY_S, sweep_if_holder

log = logging.getLogger(__name__)

REFUSAL_LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class MonitorSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "kiosk-fleet-monitor"
    group: str = "fleet"  # the shared subscriptions' group: every instance of one fleet
    keepalive_s: int = 30
    # How long the broker keeps this monitor's session (its subscriptions and the QoS 1
    # messages for it) while it is away: a restart or an upgrade, not a decommissioning.
    session_expiry_s: int = 3600
    batch_size: int = 500
    batch_wait_s: float = 0.2  # the longest a message waits for its batch to fill
    queue_max: int = 50_000  # messages held between the network thread and the writer
    # Per terminal: a terminal sends a heartbeat every 30 s and a few events; this many
    # messages a second (and a burst this big) is far above that, far below a flood.
    rate_per_s: float = 5.0
    burst: int = 50
    retry_s: float = 1.0  # between attempts to write a batch while the database is away
    sweep_every_s: float = SWEEP_EVERY_S  # the alert rules, by whichever instance holds the lease
    keep_days: float = 30.0  # events, activity and acks kept this long (the lease holder prunes)
    prune_every_s: float = 3600.0
    reconnect_max_s: int = 30
    # Retire this client id's instance for good (``kiosk-fleet monitor --retire``): take its
    # session, leave the subscriptions, store what the broker still holds for it, and end the
    # session, so that the broker deals its share to the instances that remain.
    retire: bool = False
    retire_quiet_s: float = 1.0  # nothing more arrived this long after leaving: all is stored


# One message as read off the socket: topic, payload, retained, QoS, packet id, connection. A
# plain tuple: one is made for every message, and a dataclass instance cost measurably more.
_Arrival = tuple[str, bytes, bool, int, int, int]


class _Batch:
    """The messages read and not yet stored, at most ``bound`` of them, oldest first.

    ``due`` says when the batch must be stored: when it is full, when its first message has
    waited ``wait_s``, or at once when it holds a status (a birth or a Will: offline shows as soon
    as the broker gives up on a terminal, not a batch wait later).
    """

    def __init__(self, size: int, wait_s: float, bound: int) -> None:
        self.size, self.wait_s, self.bound = size, wait_s, max(bound, size)
        self.items: list[tuple[_Arrival, dt.datetime]] = []
        self.since = 0.0  # monotonic time of the oldest message
        self.urgent = False

    def add(self, arrival: _Arrival, received: dt.datetime, now: float, *,
            urgent: bool = False) -> bool:
        """Keep ``arrival``; False when the batch is at its bound (it is not kept)."""
        if len(self.items) >= self.bound:
            return False
        if not self.items:
            self.since = now
        self.items.append((arrival, received))
        self.urgent = self.urgent or urgent
        return True

    def due_at(self) -> float | None:
        """When the batch must be stored (monotonic); None while it is empty."""
        if not self.items:
            return None
        if self.urgent or len(self.items) >= self.size:
            return self.since
        return self.since + self.wait_s

    def take(self) -> list[tuple[_Arrival, dt.datetime]]:
        """Up to ``size`` messages, oldest first (the rest stay, their wait counted anew)."""
        taken, self.items = self.items[:self.size], self.items[self.size:]
        self.urgent = False
        self.since = time.monotonic()
        return taken


class _RateLimit:
    """A token bucket per terminal (the monitor's thread only); idle full buckets are forgotten."""

    FORGET_ABOVE = 200_000  # terminals tracked before idle ones are dropped

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate, self._burst = rate_per_s, float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, tid: str, now: float) -> bool:
        tokens, last = self._buckets.get(tid, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[tid] = (tokens, now)
            return False
        self._buckets[tid] = (tokens - 1.0, now)
        if len(self._buckets) > self.FORGET_ABOVE:
            self._forget_idle(now)
        return True

    def _forget_idle(self, now: float) -> None:
        full_after = self._burst / self._rate
        self._buckets = {tid: (tokens, last) for tid, (tokens, last) in self._buckets.items()
                         if now - last < full_after}


@dataclass
class MonitorCounts:
    """What the monitor took and refused, for ``/metrics`` and the logs (thread-safe)."""

    messages: Counter[str] = field(default_factory=Counter)  # by topic kind
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    stored_batches: int = 0
    write_failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, kind: str | None = None, rejected: str | None = None) -> None:
        with self._lock:
            if kind is not None:
                self.messages[kind] += 1
            if rejected is not None:
                self.rejected[rejected] += 1

    def add_all(self, kinds: Counter[str], rejected: Counter[str]) -> None:
        """A batch's counts at once (one lock round, not one a message)."""
        with self._lock:
            self.messages.update(kinds)
            self.rejected.update(rejected)

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.messages), dict(self.rejected)


_KINDS = frozenset({"status", "heartbeat", "event", "ota", "ack"})
# The longest the monitor waits on its socket when nothing is due: how soon it sees a stop.
_IDLE_WAIT_S = 0.2


def _ignore(*_args: object) -> None:
    """paho's socket callbacks, set only so that a queued packet is not written on the spot."""


class Monitor:
    """One monitor instance; ``start`` returns at once, ``stop`` stores what it holds first."""

    def __init__(self, settings: MonitorSettings, store: FleetStore, *,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self.counts = MonitorCounts()
        self._batch = _Batch(settings.batch_size, settings.batch_wait_s, settings.queue_max)
        self._limit = _RateLimit(settings.rate_per_s, settings.burst)
        # Counted per message in the monitor's thread, handed to ``counts`` once per read.
        self._kinds: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._stop_deadline = float("inf")
        self._connected = threading.Event()
        self._left_at: float | None = None  # retiring: when the broker confirmed the leaving
        self._last_read_at = 0.0
        self._retired = threading.Event()
        self._idle = threading.Event()  # set: everything read so far is stored
        self._idle.set()
        self._refusal_logged: dict[str, float] = {}
        self._next_prune = time.monotonic()  # the lease holder prunes at once, then hourly
        self._now = time.monotonic()  # the current read's time: one clock reading per read
        self._received = clock()
        self._read = 0  # messages read so far (how a burst of reads sees it got one)
        # +1 per connection: a message is acknowledged on the connection that brought it
        # (after a reconnection the broker sends the unacknowledged ones again itself).
        self._generation = 0
        self._reconnect_at = 0.0
        self._reconnect_delay = 0.0
        self._unreachable_logged = False
        self._thread = threading.Thread(target=self._run, name="fleet-monitor", daemon=True)
        self._client = self._make_client()

    def _make_client(self) -> LeanClient:
        s = self._settings
        client = LeanClient(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=s.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,  # a QoS 1 message is acknowledged once it is in the store
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish_raw = self._on_publish
        client.on_message = self._on_message  # what takes paho's own path (none expected)
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        # With these set, a packet paho queues (an ack, a ping) waits for the monitor's loop to
        # write what is queued in one go, instead of a write of its own at each ack.
        client.on_socket_register_write = _ignore
        client.on_socket_unregister_write = _ignore
        return client

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        s = self._settings
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = s.session_expiry_s
        # The broker keeps at most this many QoS 1 messages unacknowledged on their way here:
        # the monitor's bound (MQTT 5 allows up to 65,535; without it mosquitto allows 20,
        # which would hold the monitor to 20 messages a batch).
        properties.ReceiveMaximum = max(1, min(s.queue_max, 65535))
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=False,
                                   properties=properties)
        self._thread.start()

    def wait_connected(self, timeout_s: float) -> bool:
        """Whether the monitor is connected and subscribed within ``timeout_s``."""
        return self._connected.wait(timeout_s)

    def wait_retired(self, timeout_s: float) -> bool:
        """Retiring: whether what waited in the session is stored and the session ended within
        ``timeout_s``. Without that the session stays as it was, with what is not yet stored."""
        return self._retired.wait(timeout_s)

    def wait_idle(self, timeout_s: float) -> bool:
        """Whether everything received so far is stored within ``timeout_s`` (tests, shutdown)."""
        return self._idle.wait(timeout_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Store and acknowledge what is held (within ``timeout_s``), then disconnect."""
        self._stop_deadline = time.monotonic() + timeout_s
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s + 2.0)

    # --- the monitor's thread --------------------------------------------------------------------

    def _run(self) -> None:
        # A retiring instance evaluates no alerts: the instances that stay do.
        next_sweep = float("inf") if self._settings.retire else time.monotonic()
        while not self._stopping.is_set() and not self._drained():
            now = time.monotonic()
            if now >= next_sweep:
                next_sweep = now + self._settings.sweep_every_s
                self._sweep()
                now = time.monotonic()
            connected = self._client.socket() is not None
            if not connected and now >= self._reconnect_at:
                connected = self._try_connect(now)
            due = self._batch.due_at()
            wake = min(next_sweep, now + _IDLE_WAIT_S if due is None else due)
            if connected:
                self._pump(max(0.0, wake - time.monotonic()))
            else:
                self._stopping.wait(max(0.0, min(wake, self._reconnect_at) - time.monotonic()))
            due = self._batch.due_at()
            if due is not None and time.monotonic() >= due:
                self._store_batch()
        # Stopping: what is held is stored and acknowledged before the goodbye; what cannot be
        # stored in time stays unacknowledged, and the broker gives it to this session again.
        while self._batch.items and time.monotonic() < self._stop_deadline:
            if not self._store_batch():
                break
        if self._drained():
            # Session Expiry 0 in the DISCONNECT (MQTT 5, 3.14.2.2.2): the broker ends the
            # session now instead of keeping it, and dealing it messages, for the expiry.
            properties = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 0
            self._client.disconnect(properties=properties)
            self._write()
            self._retired.set()
            log.info("retired: the session of %s is stored and ended", self._settings.client_id)
            return
        self._client.disconnect()
        self._write()

    def _drained(self) -> bool:
        """Retiring: the broker confirmed the leaving, everything since is stored, and nothing
        more has come for ``retire_quiet_s``."""
        left_at = self._left_at
        if left_at is None or self._batch.items:
            return False
        quiet_since = max(left_at, self._last_read_at)
        return time.monotonic() - quiet_since >= self._settings.retire_quiet_s

    def _try_connect(self, now: float) -> bool:
        try:
            self._client.reconnect()
        except (OSError, ValueError) as e:
            self._reconnect_delay = min(max(1.0, self._reconnect_delay * 2),
                                        float(self._settings.reconnect_max_s))
            self._reconnect_at = now + self._reconnect_delay
            if not self._unreachable_logged:
                self._unreachable_logged = True
                log.warning("cannot reach the broker %s:%d (%s); retrying",
                            self._settings.host, self._settings.port, e)
            return False
        self._generation += 1
        self._write()  # the CONNECT
        return True

    def _pump(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the socket, read what came, write what is queued."""
        client = self._client
        sock = client.socket()
        if sock is None:
            return
        # Bytes already in the client's buffer (a burst ended at its limit) are not the
        # socket's any more: select would not wake for them.
        buffered = client.buffered() > 0
        try:
            readable, _, _ = select.select([sock], [sock] if client.want_write() else [], [],
                                           0.0 if buffered else timeout_s)
        except (OSError, ValueError):  # closed under us: the next round reconnects
            return
        if readable or buffered:
            self._now = time.monotonic()
            self._received = self._clock()
            # paho reads one packet a call: go on while calls bring messages or bytes are left in
            # the client's buffer (which select does not see), so that one wait on the socket
            # serves many messages (a batch's worth at most before storing).
            for _ in range(self._settings.batch_size):
                before = self._read
                if client.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS \
                        or client.socket() is None \
                        or (self._read == before and not client.buffered()):
                    break
            if self._kinds or self._rejected:
                self.counts.add_all(self._kinds, self._rejected)
                self._kinds.clear()
                self._rejected.clear()
        self._write()
        if client.socket() is not None:
            client.loop_misc()  # a PINGREQ when due; a broker that stopped answering is dropped

    def _write(self) -> None:
        if self._client.socket() is not None and self._client.want_write():
            self._client.loop_write()

    def _on_connect(self, client: paho.Client, _userdata: object, flags: paho.ConnectFlags,
                    reason: ReasonCode, _properties: Properties | None) -> None:
        if reason.is_failure:
            log.error("broker refused the monitor: %s", reason)
            return
        self._reconnect_delay = 0.0
        self._unreachable_logged = False
        log.info("connected to the broker (session %s)",
                 "resumed" if flags.session_present else "new")
        s, prefix = self._settings, TOPIC_PREFIX
        shared = f"$share/{s.group}/{prefix}"
        filters = [
            f"{prefix}/+/status",  # retained: never shared
            f"{prefix}/+/ota",
            # QoS 1 although terminals send heartbeats at QoS 0: a broker that upgrades
            # outgoing QoS then keeps each until it is stored (see the module's docstring).
            f"{shared}/+/heartbeat",
            f"{shared}/+/event",
            f"{shared}/+/cmd/+/ack",
        ]
        if s.retire:
            if not flags.session_present:
                log.warning("retiring %s: the broker has no session of it (nothing waited)",
                            s.client_id)
            # Leaving stops new messages; what the broker already holds for the session still
            # comes, and is stored as usual.
            client.unsubscribe(filters)
            return
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])

    def _on_subscribe(self, _client: paho.Client, _userdata: object, _mid: int,
                      reasons: list[ReasonCode], _properties: Properties | None) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("broker refused subscriptions: %s", ", ".join(refused))
            return
        self._connected.set()

    def _on_unsubscribe(self, _client: paho.Client, _userdata: object, _mid: int,
                        _reasons: list[ReasonCode], _properties: Properties | None) -> None:
        # "No subscription existed" (a session that had expired) is as good as left.
        self._left_at = time.monotonic()
        self._connected.set()

    def _on_disconnect(self, _client: paho.Client, _userdata: object,
                       _flags: paho.DisconnectFlags, reason: ReasonCode,
                       _properties: Properties | None) -> None:
        self._connected.clear()
        self._left_at = None  # retiring: leave again on the next connection, then drain
        if not self._stopping.is_set():
            self._reconnect_delay = max(1.0, self._reconnect_delay)
            self._reconnect_at = time.monotonic() + self._reconnect_delay
            if reason.is_failure:
                log.warning("lost the broker (%s); reconnecting", reason)

    def _on_message(self, _client: paho.Client, _userdata: object,
                    message: paho.MQTTMessage) -> None:
        try:
            raw_topic = message.topic.encode()
        except UnicodeDecodeError:
            raw_topic = b"\xff"  # refused as a bad topic
        self._on_publish(raw_topic, bytes(message.payload), message.qos, bool(message.retain),
                         message.mid)

    def _on_publish(self, raw_topic: bytes, payload: bytes, qos: int, retained: bool,
                    mid: int) -> None:
        self._read += 1
        self._last_read_at = self._now
        try:
            topic = raw_topic.decode()
        except UnicodeDecodeError:
            topic = raw_topic.decode(errors="replace")  # refused below as a bad topic
        parts = topic.split("/")
        kind = parts[-1]
        self._kinds[kind if kind in _KINDS else "other"] += 1
        tid = parts[2] if len(parts) > 2 else ""
        if not self._limit.allow(tid, self._now):
            self._rejected["rate_limited"] += 1
            if qos:
                self._client.ack(mid, qos)  # dropped on purpose: not again
            return
        arrival = (topic, payload, retained, qos, mid, self._generation)
        if self._batch.add(arrival, self._received, self._now, urgent=kind == "status"):
            self._idle.clear()
        else:
            # Left unacknowledged: the broker keeps a QoS 1 message for this session and sends
            # it again; a QoS 0 heartbeat (a broker that does not upgrade) is lost, and counted.
            self._rejected["queue_full"] += 1

    def _store_batch(self) -> bool:
        """Read, store and acknowledge the batch that is due; False if it could not be stored
        before the stop's deadline (then nothing of it is acknowledged)."""
        taken = self._batch.take()
        records: list[Seen] = []
        rejected = self._rejected
        for (topic, payload, retained, _qos, _mid, _gen), received in taken:
            read = read_message(topic, payload, received, retained=retained)
            if isinstance(read, Refusal):
                rejected[str(read.reason)] += 1
                self._log_refusal(read)
            else:
                records.append(read)
        if records and not self._store_until_done(records):
            return False
        client, generation = self._client, self._generation
        for (_topic, _payload, _retained, qos, mid, gen), _received in taken:
            if qos and gen == generation:
                client.ack(mid, qos)
        self._write()
        if rejected:
            self.counts.add_all(Counter(), rejected)
            rejected.clear()
        if not self._batch.items:
            self._idle.set()
        return True

    def _sweep(self) -> None:
        now = self._clock()
        try:
            holder = sweep_if_holder(self._store, self._settings.client_id, now) is not None
            if holder and time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + self._settings.prune_every_s
                gone = self._store.prune(now - dt.timedelta(days=self._settings.keep_days))
                if gone:
                    log.info("pruned %d rows older than %g days", gone,
                             self._settings.keep_days)
        except Exception as e:  # the database away: the next sweep tries again
            log.error("alert sweep failed (%s: %s)", type(e).__name__, e)

    def _log_refusal(self, refusal: Refusal) -> None:
        # One line per reason a minute: a broken or hostile sender must not flood the log (the
        # counters have every one). The message names the topic's kind and the rule, no values.
        now = time.monotonic()
        last = self._refusal_logged.get(refusal.reason)
        if last is None or now - last >= REFUSAL_LOG_EVERY_S:
            self._refusal_logged[refusal.reason] = now
            log.warning("%s (terminal %s)", refusal.message, refusal.tid or "unknown")

    def _store_until_done(self, records: list[Seen]) -> bool:
        """Store ``records``, retrying every ``retry_s`` while the database is away (the
        connection kept alive meanwhile); False only when a stop's deadline passed first."""
        failing_since: float | None = None
        while True:
            try:
                self._store.apply(records)
            except Exception as e:  # the database away, full, locked past its timeout
                self.counts.write_failures += 1
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.error("cannot write to the fleet store (%s: %s); holding %d messages and"
                              " retrying", type(e).__name__, e, len(records))
                if self._stopping.is_set() and time.monotonic() >= self._stop_deadline:
                    return False
                self._wait_serving(self._settings.retry_s)
                continue
            if failing_since is not None:
                log.info("the fleet store is writable again after %.0f s",
                         time.monotonic() - failing_since)
            self.counts.stored_batches += 1
            return True

    def _wait_serving(self, seconds: float) -> None:
        """Wait ``seconds`` while keeping the connection alive and reading up to the bound."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._stopping.is_set() and time.monotonic() >= self._stop_deadline:
                return
            if self._client.socket() is None:
                self._stopping.wait(min(left, 0.05))
            else:
                self._pump(left)
