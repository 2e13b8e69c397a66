"""Execute chapter notebooks in place and store their outputs.

The stored outputs are what nbval compares against, so this runs each notebook
the way the tests do: a fresh kernel, the offline profile, progress bars off.
Prints the wall time of every notebook.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

CELL_TIMEOUT_S = 300


def execute(path: Path) -> float:
    """Run one notebook top to bottom and write it back with its outputs."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        record_timing=False,
    )
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start

    # Drop per-cell execution metadata so a re-run changes only real outputs.
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
    nbformat.write(nb, path)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)

    os.environ.setdefault("LLMLAB_PROFILE", "offline")
    os.environ.setdefault("LLMLAB_BUILD", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    failed = []
    for path in args.notebooks:
        try:
            elapsed = execute(path)
        except (CellExecutionError, CellTimeoutError) as error:
            print(f"FAILED {path}: {error}", file=sys.stderr)
            failed.append(path)
            continue
        print(f"{elapsed:6.1f} s  {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
