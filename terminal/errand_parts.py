"""The parts the errands after the proof need: the QR/barcode scanner, the document camera and
the sealed submission queue, built from config and started after the first screen.

None of them stands in the way of the terminal: a scanner that is not plugged in is a device
fault in the heartbeat, a camera that cannot be reached makes the intake errands unavailable
with the reason, and a key file the queue may not use turns lodging off with a clear failure,
while proofs, guides and everything else go on.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from devices.base import DeviceError, DeviceState
from flows.event_names import EventType
from flows.hub import CaseProgress, CaseSubmission, Hub, HubError, Report
from flows.steps import CodeScanned, Lodged, RecordEvent
from terminal.config import CameraSettings, Config, ScannerSettings
from terminal.deferred import Deferred

if TYPE_CHECKING:
    from devices.camera.driver import DocumentCamera
    from devices.scanner.protocol import ScannedCode
    from terminal.application_ports import CameraPort, QueuePort
    from terminal.submissions import SubmissionQueue

log = logging.getLogger(__name__)


class _Scanner(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    def state(self) -> DeviceState: ...


def scanned_event(code: ScannedCode) -> CodeScanned:
    """What the flows are told of a code: its kind and the reference a printed code carries,
    never the raw text (an unknown code may be an ID number on a barcode)."""
    return CodeScanned(str(code.kind), code.reference or "")


def build_scanner(settings: ScannerSettings,
                  on_code: Callable[[ScannedCode], None]) -> _Scanner | None:
    if settings.kind == "serial":
        from devices.scanner.protocol import Terminator  # noqa: PLC0415
        from devices.scanner.serial_driver import SerialScanner  # noqa: PLC0415

        terminator = {"any": Terminator.ANY, "cr": Terminator.CR, "lf": Terminator.LF,
                      "crlf": Terminator.CRLF}[settings.terminator]
        return SerialScanner(settings.port, settings.baudrate, on_code=on_code,
                             terminator=terminator)
    if settings.kind == "wedge":
        from devices.scanner.wedge import WedgeScanner  # noqa: PLC0415

        device = settings.device
        if device.startswith("/dev/"):
            return WedgeScanner(on_code=on_code, path=device)
        return WedgeScanner(on_code=on_code, name=device)
    return None


def build_camera(settings: CameraSettings) -> DocumentCamera:
    from devices.camera.driver import DocumentCamera, link_for  # noqa: PLC0415
    from devices.camera.imaging import PageSettings  # noqa: PLC0415

    page = PageSettings(target_dpi=settings.target_dpi,
                        source_dpi=settings.source_dpi or None,
                        max_bytes=settings.max_page_bytes)
    return DocumentCamera(link_for(settings.source), page=page,
                          frame_timeout_s=settings.frame_timeout_s)


class ErrandParts:
    """Scanner, camera and submission queue for one terminal; see the module docstring."""

    def __init__(
        self,
        config: Config,
        hub: Hub,
        *,
        now: Callable[[], dt.datetime],
        zone: dt.tzinfo,
        post_code: Callable[[CodeScanned], None],
        record: Callable[[RecordEvent], None],
    ) -> None:
        self._config = config
        self._hub = hub
        self._now = now
        self._zone = zone
        self._record = record
        self._post_code = post_code
        self.queue: SubmissionQueue | None = None
        self._queue_problem = ""
        settings = config.camera
        self.camera_part: Deferred[DocumentCamera] | None = (
            Deferred(lambda: build_camera(settings), "camera") if settings.source else None)
        self.scanner: _Scanner | None = None

    # --- devices, as the monitor polls them ----------------------------------------------------

    def devices(self) -> dict[str, Callable[[], DeviceState]]:
        polled: dict[str, Callable[[], DeviceState]] = {"submissions": self._queue_health}
        if self._config.scanner.kind != "none":
            polled["scanner"] = self._scanner_state
        if self.camera_part is not None:
            polled["camera"] = self._camera_state
        return polled

    def _scanner_state(self) -> DeviceState:
        return self.scanner.state() if self.scanner is not None else DeviceState.fault("absent")

    def _camera_state(self) -> DeviceState:
        part = self.camera_part
        if part is None:
            return DeviceState.fault("absent")
        camera = part.get()
        # While the scan screen previews, the preview knows; else one frame says it is there.
        return camera.last_state() if camera.previewing else camera.state(timeout_s=3.0)

    def _queue_health(self) -> DeviceState:
        if self.queue is None:
            return DeviceState.fault(self._queue_problem or "not_started")
        return self.queue.health()

    # --- ports for the effect runner -----------------------------------------------------------

    def lodge(self, submission: CaseSubmission) -> Lodged:
        """``Submissions`` for the effect runner, on the queue once it is built."""
        return self._queue_port().lodge(submission)

    def lodge_report(self, report: Report) -> Lodged:
        return self._queue_port().lodge_report(report)

    def lookup(self, reference: str) -> CaseProgress | None:
        return self._queue_port().lookup(reference) if self.queue is not None else None

    def _queue_port(self) -> QueuePort:
        from terminal.application_ports import QueuePort  # noqa: PLC0415

        if self.queue is None:
            raise HubError(reason="queue_unavailable")
        return QueuePort(self.queue)

    def camera_port(self) -> CameraPort | None:
        if self.camera_part is None:
            return None
        from terminal.application_ports import CameraPort  # noqa: PLC0415

        return CameraPort(self.camera_part.get,
                          capture_timeout_s=self._config.camera.capture_timeout_s)

    # --- life cycle ------------------------------------------------------------------------------

    def build_queue(self, state_dir: Path) -> None:
        """The sealed queue; a key file it may not use leaves lodging off, said plainly."""
        from terminal.sealed_store import KEY_FILE, KeyFileRefused, Sealer  # noqa: PLC0415
        from terminal.submissions import SubmissionQueue  # noqa: PLC0415

        try:
            sealer = Sealer.from_key_file(state_dir / KEY_FILE)
        except KeyFileRefused as e:
            log.critical("applications are off: %s", e)
            self._queue_problem = "key_refused"
            self._record(RecordEvent(EventType.DEVICE_FAULT, "critical",
                                     {"device": "submissions", "reason": "key_refused"}))
            return
        self.queue = SubmissionQueue(
            state_dir, self._hub, sealer, terminal_id=self._config.terminal.terminal_id,
            now=self._now, zone=self._zone,
            on_set_aside=lambda aside: self._record(RecordEvent(
                EventType.ERRAND_FAILED, "warning",
                {"errand_id": "submission", "stage": "queue",
                 "reason": str(getattr(aside, "reason", "set_aside"))})),
        )

    def start(self) -> None:
        """After the first screen: the scanner's reader and the queue's sender."""
        if self.queue is not None:
            self.queue.start()

        def on_code(code: ScannedCode) -> None:
            self._post_code(scanned_event(code))

        self.scanner = build_scanner(self._config.scanner, on_code)
        if self.scanner is not None:
            self.scanner.start()

    def stop(self) -> None:
        if self.scanner is not None:
            self.scanner.stop()
        if self.queue is not None:
            self.queue.close()
        if self.camera_part is not None and self.camera_part.built is not None:
            self.camera_part.built.close()



class CameraFeed:
    """The scan screen's live picture from the document camera (terminal.ui.screens.CameraFeed);
    what the preview learns of the camera goes to ``on_state`` (the device monitor)."""

    def __init__(self, part: Deferred[DocumentCamera],
                 on_state: Callable[[DeviceState], None]) -> None:
        self._part = part
        self._on_state = on_state

    def start(self, on_frame: Callable[[Any], None]) -> None:
        try:
            self._part.get().start_preview(on_frame, on_state=self._on_state)
        except DeviceError as e:
            # The picture stays dark and says "no picture"; capturing still works or says why.
            log.warning("camera preview not started: %s", e.reason)

    def stop(self) -> None:
        if self._part.built is not None:
            # Not waiting on the UI's thread: the preview's threads wind down on their own.
            self._part.built.stop_preview(timeout_s=0)
