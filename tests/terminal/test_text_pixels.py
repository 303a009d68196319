"""The patched SDL2 text provider keeps no pixel surface after rendering and draws the same."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from terminal.ui.fonts import find_cjk_font

REPO = Path(__file__).resolve().parents[2]

# In a child process: Kivy reads its environment once, at import, and patches are process-wide.
PROBE = textwrap.dedent("""
    import json, sys
    from kivy.core.text import Label as CoreLabel, LabelBase
    from terminal.ui.text_pixels import release_label_pixels

    LabelBase.register("probe", fn_regular=sys.argv[1])

    class Texture:  # stands in for the GL texture the label's pixels are copied into
        def blit_data(self, data):
            self.data = data

    def render():
        label = CoreLabel(font_name="probe", font_size=40, text="参保证明 Proof of enrollment")
        # LabelBase.refresh() without its GL texture: lay the text out, then render for real.
        label.resolve_font_name()
        label._size = label.render()
        label.texture = Texture()
        label.render(real=True)
        return label, label.texture.data

    before, before_data = render()
    patched = release_label_pixels()
    again = release_label_pixels()
    after, after_data = render()
    print(json.dumps({
        "patched": patched, "again": again,
        "kept_before": getattr(before, "_surface", None) is not None,
        "kept_after": getattr(after, "_surface", None) is not None,
        "same_pixels": bytes(before_data.data) == bytes(after_data.data),
        "size": [after_data.width, after_data.height],
        "ink": sum(bytes(after_data.data)[3::4]),
    }))
""")


def test_the_sdl2_provider_drops_its_surface_and_draws_the_same_pixels(tmp_path: Path) -> None:
    # Kivy makes its home directory with mkdir, not makedirs: give it one whose parent exists.
    env = os.environ | {"KIVY_NO_ARGS": "1", "KIVY_GL_BACKEND": "mock", "KIVY_TEXT": "sdl2",
                        "KIVY_HOME": str(tmp_path / "kivy-home")}
    done = subprocess.run([sys.executable, "-c", PROBE, str(find_cjk_font())], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["patched"] and result["again"], "SDL2 is the provider the terminal runs with"
    assert result["kept_before"], "unpatched Kivy keeps the surface (else this test proves nothing)"
    assert not result["kept_after"]
    assert result["same_pixels"]
    assert result["size"][0] > 100 and result["ink"] > 0
