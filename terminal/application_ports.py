"""Adapters from the terminal's parts to the ports the effect runner uses for the errands:
the submission queue (its own answer types) and the document camera (pages and thumbnails)."""

from __future__ import annotations

import io
from collections.abc import Callable

from devices.camera.driver import DocumentCamera
from devices.camera.imaging import Thumbnail
from flows.hub import CaseProgress, CaseSubmission, HubError, Report, ScannedPage
from flows.steps import Captured, Lodged
from terminal.submissions import QueueRefused, SubmissionQueue

THUMBNAIL_SIDE = 320  # px: the scan screen shows the last page this big, to check it is legible


class QueuePort:
    """``Submissions`` on the sealed submission queue; a refusal to store is a failed step with
    the queue's reason (``disk_full``), said plainly on screen."""

    def __init__(self, queue: SubmissionQueue) -> None:
        self._queue = queue

    def lodge(self, submission: CaseSubmission) -> Lodged:
        try:
            lodged = self._queue.lodge(submission)
        except QueueRefused as e:
            raise HubError(str(e), reason=e.reason) from None
        return Lodged(lodged.reference, lodged.accepted)

    def lodge_report(self, report: Report) -> Lodged:
        try:
            lodged = self._queue.lodge_report(report)
        except QueueRefused as e:
            raise HubError(str(e), reason=e.reason) from None
        return Lodged(lodged.reference, lodged.filed)

    def lookup(self, reference: str) -> CaseProgress | None:
        return self._queue.lookup(reference)


class CameraPort:
    """``Camera`` on the document camera: a page at full resolution, cropped and compressed,
    and a small JPEG of it for the screen (made here, on the camera's lane, not on the UI's)."""

    def __init__(self, camera: Callable[[], DocumentCamera], *, capture_timeout_s: float) -> None:
        self._camera = camera  # built on first use: its imports stay off the first screen's path
        self._timeout_s = capture_timeout_s

    def capture_page(self, material_id: str, page: int) -> Captured:
        captured = self._camera().capture(timeout_s=self._timeout_s)
        return Captured(ScannedPage(material_id, page, captured.jpeg),
                        _jpeg_thumbnail(captured.thumbnail(max_side=THUMBNAIL_SIDE)))


def _jpeg_thumbnail(thumbnail: Thumbnail) -> bytes:
    from PIL import Image  # noqa: PLC0415 - Pillow only once a page is taken

    out = io.BytesIO()
    Image.frombytes("RGB", (thumbnail.width, thumbnail.height), thumbnail.rgb).save(
        out, "JPEG", quality=80)
    return out.getvalue()
