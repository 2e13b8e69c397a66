"""Tests of llmlab.doctor(): checks, chapter verdicts and exit codes."""

from __future__ import annotations

import importlib
import sys
import types

import pytest

import llmlab
from llmlab import loading, profiles

# `llmlab.doctor` is the function; the module is reached through importlib.
doctor_module = importlib.import_module("llmlab.doctor")


@pytest.fixture
def zoo_present(monkeypatch, tmp_path):
    for name in ("base", "chat"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    monkeypatch.setattr(profiles, "ZOO_MODELS_DIR", tmp_path)


def by_name(checks):
    return {check.name: check for check in checks}


def test_report_lists_libraries_and_probes(zoo_present):
    report = llmlab.doctor("offline")
    checks = by_name(report.checks)
    for name in ("torch", "transformers", "peft", "bitsandbytes", "accelerate",
                 "datasets", "trl", "sentence-transformers", "faiss", "openai",
                 "fastapi", "uvicorn"):
        assert name in checks, name
    assert checks["bitsandbytes 4bit matmul"].status == "ok"
    assert checks["bitsandbytes 8bit matmul"].status == "ok"
    assert checks["torch build"].detail.endswith("(CPU only)")
    assert checks["model: embedder"].status == "ok"
    assert "free disk" in checks
    assert by_name(report.chapters)["QLoRA (4-bit)"].detail == "runs on CPU, slow"


def test_healthy_machine_exits_zero(zoo_present):
    report = llmlab.doctor("offline")
    assert report.broken == []
    assert report.exit_code == 0


def test_broken_4bit_exits_nonzero(zoo_present, monkeypatch):
    def broken(*args):
        raise RuntimeError("kernel crashed")

    monkeypatch.setattr(loading, "_quantized_linear", broken)
    report = llmlab.doctor("offline")
    checks = by_name(report.checks)
    assert checks["bitsandbytes 4bit matmul"].status == "broken"
    assert "kernel crashed" in checks["bitsandbytes 4bit matmul"].detail
    assert by_name(report.chapters)["QLoRA (4-bit)"].status == "broken"
    assert report.exit_code == 1
    assert "Broken: bitsandbytes 4bit matmul" in str(report)


def test_broken_faiss_exits_nonzero(zoo_present, monkeypatch):
    fake = types.ModuleType("faiss")

    def index_flat_ip(dim):
        raise RuntimeError("illegal instruction")

    fake.IndexFlatIP = index_flat_ip
    monkeypatch.setitem(sys.modules, "faiss", fake)
    importlib_util = doctor_module.importlib.util
    monkeypatch.setattr(importlib_util, "find_spec", lambda name: object())
    assert doctor_module.check_faiss().status == "broken"


def test_missing_models_only_fail_strict(monkeypatch, tmp_path):
    monkeypatch.setattr(profiles, "ZOO_MODELS_DIR", tmp_path)
    report = llmlab.doctor("offline")
    checks = by_name(report.checks)
    assert checks["model: base"].status == "missing"
    assert "llmlab zoo train base" in checks["model: base"].detail
    assert report.exit_code == 0
    assert llmlab.doctor("offline", strict=True).exit_code == 1


def test_unknown_profile():
    with pytest.raises(llmlab.UnknownProfileError, match="'desktop'"):
        llmlab.doctor("desktop")
