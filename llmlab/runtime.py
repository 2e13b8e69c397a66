"""Device, dtype and seeding policy shared by every chapter."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import os
import random
import sys
import warnings

import numpy as np
import torch

from llmlab.errors import DeviceNotFoundError
from llmlab.profiles import resolve_profile

logger = logging.getLogger(__name__)

# Libraries named in the one-line version report printed by `setup()`.
REPORTED_LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes")
DEFAULT_NUM_THREADS = 2
# True while the hub's offline mode is on because `setup()` turned it on, so
# that a later `setup()` with another profile can turn it off again.
_offline_set_by_setup = False

# Loggers that print on every import or call without anything to act on:
# bitsandbytes 0.50 tries to fetch an optional CPU kernel from the hub through
# the `kernels` package on import (both log the failure or the skipped check),
# and its 8-bit matmul logs a dtype cast on every forward pass.
NOISY_LOGGERS = (
    "bitsandbytes.backends.cpu.ops",
    "bitsandbytes.autograd._functions",
    "kernels._internals.hf_hub",
    # faiss logs each CPU build it tries at INFO before finding one that loads.
    "faiss.loader",
)
# Deprecation notices raised inside peft and transformers, not by chapter code.
NOISY_WARNINGS = (
    r"`gradient_checkpointing_enable` is deprecated",
    r"`is_gradient_checkpointing` is deprecated",
)


@dataclasses.dataclass(frozen=True)
class Runtime:
    """Settings `setup()` chose for this machine.

    `gpu_memory_gib` is the GPU's total memory in GiB (None without a GPU) and
    `compute_capability` its CUDA compute capability such as "8.0".
    """

    profile: str
    device: str
    dtype: torch.dtype
    offline: bool
    versions: dict[str, str]
    gpu_name: str | None = None
    gpu_memory_gib: float | None = None
    compute_capability: str | None = None
    bf16_supported: bool = False
    in_colab: bool = False
    num_threads: int | None = None

    def report(self) -> str:
        """Return the one- or two-line summary that `setup()` prints."""
        device = self.device
        if self.gpu_name is not None:
            bf16 = "bf16" if self.bf16_supported else "no bf16"
            device += (
                f" ({self.gpu_name}, {self.gpu_memory_gib:.0f} GiB, "
                f"sm {self.compute_capability}, {bf16})"
            )
        threads = f", threads={self.num_threads}" if self.num_threads else ""
        first = (
            f"llmlab: profile={self.profile}, device={device}, "
            f"dtype={str(self.dtype).removeprefix('torch.')}{threads}"
        )
        versions = ", ".join(f"{k} {v}" for k, v in self.versions.items())
        return f"{first}\n{versions}"


def setup(profile: str | None = None, seed: int = 0) -> Runtime:
    """Seed every generator, apply the profile's settings and print the choice.

    Args:
        profile: one of `llmlab.PROFILES`. Default None resolves it from
            `LLMLAB_PROFILE`, else from the GPU (see `llmlab.resolve_profile`).
        seed: seed for python's `random`, numpy and torch. Default 0, the seed
            behind the stored outputs of every chapter.

    The `offline` profile always runs on the CPU, even where CUDA exists, with
    `LLMLAB_NUM_THREADS` threads (default 2) and deterministic algorithms, so
    that its outputs match the stored ones. Calling `setup()` again re-applies
    the same settings.
    """
    profile = resolve_profile(profile)
    offline = profile == "offline"
    if offline:
        _enter_offline_mode()
    else:
        _leave_offline_mode()
    if _quiet_run():
        disable_progress_bars()
    quiet_noisy_output()

    seed_everything(seed)
    runtime = describe(profile, offline)
    print(runtime.report())

    from llmlab.install import warn_stale_imports

    warn_stale_imports()
    return runtime


def describe(profile: str, offline: bool) -> Runtime:
    """Return the `Runtime` of this machine under `profile`, changing nothing."""
    device = "cpu" if offline or not torch.cuda.is_available() else "cuda"
    gpu = _gpu_facts() if device == "cuda" else {}
    return Runtime(
        profile=profile,
        device=device,
        dtype=default_dtype(device),
        offline=offline or _env_flag("HF_HUB_OFFLINE"),
        versions=installed_versions(REPORTED_LIBRARIES),
        in_colab="google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ,
        num_threads=torch.get_num_threads() if device == "cpu" else None,
        **gpu,
    )


def _gpu_facts() -> dict:
    props = torch.cuda.get_device_properties(0)
    return {
        "gpu_name": props.name,
        "gpu_memory_gib": props.total_memory / 2**30,
        "compute_capability": f"{props.major}.{props.minor}",
        "bf16_supported": torch.cuda.is_bf16_supported(),
    }


def _enter_offline_mode() -> None:
    global _offline_set_by_setup
    if not _env_flag("HF_HUB_OFFLINE"):
        _offline_set_by_setup = True
    _set_hub_offline(True)

    num_threads = int(os.environ.get("LLMLAB_NUM_THREADS", DEFAULT_NUM_THREADS))
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _leave_offline_mode() -> None:
    """Undo the hub's offline mode if an earlier `setup()` call turned it on."""
    global _offline_set_by_setup
    if _offline_set_by_setup:
        _set_hub_offline(False)
        _offline_set_by_setup = False


