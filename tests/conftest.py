"""Settings for the whole test session, applied before any test module imports project code."""

import os
import tempfile

# python-escpos caches its parsed printer database in a fresh mkdtemp() at every import unless
# told where; one shared directory keeps test runs from littering /tmp.
_ESCPOS_CACHE = os.path.join(tempfile.gettempdir(), "kiosk-escpos-cache")
os.makedirs(_ESCPOS_CACHE, exist_ok=True)
os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", _ESCPOS_CACHE)
