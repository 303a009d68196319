"""Document camera: the preview widget's frame rate, a tap's latency with the preview running,
and capture-to-thumbnail, each against a baseline measured in the same run.

    .venv/bin/python -m bench.camera [--seconds 5] [--taps 15] [--captures 5] [--size 1920x1080]

One virtual camera (simulator.vcamera, 15 fps MJPEG, 768x1024 preview, 8 MP stills) serves
everything. Figures:

- preview: textures updated per second by ``CameraPreview`` (real driver, real widget, on Xvfb
  at the kiosk's 60 fps cap) against the frames per second a plain MJPEG client reads from the
  same camera; budget at least 0.8x;
- tap: a touch released on a button until the first frame showing its effect (injected through
  ``terminal.ui.touch`` as bench.bare_button does), medians with the preview running against
  the same window without it; budget at most 1.5x;
- capture: ``DocumentCamera.capture`` then ``CapturedPage.thumbnail`` (8 MP still over HTTP,
  page found, cropped, scaled to 200 dpi, JPEG under 500 KB, 320 px thumbnail), against the bare
  transfer of the same still; budget 2 s on this class of machine (a Pi 4 is ~3x slower).

The widget runs in a child process (``--child``; Kivy's window is one per process) that
reports its figures as JSON on its last stdout line. Nothing here starts pcscd.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import DEFAULT_SIZE, REPO, Verdict, median, stop_on_sigterm, summary_table
from devices.camera.driver import DocumentCamera, link_for
from devices.camera.imaging import PageSettings
from devices.camera.mjpeg import CameraUrl, MjpegStream, fetch_jpeg
from simulator.display import VirtualDisplay, parse_size
from simulator.vcamera import VirtualCamera

PREVIEW_RATIO_BUDGET = 0.8
TAP_RATIO_BUDGET = 1.5
CAPTURE_BUDGET_S = 2.0
WARMUP_TAPS = 2
HOLD_S = 0.05  # as the automation API's /touch and bench.bare_button
PAUSE_S = 0.2
CHILD_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class CameraFigures:
    raw_fps: float
    shown_fps: float
    taps_without_ms: list[float]
    taps_with_ms: list[float]
    decode_ms: float  # per frame, on the driver's thread
    blit_ms: float  # per frame, on the main thread
    transfer_s: list[float]
    capture_s: list[float]
    page_bytes: int

    @property
    def preview_ratio(self) -> float:
        return self.shown_fps / self.raw_fps if self.raw_fps else 0.0

    @property
    def tap_ratio(self) -> float:
        return median(self.taps_with_ms) / median(self.taps_without_ms)


def raw_stream_fps(url: str, seconds: float) -> float:
    """Frames per second a plain client reads, after one frame of warm-up."""
    stream = MjpegStream(CameraUrl.parse(url))
    stream.open(5.0)
    try:
        stream.next_frame(5.0)
        began, count = time.monotonic(), 0
        while time.monotonic() - began < seconds:
            stream.next_frame(5.0)
            count += 1
        return count / (time.monotonic() - began)
    finally:
        stream.close()


def capture_times(camera: VirtualCamera, runs: int) -> tuple[list[float], list[float], int]:
    """(bare transfers of the still, captures to a thumbnail, the page's bytes), in seconds."""
    url = CameraUrl.parse(camera.url)
    driver = DocumentCamera(link_for(camera.url), page=PageSettings(source_dpi=camera.dpi))
    transfers, captures, size = [], [], 0
    try:
        for index in range(runs + 1):  # the first of each is a warm-up
            began = time.perf_counter()
            fetch_jpeg(url, 10.0)
            transfer = time.perf_counter() - began
            began = time.perf_counter()
            page = driver.capture(10.0)
            page.thumbnail(320)
            capture = time.perf_counter() - began
            size = page.size_bytes
            if index:
                transfers.append(transfer)
                captures.append(capture)
    finally:
        driver.close()
    return transfers, captures, size


def widget_figures(url: str, size: tuple[int, int], seconds: float, taps: int) -> dict[str, Any]:
    """Run the widget child on its own Xvfb and return what it reported."""
    display = VirtualDisplay(*size)
    with tempfile.TemporaryDirectory(prefix="bench-camera-") as workdir:
        try:
            env = dict(os.environ, DISPLAY=display.start())
            done = subprocess.run(
                [sys.executable, "-m", "bench.camera", "--child", "--url", url,
                 "--size", f"{size[0]}x{size[1]}", "--seconds", str(seconds),
                 "--taps", str(taps), "--home", str(Path(workdir) / "kivy")],
                cwd=REPO, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                check=False)
        finally:
            display.stop()
    if done.returncode != 0:
        raise RuntimeError(f"the widget child failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(size: tuple[int, int], seconds: float, taps: int, captures: int) -> CameraFigures:
    with VirtualCamera(fps=15) as camera:
        raw = raw_stream_fps(camera.url, seconds)
        child = widget_figures(camera.url, size, seconds, taps)
        transfers, capture_s, page_bytes = capture_times(camera, captures)
    return CameraFigures(
        raw_fps=raw, shown_fps=child["shown_fps"], taps_without_ms=child["taps_without_ms"],
        taps_with_ms=child["taps_with_ms"], decode_ms=child["decode_ms"],
        blit_ms=child["blit_ms"], transfer_s=transfers, capture_s=capture_s,
        page_bytes=page_bytes,
    )


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else median(values)


def _word(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def report(figures: CameraFigures) -> list[Verdict]:
    ratio, taps = figures.preview_ratio, figures.tap_ratio
    without, with_preview = median(figures.taps_without_ms), median(figures.taps_with_ms)
    capture, transfer = median(figures.capture_s), median(figures.transfer_s)
    preview_ok = ratio >= PREVIEW_RATIO_BUDGET
    taps_ok = taps <= TAP_RATIO_BUDGET
    capture_ok = capture <= CAPTURE_BUDGET_S
    print("preview (768x1024 MJPEG at 15 fps, CameraPreview on Xvfb, 60 fps cap)")
    print(f"  plain client reads     {figures.raw_fps:6.1f} frames/s")
    print(f"  widget shows           {figures.shown_fps:6.1f} textures/s   ratio {ratio:.2f}  "
          f"budget >= {PREVIEW_RATIO_BUDGET}  {_word(preview_ok)}")
    print(f"  per frame: decode {figures.decode_ms:.1f} ms on the driver thread, "
          f"blit {figures.blit_ms:.2f} ms on the main thread (medians): the main thread spends "
          f"{figures.blit_ms * figures.shown_fps / 10:.1f}% of its time on the preview")
    print(f"tap released -> first frame showing it (median of {len(figures.taps_with_ms)} each)")
    print(f"  without preview        {without:6.1f} ms   (90th percentile "
          f"{p90(figures.taps_without_ms):.1f} ms)")
    print(f"  with preview running   {with_preview:6.1f} ms   (90th percentile "
          f"{p90(figures.taps_with_ms):.1f} ms)   ratio {taps:.2f}  "
          f"budget <= {TAP_RATIO_BUDGET}  {_word(taps_ok)}")
    print(f"capture -> thumbnail (8 MP still, crop, 200 dpi, <= 500 KB, 320 px thumbnail; "
          f"median of {len(figures.capture_s)})")
    print(f"  still's transfer alone {transfer * 1000:6.0f} ms")
    print(f"  capture + thumbnail    {capture * 1000:6.0f} ms   "
          f"page {figures.page_bytes // 1000} KB   budget <= {CAPTURE_BUDGET_S:.0f} s  "
          f"{_word(capture_ok)}")
    return [
        Verdict("camera preview rate", f"{ratio:.2f}x ({figures.shown_fps:.1f} fps)",
                f">= {PREVIEW_RATIO_BUDGET}x", preview_ok,
                f"plain client {figures.raw_fps:.1f} fps"),
        Verdict("tap with preview", f"{taps:.2f}x ({with_preview:.0f} ms)",
                f"<= {TAP_RATIO_BUDGET}x", taps_ok,
                f"no preview {without:.0f} ms"),
        Verdict("capture -> thumbnail", f"{capture * 1000:.0f} ms",
                f"<= {CAPTURE_BUDGET_S * 1000:.0f} ms", capture_ok,
                f"transfer {transfer * 1000:.0f} ms"),
    ]


# --- the widget child -----------------------------------------------------------------------------


def run_child(url: str, size: tuple[int, int], seconds: float, taps: int, home: Path) -> None:
    """In its own process, on the bench's display: the preview widget beside a button."""
    from terminal.ui.boot import KivySettings, configure_kivy  # noqa: PLC0415 - Kivy reads env

    configure_kivy(KivySettings(home=home, size=size, max_fps=60))  # as terminal.app does
    from kivy.app import App  # noqa: PLC0415
    from kivy.clock import Clock  # noqa: PLC0415
    from kivy.core.window import Window  # noqa: PLC0415
    from kivy.uix.button import Button  # noqa: PLC0415
    from kivy.uix.floatlayout import FloatLayout  # noqa: PLC0415

    from devices.camera.driver import PreviewFrame  # noqa: PLC0415
    from terminal.ui import touch  # noqa: PLC0415
    from terminal.ui.preview import CameraPreview  # noqa: PLC0415

    class TimedPreview(CameraPreview):
        """The real widget, timing its two halves."""

        decode_ms: list[float] = []  # noqa: RUF012 - one widget per process
        blit_ms: list[float] = []  # noqa: RUF012

        def offer(self, frame: PreviewFrame) -> None:
            began = time.perf_counter()
            super().offer(frame)
            self.decode_ms.append((time.perf_counter() - began) * 1000)

        def _show_pending(self, dt: float) -> None:
            began = time.perf_counter()
            super()._show_pending(dt)
            self.blit_ms.append((time.perf_counter() - began) * 1000)

    camera = DocumentCamera(link_for(url))
    preview = TimedPreview(size_hint=(0.6, 1.0), pos_hint={"x": 0, "y": 0})
    button = Button(text="tap 0", size_hint=(0.3, 0.3), pos_hint={"x": 0.65, "y": 0.35})
    root = FloatLayout()
    root.add_widget(preview)
    root.add_widget(button)
    results: dict[str, Any] = {}
    delays: list[float] = []
    released_at = 0.0
    taps_left = 0
    phase_done: Any = None

    # Taps land at random points between preview frames (seeded: the same in every run), so
    # some meet a frame's upload in the same loop turn, as a resident's finger would.
    phase = random.Random(15)

    def first_frame(*_: Any) -> None:
        Window.unbind(on_flip=first_frame)
        delays.append((time.monotonic() - released_at) * 1000)
        if len(delays) < taps_left:
            Clock.schedule_once(press, PAUSE_S + phase.uniform(0, 1 / 15))
        else:
            Clock.schedule_once(lambda _dt: phase_done(), 0)

    def changed(*_: Any) -> None:
        button.text = f"tap {len(delays) + 1}"
        Window.bind(on_flip=first_frame)

    def press(*_: Any) -> None:
        x, y = button.center_x, Window.height - button.center_y
        down = touch.press(x, y)
        Clock.schedule_once(lambda _dt: release(down), HOLD_S)

    def release(down: touch.InjectedTouch) -> None:
        nonlocal released_at
        released_at = time.monotonic()
        touch.release(down)

    def run_taps(then: Any) -> None:
        nonlocal taps_left, phase_done
        delays.clear()
        taps_left, phase_done = WARMUP_TAPS + taps, then
        Clock.schedule_once(press, PAUSE_S)

    def without_preview_done() -> None:
        results["taps_without_ms"] = delays[WARMUP_TAPS:]
        preview.start()
        camera.start_preview(preview.offer)
        Clock.schedule_once(lambda _dt: start_counting(), 1.0)  # first frames, then count

    def start_counting() -> None:
        results["count_from"] = (time.monotonic(), preview.frames_shown)
        run_taps(with_preview_done)

    def with_preview_done() -> None:
        results["taps_with_ms"] = delays[WARMUP_TAPS:]
        began, shown = results["count_from"]
        wait = max(0.0, seconds - (time.monotonic() - began))
        Clock.schedule_once(lambda _dt: finish(began, shown), wait)

    def finish(began: float, shown: int) -> None:
        results["shown_fps"] = (preview.frames_shown - shown) / (time.monotonic() - began)
        camera.stop_preview()
        preview.stop()
        App.get_running_app().stop()

    button.bind(on_release=changed)

    class Bench(App):  # type: ignore[misc]
        def build(self) -> FloatLayout:
            return root

        def on_start(self) -> None:
            Clock.schedule_once(lambda _dt: run_taps(without_preview_done), 1.0)

    Bench().run()
    results.pop("count_from", None)
    results["decode_ms"] = statistics.median(TimedPreview.decode_ms[5:] or [0.0])
    results["blit_ms"] = statistics.median(TimedPreview.blit_ms[5:] or [0.0])
    print(json.dumps(results))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.camera",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="preview: seconds each frame rate is counted over (default 5)")
    parser.add_argument("--taps", type=int, default=15,
                        help="tap: measured taps with and without the preview (default 15)")
    parser.add_argument("--captures", type=int, default=5,
                        help="capture: measured captures (default 5)")
    parser.add_argument("--size", type=parse_size, default=DEFAULT_SIZE,
                        help="screen WxH (default 1920x1080)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seconds <= 0 or args.taps < 1 or args.captures < 1:
        parser.error("--seconds, --taps and --captures must be positive")
    if args.child:
        run_child(args.url, args.size, args.seconds, args.taps, args.home)
        return 0
    stop_on_sigterm()
    began = time.monotonic()
    width, height = args.size
    print(f"document camera benchmark: screen {width}x{height} on Xvfb, virtual camera over "
          "loopback\n")
    try:
        figures = measure(args.size, args.seconds, args.taps, args.captures)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print(f"could not run: {e}")
        return 2
    verdicts = report(figures)
    print()
    print(summary_table(verdicts))
    print(f"\n{time.monotonic() - began:.0f} s in all")
    return 0 if all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