def _set_hub_offline(offline: bool) -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if offline:
            os.environ[name] = "1"
        else:
            os.environ.pop(name, None)
    # huggingface_hub reads the variable once, at import: update the constant
    # too in case a chapter imported transformers before calling setup().
    import huggingface_hub.constants

    huggingface_hub.constants.HF_HUB_OFFLINE = offline


def seed_everything(seed: int = 0) -> None:
    """Seed python's `random`, numpy and torch (CPU and every GPU) with `seed`."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _quiet_run() -> bool:
    """Return True under pytest, the book build (`LLMLAB_BUILD=1`) and CI."""
    return (
        "PYTEST_CURRENT_TEST" in os.environ
        or _env_flag("LLMLAB_BUILD")
        or _env_flag("CI")
    )


def disable_progress_bars() -> None:
    """Turn off the progress bars of tqdm, huggingface_hub, transformers, datasets."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["TQDM_DISABLE"] = "1"
    import transformers.utils.logging

    transformers.utils.logging.disable_progress_bar()
    try:
        import datasets
    except ImportError:
        return
    datasets.disable_progress_bars()


def quiet_noisy_output() -> None:
    """Silence the log lines and warnings listed in `NOISY_LOGGERS`/`NOISY_WARNINGS`."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=FutureWarning)


def installed_versions(names=REPORTED_LIBRARIES) -> dict[str, str]:
    """Return the installed version of each distribution, or "not installed"."""
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def default_dtype(device: str | torch.device = "cpu") -> torch.dtype:
    """Return the dtype to load weights in on `device`.

    bfloat16 on a GPU that supports it (Ampere and newer), float16 on older
    GPUs such as the T4, float32 on the CPU, where half-precision matmuls are
    slow or missing.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def training_precision(device: str | torch.device | None = None) -> dict[str, bool]:
    """Return the `bf16`/`fp16` flags for `transformers.TrainingArguments`.

    Args:
        device: where training runs. Default None: CUDA when available.

    bf16 only where `torch.cuda.is_bf16_supported()` holds, fp16 on older GPUs
    (a T4 has no bf16 and a run with `bf16=True` fails before its first step),
    and neither on the CPU, which trains in float32.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = default_dtype(device)
    return {"bf16": dtype == torch.bfloat16, "fp16": dtype == torch.float16}


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Return `device` as a `torch.device` after checking that it exists here.

    Args:
        device: "cpu", "cuda", "cuda:N" or "mps". Default None: CUDA when
            available, else the CPU.

    Raises:
        DeviceNotFoundError: the device is not on this machine.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError as error:
        raise DeviceNotFoundError(
            f"Invalid device {str(device)!r}: {error}. Use 'cpu', 'cuda' or 'cuda:N'."
        ) from None
    if device.type == "cuda" and not _cuda_index_exists(device.index or 0):
        found = torch.cuda.device_count()
        raise DeviceNotFoundError(
            f"Device {str(device)!r} does not exist: this machine has {found} CUDA "
            "device(s). Use device='cpu' or run on a machine with a GPU."
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceNotFoundError(
            "Device 'mps' does not exist on this machine. Use device='cpu'."
        )
    return device


def _cuda_index_exists(index: int) -> bool:
    return torch.cuda.is_available() and index < torch.cuda.device_count()
