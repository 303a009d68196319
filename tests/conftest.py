"""Settings for the whole test session, applied before any test module imports project code."""

import os
import tempfile

# python-escpos caches its parsed printer database in a fresh mkdtemp() at every import unless
# told where; one shared directory keeps test runs from littering /tmp.
os.environ.setdefault(
    "ESCPOS_CAPABILITIES_PICKLE_DIR", os.path.join(tempfile.gettempdir(), "kiosk-escpos-cache")
)
