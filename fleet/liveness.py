"""Whether a terminal is online, stale or offline, from its status and heartbeats; pure.

DESIGN 6: the retained ``status`` says online (the birth, right after connect) or offline (the
MQTT Will, or a clean goodbye), both carrying the connection's ``bdseq``; a terminal is stale when
no heartbeat arrived for 3 x its ``interval_s``. The rules here are Sparkplug's:

- A birth is always the newest word: a terminal publishes it only after it has connected, so it
  replaces whatever came before, even a lower ``bdseq`` (a terminal whose state directory was
  wiped counts from 0 again).
- An offline status counts only for the connection it names, or a later one. The broker publishes
  the Will of a connection it gives up on, which can be after the same terminal has already
  reconnected and sent its next birth (a half-open TCP connection is noticed only at its
  keep-alive); that late Will carries an older ``bdseq`` and is ignored. One with a newer
  ``bdseq`` counts: the monitor missed that connection's birth, not its end.
- Heartbeats keep a terminal fresh but never bring an offline one back: only a birth does, so a
  QoS 0 heartbeat overtaken by its own Will cannot make a dead terminal look alive.

Times are the monitor's own receipt times (a terminal's clock may be wrong: a Pi has no RTC).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace

from contracts.mqtt import HeartbeatPayload, StatusPayload

# Stale after this many heartbeat intervals without one (DESIGN 6).
STALE_AFTER_INTERVALS = 3
# The terminal's default heartbeat interval, assumed until its first heartbeat says otherwise.
DEFAULT_INTERVAL_S = 30.0


class Liveness(enum.StrEnum):
    """What the fleet side shows for a terminal (``GET /api/terminals``: ``state``)."""

    ONLINE = "online"
    STALE = "stale"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Presence:
    """What the monitor knows of one terminal's connection; update it with ``on_status`` and
    ``on_heartbeat``, ask it with ``liveness``."""

    online: bool | None = None  # None: no status seen yet
    bdseq: int | None = None  # the connection the status belongs to
    boot_id: str | None = None
    since: dt.datetime | None = None  # when the current status arrived
    last_heartbeat: dt.datetime | None = None
    interval_s: float = DEFAULT_INTERVAL_S

    def on_status(self, status: StatusPayload, received: dt.datetime) -> Presence:
        """The presence after a status message; unchanged for a late Will of an old connection."""
        if status.online:
            return replace(self, online=True, bdseq=status.bdseq, boot_id=status.boot_id,
                           since=received)
        if self.online and self.bdseq is not None and (
            status.bdseq < self.bdseq
            or (status.bdseq == self.bdseq and status.boot_id != self.boot_id)
        ):
            return self  # the Will of a connection the terminal has already replaced
        return replace(self, online=False, bdseq=status.bdseq, boot_id=status.boot_id,
                       since=received)

    def on_heartbeat(self, heartbeat: HeartbeatPayload, received: dt.datetime) -> Presence:
        """The presence after a heartbeat (its interval taken for the staleness rule)."""
        latest = received if self.last_heartbeat is None else max(self.last_heartbeat, received)
        # Built field by field: once per heartbeat, and dataclasses.replace costs five times more.
        return Presence(online=self.online, bdseq=self.bdseq, boot_id=self.boot_id,
                        since=self.since, last_heartbeat=latest, interval_s=heartbeat.interval_s)

    def last_seen(self) -> dt.datetime | None:
        """The latest sign of the terminal: its last heartbeat or status."""
        seen = [t for t in (self.since, self.last_heartbeat) if t is not None]
        return max(seen) if seen else None

    def stale_after(self) -> dt.timedelta:
        return dt.timedelta(seconds=STALE_AFTER_INTERVALS * self.interval_s)

    def liveness(self, now: dt.datetime) -> Liveness:
        """Offline when its status says so (or nothing was ever heard), stale when no heartbeat
        (nor, before the first, its birth) came for 3 x ``interval_s``, otherwise online."""
        if self.online is False:
            return Liveness.OFFLINE
        seen = self.last_seen()
        if seen is None:
            return Liveness.OFFLINE
        if self.online is True and self.since is not None:
            # A birth restarts the clock: heartbeats from before it belong to the last boot.
            fresh = self.since if self.last_heartbeat is None else max(self.since,
                                                                       self.last_heartbeat)
        else:
            fresh = seen  # heartbeats but no status yet (the retained one is on its way)
        return Liveness.STALE if now - fresh > self.stale_after() else Liveness.ONLINE
