"""What importing the composition root loads: nothing the first screen does not need.

terminal.app builds the printer, the hub adapter, telemetry and speech after the attract screen
is up (``Deferred``); a module-level import of any of them, or of their libraries, would put its
import time back on every start-up and its memory on every terminal that never uses it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Each with why it waits; the figures are VmRSS and time imported after terminal.app and Kivy.
DEFERRED = (
    "pydantic",  # with the MQTT contract's models ~11 MB and ~100 ms: telemetry
    "paho",  # ~2.5 MB: telemetry
    "escpos",  # with Pillow, qrcode, python-barcode and PyYAML ~8 MB: the printer
    "PIL",
    "yaml",
    "cryptography",  # its Rust library ~6 MB: only once an application is sealed
    "h11",  # the hub adapter
    "terminal.telemetry",
    "terminal.hub_client",
    "terminal.sqlite_salvage",  # only for a damaged outbox file
    "kivy",  # configured first (terminal.ui.boot), imported by run()
)

CHILD = (
    "import json, sys; import terminal.app; "
    f"print(json.dumps([m for m in {list(DEFERRED)!r} if m in sys.modules]))"
)


def test_importing_the_terminal_loads_none_of_what_waits_for_the_first_screen() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=60,
        env=dict(os.environ, KIVY_NO_ARGS="1"), check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout) == []
