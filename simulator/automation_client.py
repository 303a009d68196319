"""A client of the terminal's automation API (DESIGN 8): the rig, the tests, the benchmarks."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


class AutomationError(RuntimeError):
    """The API answered with an error, never reached a screen, or the terminal is gone."""


class AutomationClient:
    """``gone()`` says why the terminal can no longer answer (it exited), or None while it runs."""

    def __init__(self, url: str, gone: Callable[[], str | None] = lambda: None) -> None:
        self.url = url
        self._gone = gone

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             timeout_s: float = 8.0) -> tuple[int, bytes]:
        """One request; the status and the body, error statuses included.

        The API answers only a caller that cannot be a web page: urllib sends ``Host`` as the
        URL names it (``127.0.0.1:<port>``; ``self.url`` must use that or ``localhost``), no
        ``Origin``, and every POST here says ``Content-Type: application/json``.
        """
        data = json.dumps(body).encode() if body is not None else None
        sends_json = data is not None or method == "POST"
        headers = {"Content-Type": "application/json"} if sends_json else {}
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return int(response.status), bytes(response.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, answer = self.call(method, path, body)
        if status != 200:
            raise AutomationError(f"{method} {path} answered {status}: {answer[:200]!r}")
        result: dict[str, Any] = json.loads(answer)
        return result

    def screen(self) -> dict[str, Any]:
        return self._json("GET", "/screen")

    def tap(self, target: str) -> dict[str, Any]:
        return self._json("POST", "/tap", {"target": target})

    def text(self, target: str, text: str) -> dict[str, Any]:
        """``POST /text``: a whole value into a form field (``field.<id>``)."""
        return self._json("POST", "/text", {"target": target, "text": text})

    def wait_for_screen(self, screen_id: str, timeout_s: float = 15.0,
                        interval_s: float = 0.05) -> dict[str, Any]:
        """Poll GET /screen (which itself waits for the screen to settle) until ``screen_id``."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, Any] | str = "nothing yet"
        while time.monotonic() < deadline:
            gone = self._gone()
            if gone is not None:
                raise AutomationError(gone)
            try:
                last = self.screen()
                if last.get("screen") == screen_id:
                    return last
            except (OSError, AutomationError, ValueError) as e:
                last = f"API not answering: {e}"
            time.sleep(interval_s)
        raise AutomationError(f"screen {screen_id!r} not reached in {timeout_s} s; last: {last}")
