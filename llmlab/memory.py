"""Memory estimates from a model configuration alone, and real footprints.

`estimate_memory` builds the model on PyTorch's meta device (shapes only, no
storage), so it counts every parameter exactly for any architecture that
transformers supports. It then prices each tensor by the dtype or quantization it
would be loaded with. bitsandbytes quantizes only the linear layers inside the
model; embeddings, norms, biases and the output layer (`lm_head`, or the
embedding it is tied to) stay in the load dtype.
"""

from __future__ import annotations

import dataclasses
import math
import os

import torch

from llmlab.errors import ConfigError, InvalidArgumentError
from llmlab.loading import check_quantization, load_config

GIB = 2**30

# NF4 stores two weights per byte. Each block of 64 weights has an absmax
# scale, which double quantization stores in 8 bits, with one float32 scale
# per 256 blocks. Each 4-bit layer also keeps its own 16-entry float32 NF4 code,
# a 256-entry float32 code for the nested scales, and a float32 offset.
NF4_BLOCKSIZE = 64
NF4_NESTED_BLOCKSIZE = 256
NF4_BYTES_PER_LAYER = 16 * 4 + 256 * 4 + 4
# LLM.int8 stores int8 weights and one float32 scale per output row.
INT8_BYTES_PER_ROW = 4

# Usable memory of common GPUs in GiB, as `torch.cuda.get_device_properties`
# reports it (slightly under the marketed size). Approximate values.
TARGETS_GIB = {
    "T4 16 GB": 14.7,
    "L4 24 GB": 22.0,
    "A100 40 GB": 39.4,
    "A100 80 GB": 79.1,
}
# Kept free on each target for the CUDA context and allocator fragmentation.
RESERVE_GIB = 1.0

# Adam keeps two float32 moments per trainable parameter.
ADAM_STATES = 2


@dataclasses.dataclass
class Verdict:
    """Whether an estimate fits on one target, and why."""

    target: str
    capacity_gib: float
    fits: bool
    reason: str


@dataclasses.dataclass
class MemoryEstimate:
    """Estimated memory in bytes, by component, with a verdict per target.

    `weights` covers parameters and buffers. `kv_cache` and `activations` are
    zero unless `batch_size` and `seq_len` were given. `trainable`,
    `gradients` and `optimizer` are zero unless `training` was given.
    """

    model_type: str
    quantization: str | None
    dtype: torch.dtype
    num_params: int
    weights: int
    kv_cache: int = 0
    activations: int = 0
    trainable: int = 0
    gradients: int = 0
    optimizer: int = 0
    verdicts: list[Verdict] = dataclasses.field(default_factory=list)

    @property
    def total(self) -> int:
        return (
            self.weights + self.kv_cache + self.activations
            + self.trainable + self.gradients + self.optimizer
        )

    def __str__(self) -> str:
        lines = [
            f"{self.model_type}, {self.num_params / 1e6:,.1f}M parameters, "
            f"{_dtype_name(self.dtype)}, quantization={self.quantization}"
        ]
        for name in ("weights", "kv_cache", "activations", "trainable",
                     "gradients", "optimizer"):
            if getattr(self, name):
                lines.append(f"  {name:<12}{getattr(self, name) / GIB:9.3f} GiB")
        lines.append(f"  {'total':<12}{self.total / GIB:9.3f} GiB")
        lines += [f"  {v.target}: {v.reason}" for v in self.verdicts]
        return "\n".join(lines)


def estimate_memory(
    name_or_config,
    quantization: str | None = None,
    *,
    dtype: torch.dtype = torch.bfloat16,
    batch_size: int | None = None,
    seq_len: int | None = None,
    training: str | None = None,
    lora_r: int = 16,
    targets: dict[str, float] | None = None,
) -> MemoryEstimate:
    """Estimate the memory to load, run or fine-tune a model, from its configuration.

    Args:
        name_or_config: a `transformers` config object, a dict as in
            config.json (with `model_type`), a local folder, a role, or a hub
            id that is in the local cache. No weights are read.
        quantization: None, "8bit" or "4bit" (NF4, double quantization).
        dtype: dtype of everything that is not quantized. Default bfloat16;
            use float16 for a T4 and float32 for the CPU.
        batch_size, seq_len: give both to add the KV cache and activations of
            inference over `seq_len` tokens (prompt plus generated).
        training: None, "lora" (adapters on every linear layer inside the
            model; with quantization="4bit" this is QLoRA) or "full" (every
            parameter trained with Adam). Needs `batch_size` and `seq_len`.
        lora_r: LoRA rank. Default 16.
        targets: {name: usable GiB} to judge; default `TARGETS_GIB` plus this
            machine (its GPU, else its RAM).

    Returns:
        A `MemoryEstimate`; `print()` it for a table with one verdict per target.
    """
    check_quantization(quantization)
    _check_training(training, batch_size, seq_len)
    config = _as_config(name_or_config)
    model = _meta_model(config)
    estimate = MemoryEstimate(
        model_type=config.model_type,
        quantization=quantization,
        dtype=dtype,
        num_params=sum(p.numel() for p in model.parameters()),
        weights=_weight_bytes(model, quantization, dtype),
    )
    if batch_size and seq_len:
        estimate.kv_cache = kv_cache_bytes(config, batch_size, seq_len, dtype)
        estimate.activations = _activation_bytes(config, batch_size, seq_len, dtype,
                                                 training)
    if training:
        _add_training(estimate, model, training, lora_r)
    estimate.verdicts = judge(estimate.total, targets)
    return estimate


