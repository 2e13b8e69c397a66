"""Sentence embeddings for `/v1/embeddings`, batched across requests."""

from __future__ import annotations

import copy
import threading

from llmlab.errors import ServerClosingError
from llmlab.serve.requests import EmbeddingRequest, Finished

# Texts per forward pass inside one `encode` call.
ENCODE_BATCH_SIZE = 64


class EmbeddingWorker:
    """A sentence-transformers model run one batch of requests at a time.

    Args:
        name: the model id clients send in `model`.
        model: a `sentence_transformers.SentenceTransformer`.
    """

    def __init__(self, name: str, model) -> None:
        self.name = name
        self.model = model
        # Token counts run on the event loop while `encode` tokenizes with
        # padding on the worker thread. A shared Rust tokenizer would raise
        # "Already borrowed", so counting uses a copy.
        self._counter = copy.deepcopy(model.tokenizer)
        self.max_seq_length = model.max_seq_length
        # sentence-transformers 6 renamed get_sentence_embedding_dimension.
        get_dimension = getattr(model, "get_embedding_dimension", None)
        if get_dimension is None:
            get_dimension = model.get_sentence_embedding_dimension
        self.dimensions = get_dimension()

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Return the token count of each text, special tokens included."""
        encoded = self._counter(texts, add_special_tokens=True)
        return [len(ids) for ids in encoded["input_ids"]]

    def run_batch(self, requests: list[EmbeddingRequest], abort: threading.Event):
        """Embed the texts of every request in one `encode` call (worker thread)."""
        if abort.is_set():
            for request in requests:
                request.fail(ServerClosingError("The server is shutting down."))
            return
        texts = [text for request in requests for text in request.texts]
        vectors = self.model.encode(
            texts,
            batch_size=ENCODE_BATCH_SIZE,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        start = 0
        for request in requests:
            end = start + len(request.texts)
            request.deliver(Finished(None, embeddings=vectors[start:end]))
            start = end
