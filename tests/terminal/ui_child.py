"""Run a Kivy script in a child process on a fresh Xvfb and read the JSON of its last line:
Kivy's window cannot be made twice in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from simulator.display import VirtualDisplay

REPO = Path(__file__).resolve().parents[2]


def run_ui_child(script: str, size: tuple[int, int], *args: str, timeout_s: float = 90) -> Any:
    """``python -c script *args`` on a display of ``size``; what its last line of output says."""
    display = VirtualDisplay(*size)
    try:
        env = dict(os.environ, DISPLAY=display.start())
        done = subprocess.run([sys.executable, "-c", script, *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=timeout_s, check=False)
    finally:
        display.stop()
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