def _check_training(training, batch_size, seq_len) -> None:
    if training not in (None, "lora", "full"):
        raise InvalidArgumentError(
            f"Invalid training {training!r}. Use None, 'lora' or 'full'."
        )
    if training and not (batch_size and seq_len):
        raise InvalidArgumentError(
            f"training={training!r} needs batch_size and seq_len to size the "
            "activations, for example batch_size=8, seq_len=512."
        )


def _as_config(name_or_config):
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(name_or_config, PretrainedConfig):
        return name_or_config
    if isinstance(name_or_config, dict):
        fields = dict(name_or_config)
        if "model_type" not in fields:
            raise ConfigError(
                "The configuration dict has no 'model_type'. Add it as in the "
                "model's config.json, for example 'llama' or 'qwen2'."
            )
        return AutoConfig.for_model(fields.pop("model_type"), **fields)
    return load_config(str(name_or_config))


def _meta_model(config):
    from transformers import AutoModel, AutoModelForCausalLM

    with torch.device("meta"):
        try:
            return AutoModelForCausalLM.from_config(config)
        except ValueError:
            return AutoModel.from_config(config)


def _unquantized_names(model) -> set[str]:
    """Return the module names that bitsandbytes loading leaves unquantized."""
    from transformers.quantizers.base import get_keys_to_not_convert

    return set(get_keys_to_not_convert(model))


def _weight_bytes(model, quantization, dtype) -> int:
    dtype_size = torch.empty((), dtype=dtype).element_size()
    skipped = _unquantized_names(model) if quantization else set()
    total = 0
    counted = set()
    for name, module in model.named_modules():
        quantized = (
            quantization is not None
            and _is_linear(module)
            and not _is_skipped(name, skipped)
        )
        for param_name, param in module.named_parameters(recurse=False):
            if id(param) in counted:
                continue  # a weight tied to another module is stored once
            counted.add(id(param))
            if quantized and param_name == "weight":
                total += _quantized_weight_bytes(_out_in(module), quantization)
            else:
                total += param.numel() * dtype_size
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return total + buffers


def _is_linear(module) -> bool:
    """Return True for the layers bitsandbytes quantizes: nn.Linear and Conv1D."""
    from transformers.pytorch_utils import Conv1D

    return type(module) is torch.nn.Linear or isinstance(module, Conv1D)


def _out_in(module) -> tuple[int, int]:
    """Return (out_features, in_features); GPT-2's Conv1D stores (in, out)."""
    rows, cols = module.weight.shape
    return (rows, cols) if isinstance(module, torch.nn.Linear) else (cols, rows)


def _is_skipped(name: str, skipped: set[str]) -> bool:
    return any(name == key or name.endswith("." + key) for key in skipped)


def _quantized_weight_bytes(shape: tuple[int, int], quantization) -> int:
    out_features, in_features = shape
    num_weights = out_features * in_features
    if quantization == "8bit":
        return num_weights + out_features * INT8_BYTES_PER_ROW
    num_blocks = math.ceil(num_weights / NF4_BLOCKSIZE)
    num_nested_blocks = math.ceil(num_blocks / NF4_NESTED_BLOCKSIZE)
    packed = math.ceil(num_weights / 2)
    return packed + num_blocks + num_nested_blocks * 4 + NF4_BYTES_PER_LAYER


def _text_config(config):
    get_text_config = getattr(config, "get_text_config", None)
    return get_text_config() if get_text_config else config


def _attention_shape(config) -> tuple[int, int, int, int]:
    """Return (n_layers, n_heads, n_kv_heads, d_head) of a decoder config."""
    config = _text_config(config)
    try:
        n_layers = config.num_hidden_layers
        n_heads = config.num_attention_heads
        d_model = config.hidden_size
    except AttributeError as error:
        raise ConfigError(
            f"Configuration of type {config.model_type!r} lacks {error.name!r}, "
            "which the KV-cache estimate needs."
        ) from None
    n_kv_heads = getattr(config, "num_key_value_heads", None) or n_heads
    d_head = getattr(config, "head_dim", None) or d_model // n_heads
    return n_layers, n_heads, n_kv_heads, d_head


