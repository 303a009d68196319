"""The host figures a heartbeat reports: CPU, memory, disk and temperature (DESIGN 6)."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from contracts.mqtt import SystemFigures

THERMAL_ZONES = Path("/sys/class/thermal")


class SystemProbe:
    """CPU, memory, disk and temperature from /proc, the state dir's file system and sysfs.

    The thermal zones are found once: they are fixed by the hardware, so each heartbeat reads
    their values without listing the sysfs directory again.
    """

    def __init__(self, disk_path: Path, thermal_zones: Path = THERMAL_ZONES) -> None:
        self._disk_path = disk_path
        self._zones = sorted(thermal_zones.glob("thermal_zone*/temp"))
        self._last_cpu = self._cpu_times()

    @staticmethod
    def _cpu_times() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = f.readline().split()
            values = [int(v) for v in fields[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
            return sum(values[:8]), idle  # guest time is already counted in user
        except (OSError, ValueError, IndexError):
            return None

    def _cpu_pct(self) -> float | None:
        now = self._cpu_times()
        last, self._last_cpu = self._last_cpu, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        total, idle = now[0] - last[0], now[1] - last[1]
        return round(max(0.0, min(100.0, 100.0 * (total - idle) / total)), 1)

    @staticmethod
    def _mem_pct() -> float | None:
        try:
            info: dict[str, int] = {}
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    info[key] = int(rest.split()[0])
            total, available = info["MemTotal"], info["MemAvailable"]
            return round(100.0 * (total - available) / total, 1)
        except (OSError, ValueError, KeyError, IndexError, ZeroDivisionError):
            return None

    def _disk_free_mb(self) -> int | None:
        try:
            return shutil.disk_usage(self._disk_path).free // (1024 * 1024)
        except OSError:
            return None

    def _temp_c(self) -> float | None:
        # The hottest zone: on a Pi there is one (the SoC); elsewhere the hottest is the one that
        # matters for an enclosure that overheats.
        readings = []
        for zone in self._zones:
            with contextlib.suppress(OSError, ValueError):
                readings.append(int(zone.read_text(encoding="ascii").strip()) / 1000.0)
        return round(max(readings), 1) if readings else None

    def read(self) -> SystemFigures:
        return SystemFigures(
            cpu_pct=self._cpu_pct(),
            mem_pct=self._mem_pct(),
            disk_free_mb=self._disk_free_mb(),
            temp_c=self._temp_c(),
        )
