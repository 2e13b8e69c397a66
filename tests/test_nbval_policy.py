"""nbval in strict mode judges equal outputs equal and different outputs different.

A notebook with a progress bar, an object repr with a memory address and a
timing is executed once to store its outputs, then checked by nbval with the
project's sanitize file, the way `make test` checks the chapters.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
SANITIZE = ROOT / "tests" / "sanitize.cfg"

CELLS = [
    "import llmlab\nruntime = llmlab.setup()",
    "from tqdm.auto import tqdm\nfor _ in tqdm(range(3)):\n    pass\nprint('fixed')",
    "class Thing:\n    pass\nprint(Thing())",
    "import time\nstart = time.perf_counter()\n"
    "print(f'took {time.perf_counter() - start:.6f} s')",
    "print(f'{2 / 3:.4f}')",
]


def _executed_notebook(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    nbformat.write(nb, path)
    return nb


def _nbval(path: Path) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env",
        "--nbval-sanitize-with", str(SANITIZE), "-p", "no:cacheprovider",
        "-q", str(path),
    ]  # fmt: skip
    env = {**os.environ, "LLMLAB_BUILD": "1"}
    return subprocess.run(
        command, cwd=path.parent, capture_output=True, text=True, env=env
    )


def test_noise_is_sanitized_and_real_changes_fail(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_BUILD", "1")
    path = tmp_path / "policy.ipynb"
    nb = _executed_notebook(path)

    result = _nbval(path)
    assert result.returncode == 0, result.stdout[-3000:]

    # A real result that changed must still fail the comparison.
    last = nb.cells[-1].outputs[0]
    assert last.text == "0.6667\n"
    last.text = "0.6666\n"
    nbformat.write(nb, path)
    result = _nbval(path)
    assert result.returncode != 0
    assert "0.6666" in result.stdout
