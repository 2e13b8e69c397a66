"""Companion package of the llmlab course book."""

from llmlab.doctor import doctor
from llmlab.errors import (
    ChatTemplateError,
    ConfigError,
    DeviceNotFoundError,
    FallbackWarning,
    InvalidArgumentError,
    InvalidQuantizationError,
    LlmlabError,
    LlmlabWarning,
    ModelNotAvailableError,
    QuantizationUnavailableError,
    QuantizedTrainingError,
    RestartRequiredWarning,
    TargetModulesError,
    UnknownProfileError,
    UnknownRoleError,
)
from llmlab.finetune import (
    attention_target_modules,
    check_target_modules,
    linear_layer_names,
)
from llmlab.install import report_install
from llmlab.loading import (
    QUANTIZATIONS,
    check_trainable,
    load_model,
    load_tokenizer,
    quantization_config,
)
from llmlab.memory import estimate_memory, memory_footprint
from llmlab.profiles import MODELS, PROFILES, ROLES, model_id, resolve_profile
from llmlab.runtime import (
    Runtime,
    default_dtype,
    resolve_device,
    seed_everything,
    setup,
    training_precision,
)

__version__ = "0.1.0"
__all__ = [
    "ChatTemplateError",
    "ConfigError",
    "DeviceNotFoundError",
    "FallbackWarning",
    "InvalidArgumentError",
    "InvalidQuantizationError",
    "LlmlabError",
    "LlmlabWarning",
    "MODELS",
    "ModelNotAvailableError",
    "PROFILES",
    "QUANTIZATIONS",
    "QuantizationUnavailableError",
    "QuantizedTrainingError",
    "ROLES",
    "RestartRequiredWarning",
    "Runtime",
    "TargetModulesError",
    "UnknownProfileError",
    "UnknownRoleError",
    "attention_target_modules",
    "check_target_modules",
    "check_trainable",
    "default_dtype",
    "doctor",
    "estimate_memory",
    "linear_layer_names",
    "load_model",
    "load_tokenizer",
    "memory_footprint",
    "model_id",
    "quantization_config",
    "report_install",
    "resolve_device",
    "resolve_profile",
    "seed_everything",
    "setup",
    "training_precision",
]
