"""Tests of llmlab.setup(), the profile choice, the dtype policy and install checks."""

from __future__ import annotations

import os
import re
import sys
import types
import warnings
from types import SimpleNamespace

import huggingface_hub.constants
import pytest
import torch

import llmlab
from llmlab import runtime


@pytest.fixture(autouse=True)
def restore_process_state():
    """Undo what setup() changes process-wide: threads, determinism, environment."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    environment = dict(os.environ)
    hub_offline = huggingface_hub.constants.HF_HUB_OFFLINE
    set_by_setup = runtime._offline_set_by_setup
    yield
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)
    os.environ.clear()
    os.environ.update(environment)
    huggingface_hub.constants.HF_HUB_OFFLINE = hub_offline
    runtime._offline_set_by_setup = set_by_setup


@pytest.fixture
def no_profile_env(monkeypatch):
    monkeypatch.delenv("LLMLAB_PROFILE", raising=False)
    monkeypatch.delenv("LLMLAB_NUM_THREADS", raising=False)


def fake_gpu(monkeypatch, name: str, total_gib: float, bf16: bool, major: int) -> None:
    """Make torch report one CUDA device with these properties."""
    props = SimpleNamespace(
        name=name, total_memory=int(total_gib * 2**30), major=major, minor=0
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index=0: props)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kw: bf16)


def test_setup_offline_defaults(no_profile_env, capsys):
    rt = llmlab.setup("offline")
    assert rt.profile == "offline"
    assert rt.device == "cpu"
    assert rt.dtype == torch.float32
    assert rt.offline is True
    assert rt.num_threads == 2
    assert torch.get_num_threads() == 2
    assert torch.are_deterministic_algorithms_enabled()
    assert set(rt.versions) == {"torch", "transformers", "peft", "bitsandbytes"}
    printed = capsys.readouterr().out
    assert 1 <= len(printed.strip().splitlines()) <= 3
    assert "profile=offline" in printed


def test_setup_sets_offline_env(no_profile_env, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    llmlab.setup("offline")
    assert runtime.os.environ["HF_HUB_OFFLINE"] == "1"
    assert runtime.os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert huggingface_hub.constants.HF_HUB_OFFLINE is True


def test_other_profile_undoes_offline(no_profile_env, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(runtime, "_offline_set_by_setup", False)
    llmlab.setup("offline")
    fake_gpu(monkeypatch, "Tesla T4", 14.7, bf16=False, major=7)
    rt = llmlab.setup("colab")
    assert "HF_HUB_OFFLINE" not in runtime.os.environ
    assert rt.offline is False


def test_user_offline_setting_kept(no_profile_env, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(runtime, "_offline_set_by_setup", False)
    llmlab.setup("offline")
    llmlab.setup("colab")
    assert runtime.os.environ["HF_HUB_OFFLINE"] == "1"


def test_setup_report_is_stable(no_profile_env, capsys):
    llmlab.setup("offline")
    first = capsys.readouterr().out
    llmlab.setup("offline")
    second = capsys.readouterr().out
    assert first == second
    assert not re.search(r"0x[0-9a-f]{6,}", first)


def test_setup_thread_override(no_profile_env, monkeypatch):
    monkeypatch.setenv("LLMLAB_NUM_THREADS", "1")
    rt = llmlab.setup("offline")
    assert rt.num_threads == 1
    assert torch.get_num_threads() == 1


def test_setup_seeds_generators(no_profile_env):
    import random

    import numpy as np

    llmlab.setup("offline", seed=7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    llmlab.setup("offline", seed=7)
    second = (random.random(), np.random.rand(), torch.rand(1).item())
    assert first == second


def test_offline_uses_cpu_with_cuda(no_profile_env, monkeypatch):
    fake_gpu(monkeypatch, "NVIDIA A100-SXM4-40GB", 39.4, bf16=True, major=8)
    rt = llmlab.setup("offline")
    assert rt.device == "cpu"
    assert rt.dtype == torch.float32
    assert rt.gpu_name is None


def test_gpu_profile_reports_gpu(no_profile_env, monkeypatch, capsys):
    fake_gpu(monkeypatch, "Tesla T4", 14.7, bf16=False, major=7)
    rt = llmlab.setup()
    assert rt.profile == "colab"
    assert rt.device == "cuda"
    assert rt.dtype == torch.float16
    assert rt.gpu_name == "Tesla T4"
    assert rt.compute_capability == "7.0"
    assert rt.bf16_supported is False
    assert "Tesla T4" in capsys.readouterr().out


def test_progress_bars_off_under_pytest(no_profile_env, monkeypatch):
    import transformers.utils.logging

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    transformers.utils.logging.enable_progress_bar()
    llmlab.setup("offline")
    assert not transformers.utils.logging.is_progress_bar_enabled()
    assert runtime.os.environ["TQDM_DISABLE"] == "1"
    assert runtime.os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [("LLMLAB_BUILD", "1", True), ("CI", "true", True), ("LLMLAB_BUILD", "0", False)],
)
def test_quiet_run_detection(monkeypatch, variable, value, expected):
    for name in ("PYTEST_CURRENT_TEST", "LLMLAB_BUILD", "CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)
    assert runtime._quiet_run() is expected


def test_profile_from_argument_and_env(monkeypatch):
    monkeypatch.setenv("LLMLAB_PROFILE", "gpu")
    assert llmlab.resolve_profile() == "gpu"
    assert llmlab.resolve_profile("colab") == "colab"


def test_profile_from_gpu_memory(no_profile_env, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert llmlab.resolve_profile() == "offline"
    fake_gpu(monkeypatch, "Tesla T4", 14.7, bf16=False, major=7)
    assert llmlab.resolve_profile() == "colab"
    fake_gpu(monkeypatch, "NVIDIA L4", 22.0, bf16=True, major=8)
    assert llmlab.resolve_profile() == "gpu"


def test_unknown_profile_argument():
    expected = "'laptop'.*offline, colab, gpu"
    with pytest.raises(llmlab.UnknownProfileError, match=expected):
        llmlab.resolve_profile("laptop")


def test_unknown_profile_env(monkeypatch):
    monkeypatch.setenv("LLMLAB_PROFILE", "tpu")
    with pytest.raises(llmlab.UnknownProfileError, match="'tpu'.*LLMLAB_PROFILE"):
        llmlab.setup()


def test_dtype_policy_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert llmlab.default_dtype("cpu") == torch.float32
    assert llmlab.training_precision() == {"bf16": False, "fp16": False}


def test_dtype_policy_t4(monkeypatch):
    fake_gpu(monkeypatch, "Tesla T4", 14.7, bf16=False, major=7)
    assert llmlab.default_dtype("cuda") == torch.float16
    assert llmlab.training_precision() == {"bf16": False, "fp16": True}


def test_dtype_policy_a100(monkeypatch):
    fake_gpu(monkeypatch, "NVIDIA A100-SXM4-80GB", 79.1, bf16=True, major=8)
    assert llmlab.default_dtype("cuda") == torch.bfloat16
    assert llmlab.training_precision() == {"bf16": True, "fp16": False}
    assert llmlab.training_precision("cpu") == {"bf16": False, "fp16": False}


def test_resolve_device_missing_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(llmlab.DeviceNotFoundError, match="'cuda:1'.*device='cpu'"):
        llmlab.resolve_device("cuda:1")


def test_resolve_device_invalid_name():
    with pytest.raises(llmlab.DeviceNotFoundError, match="'gpu0'"):
        llmlab.resolve_device("gpu0")


def test_resolve_device_cpu():
    assert llmlab.resolve_device("cpu") == torch.device("cpu")


def test_stale_import_warns(no_profile_env, monkeypatch):
    fake = types.ModuleType("accelerate")
    fake.__version__ = "0.0.1"
    monkeypatch.setitem(sys.modules, "accelerate", fake)
    with pytest.warns(llmlab.RestartRequiredWarning, match="accelerate 0.0.1"):
        llmlab.setup("offline")


def test_no_stale_import_warning(no_profile_env):
    with warnings.catch_warnings():
        warnings.simplefilter("error", llmlab.RestartRequiredWarning)
        llmlab.setup("offline")


def test_report_install_restart_needed(capsys):
    from llmlab.install import installed_distributions

    before = installed_distributions()
    del before["peft"]
    before["torch"] = "0.0.1"
    report = llmlab.report_install(before)
    assert "peft" in report.added
    assert report.changed["torch"][0] == "0.0.1"
    assert "torch" in report.restart_modules
    out = capsys.readouterr().out
    assert "added 1: peft" in out
    assert "torch 0.0.1 ->" in out
    assert "Restart needed" in out


def test_report_install_nothing_changed(capsys):
    from llmlab.install import installed_distributions

    report = llmlab.report_install(installed_distributions())
    assert not report.restart_needed
    assert "No restart needed." in capsys.readouterr().out
