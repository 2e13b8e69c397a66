"""Checks that keep the project's configuration files consistent."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _pyproject_requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += [line for line in extra if not line.startswith("llmlab")]
    return {Requirement(line).name.lower(): Requirement(line) for line in lines}


def _environment_requirements() -> dict[str, Requirement]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(
        item["pip"] for item in environment["dependencies"] if isinstance(item, dict)
    )
    lines = [line for line in pip_section if not line.startswith("-")]
    return {Requirement(line).name.lower(): Requirement(line) for line in lines}


def _toc_files(node) -> list[str]:
    """Collect every `file:` entry of a _toc.yml tree, root included."""
    files = []
    if isinstance(node, dict):
        if "file" in node:
            files.append(node["file"])
        if "root" in node:
            files.append(node["root"])
        for value in node.values():
            files += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            files += _toc_files(item)
    return files


def test_environment_yml_lists_pyproject_packages():
    pyproject = _pyproject_requirements()
    environment = _environment_requirements()
    assert sorted(environment) == sorted(pyproject)


def test_environment_yml_specifiers_match():
    pyproject = _pyproject_requirements()
    environment = _environment_requirements()
    # torch is the one deliberate difference: the CPU set-up path pins the
    # release whose CPU build is known to work, pyproject accepts a range.
    assert str(environment["torch"].specifier) == "==2.13.0"
    assert environment["torch"].specifier.contains("2.13.0")
    assert pyproject["torch"].specifier.contains("2.13.0")
    for name in sorted(set(pyproject) - {"torch"}):
        assert environment[name].specifier == pyproject[name].specifier, name


def test_jupyter_book_pinned_below_2():
    spec = _pyproject_requirements()["jupyter-book"].specifier
    assert spec.contains("1.0.4")
    assert not spec.contains("2.0.0")


def test_makefile_pins_cpu_torch():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^TORCH\s*\??=\s*torch==2\.13\.0$", makefile, re.MULTILINE)


def test_ci_runs_make_test():
    script = (ROOT / ".ci" / "run").read_text()
    commands = [
        line.strip()
        for line in script.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] == "make test"


def test_toc_entries_exist():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for entry in _toc_files(toc):
        candidates = [ROOT / f"{entry}{suffix}" for suffix in (".md", ".ipynb")]
        assert any(path.exists() for path in candidates), f"missing page: {entry}"


def test_every_chapter_is_in_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = set(_toc_files(toc))
    for path in NOTEBOOKS:
        assert f"notebooks/{path.stem}" in listed, f"{path.name} not in _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_install_cell_points_at_configured_repository(path):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repository = config["repository"]
    expected = f"git+{repository['url']}@{repository['branch']}"
    cells = json.loads(path.read_text())["cells"]
    install_cell = "".join(cells[2]["source"])
    assert "find_spec(\"llmlab\") is None" in install_cell
    assert expected in install_cell, (
        f"{path.name}: the install cell must install from {expected}; "
        "update it to match repository.url and repository.branch in _config.yml"
    )


def test_install_cells_are_identical():
    cells = [json.loads(path.read_text())["cells"][2]["source"] for path in NOTEBOOKS]
    texts = {"".join(source) for source in cells}
    assert len(texts) <= 1, "chapters differ in their install cell"
