"""Exceptions and warnings raised by llmlab.

Every error the package raises on bad input or an unusable machine derives from
`LlmlabError`, so a notebook can catch the whole family with one clause. Each
subclass also derives from the built-in exception a caller would expect
(`ValueError`, `FileNotFoundError`, `RuntimeError`), so existing handlers keep
working.
"""

from __future__ import annotations


class LlmlabError(Exception):
    """Base class of every error raised by llmlab."""


class UnknownProfileError(LlmlabError, ValueError):
    """A profile name that is not in `llmlab.PROFILES`."""


class UnknownRoleError(LlmlabError, ValueError):
    """A model role that is not in the model table."""


class ModelNotAvailableError(LlmlabError, FileNotFoundError):
    """A model that cannot be loaded here: not bundled, not built, not cached."""


class InvalidQuantizationError(LlmlabError, ValueError):
    """A quantization value outside None, "8bit" and "4bit"."""


class QuantizationUnavailableError(LlmlabError, RuntimeError):
    """Quantized loading that cannot work on this machine."""


class QuantizedTrainingError(LlmlabError, RuntimeError):
    """Training of a quantized model whose layers are in an inference-only state."""


class DeviceNotFoundError(LlmlabError, ValueError):
    """A device that does not exist on this machine."""


class ChatTemplateError(LlmlabError, ValueError):
    """A chat template requested from a tokenizer that has none."""


class InvalidArgumentError(LlmlabError, ValueError):
    """An argument value outside the documented set."""


class ConfigError(LlmlabError, ValueError):
    """A model configuration that lacks a field a computation needs."""


class TargetModulesError(LlmlabError, ValueError):
    """LoRA target module names that are not linear layers of the model."""


class IndexMismatchError(LlmlabError, ValueError):
    """A vector index used with vectors or an embedder it was not built for."""


class IndexNotFoundError(LlmlabError, FileNotFoundError):
    """A saved vector index whose files are missing from its directory."""



class ServeConfigError(LlmlabError, ValueError):
    """An option of `llmlab serve` outside its valid range."""


class QueueFullError(LlmlabError, RuntimeError):
    """The request queue of `llmlab serve` is full: retry later."""


class ServerClosingError(LlmlabError, RuntimeError):
    """A request reached `llmlab serve` while it was shutting down."""

class LlmlabWarning(UserWarning):
    """Base class of every warning issued by llmlab."""


class FallbackWarning(LlmlabWarning):
    """A requested feature was replaced by an explicit, weaker fallback."""


class RestartRequiredWarning(LlmlabWarning):
    """A package was upgraded after it was imported: restart the runtime."""
