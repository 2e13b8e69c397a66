"""Pick and check LoRA target modules by the linear layer names a model has.

peft matches `target_modules` against the last part of each module name, and
those names differ between architectures. Llama-style decoders (Llama, Mistral,
Qwen2) have separate `q_proj`, `k_proj`, `v_proj` and `o_proj` layers, while
GPT-2 fuses the query, key and value projections into one `c_attn` layer. A name
that the model lacks makes peft 0.21 raise "Target modules ... not found"
without saying which names would work, so the helpers here list them.
"""

from __future__ import annotations

import logging

import torch

from llmlab.errors import TargetModulesError

logger = logging.getLogger(__name__)

# Attention projections by architecture family, checked in this order. GPT-2's
# attention output layer is named `c_proj`, like its MLP output layer, so only
# the fused `c_attn` is picked there.
ATTENTION_PROJECTIONS = {
    "llama-style": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "gpt2-style": ("c_attn",),
}


def linear_layer_names(model) -> list[str]:
    """Return the sorted distinct last name parts of the model's linear layers.

    Args:
        model: any `torch.nn.Module`, including a model wrapped by peft or
            loaded in 8-bit or 4-bit (the bitsandbytes layers subclass
            `nn.Linear`).

    The names are what `LoraConfig(target_modules=...)` matches, for example
    `["down_proj", "gate_proj", "k_proj", ...]`. GPT-2's `Conv1D` layers count
    as linear layers. The output layer (`lm_head`) is listed too. In a model
    that peft already wrapped, the adapter matrices (`lora_A`, `lora_B`) are
    left out and a wrapped layer is listed under its own name.
    """
    from transformers.pytorch_utils import Conv1D

    names = set()
    for name, module in model.named_modules():
        if not name or not isinstance(module, (torch.nn.Linear, Conv1D)):
            continue
        parts = name.split(".")
        if any(part.startswith("lora_") for part in parts):
            continue
        if parts[-1] == "base_layer" and len(parts) > 1:
            parts.pop()
        names.add(parts[-1])
    return sorted(names)


def attention_target_modules(model) -> list[str]:
    """Return the attention projection names to pass as LoRA `target_modules`.

    Args:
        model: a Llama-style model (`q_proj`, `k_proj`, `v_proj`, `o_proj`) or
            a GPT-2-style model (`c_attn`).

    Raises:
        TargetModulesError: the model has neither set of names; the message
            lists the linear layer names it does have.
    """
    available = set(linear_layer_names(model))
    for family, projections in ATTENTION_PROJECTIONS.items():
        if set(projections) <= available:
            logger.info("LoRA targets for a %s model: %s", family, projections)
            return list(projections)
    label = _model_label(model)
    raise TargetModulesError(
        f"{label[0].upper()}{label[1:]} has no known attention projections "
        f"({_known_names()}). Its linear layers are: {sorted(available)}. Pass "
        "the names of its attention layers as target_modules yourself."
    )


def check_target_modules(model, target_modules) -> None:
    """Raise `TargetModulesError` if a requested target name is not a linear layer.

    Args:
        model: the model that LoRA will wrap.
        target_modules: the list of names for `LoraConfig(target_modules=...)`.
            A string is a regular expression in peft and is not checked here.

    Call this before `get_peft_model`, whose own error does not say which
    names the model has.
    """
    if isinstance(target_modules, str):
        return
    available = linear_layer_names(model)
    missing = [name for name in target_modules if name not in available]
    if missing:
        raise TargetModulesError(
            f"target_modules {missing} are not linear layers of "
            f"{_model_label(model)}. Its linear layers are: {available}. Use "
            "some of these, or llmlab.attention_target_modules(model) for the "
            "attention projections."
        )


def _model_label(model) -> str:
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    return f"the {model_type} model" if model_type else f"the {type(model).__name__}"


def _known_names() -> str:
    return "; ".join(f"{family}: {', '.join(names)}"
                     for family, names in ATTENTION_PROJECTIONS.items())
