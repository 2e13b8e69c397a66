"""The book build fails loudly when a chapter cannot execute.

Each test builds a one-chapter book with the project's own execution settings
from _config.yml, so a change there that would let a broken chapter publish
without outputs fails here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"


def _build_book(tmp_path: Path, code_cells: list[str], timeout_s: int = 20):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    book_config = {
        "title": "check",
        "execute": {**config["execute"], "timeout": timeout_s},
        "sphinx": config["sphinx"],
        "parse": config["parse"],
    }
    book_config["execute"]["cache"] = str(tmp_path / "_build" / ".jupyter_cache")
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(book_config))
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: chapter\n"
    )
    (tmp_path / "intro.md").write_text("# Intro\n")

    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in code_cells]
    nbformat.write(nb, tmp_path / "chapter.ipynb")

    return subprocess.run(
        [str(JUPYTER_BOOK), "build", str(tmp_path), "--warningiserror"],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="jupyter-book not installed")
def test_raising_cell_fails_build(tmp_path):
    result = _build_book(tmp_path, ["print('fine')", "raise ValueError('broken step')"])
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "chapter.ipynb" in log
    assert "raise ValueError('broken step')" in log


@pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="jupyter-book not installed")
def test_slow_cell_fails_build(tmp_path):
    result = _build_book(
        tmp_path, ["print('fine')", "import time\ntime.sleep(30)"], timeout_s=3
    )
    log = result.stdout + result.stderr
    assert result.returncode != 0
    assert "chapter.ipynb" in log
    assert "CellTimeoutError" in log
    assert "time.sleep(30)" in log


@pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="jupyter-book not installed")
def test_good_chapter_page_shows_outputs(tmp_path):
    result = _build_book(tmp_path, ["print(6 * 7, 'is the answer')"])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    page = (tmp_path / "_build" / "html" / "chapter.html").read_text()
    assert "42 is the answer" in page
