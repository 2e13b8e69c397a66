"""Load models and tokenizers with the machine's dtype, device and quantization.

`load_model` resolves a role (`base`, `chat`, `embedder`), a hub id or a local
folder, and picks the dtype and device from the runtime policy. It builds the
bitsandbytes configuration for 8-bit or 4-bit loading, and raises an error that
names the cause and the fix when quantization cannot work here.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import warnings
from pathlib import Path

import torch

from llmlab.errors import (
    ChatTemplateError,
    ConfigError,
    FallbackWarning,
    InvalidQuantizationError,
    ModelNotAvailableError,
    QuantizationUnavailableError,
    QuantizedTrainingError,
)
from llmlab.profiles import ROLES, model_id, resolve_profile
from llmlab.runtime import default_dtype, quiet_noisy_output, resolve_device

logger = logging.getLogger(__name__)

QUANTIZATIONS = (None, "8bit", "4bit")
# Relative error of a probe matmul above which a quantized backend is broken.
# NF4 of Gaussian weights gives about 0.09 and int8 about 0.01.
PROBE_MAX_ERROR = {"4bit": 0.2, "8bit": 0.05}


def resolve_model_path(name_or_role: str, profile: str | None = None) -> str:
    """Return what `from_pretrained` should load for a role, hub id or folder.

    Args:
        name_or_role: a role from `llmlab.ROLES`, a local folder, or a hub id
            such as "Qwen/Qwen2.5-0.5B".
        profile: the profile used to resolve a role; default None as
            `llmlab.resolve_profile()`.

    Raises:
        ModelNotAvailableError: a missing local folder, a missing bundled
            model, or a hub id that is not in the local cache while offline.
    """
    if name_or_role in ROLES:
        return model_id(name_or_role, profile)
    path = Path(name_or_role).expanduser()
    if path.is_dir():
        return str(path)
    if name_or_role.startswith(("/", ".", "~")):
        raise ModelNotAvailableError(
            f"Model folder {name_or_role!r} does not exist. Check the path, or use "
            f"a role ({', '.join(ROLES)}) or a hub id."
        )
    _check_hub_id_reachable(name_or_role, profile)
    return name_or_role


def _check_hub_id_reachable(repo_id: str, profile: str | None) -> None:
    if not _hub_offline(profile):
        return
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        return
    raise ModelNotAvailableError(
        f"Model {repo_id!r} is not in the local Hugging Face cache and the hub is "
        "offline (offline profile or HF_HUB_OFFLINE=1). Use a role "
        f"({', '.join(ROLES)}) for the bundled models, or on a machine with "
        f"network run `hf download {repo_id}` first."
    )


def _hub_offline(profile: str | None) -> bool:
    offline_env = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    return offline_env or resolve_profile(profile) == "offline"


def load_config(name_or_role: str, profile: str | None = None):
    """Return the `transformers` configuration of a role, hub id or folder."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(resolve_model_path(name_or_role, profile))


def check_quantization(quantization: str | None) -> None:
    """Raise `InvalidQuantizationError` unless `quantization` is in `QUANTIZATIONS`."""
    if quantization not in QUANTIZATIONS:
        raise InvalidQuantizationError(
            f"Invalid quantization {quantization!r}. Use None (no quantization), "
            "'8bit' (LLM.int8) or '4bit' (NF4 with double quantization)."
        )


def quantization_config(
    quantization: str | None,
    compute_dtype: torch.dtype = torch.float32,
    skip_modules: list[str] | None = None,
):
    """Return the `BitsAndBytesConfig` for `quantization`, or None for no quantization.

    Args:
        quantization: None, "8bit" or "4bit". 4-bit uses NF4 with double
            quantization of the block scales, the QLoRA recipe.
        compute_dtype: dtype of the matmuls of 4-bit layers; use
            `llmlab.default_dtype(device)` (float32 on the CPU, bfloat16 or
            float16 on a GPU).
        skip_modules: module names to keep unquantized. Default None leaves
            the choice to transformers (the output layer and tied weights).
    """
    check_quantization(quantization)
    if quantization is None:
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip_modules)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=skip_modules,
    )


def probe_quantized_matmul(
    quantization: str, device: str | torch.device = "cpu"
) -> float:
    """Run one real bitsandbytes matmul and return its relative error.

    Args:
        quantization: "8bit" or "4bit".
        device: where to run it; default the CPU.

    Raises:
        QuantizationUnavailableError: bitsandbytes is missing, fails to import,
            has no kernel for `device`, or returns a result far from float32.
    """
    bnb = _import_bitsandbytes()
    device = torch.device(device)
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(64, 128, generator=generator)
    x = torch.randn(4, 128, generator=generator)
    try:
        layer = _quantized_linear(bnb, quantization, weight).to(device)
        output = layer(x.to(device)).float().cpu()
    except (RuntimeError, NotImplementedError, AssertionError) as error:
        raise QuantizationUnavailableError(
            f"bitsandbytes {bnb.__version__} has no working {quantization} kernel "
            f"for device {str(device)!r}: {type(error).__name__}: {error}. Use a "
            "CUDA GPU, upgrade with `pip install -U bitsandbytes`, or load "
            "without quantization (quantization=None)."
        ) from error
    expected = x @ weight.t()
    error = float((output - expected).norm() / expected.norm())
    if error > PROBE_MAX_ERROR[quantization]:
        raise QuantizationUnavailableError(
            f"bitsandbytes {quantization} matmul on {str(device)!r} is wrong: "
            f"relative error {error:.3f} (expected below "
            f"{PROBE_MAX_ERROR[quantization]}). Upgrade bitsandbytes or load "
            "without quantization."
        )
    return error


