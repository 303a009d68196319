"""Document camera (高拍仪): the errors every camera transport raises, each with a stable reason.

The transports are ``v4l2`` (a UVC camera) and ``mjpeg`` (a networked camera over HTTP); the
driver (``driver.DocumentCamera``) gives the terminal one API over either, and ``imaging`` turns a
full-resolution frame into a cropped, compressed page. Reasons double as ``DeviceState`` reasons,
so a heartbeat says the same thing as the error a flow sees.
"""

from __future__ import annotations

from devices.base import DeviceError, DeviceTimeout, DeviceUnavailable


class CameraError(DeviceError):
    """Base of document camera errors."""

    reason = "camera_error"


class CameraAbsent(CameraError):
    """No camera there: no video device node, or the camera's server says it has no sensor."""

    reason = "absent"


class CameraOffline(CameraError, DeviceUnavailable):
    """The camera cannot be reached, or the connection to it broke (unplugged mid-scan)."""

    reason = "offline"


class StreamStalled(CameraError, DeviceTimeout):
    """The camera is connected but sent no frame (or no snapshot) within the timeout."""

    reason = "stalled"


class BlackFrame(CameraError):
    """Frames arrive but are black: lens cap, lamp off, a sensor that failed."""

    reason = "black_frame"


class BadFrame(CameraError):
    """What arrived is not a usable JPEG frame (garbage, truncated, larger than allowed)."""

    reason = "bad_frame"


class BlankPage(CameraError):
    """The capture worked but shows no document: an empty platen, or a sheet with nothing on it.

    The camera itself is fine (its state stays ok); the flow says "nothing on the platen".
    """

    reason = "blank_page"
