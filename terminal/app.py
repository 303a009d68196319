"""Composition root: the ONE place that picks real or virtual endpoints and wires the terminal.

Everything the terminal runs is built here from the typed config and passed explicitly: no
singletons, no import-time registration. Threads: Kivy owns the main thread, where the session
engine runs; devices, the hub, MQTT and the outbox work on their own threads and reach the engine
only through the Kivy Clock (``post``: a free event, which wakes the main thread at once; see
docs/ARCHITECTURE.md, "Threads").
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from devices.base import DeviceState, Receipt
from devices.card.driver import CardReaderDriver
from flows.clock import SystemClock
from flows.engine import SessionEngine
from flows.event_names import EventType
from flows.help_call import HelpDesk
from flows.home import ERRAND_FLOWS
from flows.maintenance import test_page
from flows.steps import (
    CardInserted,
    CardPulled,
    CheckPrinter,
    DeviceChanged,
    EffectDone,
    Event,
    Failed,
    HelpAcknowledged,
    PrintReceipt,
    ReadCard,
    RecordEvent,
    Succeeded,
    Tap,
    TextEntered,
    Tick,
)
from terminal.cabinet_parts import CabinetParts
from terminal.config import Config, HubSettings, PrinterSettings, SpeechSettings
from terminal.content_store import PACKAGED_CONTENT_DIR, ContentError, load_content
from terminal.controller import TerminalController
from terminal.counters import DailyCounters
from terminal.deferred import Deferred, DeferredHub, DeferredPrinter, DeferredSpeech
from terminal.device_monitor import DeviceMonitor
from terminal.effects import EffectRunner
from terminal.errand_parts import CameraFeed, ErrandParts
from terminal.i18n import Translator
from terminal.memory import limit_malloc_arenas, tidy_when_idle
from terminal.operations import OperationsLink
from terminal.outbox import Outbox
from terminal.ratings import RatingQueue
from terminal.sd_notify import Notifier
from terminal.speech import NullSpeech, Speech
from terminal.staff_parts import StaffParts
from terminal.ui.boot import KivySettings, configure_kivy

if TYPE_CHECKING:
    from devices.printer.driver import ReceiptPrinter
    from terminal.automation import AutomationServer
    from terminal.hub_client import HttpServiceHub
    from terminal.telemetry import TelemetryAgent

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).parent
LOCALES_DIR = PACKAGE_DIR / "locales"
TICK_INTERVAL_S = 0.25  # the idle countdown shows whole seconds; a quarter keeps it smooth
WATCHDOG_INTERVAL_S = 10.0
DEVICE_POLL_INTERVAL_S = 10.0
CONTROLLER_KICK_INTERVAL_S = 1.0


def build_printer(settings: PrinterSettings, *, keep: tuple[str, ...] = ()) -> ReceiptPrinter:
    """python-escpos and its printer database: ~60 ms of imports, made after the first screen."""
    # escpos.printer imports every transport's library, pyusb and pyserial included (~35
    # modules, 0.5 MB resident for the terminal's whole life), though one printer uses one
    # transport. A None entry makes the unused one's import fail at once, and python-escpos
    # marks that transport unavailable (its own ``except ImportError``). ``keep``: libraries
    # another device needs (a serial scanner reads through pyserial).
    unused = {"usb": ("serial",), "serial": ("usb",)}.get(settings.kind, ("usb", "serial"))
    for module in (m for m in unused if m not in keep):
        sys.modules.setdefault(module, None)  # type: ignore[arg-type]
    from devices.printer.driver import PrinterConnection, ReceiptPrinter  # noqa: PLC0415
    from flows.wording import segment  # noqa: PLC0415

    if settings.kind == "usb":
        connection = PrinterConnection.usb(settings.usb_vendor, settings.usb_product)
    elif settings.kind == "serial":
        connection = PrinterConnection.serial(settings.serial_device, settings.baudrate)
    else:
        connection = PrinterConnection.network(settings.host, settings.port)
    return ReceiptPrinter(
        connection,
        paper_mm=settings.paper_mm,
        status_timeout_s=settings.status_timeout_s,
        job_timeout_s=settings.job_timeout_s,
        words=segment,  # lines break between words on paper too (养老, not 养/老)
    )


def build_speech(settings: SpeechSettings) -> Speech:
    """Voice guidance: espeak-ng on the sound card, WAV files (the simulator), or none."""
    from terminal.speech_engines import EspeakSpeech, WavSpeech  # noqa: PLC0415

    if not settings.enabled:
        return NullSpeech()
    if settings.wav_dir is not None:
        return WavSpeech(settings.wav_dir)
    return EspeakSpeech(audio_device=settings.audio_device)


def build_hub(settings: HubSettings) -> HttpServiceHub:
    """The HTTP hub adapter (h11, pydantic, ssl: ~40 ms of imports, an event loop thread),
    likewise; ``close()`` it at the end."""
    from terminal.hub_client import HttpServiceHub  # noqa: PLC0415

    return HttpServiceHub(settings.url, timeout_s=settings.timeout_s, ca_file=settings.ca_file)


def effect_timeout_s(config: Config) -> int:
    """How long a step may wait for one effect before the session gives up on it.

    Well above the slowest bounded job the config allows (a hub call ends within its timeout,
    name lookup included, plus the adapter's half-second backstop; a print job its job timeout
    plus a status exchange per request), so the engine's backstop never cuts off a call that is
    still within its own limits.
    """
    hub = config.hub.timeout_s + 1
    printer = config.printer.job_timeout_s + 5 * config.printer.status_timeout_s
    card = config.card.read_timeout_s
    return max(60, math.ceil(2 * max(hub, printer, card) + 10))


def automation_wanted(config: Config, environ: Mapping[str, str]) -> bool:
    """Whether to serve the automation API: asked for in config AND started by a development rig.

    A production kiosk whose config asks for it (a copied simulator config, a bad push) keeps
    serving residents with the API off and says so at ERROR: refusing to start would take the
    terminal out of service over an option whose only safe value there is "off" anyway.
    """
    if not config.automation.enabled:
        return False
    # Imported only for a config that asks for the API: its HTTP parsing (http.client, ssl,
    # email: ~12 ms of imports) is nothing a kiosk serving residents needs at all.
    from terminal.automation import (  # noqa: PLC0415
        DEVELOPMENT_MARKER,
        LOOPBACK,
        development_marker,
    )

    marker = development_marker(environ)
    if marker is None:
        log.error(
            "[automation] enabled = true REFUSED: %s is not set, so this is not a development "
            "rig; the automation API stays off. Remove the option from this terminal's config.",
            DEVELOPMENT_MARKER,
        )
        return False
    log.warning(
        "AUTOMATION API ON at http://%s:%d: [automation] enabled = true and %s=%.60r "
        "(set by the development rig that started this terminal). Any local process can drive "
        "this terminal: never so on a kiosk that serves residents.",
        LOOPBACK, config.automation.port, DEVELOPMENT_MARKER, marker,
    )
    return True


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

    from terminal.ui.app import KioskUi  # noqa: PLC0415

    terminal_id = config.terminal.terminal_id
    zone = ZoneInfo(config.terminal.timezone)
    clock = SystemClock()
    try:
        # A broken content file never stops the terminal: the last good copy (or the shipped
        # one) is used and operations hear of it (content_invalid, heartbeat row "content").
        content = load_content(
            config.terminal.content_dir or PACKAGED_CONTENT_DIR, state_dir,
            flows=ERRAND_FLOWS, zone=zone,
        )
    except ContentError as e:
        log.critical("cannot start: %s", e)
        return 2
    catalogue = content.catalogue
    translator = Translator.load(LOCALES_DIR, extra=content.translations())
    staff = StaffParts(config, state_dir)
    engine = SessionEngine(
        notices=content.notices,
        catalogue=catalogue,
        clock=clock,
        terminal_id=terminal_id,
        idle_timeout_s=config.terminal.idle_timeout_s,
        zone=zone,
        effect_timeout_s=effect_timeout_s(config),
        help_desk=HelpDesk(clock, answer_within_s=config.help.answer_within_s,
                           hotline=config.help.hotline,
                           opening_hours=config.help.opening_hours),
        site=config.terminal.site,
        links_base=config.hub.public_url or config.hub.url,
        calendar=content.calendar,
        staff_badges=staff.badges.uids,
    )

    card = CardReaderDriver(
        reader_filter=config.card.reader_filter or None,
        read_timeout_s=config.card.read_timeout_s,
    )
    # The printer and the hub adapter are built on first use, or warmed up right after the first
    # screen: the resident sees the attract screen ~150 ms sooner and never waits for them.
    printer_part = Deferred(lambda: build_printer(
        config.printer, keep=("serial",) if config.scanner.kind == "serial" else ()), "printer")
    hub_part = Deferred(lambda: build_hub(config.hub), "hub")
    printer = DeferredPrinter(printer_part.get)
    hub = DeferredHub(hub_part.get)
    # FULL: a rating or an event is a promise to a resident and to operations; survive power cuts.
    outbox = Outbox(state_dir / "outbox.sqlite", synchronous="FULL")
    ratings = RatingQueue(outbox, hub, terminal_id=terminal_id, now=clock.now)
    counters = DailyCounters(lambda: clock.now().astimezone(zone).date())

    # Voice guidance is built after the first screen too: espeak-ng's port and its worker thread
    # are ~40 ms of imports nobody needs before a resident asks for large text.
    speech_part = Deferred(lambda: build_speech(config.speech), "speech")
    speech = DeferredSpeech(speech_part)
    # Declared here, built below: the closures that use them run only once everything is built.
    controller: TerminalController
    monitor: DeviceMonitor
    operations = OperationsLink(
        config,
        outbox=outbox,
        counters=counters,
        devices=lambda: monitor.states(),  # noqa: PLW0108 - the monitor is built below
        in_session=lambda: controller.serving,
        in_maintenance=lambda: engine.in_maintenance,
    )
    def post(event: Event) -> None:
        """From any thread: hand ``event`` to the engine on the main thread."""
        # A free event (terminal.ui.boot sets Kivy's "free_all" clock): it wakes the main thread
        # at once instead of at the next frame, so a card read starts, and its result is built
        # into a screen, laid out and drawn, without first sleeping out the rest of a frame.
        Clock.schedule_once_free(lambda _dt: controller.handle(event), 0)

    def deliver_help_ack(ack: HelpAcknowledged, done: Callable[[bool], None]) -> None:
        def on_main(_dt: float) -> None:
            status = engine.view.help
            done(status is not None and status.help_id == ack.help_id)
            controller.handle(ack)

        Clock.schedule_once_free(on_main, 0)

    def help_commands(agent: TelemetryAgent) -> None:
        # Imported here, on the telemetry thread: pydantic stays off the path to the first screen.
        from terminal.help_command import HelpAckArgs, help_ack_handler  # noqa: PLC0415

        agent.register_command("help_ack", HelpAckArgs, help_ack_handler(deliver_help_ack))

    operations.add_commands(help_commands)

    def apply_badges(uids: frozenset[str]) -> None:
        Clock.schedule_once_free(lambda _dt: engine.set_staff_badges(uids), 0)

    def restart_app() -> None:
        # A clean stop (as SIGTERM's); systemd's Restart=always starts the terminal again.
        log.info("restart asked for by staff or operations")
        Clock.schedule_once(lambda _dt: ui.stop(), 0)

    def print_test_page() -> Receipt:
        return test_page(terminal_id, config.terminal.site, clock.now(), zone)

    def print_counted(receipt: Receipt) -> None:
        printer.print_receipt(receipt)
        staff.roll.printed()  # a test page takes paper like any receipt

    operations.add_commands(lambda agent: staff.register_commands(
        agent, serving=lambda: controller.serving, apply_badges=apply_badges,
        restart=restart_app, test_page=print_test_page, print_receipt=print_counted))

    def device_changed(name: str, state: DeviceState) -> None:
        operations.device_changed(name, state)
        # The screens tell the truth about the devices (no printing offered without paper).
        post(DeviceChanged(name, state))

    errands = ErrandParts(config, hub, now=clock.now, zone=zone, post_code=post,
                          record=operations.record)
    cabinet = CabinetParts(config, post=post, record=operations.record,
                           in_maintenance=lambda: engine.in_maintenance)
    monitor = DeviceMonitor(
        # The outbox's storage is watched like a device: a full disk is a fault operations must
        # see in the heartbeat (and, once it can be written again, in an event).
        {"card_reader": card.state, "printer": lambda: staff.printer_state(printer.status()),
         "storage": outbox.health,
         "content": content.health, "speech": speech.state, **errands.devices(),
         **cabinet.devices()},
        interval_s=DEVICE_POLL_INTERVAL_S,
        on_change=device_changed,
    )
    outbox.on_health = lambda state: monitor.report("storage", state)
    for problem in content.events():
        operations.record(problem)  # stored until telemetry is up, like every early event

    def deliver(done: EffectDone) -> None:
        post(done)
        # What a job just learnt about its device is what heartbeats should say now. Polling
        # again would repeat the printer's status exchange that ended the job, on its wire.
        built = printer_part.built
        if isinstance(done.effect, PrintReceipt) and isinstance(done.outcome, Succeeded):
            staff.roll.printed()  # a test page takes paper too
        if isinstance(done.effect, CheckPrinter | PrintReceipt) and built is not None:
            monitor.report("printer", staff.printer_state(built.last_state()))
        elif isinstance(done.effect, ReadCard) and isinstance(done.outcome, Failed):
            monitor.report("card_reader", card.state())  # the watcher's state, no pcscd call

    runner = EffectRunner(card=card, printer=printer, hub=hub, ratings=ratings,
                          events=operations, terminal_id=terminal_id,
                          deliver=deliver, applications=hub, submissions=errands,
                          camera=errands.camera_port(), identities=hub)
    notifier = Notifier()
    ready = threading.Event()

    def settled(screen_id: str) -> None:
        # The first screen to settle, whichever it is: a card left in the reader overnight takes
        # a restarted terminal straight past attract, and systemd must still hear READY.
        if not ready.is_set():
            ready.set()
            notifier.ready(f"first screen shown: {screen_id}")
            log.info("first screen ready: %s", screen_id)
            # Now, off the path to the first screen: telemetry, the printer, the hub adapter.
            printer_part.warm()
            hub_part.warm()
            speech_part.warm()
            errands.build_queue(state_dir)
            errands.start()
            runner.maintenance = staff.build_desk(
                states={"card_reader": card.state, **errands.devices(), **cabinet.devices()},
                printer_status=printer.status,
                controller_ping=cabinet.ping if cabinet.controller is not None else None,
                counters=counters.snapshot,
                devices=monitor.states,
                on_refilled=lambda: monitor.report(
                    "printer", staff.printer_state(printer_part.built.last_state()
                                                   if printer_part.built is not None
                                                   else printer.status())),
                request_restart=restart_app,
                catalogue_version=catalogue.version,
                catalogue_file=(config.terminal.content_dir or PACKAGED_CONTENT_DIR)
                / "catalogue.toml",
            )
            monitor.start()
            ratings.start()
            operations.start(after=monitor.polled)

    ui = KioskUi(translator, on_settled=settled, home_language=config.display.language,
                 speech=speech, mm_per_px=config.display.mm_per_px)
    def schedule(delay: float, call: Callable[[], None]) -> None:
        Clock.schedule_once(lambda _dt: call(), delay)

    controller = TerminalController(
        engine, ui, runner, schedule=schedule, on_idle=lambda: tidy_when_idle(schedule),
    )
    if errands.camera_part is not None:
        ui.camera_feed = CameraFeed(errands.camera_part,
                                    on_state=lambda state: monitor.report("camera", state))
    ui.on_tap = lambda target: controller.handle(Tap(target))
    ui.on_text = lambda target, value: controller.handle(TextEntered(target, value))

    automation: AutomationServer | None = None
    if automation_wanted(config, os.environ):
        from terminal.automation import AutomationEndpoints, AutomationServer  # noqa: PLC0415

        automation = AutomationServer(
            AutomationEndpoints(
                describe=ui.current_description,
                tap=ui.tap,
                text=ui.text,
                screenshot=ui.screenshot_png,
                touch=ui.touch_at,
                layout=ui.layout_issues,
            ),
            port=config.automation.port,
        )
    elif config.automation.enabled:
        # Operations hear of it too: nobody reads an unattended kiosk's log.
        operations.record(RecordEvent(EventType.AUTOMATION_REFUSED, "warning",
                                      {"reason": "no_development_marker"}))

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        ui.stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    def start_services(_dt: float) -> None:
        controller.start()
        Clock.schedule_interval(lambda _dt: controller.handle(Tick()), TICK_INTERVAL_S)
        # The co-processor's watchdog hears from the main loop itself: if Kivy's loop freezes,
        # the kicks stop even though every other thread runs on.
        Clock.schedule_interval(lambda _dt: cabinet.kick(), CONTROLLER_KICK_INTERVAL_S)
        Clock.schedule_interval(lambda _dt: notifier.watchdog(), WATCHDOG_INTERVAL_S)
        card.watch(on_inserted=lambda reader: post(CardInserted(reader)),
                   on_removed=lambda reader: post(CardPulled(reader)))
        cabinet.start()
        if automation is not None:
            automation.start()

    Clock.schedule_once(start_services, 0)
    log.info("terminal %s starting", terminal_id)
    try:
        ui.run()
    finally:
        notifier.stopping()
        # Producers first, then the workers (the store lane drained), then telemetry (its last
        # words: online false), and the outbox they all write to last.
        _stop_quietly(
            automation.stop if automation else None,
            card.stop,
            cabinet.stop,
            monitor.stop,
            runner.shutdown,
            errands.stop,  # the queue after the lanes that lodge in it
            ratings.stop,
            operations.stop,
            printer_part.built.close if printer_part.built else None,
            hub_part.built.close if hub_part.built else None,  # after the lanes that call it
            speech.close,
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
