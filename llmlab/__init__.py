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
    UnknownProfileError,
    UnknownRoleError,
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
    "UnknownProfileError",
    "UnknownRoleError",
    "check_trainable",
    "default_dtype",
    "doctor",
    "estimate_memory",
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
