"""Composition root: the ONE place that picks real or virtual endpoints and wires the terminal.

Everything the terminal runs is built here from the typed config and passed explicitly: no
singletons, no import-time registration. Threads: Kivy owns the main thread, where the session
engine runs; devices, the hub, MQTT and the outbox work on their own threads and reach the engine
only through ``Clock.schedule_once`` (see docs/ARCHITECTURE.md, "Threads").
"""

from __future__ import annotations

import importlib.metadata
import logging
import signal
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from contracts.mqtt import TerminalState
from devices.base import DeviceState, Health
from devices.card.driver import CardReaderDriver
from devices.printer.driver import PrinterConnection, ReceiptPrinter
from flows.catalogue import Catalogue, parse_catalogue
from flows.clock import SystemClock
from flows.engine import SessionEngine
from flows.steps import (
    CardInserted,
    CardPulled,
    CheckPrinter,
    EffectDone,
    Event,
    Failed,
    PrintReceipt,
    RecordEvent,
    Tap,
    Tick,
)
from terminal.config import Config, MqttSettings, PrinterSettings
from terminal.controller import TerminalController
from terminal.counters import DailyCounters
from terminal.device_monitor import DeviceMonitor
from terminal.effects import EffectRunner
from terminal.hub_client import HttpServiceHub
from terminal.i18n import Translator
from terminal.memory import limit_malloc_arenas, release_free_memory
from terminal.mqtt_link import BrokerSettings
from terminal.outbox import Outbox
from terminal.ratings import RatingQueue
from terminal.sd_notify import Notifier
from terminal.telemetry import TelemetryAgent, TerminalSnapshot
from terminal.ui.boot import KivySettings, configure_kivy

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).parent
LOCALES_DIR = PACKAGE_DIR / "locales"
CONTENT_DIR = PACKAGE_DIR / "content"
TICK_INTERVAL_S = 0.25  # the idle countdown shows whole seconds; a quarter keeps it smooth
WATCHDOG_INTERVAL_S = 10.0
DEVICE_POLL_INTERVAL_S = 10.0


def version() -> str:
    try:
        return importlib.metadata.version("civic-kiosk")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def load_catalogue(content_dir: Path | None) -> Catalogue:
    path = (content_dir or CONTENT_DIR) / "catalogue.toml"
    with path.open("rb") as f:
        return parse_catalogue(tomllib.load(f))


def printer_connection(settings: PrinterSettings) -> PrinterConnection:
    if settings.kind == "usb":
        return PrinterConnection.usb(settings.usb_vendor, settings.usb_product)
    if settings.kind == "serial":
        return PrinterConnection.serial(settings.serial_device, settings.baudrate)
    return PrinterConnection.network(settings.host, settings.port)


def broker_settings(settings: MqttSettings) -> BrokerSettings:
    return BrokerSettings(
        host=settings.host,
        port=settings.port,
        username=settings.username or None,
        password=settings.password or None,
        ca_file=settings.ca_file,
        cert_file=settings.cert_file,
        key_file=settings.key_file,
    )


class _EventFanout:
    """Operations events go to the day's counters and, when MQTT is on, to the telemetry outbox."""

    def __init__(self, counters: DailyCounters, telemetry: TelemetryAgent | None) -> None:
        self._counters = counters
        self._telemetry = telemetry

    def record(self, event: RecordEvent) -> None:
        self._counters.count(event)
        if self._telemetry is not None:
            self._telemetry.record(event)


def terminal_state(in_session: bool, devices: dict[str, DeviceState]) -> TerminalState:
    """The heartbeat's one-word summary: without a card reader nothing can be done at all."""
    if in_session:
        return "in_session"
    reader = devices.get("card_reader")
    if reader is not None and reader.health is Health.FAULT:
        return "out_of_service"
    if any(state.health is not Health.OK for state in devices.values()):
        return "degraded"
    return "idle"


