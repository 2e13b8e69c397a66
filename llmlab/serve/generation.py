"""Batched text generation for the server: one left-padded `generate` per batch.

Every prompt of a batch is padded on the left, so each row ends at its last
real token, and the attention mask hides the padding. `generate` derives the
position ids from that mask, so a row gets the same position ids as when it
runs alone. In float32 on a CPU, the greedy tokens of a batched row equal those of
the same prompt run alone (tests/test_serve.py checks it for 64 requests).

A stopping criterion receives every new token of every row at every step. It
stops each row at its own end-of-sequence token, stop string or `max_tokens`,
sends the text of streaming rows as soon as it decodes, and ends the batch
when the server shuts down.
"""

from __future__ import annotations

import copy
import logging
import threading

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from llmlab.errors import ChatTemplateError, ConfigError, ServerClosingError
from llmlab.serve.requests import Finished, GenerationRequest, SamplingParams, TextDelta

logger = logging.getLogger(__name__)

# The replacement character that a byte-level tokenizer decodes from the first
# bytes of a multi-byte UTF-8 character. Streaming delays it until the
# character is complete.
INCOMPLETE_CHARACTER = "\ufffd"


class GenerationWorker:
    """A causal language model and its tokenizer, run one batch at a time.

    Args:
        name: the model id clients send in `model`.
        model: a `transformers` causal language model in eval mode.
        tokenizer: its tokenizer; a pad token is needed (`llmlab.load_tokenizer`
            sets one). The worker pads on the left itself.
    """

    def __init__(self, name: str, model, tokenizer) -> None:
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        # Prompts are encoded on the event loop while the worker thread decodes.
        # A Rust tokenizer raises "Already borrowed" when one thread changes its
        # padding or truncation settings while another uses it, so each thread
        # gets its own copy.
        self._encoder = copy.deepcopy(tokenizer)
        self.context_length = context_length(model.config, name)
        self.eos_token_ids = eos_token_ids(model, tokenizer)
        if tokenizer.pad_token_id is not None:
            self.pad_token_id = tokenizer.pad_token_id
        else:
            self.pad_token_id = min(self.eos_token_ids)

    @property
    def has_chat_template(self) -> bool:
        return getattr(self.tokenizer, "chat_template", None) is not None

    def chat_prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """Render `messages` with the chat template and return the token ids.

        Raises:
            ChatTemplateError: the tokenizer has no chat template.
        """
        if not self.has_chat_template:
            raise ChatTemplateError(
                f"Model {self.name!r} has no chat template: it is a base model "
                "trained on plain text. Send the text to /v1/completions, or "
                "serve a chat model."
            )
        text = self._encoder.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        # The template already wrote any special tokens the model expects.
        return self._encoder(text, add_special_tokens=False)["input_ids"]

    def completion_prompt_ids(self, prompt: str) -> list[int]:
        """Return the token ids of a plain-text prompt, special tokens included."""
        return self._encoder(prompt)["input_ids"]

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens of `text` without special tokens."""
        return len(self._encoder(text, add_special_tokens=False)["input_ids"])

    def run_batch(self, requests: list[GenerationRequest], abort: threading.Event):
        """Generate for every request in one `generate` call (worker thread).

        All requests must share one batch key, so the sampling parameters of
        the first request hold for the whole batch.
        """
        rows = [_RowState(request, self) for request in requests]
        input_ids, attention_mask = self._left_pad([r.prompt_ids for r in requests])
        sampling = requests[0].sampling
        max_new_tokens = max(request.max_tokens for request in requests)
        if sampling.seed is not None and not sampling.greedy:
            # NOTE: this seeds torch's global generator. A second model sampling
            # at the same time on its own thread draws from it too, and then the
            # seeded text differs from run to run.
            torch.manual_seed(sampling.seed)

        with torch.inference_mode():
            self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=self._generation_config(sampling, max_new_tokens),
                stopping_criteria=StoppingCriteriaList([_BatchTracker(rows, abort)]),
            )
        for row in rows:
            if not row.finished:
                row.finish("length")

    def _left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        seq_len = max(len(ids) for ids in prompts)
        input_ids = torch.full((len(prompts), seq_len), self.pad_token_id)  # (B, T)
        attention_mask = torch.zeros((len(prompts), seq_len), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, seq_len - len(ids) :] = torch.tensor(ids)
            attention_mask[row, seq_len - len(ids) :] = 1
        device = self.model.device
        return input_ids.to(device), attention_mask.to(device)

    def _generation_config(self, sampling: SamplingParams, max_new_tokens: int):
        # Set every field that changes the choice of token, so that values in
        # the model's generation_config.json (a repetition penalty, top_k)
        # cannot override the request's parameters.
        options = dict(
            max_new_tokens=max_new_tokens,
            eos_token_id=sorted(self.eos_token_ids),
            pad_token_id=self.pad_token_id,
            num_beams=1,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
        )
        if sampling.greedy:
            return GenerationConfig(do_sample=False, **options)
        return GenerationConfig(
            do_sample=True,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=0,
            **options,
        )


class _BatchTracker(StoppingCriteria):
    """Hand each new token to its row; report which rows are finished."""

    def __init__(self, rows: list[_RowState], abort: threading.Event) -> None:
        self.rows = rows
        self.abort = abort

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        if self.abort.is_set():
            for row in self.rows:
                row.request.fail(ServerClosingError("The server is shutting down."))
                row.finished = True
        else:
            new_tokens = input_ids[:, -1].tolist()  # (B,)
            for row, token_id in zip(self.rows, new_tokens):
                if not row.finished:
                    row.add_token(token_id)
        finished = [row.finished for row in self.rows]
        return torch.tensor(finished, dtype=torch.bool, device=input_ids.device)


class _RowState:
    """The tokens and text of one request while its batch runs."""

    def __init__(self, request: GenerationRequest, worker: GenerationWorker) -> None:
        self.request = request
        self.worker = worker
        self.token_ids: list[int] = []
        self.finished = False
        self._text = ""
        self._sent = ""
        self._track_text = request.stream or bool(request.stop)
        # A stream delays the last characters, which may start a stop string.
        self._holdback = max((len(s) for s in request.stop), default=1) - 1

    def add_token(self, token_id: int) -> None:
        if token_id in self.worker.eos_token_ids:
            self.finish("stop")
            return
        self.token_ids.append(token_id)
        if self._track_text and self._update_text():
            return
        if len(self.token_ids) >= self.request.max_tokens:
            self.finish("length")
        elif self.request.cancelled:
            self.finish("cancelled")

    def finish(self, reason: str, text: str | None = None) -> None:
        self.finished = True
        if text is None:
            text = self._decode()
        if self.request.stream and text.startswith(self._sent) and text != self._sent:
            self.request.deliver(TextDelta(text[len(self._sent) :]))
        self.request.deliver(Finished(text, len(self.token_ids), reason))

    def _update_text(self) -> bool:
        """Decode the row; finish it at a stop string. Return True if finished."""
        previous_len = len(self._text)
        self._text = self._decode()
        stop_at = self._find_stop(max(0, previous_len - self._holdback))
        if stop_at is not None:
            self.finish("stop", self._text[:stop_at])
            return True
        if self.request.stream:
            self._send_ready_text()
        return False

    def _find_stop(self, start: int) -> int | None:
        positions = [self._text.find(stop, start) for stop in self.request.stop]
        found = [position for position in positions if position >= 0]
        return min(found) if found else None

    def _send_ready_text(self) -> None:
        ready = self._text[: len(self._text) - self._holdback]
        ready = ready.rstrip(INCOMPLETE_CHARACTER)
        # NOTE: decoding the whole row each step assumes that appending a token
        # never changes the text already decoded, which byte-level BPE keeps.
        # With a tokenizer that breaks it, the stream stops at the first
        # changed character, while the final (non-streamed) text stays right.
        if ready.startswith(self._sent) and len(ready) > len(self._sent):
            self.request.deliver(TextDelta(ready[len(self._sent) :]))
            self._sent = ready

    def _decode(self) -> str:
        # No clean-up of spaces before punctuation: it rewrites text already
        # streamed when the punctuation arrives.
        return self.worker.tokenizer.decode(
            self.token_ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )


def context_length(config, name: str) -> int:
    """Return the maximum number of tokens (prompt plus completion) of a model.

    Raises:
        ConfigError: the configuration names no context length.
    """
    for field in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, field, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ConfigError(
        f"The configuration of model {name!r} has no context length "
        "(max_position_embeddings or n_positions). Add max_position_embeddings "
        "to its config.json."
    )


def eos_token_ids(model, tokenizer) -> frozenset[int]:
    """Return every token id that ends a text: the tokenizer's and the model's.

    Chat models often list an end-of-turn token next to the end-of-sequence
    token in `generation_config.eos_token_id`.

    Raises:
        ConfigError: neither the tokenizer nor the model names one.
    """
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    if not ids:
        raise ConfigError(
            "The model has no end-of-sequence token, so generation could only "
            "stop at max_tokens. Set tokenizer.eos_token or "
            "generation_config.eos_token_id."
        )
    return frozenset(ids)
