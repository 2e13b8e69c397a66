"""Print _config.yml with notebook execution turned off.

`make test` builds the site from the outputs stored in the notebooks, which
nbval has just checked, so the build itself must not re-execute anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--no-execute",
        action="store_true",
        help="set execute.execute_notebooks to 'off'",
    )
    args = parser.parse_args(argv)

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    if args.no_execute:
        config.setdefault("execute", {})["execute_notebooks"] = "off"
    yaml.safe_dump(config, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