def _quantized_linear(bnb, quantization: str, weight: torch.Tensor):
    out_features, in_features = weight.shape
    if quantization == "4bit":
        layer = bnb.nn.Linear4bit(
            in_features, out_features, bias=False,
            compute_dtype=torch.float32, quant_type="nf4",
        )
        layer.weight = bnb.nn.Params4bit(weight.clone(), requires_grad=False,
                                         quant_type="nf4")
        _keep_portable_layout(layer)
        return layer
    layer = bnb.nn.Linear8bitLt(in_features, out_features, bias=False,
                                has_fp16_weights=False)
    layer.weight = bnb.nn.Int8Params(weight.clone(), requires_grad=False,
                                     has_fp16_weights=False)
    return layer


def _import_bitsandbytes():
    if importlib.util.find_spec("bitsandbytes") is None:
        raise QuantizationUnavailableError(
            "8-bit and 4-bit loading need bitsandbytes, which is not installed. "
            "Install it with `pip install 'bitsandbytes>=0.48'`, or load without "
            "quantization (quantization=None)."
        )
    quiet_noisy_output()
    try:
        import bitsandbytes
    except Exception as error:  # a broken install raises many exception types
        raise QuantizationUnavailableError(
            f"bitsandbytes is installed but failed to import: {type(error).__name__}: "
            f"{error}. Reinstall it with `pip install -U bitsandbytes`."
        ) from error
    return bitsandbytes


def load_model(
    name_or_role: str,
    quantization: str | None = None,
    *,
    dtype: torch.dtype | None = None,
    device_map=None,
    fallback: bool = False,
    profile: str | None = None,
):
    """Load a model with the dtype, device and quantization right for this machine.

    Args:
        name_or_role: a role (`base`, `chat`, `embedder`), a local folder or a
            hub id (hub ids need network or the local cache).
        quantization: None, "8bit" or "4bit" (NF4, double quantization).
        dtype: dtype of the weights that stay unquantized and of 4-bit
            compute. Default None: `llmlab.default_dtype(device)`.
        device_map: passed to `from_pretrained`. Default None puts the whole
            model on one device: the CPU in the offline profile or without
            CUDA, else GPU 0. A device string ("cpu", "cuda:1") is checked.
        fallback: when quantization cannot work here, load unquantized with a
            `FallbackWarning` instead of raising. Default False.
        profile: profile used to resolve a role; default None as
            `llmlab.resolve_profile()`.

    Raises:
        InvalidQuantizationError, ModelNotAvailableError, DeviceNotFoundError,
        QuantizationUnavailableError (only with fallback=False).

    On the CPU, 4-bit layers keep bitsandbytes' portable weight layout.
    bitsandbytes 0.50 otherwise repacks them at the first inference pass on
    CPUs with AVX512-BF16. The repacked kernel fails for layers whose output
    size is not a multiple of 32, computes in bfloat16 (so results differ from
    CPUs without AVX512-BF16), and breaks LoRA training after that pass: the
    loss stops changing. The portable layout avoids all three, at some speed.
    """
    check_quantization(quantization)
    path = resolve_model_path(name_or_role, profile)
    device = _target_device(device_map, profile)
    dtype = dtype or default_dtype(device)
    if quantization is not None:
        quantization = _usable_quantization(quantization, device, fallback)

    model = _from_pretrained(path, quantization, dtype, device, device_map)
    if quantization == "4bit":
        _keep_portable_layout_everywhere(model)
    logger.info(
        "Loaded %s (%s, quantization=%s) on %s", path, dtype, quantization, device
    )
    return model


def _target_device(device_map, profile: str | None) -> torch.device:
    if isinstance(device_map, (str, torch.device)) and device_map not in (
        "auto", "balanced", "balanced_low_0", "sequential"
    ):
        return resolve_device(device_map)
    if isinstance(device_map, int):
        return resolve_device(f"cuda:{device_map}")
    if resolve_profile(profile) == "offline":
        return torch.device("cpu")
    return resolve_device(None)


def _usable_quantization(quantization: str, device: torch.device, fallback: bool):
    try:
        probe_quantized_matmul(quantization, device)
    except QuantizationUnavailableError as error:
        if not fallback:
            raise
        message = f"Loading without quantization (fallback=True): {error}"
        logger.warning(message)
        warnings.warn(message, FallbackWarning, stacklevel=3)
        return None
    return quantization


