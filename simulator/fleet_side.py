"""The fleet side beside the simulated terminal: the monitor, the dashboard and a few virtual
terminals, so a developer running `make sim` sees the operations view fill with the real terminal
and company, not an empty page.

The monitor and the dashboard run as the production commands do (``python -m fleet monitor`` and
``serve``, separate processes, one SQLite store under ``<workdir>/fleet/``); the virtual terminals
are ``simulator.fleet_load``'s, in a thread of their own. A development operator is created once:
user ``dev`` whose password is the API token written to ``<workdir>/fleet/token`` (DESIGN 13).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from contracts.mqtt import utc_now
from fleet.accounts import Role, hash_password, new_token, token_digest
from fleet.store import FleetStore
from simulator.fleet_load import FleetLoad, LoadOptions

DASHBOARD_PORT = 8703
DEV_USER = "dev"
START_TIMEOUT_S = 20.0
REPO = Path(__file__).resolve().parents[1]


class FleetSideError(RuntimeError):
    """The monitor or the dashboard did not start (the message says where its log is)."""


class FleetSide:
    """Start with ``start()``, stop with ``stop()`` (safe to call after a failed start)."""

    def __init__(self, workdir: Path, broker: tuple[str, int], *,
                 port: int = DASHBOARD_PORT, virtual_terminals: int = 5) -> None:
        self.dir = workdir / "fleet"
        self.db = self.dir / "fleet.db"
        self.token_path = self.dir / "token"
        self._broker = broker
        self.port = port
        self._virtual = virtual_terminals
        self._processes: list[subprocess.Popen[bytes]] = []
        self._load: FleetLoad | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return self.token_path.read_text(encoding="utf-8").strip()

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._ensure_operator()
        host, port = self._broker
        broker = f"{host}:{port}"
        self._spawn("monitor", "monitor", "--broker", broker, "--db", str(self.db),
                    "--client-id", "sim-fleet-monitor")
        self._spawn("dashboard", "serve", "--broker", broker, "--db", str(self.db), "--port",
                    str(self.port))
        self._wait_for_dashboard()
        if self._virtual > 0:
            self._start_virtual_fleet(host, port)

    def _ensure_operator(self) -> None:
        store = FleetStore(self.db)
        try:
            if self.token_path.exists() and store.user(DEV_USER) is not None:
                return  # kept across runs, as a real installation's accounts are
            token = new_token()
            now = utc_now()
            store.add_token(f"{DEV_USER}-{now:%Y%m%d%H%M%S}", Role.OPERATOR, token_digest(token),
                            now)
            if store.user(DEV_USER) is None:
                store.add_user(DEV_USER, Role.OPERATOR, hash_password(token), now)
            self.token_path.write_text(token + "\n", encoding="utf-8")
            self.token_path.chmod(0o600)
        finally:
            store.close()

    def _spawn(self, name: str, *args: str) -> None:
        log = (self.dir / f"{name}.log").open("ab")
        self._processes.append(subprocess.Popen(
            [sys.executable, "-m", "fleet", *args], stdout=log, stderr=log,
            stdin=subprocess.DEVNULL, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO))))

    def _wait_for_dashboard(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    raise FleetSideError(f"a fleet process exited with {process.returncode}; "
                                         f"see {self.dir}/monitor.log and dashboard.log")
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(f"{self.url}/login", timeout=1) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.1)
        raise FleetSideError(f"the dashboard did not answer on {self.url}; see "
                             f"{self.dir}/dashboard.log (is port {self.port} taken?)")

    def _start_virtual_fleet(self, host: str, port: int) -> None:
        # A few terminals with the odd fault, so alerts and help calls show up now and then.
        self._load = FleetLoad(LoadOptions(
            terminals=self._virtual, host=host, port=port, interval_s=30.0, prefix="VT",
            sites=2, faults={"paper_near_end": 0.5, "paper_out": 0.2, "help": 0.3,
                             "errand_failed": 0.5, "abrupt": 0.1}))
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete,
                                        args=(self._load.run(),), name="virtual-fleet",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._load is not None and self._loop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._load.stop)
            self._thread.join(5)
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self._processes.clear()
