"""Requests queued for a model, and the events that carry their results back.

A request is created on the event loop and filled on the worker thread. The
worker calls `deliver`, which hands each event to the loop with
`call_soon_threadsafe`; the HTTP handler reads them with `events()` (for a
stream) or `result()`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Hashable

_seeded_keys = itertools.count()


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """Parameters that choose the next token.

    Attributes:
        temperature: 0 for greedy decoding (argmax), else the softmax
            temperature of sampling.
        top_p: nucleus sampling mass, 1.0 for none. Ignored when greedy.
        seed: seed of torch's generator for this request, or None.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def batch_key(self) -> Hashable:
        """Return the key of the batches this request may join.

        Greedy requests all share one key. Sampling requests share a batch
        only with the same temperature and top_p. A seeded sampling request
        runs alone, so its text depends on the seed and not on the other
        requests in flight.
        """
        if self.greedy:
            return ("greedy",)
        if self.seed is not None:
            return ("seeded", next(_seeded_keys))
        return ("sample", self.temperature, self.top_p)


@dataclasses.dataclass(frozen=True)
class TextDelta:
    """New text of a streaming request, as soon as it decodes cleanly."""

    text: str


@dataclasses.dataclass(frozen=True)
class Finished:
    """The final result of a request.

    Attributes:
        text: the whole generated text; None for an embedding request.
        completion_tokens: generated tokens, not counting an end-of-sequence
            token that ended the text.
        finish_reason: `stop` (end-of-sequence token or stop string) or
            `length` (max_tokens reached).
        embeddings: float32 array (N, dimensions), one row per input text of
            an embedding request.
    """

    text: str | None
    completion_tokens: int = 0
    finish_reason: str = "stop"
    embeddings: object = None


@dataclasses.dataclass(frozen=True)
class Failed:
    """The request could not finish: `error` is raised to the handler."""

    error: Exception


class QueuedRequest:
    """Base of the requests a `DynamicBatcher` runs.

    Args:
        request_id: the id from the `x-request-id` header, for log lines.
        batch_key: requests with equal keys may share a batch.
    """

    def __init__(self, request_id: str, batch_key: Hashable) -> None:
        self.request_id = request_id
        self.batch_key = batch_key
        self.cancelled = False
        self.done = False
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue = asyncio.Queue()

    def deliver(self, event: TextDelta | Finished | Failed) -> None:
        """Send `event` to the handler; safe to call from any thread."""
        if self.done:
            return
        if isinstance(event, (Finished, Failed)):
            self.done = True
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:
            # The loop closed during shutdown, so no handler is waiting any more.
            pass

    def fail(self, error: Exception) -> None:
        """Deliver `error` unless the request already finished."""
        self.deliver(Failed(error))

    def cancel(self) -> None:
        """Mark the request as abandoned by its client; the worker stops it."""
        self.cancelled = True

    async def events(self) -> AsyncIterator[TextDelta | Finished]:
        """Yield the events up to `Finished`; raise the error of `Failed`."""
        while True:
            event = await self._events.get()
            if isinstance(event, Failed):
                raise event.error
            yield event
            if isinstance(event, Finished):
                return

    async def result(self) -> Finished:
        """Wait for the final result, skipping streamed text."""
        async for event in self.events():
            if isinstance(event, Finished):
                return event
        raise AssertionError("events() ended without a Finished event")


class GenerationRequest(QueuedRequest):
    """One prompt to continue.

    Args:
        request_id: the id from the `x-request-id` header.
        prompt_ids: token ids of the prompt, special tokens included.
        max_tokens: maximum number of tokens to generate.
        sampling: greedy or sampling parameters; they decide the batch key.
        stop: strings that end the text where they first appear; the text
            returned excludes them.
        stream: deliver `TextDelta` events as tokens decode.
    """

    def __init__(
        self,
        request_id: str,
        prompt_ids: list[int],
        max_tokens: int,
        sampling: SamplingParams,
        stop: tuple[str, ...] = (),
        stream: bool = False,
    ) -> None:
        super().__init__(request_id, sampling.batch_key())
        self.prompt_ids = prompt_ids
        self.max_tokens = max_tokens
        self.sampling = sampling
        self.stop = stop
        self.stream = stream


class EmbeddingRequest(QueuedRequest):
    """Texts to embed; `Finished.embeddings` contains one vector per text."""

    def __init__(self, request_id: str, texts: list[str]) -> None:
        super().__init__(request_id, ("embed",))
        self.texts = texts
