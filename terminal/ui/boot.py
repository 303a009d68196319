"""Kivy start-up settings for a kiosk; call ``configure_kivy`` before anything imports Kivy.

Kivy reads its home directory and its config when first imported and creates the window from
that config, so these settings must be in place first; ``terminal.ui.app`` imports Kivy.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KivySettings:
    """``size=None``: full screen at the display's resolution (the kiosk); else a borderless
    window of that size at the top-left corner (tests under Xvfb, the simulator on a desktop)."""

    home: Path
    size: tuple[int, int] | None = None
    max_fps: int = 30


def configure_kivy(settings: KivySettings) -> None:
    """Point Kivy at a private home, keep it off files and argv, and lock the window down."""
    if "kivy" in sys.modules:
        raise RuntimeError("configure_kivy must run before kivy is imported")
    settings.home.mkdir(parents=True, exist_ok=True)
    os.environ["KIVY_HOME"] = str(settings.home)
    # No config.ini and no log files: an appliance's settings come from our config, and Kivy
    # must not grow files on the SD card. PYTHON log mode: Kivy logs to the "kivy" logger and
    # leaves the root logger and stderr to the composition root's logging setup.
    os.environ["KIVY_NO_CONFIG"] = "1"
    os.environ["KIVY_NO_FILELOG"] = "1"
    os.environ["KIVY_LOG_MODE"] = "PYTHON"
    os.environ["KIVY_NO_ARGS"] = "1"  # our own command line is not Kivy's
    # SDL would turn SIGTERM/SIGINT into a window-close request, which the kiosk refuses by
    # design; leave signals to Python so systemd's stop (and the composition root's handler) work.
    os.environ["SDL_NO_SIGNAL_HANDLERS"] = "1"
    # Kivy's default clock sleeps out the rest of the frame whatever a device thread hands it:
    # a card going in, and its holder read, each waited up to a frame (8 ms on average at 60
    # fps, a whole one behind a slow frame) before the main thread even looked. "free_all" is
    # the same frame-capped clock as long as only ordinary events are scheduled (widgets,
    # animations, the automation API's calls); a ``Clock.schedule_once_free`` event (terminal.
    # app's ``post``: device and effect results) wakes its sleep and the frame runs at once.
    # The next frame is again a frame period later, so nothing spins. The environment, not the
    # config: KIVY_CLOCK would override the config, and ``post`` relies on a free clock.
    os.environ["KIVY_CLOCK"] = "free_all"

    from kivy.config import Config  # noqa: PLC0415 - only now may Kivy read the environment

    # Kiosk escape routes, closed: Escape quits a Kivy app by default, F1 opens the settings
    # panel (handled in the App), and right-click would leave red multitouch dots.
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("kivy", "pause_on_minimize", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("graphics", "borderless", "1")
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "show_cursor", "0")
    Config.set("graphics", "maxfps", str(settings.max_fps))
    # No multisampling: a flat 2D UI gains nothing from it (text arrives as textures), and a 2x
    # MSAA framebuffer at 1920x1080 costs tens of MB, in GPU memory on a Pi and in the process
    # itself under a software renderer.
    Config.set("graphics", "multisamples", "0")
    # SDL already delivers touches. Kivy's default Linux probe would open the touch screen's
    # evdev node too (the kiosk user is in the input group), and every tap would land twice.
    if Config.has_option("input", "%(name)s"):
        Config.remove_option("input", "%(name)s")
    if settings.size is None:
        Config.set("graphics", "fullscreen", "auto")
    else:
        width, height = settings.size
        Config.set("graphics", "fullscreen", "0")
        Config.set("graphics", "width", str(width))
        Config.set("graphics", "height", str(height))
        Config.set("graphics", "position", "custom")
        Config.set("graphics", "left", "0")
        Config.set("graphics", "top", "0")
