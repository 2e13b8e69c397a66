"""Response bodies in the OpenAI format: completions, stream chunks, embeddings."""

from __future__ import annotations

import base64
import json
import time
import uuid

import numpy as np


def new_completion_id(prefix: str) -> str:
    """Return an id such as `chatcmpl-3f2a...`, unique per response."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    """Return the `usage` object; both counts come from the model's tokenizer."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


class ResponseBuilder:
    """Build the bodies of one chat completion or completion response.

    Args:
        chat: True for `/v1/chat/completions`, False for `/v1/completions`.
        model: the model id to report.
    """

    def __init__(self, chat: bool, model: str) -> None:
        self.chat = chat
        self.model = model
        self.id = new_completion_id("chatcmpl" if chat else "cmpl")
        self.created = int(time.time())

    def completion(self, choices: list[tuple[str, str]], usage_body: dict) -> dict:
        """Return the whole response; `choices` contains (text, finish_reason) pairs."""
        return {
            "id": self.id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                self._choice(index, text, finish_reason)
                for index, (text, finish_reason) in enumerate(choices)
            ],
            "usage": usage_body,
        }

    def chunk(
        self,
        index: int,
        text: str | None = None,
        finish_reason: str | None = None,
        *,
        role: bool = False,
        usage_body: dict | None = None,
    ) -> dict:
        """Return one stream chunk for choice `index`.

        `role=True` makes the opening chat chunk, which announces the
        assistant role; a chunk with `finish_reason` closes its choice.
        """
        if self.chat:
            delta = {"role": "assistant", "content": ""} if role else {}
            if text is not None:
                delta["content"] = text
            choice = {"index": index, "delta": delta}
        else:
            choice = {"index": index, "text": text or ""}
        choice["logprobs"] = None
        choice["finish_reason"] = finish_reason
        body = self._chunk_envelope([choice])
        if usage_body is not None:
            body["usage"] = usage_body
        return body

    def usage_chunk(self, usage_body: dict) -> dict:
        """Return the closing chunk that `stream_options.include_usage` requests."""
        body = self._chunk_envelope([])
        body["usage"] = usage_body
        return body

    def _chunk_envelope(self, choices: list[dict]) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": choices,
        }

    def _choice(self, index: int, text: str, finish_reason: str) -> dict:
        if self.chat:
            message = {"role": "assistant", "content": text}
            return {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        return {
            "index": index,
            "text": text,
            "logprobs": None,
            "finish_reason": finish_reason,
        }


def embedding_list(
    model: str, vectors: np.ndarray, encoding_format: str, prompt_tokens: int
) -> dict:
    """Return the `/v1/embeddings` body.

    Args:
        vectors: float32 array (N, dimensions), one row per input.
        encoding_format: `float` for JSON numbers, `base64` for the
            little-endian float32 bytes of each vector, base64-encoded (what the
            openai Python SDK requests by default).
        prompt_tokens: tokens of all inputs, special tokens included.
    """
    data = []
    for index, vector in enumerate(vectors):
        if encoding_format == "base64":
            raw = np.asarray(vector, dtype="<f4").tobytes()
            embedding = base64.b64encode(raw).decode("ascii")
        else:
            embedding = vector.tolist()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def sse_event(body: dict) -> str:
    """Return one server-sent event carrying `body` as JSON."""
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"


SSE_DONE = "data: [DONE]\n\n"
