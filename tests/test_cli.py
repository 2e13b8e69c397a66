"""Tests of the `llmlab` command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from llmlab import cli, loading, profiles


@pytest.fixture
def zoo_present(monkeypatch, tmp_path):
    for name in ("base", "chat"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    monkeypatch.setattr(profiles, "ZOO_MODELS_DIR", tmp_path)


def test_doctor_exit_zero(zoo_present, capsys):
    assert cli.main(["doctor", "--profile", "offline"]) == 0
    out = capsys.readouterr().out
    assert "llmlab doctor (profile offline)" in out
    assert "Chapters:" in out


def test_doctor_exit_nonzero_when_broken(zoo_present, monkeypatch, capsys):
    def broken(*args):
        raise RuntimeError("kernel crashed")

    monkeypatch.setattr(loading, "_quantized_linear", broken)
    assert cli.main(["doctor", "--profile", "offline"]) == 1
    assert "Broken:" in capsys.readouterr().out


def test_doctor_bad_profile(capsys):
    assert cli.main(["doctor", "--profile", "mainframe"]) == 2
    assert "'mainframe'" in capsys.readouterr().err


def test_zoo_group_registered():
    parser = cli.build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    assert {"doctor", "zoo"} <= set(subcommands)


def test_no_command_is_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2


def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "llmlab.cli", "--help"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0
    assert "doctor" in result.stdout
