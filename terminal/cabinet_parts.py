"""The cabinet's own devices beside the card reader: the ID card's SAM reader and the co-processor.

Built by the composition root from ``[idcard]`` and ``[controller]``; each is optional (kind
``none``). Their drivers run their own threads. The ID card reader hands what it read to the main
thread through ``post`` (nothing personal leaves here except inside an ``IdCardPresented`` event
to the engine); the co-processor's door, tamper, temperature and reset reports become operations
events (``record``) and the ``cabinet`` device state of the heartbeat. The co-processor's watchdog
is kicked from the UI's main loop (``kick``, called by a Kivy Clock interval): a frozen UI stops
the kicks even though the driver's own thread lives on, and the board power-cycles the Pi.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from devices.base import CardHolder, DeviceError, DeviceState
from flows.event_names import EventType
from flows.steps import Event, IdCardPresented, RecordEvent
from terminal.config import Config

if TYPE_CHECKING:
    from devices.controller.driver import ControllerDriver, ControllerEvent

log = logging.getLogger(__name__)


class CabinetParts:
    """The ID card reader (and the co-processor, when fitted)."""

    def __init__(
        self,
        config: Config,
        *,
        post: Callable[[Event], None],
        record: Callable[[RecordEvent], None] = lambda _event: None,
        in_maintenance: Callable[[], bool] = lambda: False,
    ) -> None:
        self._config = config
        self._post = post
        self._record = record
        self._in_maintenance = in_maintenance
        self._lock = threading.Lock()
        # What the board last said of the cabinet (the heartbeat's ``cabinet`` row).
        self._door_open = False
        self._tamper = False
        self._hot = False
        self._light = ""
        self.controller: ControllerDriver | None = None
        if config.controller.kind == "serial":
            from devices.controller.driver import ControllerDriver  # noqa: PLC0415

            settings = config.controller
            self.controller = ControllerDriver(
                settings.port, baudrate=settings.baudrate,
                watchdog_timeout_s=settings.watchdog_timeout_s, grace_s=settings.grace_s,
            )
        self.id_reader = None
        if config.idcard.kind == "serial":
            # Imported only when fitted: pyserial's import is not free on a Pi.
            from devices.idcard.driver import IdCardReaderDriver  # noqa: PLC0415

            self.id_reader = IdCardReaderDriver(config.idcard.port,
                                                baudrate=config.idcard.baudrate)

    def devices(self) -> dict[str, Callable[[], DeviceState]]:
        """What the device monitor polls (and the heartbeat reports) of these parts."""
        polled: dict[str, Callable[[], DeviceState]] = {}
        if self.id_reader is not None:
            polled["id_reader"] = self.id_reader.state
        if self.controller is not None:
            polled["controller"] = self.controller.state
            polled["cabinet"] = self.cabinet_state
        return polled

    def start(self) -> None:
        if self.id_reader is not None:
            self.id_reader.start(self._presented, self._taken_away)
        if self.controller is not None:
            self.controller.start(self._board_said)

    def stop(self) -> None:
        if self.id_reader is not None:
            self.id_reader.stop()
        if self.controller is not None:
            self.controller.stop()

    def kick(self) -> None:
        """From the UI's main loop only: the terminal is alive. Also keeps the status light in
        step with maintenance."""
        if self.controller is None:
            return
        self.controller.kick()
        light = "maintenance" if self._in_maintenance() else "ok"
        if light != self._light:
            self._light = light
            self.controller.set_light(light)

    def ping(self) -> object:
        """The self-test's round trip to the co-processor (raises its driver's errors)."""
        if self.controller is None:
            raise DeviceError(reason="absent")
        # A fresh token each time: the answer must be to this ping, not an echo of an old one.
        token = secrets.randbits(32)
        answer = self.controller.request("ping", token=token)
        if answer.get("token") != token:
            raise DeviceError(reason="wrong_answer")
        return answer

    def _send_thermal(self) -> None:
        controller = self.controller
        if controller is None:
            return
        settings = self._config.controller
        try:
            controller.request("set_thermal", fan_on_cc=round(settings.fan_on_c * 100),
                               fan_off_cc=round(settings.fan_off_c * 100),
                               alarm_cc=round(settings.temperature_high_c * 100))
        except DeviceError as e:
            # The board keeps its own defaults; it says so again at the next handshake.
            log.warning("co-processor did not take the thermal settings: %s", e.reason)

    def cabinet_state(self) -> DeviceState:
        """tamper is a fault (someone forced the cabinet); an open door or heat needs a look."""
        with self._lock:
            if self._tamper:
                return DeviceState.fault("tamper")
            if self._door_open:
                return DeviceState.degraded("door_open")
            if self._hot:
                return DeviceState.degraded("temperature_high")
        return DeviceState.ok()

    def _board_said(self, event: ControllerEvent) -> None:
        # On the controller's thread; operations events only (never the UI's business).
        from devices.controller.driver import (  # noqa: PLC0415
            BoardReset,
            DoorChanged,
            TamperChanged,
            TemperatureHigh,
            TemperatureNormal,
        )

        match event:
            case DoorChanged(open=True):
                with self._lock:
                    self._door_open = True
                staff = self._in_maintenance()
                # Staff open the door during maintenance; at any other time it is a break-in.
                self._record(RecordEvent(EventType.DOOR_OPENED, "info" if staff else "critical",
                                         {"in_maintenance": staff}))
            case DoorChanged(open=False):
                with self._lock:
                    self._door_open = False
                self._record(RecordEvent(EventType.DOOR_CLOSED))
            case TamperChanged(triggered=triggered):
                with self._lock:
                    self._tamper = triggered
                if triggered:
                    self._record(RecordEvent(EventType.TAMPER, "critical"))
            case TemperatureHigh(celsius=celsius, fan_on=fan_on):
                with self._lock:
                    self._hot = True
                self._record(RecordEvent(EventType.TEMPERATURE_HIGH, "warning",
                                         {"celsius": round(celsius, 1), "fan_on": fan_on}))
            case TemperatureNormal():
                with self._lock:
                    self._hot = False
            case BoardReset(cause=cause, power_cycles=cycles):
                # A board that restarted has its firmware's defaults again: ours go to it, off
                # this thread (the driver's own, which must go on to serve the request).
                threading.Thread(target=self._send_thermal, name="controller-thermal",
                                 daemon=True).start()
                # A board found at start after a power-on is routine; its watchdog having cut our
                # power, or its own firmware having hung, is what operations must look into.
                severity = "warning" if cause in ("kick_timeout", "firmware_watchdog") else "info"
                self._record(RecordEvent(EventType.CONTROLLER_RESET, severity,
                                         {"cause": cause, "power_cycles": cycles}))
                self._light = ""  # the board forgot it; send it again at the next kick

    def _presented(self, result: CardHolder | DeviceError) -> None:
        # On the reader's thread. The reason code only ever describes the read, never the card.
        if isinstance(result, CardHolder):
            self._post(IdCardPresented(result))
        else:
            log.info("ID card presented, not read: %s", result.reason)
            self._post(IdCardPresented(None, result.reason or "read_failed"))

    @staticmethod
    def _taken_away() -> None:
        log.debug("ID card taken away")
