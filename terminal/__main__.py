"""`kiosk-terminal` / `python -m terminal`: run the terminal from a TOML config file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from terminal.config import ConfigError, load_config
from terminal.log_setup import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk-terminal", description=__doc__)
    parser.add_argument("--config", type=Path, default=None,
                        help="TOML config file (default: built-in defaults)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"kiosk-terminal: {e}", file=sys.stderr)
        return 2
    # python-escpos parses its printer database at import and caches the result in a fresh
    # mkdtemp() unless told where: ~130 ms of every start-up, and a directory left in /tmp by
    # each one. A cache under the state directory is reused across starts and cleaned with it.
    cache = config.terminal.state_dir / "cache" / "escpos"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # read-only, another user's, a file in the way: say which, not a trace
        print(f"kiosk-terminal: [terminal] state_dir: cannot create {cache}: {e.strerror}",
              file=sys.stderr)
        return 2
    os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(cache))
    from terminal.app import run  # noqa: PLC0415 - Kivy must not load before the config is good

    return run(config)


if __name__ == "__main__":
    sys.exit(main())
