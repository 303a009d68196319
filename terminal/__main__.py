"""`kiosk-terminal` / `python -m terminal`: run the terminal from a TOML config file."""

from __future__ import annotations

import argparse
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
    from terminal.app import run  # noqa: PLC0415 - Kivy must not load before the config is good

    return run(config)


if __name__ == "__main__":
    sys.exit(main())