def kv_cache_bytes(config, batch_size: int, seq_len: int, dtype=torch.bfloat16) -> int:
    """Return the bytes of the key and value cache for `seq_len` tokens.

    Two tensors (key, value) per layer of shape (B, n_kv_heads, T, d_head).
    """
    n_layers, _, n_kv_heads, d_head = _attention_shape(config)
    dtype_size = torch.empty((), dtype=dtype).element_size()
    return 2 * n_layers * batch_size * n_kv_heads * seq_len * d_head * dtype_size


def _activation_bytes(config, batch_size, seq_len, dtype, training) -> int:
    """Estimate peak activations from tensor shapes (not a measurement).

    Inference keeps one layer's tensors at a time: a few (B, T, d_model)
    hidden states, the MLP's (B, T, intermediate) tensors and the float32
    logits of the last position. Training with LoRA or full fine-tuning keeps
    each layer's input for gradient checkpointing, one layer's full
    activations and the float32 logits of every position.
    """
    text = _text_config(config)
    n_layers, n_heads, _, _ = _attention_shape(config)
    d_model = text.hidden_size
    d_ff = getattr(text, "intermediate_size", None) or 4 * d_model
    vocab = getattr(text, "vocab_size", 0)
    size = torch.empty((), dtype=dtype).element_size()
    tokens = batch_size * seq_len
    # NOTE: attention scores are left out: SDPA kernels do not store the
    # (B, n_heads, T, T) matrix. With eager attention add B*n_heads*T*T*size.
    one_layer = tokens * (4 * d_model + 3 * d_ff) * size
    if not training:
        return one_layer + batch_size * vocab * 4
    checkpoints = n_layers * tokens * d_model * size
    return checkpoints + 2 * one_layer + tokens * vocab * 4 * 2


def _add_training(estimate: MemoryEstimate, model, training: str, lora_r: int) -> None:
    if training == "full":
        trainable = estimate.num_params
        # Weights already counted; mixed precision adds a float32 master copy.
        master = trainable * 4 if estimate.dtype != torch.float32 else 0
        estimate.trainable = master
    else:
        trainable = _lora_params(model, lora_r)
        estimate.trainable = trainable * 4  # adapters are kept in float32
    estimate.gradients = trainable * 4
    estimate.optimizer = trainable * 4 * ADAM_STATES


def _lora_params(model, lora_r: int) -> int:
    """Count LoRA parameters for adapters on every linear layer but the output."""
    skipped = _unquantized_names(model)
    return sum(
        lora_r * sum(_out_in(module))
        for name, module in model.named_modules()
        if _is_linear(module) and not _is_skipped(name, skipped)
    )


def judge(total_bytes: int, targets: dict[str, float] | None = None) -> list[Verdict]:
    """Return a fits/does-not-fit verdict of `total_bytes` for each target.

    Args:
        total_bytes: the memory needed.
        targets: {name: usable GiB}; default `TARGETS_GIB` plus "this machine".
    """
    if targets is None:
        targets = dict(TARGETS_GIB)
        targets.update(this_machine())
    verdicts = []
    for name, capacity in targets.items():
        needed = total_bytes / GIB + RESERVE_GIB
        fits = needed <= capacity
        verdict = "fits" if fits else "does not fit"
        reason = (
            f"{verdict}: needs {needed:.2f} GiB ({total_bytes / GIB:.2f} GiB plus "
            f"{RESERVE_GIB:.1f} GiB reserve) of {capacity:.1f} GiB"
        )
        verdicts.append(Verdict(name, capacity, fits, reason))
    return verdicts


def this_machine() -> dict[str, float]:
    """Return {"this machine (...)": GiB}: GPU 0's memory, else the total RAM."""
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return {f"this machine ({props.name})": props.total_memory / GIB}
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return {}
    return {"this machine (CPU RAM)": ram / GIB}


def memory_footprint(model) -> int:
    """Return the bytes a loaded model holds: parameters, buffers, quantization state.

    Unlike `model.get_memory_footprint()`, this counts the scales that
    bitsandbytes keeps beside quantized weights (the absmax blocks and codes
    of 4-bit layers, the row scales of 8-bit layers). Shared tensors count once.
    """
    seen: set[tuple[int, int]] = set()
    total = 0
    tensors = list(model.parameters()) + list(model.buffers())
    tensors += _quantization_tensors(model)
    for tensor in tensors:
        if tensor.device.type == "meta":
            continue
        key = (tensor.untyped_storage().data_ptr(), tensor.numel())
        if key in seen:
            continue
        seen.add(key)
        total += tensor.numel() * tensor.element_size()
    return total


def _quantization_tensors(model) -> list[torch.Tensor]:
    tensors = []
    for param in model.parameters():
        quant_state = getattr(param, "quant_state", None)
        if quant_state is not None:
            tensors += [quant_state.absmax, quant_state.code]
            if getattr(quant_state, "nested", False):
                state2 = quant_state.state2
                tensors += [state2.absmax, state2.code, quant_state.offset]
        scale = getattr(param, "SCB", None)
        if isinstance(scale, torch.Tensor):
            tensors.append(scale)
    return [t for t in tensors if isinstance(t, torch.Tensor)]


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