def _from_pretrained(path, quantization, dtype, device, device_map):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    model_class = _model_class(config)
    if device_map is None or isinstance(device_map, torch.device):
        device_map = {"": str(device)}
    return model_class.from_pretrained(
        path,
        dtype=dtype,
        device_map=device_map,
        quantization_config=quantization_config(quantization, dtype),
    )


def _model_class(config):
    """Return AutoModelForCausalLM for decoders and AutoModel for encoders."""
    from transformers import AutoModel, AutoModelForCausalLM

    return AutoModelForCausalLM if _is_causal(config) else AutoModel


def _is_causal(config) -> bool:
    """Return True unless `config.architectures` names only non-decoder classes."""
    architectures = config.architectures or []
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    return causal or not architectures


def _is_decoder(path: str) -> bool:
    from transformers import AutoConfig

    return _is_causal(AutoConfig.from_pretrained(path))


def _linear4bit_layers(model):
    from bitsandbytes.nn import Linear4bit

    return [(n, m) for n, m in model.named_modules() if isinstance(m, Linear4bit)]


def _keep_portable_layout(layer) -> None:
    # NOTE: `support_avx512bf16_for_cpu` is the switch of bitsandbytes 0.50's
    # Linear4bit for the CPU repacking; on versions without it this is a no-op.
    layer.support_avx512bf16_for_cpu = False


def _keep_portable_layout_everywhere(model) -> None:
    for _, layer in _linear4bit_layers(model):
        _keep_portable_layout(layer)


def check_trainable(model) -> None:
    """Raise `QuantizedTrainingError` if 4-bit layers are in the CPU inference layout.

    bitsandbytes 0.50 repacks 4-bit weights for a faster CPU kernel at the
    first inference pass (on CPUs with AVX512-BF16). LoRA training of such a
    model then fails or silently stops learning. Models from
    `llmlab.load_model` never repack; call this before training a 4-bit model
    loaded with `from_pretrained` directly.
    """
    if importlib.util.find_spec("bitsandbytes") is None:
        return
    packed = [
        name for name, layer in _linear4bit_layers(model)
        if getattr(layer.weight.quant_state, "packing_format_for_cpu", False)
    ]
    if packed:
        raise QuantizedTrainingError(
            f"{len(packed)} 4-bit layers (first: {packed[0]}) were repacked for CPU "
            "inference by an earlier forward pass, and LoRA training on them does "
            "not update correctly. Reload the model before training, with "
            "llmlab.load_model(..., quantization='4bit'), which keeps the layout "
            "trainable."
        )


def load_tokenizer(name_or_role: str, *, profile: str | None = None):
    """Load a tokenizer ready for batched generation.

    Args:
        name_or_role: a role, a local folder or a hub id, as for `load_model`.
        profile: profile used to resolve a role; default None.

    A decoder's tokenizer pads on the left, so that every row of a batch ends
    at its last real token and `generate` continues from there. An encoder's
    (the embedder) keeps its own side, because left padding would shift its
    absolute position embeddings. A tokenizer without
    a pad token pads with its end-of-sequence token (logged). A tokenizer
    without a chat template raises `ChatTemplateError` from
    `apply_chat_template` unless a template is passed.
    """
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_role, profile)
    tokenizer = AutoTokenizer.from_pretrained(path)
    _set_pad_token(tokenizer, path)
    if _is_decoder(path):
        tokenizer.padding_side = "left"
    if getattr(tokenizer, "chat_template", None) is None:
        _guard_chat_template(tokenizer, path)
    return tokenizer


def _set_pad_token(tokenizer, path: str) -> None:
    if tokenizer.pad_token is not None:
        return
    if tokenizer.eos_token is None:
        raise ConfigError(
            f"The tokenizer of {path!r} has neither a pad token nor an "
            "end-of-sequence token to pad with. Add one with "
            "tokenizer.add_special_tokens({'pad_token': '<pad>'}) and "
            "model.resize_token_embeddings(len(tokenizer))."
        )
    tokenizer.pad_token = tokenizer.eos_token
    logger.warning(
        "The tokenizer of %s has no pad token: padding with the end-of-sequence "
        "token %r (id %d). The attention mask marks the padding.",
        path, tokenizer.eos_token, tokenizer.eos_token_id,
    )


def _guard_chat_template(tokenizer, path: str) -> None:
    original = tokenizer.apply_chat_template

    @functools.wraps(original)
    def apply_chat_template(conversation, *args, **kwargs):
        if kwargs.get("chat_template") is None and tokenizer.chat_template is None:
            raise ChatTemplateError(
                f"The tokenizer of {path!r} has no chat template: it is a base "
                "model, trained on plain text. Load a chat model (for example "
                "llmlab.load_tokenizer('chat')), or pass chat_template=<Jinja "
                "template> to apply_chat_template, or set tokenizer.chat_template."
            )
        return original(conversation, *args, **kwargs)

    tokenizer.apply_chat_template = apply_chat_template
