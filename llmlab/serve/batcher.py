"""Dynamic batching: requests that arrive together run as one batch.

The batcher lives on the server's event loop. `submit` puts a request in a
bounded queue, or raises `QueueFullError` when the queue is full. A background
task waits for the first request, then for up to `wait_s` seconds or until
`max_batch_size` requests with the same `batch_key` are queued. It hands them
to `run_batch` on a single worker thread, so the event loop keeps serving
other connections while the model runs. Requests with other keys (other
sampling parameters) stay queued for a later batch, in arrival order.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Protocol

from llmlab.errors import QueueFullError, ServerClosingError

logger = logging.getLogger(__name__)


class BatchItem(Protocol):
    """Interface that the batcher requires of a request."""

    request_id: str
    batch_key: Hashable
    cancelled: bool

    def fail(self, error: Exception) -> None:
        """Deliver `error` to the waiting client, unless a result was delivered."""


RunBatch = Callable[[list, threading.Event], None]


@dataclasses.dataclass
class BatcherStats:
    """Counters reported by `/health`."""

    queued: int = 0
    running: int = 0
    batches: int = 0
    requests: int = 0
    largest_batch: int = 0


class DynamicBatcher:
    """Collect requests for a short window and run each group as one batch.

    Args:
        name: the model id, used in thread names and log lines.
        run_batch: called on the worker thread with the list of requests and a
            `threading.Event` that is set when the server shuts down. It must
            deliver a result or an error to every request it receives.
        max_batch_size: maximum number of requests per batch; 1 turns batching off.
        wait_s: seconds the first request of a batch waits for others to join.
        max_queue: maximum number of waiting requests; `submit` raises `QueueFullError`
            beyond it.
    """

    def __init__(
        self,
        name: str,
        run_batch: RunBatch,
        *,
        max_batch_size: int,
        wait_s: float,
        max_queue: int,
    ) -> None:
        self.name = name
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self.max_queue = max_queue
        self._run_batch = run_batch
        self._queue: collections.deque[tuple[float, BatchItem]] = collections.deque()
        self._arrived = asyncio.Event()
        self._abort = threading.Event()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"batch-{name}"
        )
        self._task: asyncio.Task | None = None
        self._closing = False
        self._stats = BatcherStats()

    def start(self) -> None:
        """Start the collecting task on the running event loop."""
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(
            self._serve_forever(), name=f"batcher-{self.name}"
        )

    def submit(self, item: BatchItem) -> None:
        """Queue `item` for the next batch with its key.

        Raises:
            ServerClosingError: the batcher is shutting down.
            QueueFullError: `max_queue` requests are already waiting.
        """
        if self._closing:
            raise ServerClosingError(f"Model {self.name!r} is shutting down.")
        if len(self._queue) >= self.max_queue:
            raise QueueFullError(
                f"The queue of model {self.name!r} is full "
                f"({self.max_queue} requests waiting)."
            )
        self._queue.append((asyncio.get_running_loop().time(), item))
        self._arrived.set()

    def stats(self) -> BatcherStats:
        """Return a copy of the counters, with the current queue length."""
        return dataclasses.replace(self._stats, queued=len(self._queue))

    async def close(self) -> None:
        """Stop taking requests, fail the queued ones, stop the running batch."""
        self._closing = True
        self._abort.set()
        for _, item in self._queue:
            item.fail(ServerClosingError(f"Model {self.name!r} is shutting down."))
        if self._queue:
            logger.info("%s: cancelled %d queued requests", self.name, len(self._queue))
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        # The batch on the worker thread checks the abort event at its next step.
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def _serve_forever(self) -> None:
        while True:
            batch = await self._next_batch()
            if batch:
                await self._run(batch)

    async def _next_batch(self) -> list[BatchItem]:
        loop = asyncio.get_running_loop()
        while not self._drop_cancelled():
            self._arrived.clear()
            await self._arrived.wait()

        # Wait for the window that the oldest request opened, or a full batch.
        first_arrival, head = self._queue[0]
        deadline = first_arrival + self.wait_s
        while self._count(head.batch_key) < self.max_batch_size:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        return self._pop(head.batch_key)

    def _drop_cancelled(self) -> int:
        """Remove requests whose client went away; return how many remain."""
        active = [(t, item) for t, item in self._queue if not item.cancelled]
        if len(active) != len(self._queue):
            self._queue = collections.deque(active)
        return len(self._queue)

    def _count(self, key: Hashable) -> int:
        return sum(1 for _, item in self._queue if item.batch_key == key)

    def _pop(self, key: Hashable) -> list[BatchItem]:
        batch, rest = [], collections.deque()
        for arrival, item in self._queue:
            if item.batch_key == key and len(batch) < self.max_batch_size:
                if not item.cancelled:
                    batch.append(item)
            else:
                rest.append((arrival, item))
        self._queue = rest
        return batch

    async def _run(self, batch: list[BatchItem]) -> None:
        loop = asyncio.get_running_loop()
        self._stats.running = len(batch)
        try:
            await loop.run_in_executor(
                self._executor, self._run_batch, batch, self._abort
            )
        except Exception as error:
            request_ids = ", ".join(item.request_id for item in batch)
            logger.exception(
                "%s: batch of %d requests failed (request ids %s)",
                self.name,
                len(batch),
                request_ids,
            )
            for item in batch:
                item.fail(error)
        finally:
            self._stats.running = 0
            self._stats.batches += 1
            self._stats.requests += len(batch)
            self._stats.largest_batch = max(self._stats.largest_batch, len(batch))
