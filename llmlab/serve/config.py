"""Options of the OpenAI-compatible server, checked when they are built."""

from __future__ import annotations

import dataclasses
import os

from llmlab.errors import ServeConfigError

API_KEY_VARIABLE = "LLMLAB_API_KEY"


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """Settings of one `llmlab serve` process.

    Attributes:
        host: address to bind. Default 127.0.0.1 (this machine only); use
            0.0.0.0 only behind an API key and a firewall.
        port: TCP port. Default 8000.
        models: chat or completion models, each a role (`chat`, `base`), a
            local folder, or `NAME=SOURCE` to serve SOURCE under the id NAME.
        embedder: the embedding model (role `embedder` or a folder), or None
            for no `/v1/embeddings`.
        max_batch_size: maximum number of requests in one forward pass.
            Default 16. Raise it when many clients share a GPU; memory grows
            with it.
        batch_wait_ms: how long, in milliseconds, the first request of a batch
            waits for others to join. Default 10. Longer waits give larger
            batches and higher latency.
        max_queue: requests waiting for a batch, per model, beyond which the
            server responds with 429. Default 256.
        max_tokens_cap: largest `max_tokens` a request may ask for. Default 512.
        batching: False runs one request per forward pass (for comparison).
        api_key: bearer token every `/v1` request must send, or None for no
            check. `from_environment` reads it from LLMLAB_API_KEY.
        shutdown_timeout_s: seconds that in-flight requests get to finish after
            SIGINT or SIGTERM before they are cancelled. Default 30.
        dtype: weight dtype name (`float32`, `bfloat16`, `float16`) or None for
            the machine's default (`llmlab.default_dtype`). Exact equality of
            batched and unbatched greedy outputs is checked in float32 only.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    models: tuple[str, ...] = ("chat",)
    embedder: str | None = None
    max_batch_size: int = 16
    batch_wait_ms: float = 10.0
    max_queue: int = 256
    max_tokens_cap: int = 512
    batching: bool = True
    api_key: str | None = dataclasses.field(default=None, repr=False)
    shutdown_timeout_s: float = 30.0
    dtype: str | None = None
    num_threads: int | None = None

    def __post_init__(self) -> None:
        _check_at_least("port", self.port, 0, "0 lets the system pick a free port")
        _check_at_least("max_batch_size", self.max_batch_size, 1, "use 1 or more")
        _check_at_least("batch_wait_ms", self.batch_wait_ms, 0, "use 0 or more")
        _check_at_least("max_queue", self.max_queue, 1, "use 1 or more")
        _check_at_least("max_tokens_cap", self.max_tokens_cap, 1, "use 1 or more")
        _check_at_least(
            "shutdown_timeout_s", self.shutdown_timeout_s, 0, "use 0 or more"
        )
        if self.num_threads is not None:
            _check_at_least("num_threads", self.num_threads, 1, "use 1 or more")
        if not self.models and self.embedder is None:
            raise ServeConfigError(
                "No model to serve: pass --model (a role such as chat, or a "
                "folder) or --embedder."
            )
        if self.dtype not in (None, "float32", "bfloat16", "float16"):
            raise ServeConfigError(
                f"Invalid dtype {self.dtype!r}. Use float32, bfloat16 or float16, "
                "or leave it unset for the machine's default."
            )

    @classmethod
    def from_environment(cls, **options) -> ServeConfig:
        """Build a config from `options`, with the API key from LLMLAB_API_KEY.

        An empty LLMLAB_API_KEY counts as unset.
        """
        api_key = os.environ.get(API_KEY_VARIABLE) or None
        return cls(api_key=api_key, **options)

    @property
    def effective_batch_size(self) -> int:
        """The largest batch the server runs: 1 when batching is off."""
        return self.max_batch_size if self.batching else 1

    @property
    def effective_wait_s(self) -> float:
        """Seconds a batch waits for more requests: 0 when batching is off."""
        return self.batch_wait_ms / 1000 if self.batching else 0.0


def _check_at_least(name: str, value: float, minimum: float, fix: str) -> None:
    if value < minimum:
        raise ServeConfigError(f"Invalid {name} {value!r}: {fix}.")