def run(config: Config) -> int:
    """Build the terminal from ``config`` and run it until it is told to stop."""
    limit_malloc_arenas()  # before any thread starts, so every thread shares the two
    state_dir = config.terminal.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    display = config.display
    configure_kivy(KivySettings(
        home=state_dir / "kivy",
        size=None if display.fullscreen else (display.width, display.height),
        # 60, not 30: every hand-over from a device thread waits for the next frame, so the
        # frame period is paid twice between a card going in and its holder on screen.
        max_fps=60,
    ))
    # Kivy reads its settings at import, so the UI is imported only now.
    from kivy.clock import Clock  # noqa: PLC0415

    from terminal.automation import AutomationEndpoints, AutomationServer  # noqa: PLC0415
    from terminal.ui.app import KioskUi  # noqa: PLC0415

    terminal_id = config.terminal.terminal_id
    zone = ZoneInfo(config.terminal.timezone)
    clock = SystemClock()
    catalogue = load_catalogue(config.terminal.content_dir)
    translator = Translator.load(LOCALES_DIR, extra=catalogue.translations())
    engine = SessionEngine(
        catalogue=catalogue,
        clock=clock,
        terminal_id=terminal_id,
        idle_timeout_s=config.terminal.idle_timeout_s,
        zone=zone,
    )

    card = CardReaderDriver(
        reader_filter=config.card.reader_filter or None,
        read_timeout_s=config.card.read_timeout_s,
    )
    printer = ReceiptPrinter(
        printer_connection(config.printer),
        paper_mm=config.printer.paper_mm,
        status_timeout_s=config.printer.status_timeout_s,
        job_timeout_s=config.printer.job_timeout_s,
    )
    hub = HttpServiceHub(config.hub.url, timeout_s=config.hub.timeout_s,
                         ca_file=config.hub.ca_file)
    # FULL: a rating or an event is a promise to a resident and to operations; survive power cuts.
    outbox = Outbox(state_dir / "outbox.sqlite", synchronous="FULL")
    ratings = RatingQueue(outbox, hub, terminal_id=terminal_id, now=clock.now)
    counters = DailyCounters(lambda: clock.now().astimezone(zone).date())

    controller: TerminalController | None = None
    telemetry: TelemetryAgent | None = None

    def snapshot() -> TerminalSnapshot:
        devices = monitor.states()
        in_session = controller.in_session if controller is not None else False
        return TerminalSnapshot(terminal_state(in_session, devices), devices,
                                counters.snapshot())

    def device_changed(name: str, state: DeviceState) -> None:
        # The reason is a device code (paper_out), never personal data.
        log.info("device %s is now %s %s", name, state.health, state.reason)
        if telemetry is not None:
            telemetry.heartbeat_now()
            if state.health is not Health.OK:
                severity = "critical" if state.health is Health.FAULT else "warning"
                telemetry.record_event("device_fault", severity, device=name,
                                       reason=state.reason or "unknown")

    monitor = DeviceMonitor(
        {"card_reader": card.state, "printer": printer.status},
        interval_s=DEVICE_POLL_INTERVAL_S,
        on_change=device_changed,
    )
    if config.mqtt.enabled:
        telemetry = TelemetryAgent(
            terminal_id=terminal_id,
            site=config.terminal.site,
            version=version(),
            broker=broker_settings(config.mqtt),
            state_dir=state_dir,
            snapshot=snapshot,
            interval_s=config.mqtt.heartbeat_interval_s,
            outbox=outbox,
        )

    def post(event: Event) -> None:
        """From any thread: hand ``event`` to the engine on the main thread."""
        Clock.schedule_once(lambda _dt: controller.handle(event) if controller else None, 0)

    def deliver(done: EffectDone) -> None:
        post(done)
        if isinstance(done.effect, CheckPrinter | PrintReceipt) or isinstance(
            done.outcome, Failed
        ):
            monitor.poll_soon()  # a device just answered or failed: refresh what heartbeats say

    runner = EffectRunner(card=card, printer=printer, hub=hub, ratings=ratings,
                          events=_EventFanout(counters, telemetry), terminal_id=terminal_id,
                          deliver=deliver)
    notifier = Notifier()
    ready = threading.Event()

    def settled(screen_id: str) -> None:
        if screen_id == "attract" and not ready.is_set():
            ready.set()
            notifier.ready("attract screen shown")
            log.info("attract screen ready")

    ui = KioskUi(translator, on_settled=settled)
    controller = TerminalController(
        engine, ui, runner,
        schedule=lambda delay, call: Clock.schedule_once(lambda _dt: call(), delay),
        on_session_end=release_free_memory,
    )
    ui.on_tap = lambda target: controller.handle(Tap(target)) if controller else None

    automation: AutomationServer | None = None
    if config.automation.enabled:
        automation = AutomationServer(
            AutomationEndpoints(
                describe=ui.current_description,
                tap=ui.tap,
                screenshot=ui.screenshot_png,
                touch=ui.touch_at,
                layout=ui.layout_issues,
            ),
            port=config.automation.port,
        )

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        ui.stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def start_services(_dt: float) -> None:
        assert controller is not None
        controller.start()
        Clock.schedule_interval(lambda _dt: controller.handle(Tick()) if controller else None,
                                TICK_INTERVAL_S)
        Clock.schedule_interval(lambda _dt: notifier.watchdog(), WATCHDOG_INTERVAL_S)
        card.watch(on_inserted=lambda reader: post(CardInserted(reader)),
                   on_removed=lambda reader: post(CardPulled(reader)))
        monitor.start()
        ratings.start()
        if telemetry is not None:
            telemetry.start()
        if automation is not None:
            automation.start()

    Clock.schedule_once(start_services, 0)
    log.info("terminal %s starting, version %s", terminal_id, version())
    try:
        ui.run()
    finally:
        notifier.stopping()
        _stop_quietly(
            automation.stop if automation else None,
            telemetry.stop if telemetry else None,
            card.stop,
            monitor.stop,
            ratings.stop,
            runner.shutdown,
            printer.close,
            outbox.close,
        )
    return 0


def _stop_quietly(*stops: Callable[[], object] | None) -> None:
    for stop in stops:
        if stop is None:
            continue
        try:
            stop()
        except Exception:  # one part failing to stop must not keep the others running
            log.exception("stopping %s failed", getattr(stop, "__qualname__", stop))
