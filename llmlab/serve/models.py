"""Load the models a server process serves, and look them up by id."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from pathlib import Path

import torch

import llmlab
from llmlab.errors import ServeConfigError
from llmlab.loading import resolve_model_path
from llmlab.serve.config import ServeConfig
from llmlab.serve.embedding import EmbeddingWorker
from llmlab.serve.generation import GenerationWorker

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model to serve: `name` is the id clients send, `source` what to load."""

    name: str
    source: str


def parse_model_specs(values: Iterable[str]) -> list[ModelSpec]:
    """Parse `--model` values: roles, folders or `NAME=SOURCE`, comma-separated.

    A role is served under its own name (`chat`), a folder under its last
    path component. Raises `ServeConfigError` on an empty value or when two
    models would get the same id.
    """
    specs = []
    for value in values:
        for item in value.split(","):
            specs.append(_parse_one_spec(item.strip(), value))
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ServeConfigError(
            f"Two models would be served as {duplicates[0]!r}. Give each an id "
            "with NAME=SOURCE, for example --model small=/path/to/model."
        )
    return specs


def _parse_one_spec(item: str, value: str) -> ModelSpec:
    name, separator, source = item.partition("=")
    if not separator:
        name, source = "", item
    if not source or (separator and not name):
        raise ServeConfigError(
            f"Invalid model {value!r}: expected a role (chat, base), a folder, "
            "or NAME=SOURCE, separated by commas."
        )
    if not name:
        name = source if source in llmlab.ROLES else Path(source).name or source
    return ModelSpec(name, source)


class ModelRegistry:
    """The generation and embedding models of one server, by id."""

    def __init__(
        self,
        generators: dict[str, GenerationWorker],
        embedders: dict[str, EmbeddingWorker],
    ) -> None:
        self.generators = generators
        self.embedders = embedders

    def ids(self) -> list[str]:
        return [*self.generators, *self.embedders]


def load_registry(config: ServeConfig) -> ModelRegistry:
    """Load every model named in `config`.

    Raises:
        ServeConfigError, ModelNotAvailableError: a model cannot be served.
    """
    specs = parse_model_specs(config.models)
    generators = {
        spec.name: load_generation_worker(spec, config.dtype) for spec in specs
    }
    embedders = {}
    if config.embedder is not None:
        spec = parse_model_specs([config.embedder])[0]
        if spec.name in generators:
            raise ServeConfigError(
                f"The embedder and a chat model are both named {spec.name!r}. "
                "Name one with NAME=SOURCE."
            )
        embedders[spec.name] = load_embedding_worker(spec)
    return ModelRegistry(generators, embedders)


def load_generation_worker(
    spec: ModelSpec, dtype: str | None = None
) -> GenerationWorker:
    """Load a causal language model and its tokenizer with `llmlab.load_model`.

    Args:
        spec: the id and the role, folder or hub id to load.
        dtype: `float32`, `bfloat16`, `float16`, or None for the machine's
            default (float32 on the CPU).
    """
    torch_dtype = getattr(torch, dtype) if dtype else None
    model = llmlab.load_model(spec.source, dtype=torch_dtype)
    if not getattr(model, "can_generate", lambda: False)():
        raise ServeConfigError(
            f"Model {spec.source!r} ({type(model).__name__}) cannot generate text. "
            "Pass a causal language model to --model, and a sentence embedder "
            "to --embedder."
        )
    model.eval()
    tokenizer = llmlab.load_tokenizer(spec.source)
    worker = GenerationWorker(spec.name, model, tokenizer)
    logger.info(
        "Serving %s as %r: context %d tokens, chat template: %s",
        spec.source,
        spec.name,
        worker.context_length,
        "yes" if worker.has_chat_template else "no",
    )
    return worker


def load_embedding_worker(spec: ModelSpec) -> EmbeddingWorker:
    """Load a sentence-transformers model from a role or a local folder."""
    from sentence_transformers import SentenceTransformer

    path = resolve_model_path(spec.source)
    device = "cpu" if llmlab.resolve_profile() == "offline" else None
    model = SentenceTransformer(path, device=device or str(llmlab.resolve_device()))
    worker = EmbeddingWorker(spec.name, model)
    logger.info(
        "Serving %s as %r: %d dimensions, at most %d tokens per input",
        path,
        spec.name,
        worker.dimensions,
        worker.max_seq_length,
    )
    return worker
