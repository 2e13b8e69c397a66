"""In-process tests of the server's batcher, generation worker and options.

The HTTP server itself is tested in test_serve.py; these tests run the same
components directly on a random tiny model, without sockets.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmlab.errors import QueueFullError, ServeConfigError, ServerClosingError
from llmlab.serve.batcher import DynamicBatcher
from llmlab.serve.config import ServeConfig
from llmlab.serve.generation import GenerationWorker
from llmlab.serve.models import ModelSpec, parse_model_specs
from llmlab.serve.requests import (
    Finished,
    GenerationRequest,
    QueuedRequest,
    SamplingParams,
    TextDelta,
)
from llmlab.serve.tiny_model import save_random_chat_model

GREEDY = SamplingParams(temperature=0.0)
PROMPTS = [
    "Hello",
    "The quick brown fox jumps over the lazy dog.",
    "A language model",
    "Left padding keeps the last real token of every row at the same position. Greedy",
]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Two threads on a CPU that other processes keep busy slow a tiny model
    # down many times over; one thread keeps these tests fast everywhere.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory):
    folder = save_random_chat_model(tmp_path_factory.mktemp("serve-unit") / "chat")
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return model, tokenizer


def _reference_ids(model, tokenizer, prompt: str, max_tokens: int) -> list[int]:
    """Greedy continuation of `prompt` alone, with plain `generate`."""
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_tokens,
            do_sample=False,
            eos_token_id=None,
            pad_token_id=tokenizer.pad_token_id,
        )
    return out[0, ids.shape[1] :].tolist()


async def _run_worker_batch(worker, prompts, max_tokens, stream=False, stop=()):
    """Run one batch on `worker` as the batcher would; return each request's events."""
    requests = [
        GenerationRequest(
            f"req_{i}",
            worker.completion_prompt_ids(prompt),
            max_tokens[i],
            GREEDY,
            stop=stop,
            stream=stream,
        )
        for i, prompt in enumerate(prompts)
    ]
    await asyncio.to_thread(worker.run_batch, requests, threading.Event())
    results = []
    for request in requests:
        results.append([event async for event in request.events()])
    return results


def test_worker_batch_equals_plain_generate(chat_model):
    model, tokenizer = chat_model
    worker = GenerationWorker("chat", model, tokenizer)
    max_tokens = [12, 5, 9, 12]
    references = [
        _reference_ids(model, tokenizer, prompt, n)
        for prompt, n in zip(PROMPTS, max_tokens)
    ]

    results = asyncio.run(_run_worker_batch(worker, PROMPTS, max_tokens))

    for events, reference, n in zip(results, references, max_tokens):
        final = events[-1]
        assert isinstance(final, Finished)
        assert final.text == tokenizer.decode(reference, skip_special_tokens=True)
        assert final.completion_tokens == n
        assert final.finish_reason == "length"


def test_worker_stops_each_row_at_its_end_token(chat_model):
    model, tokenizer = chat_model
    references = [
        _reference_ids(model, tokenizer, prompt, 10) for prompt in PROMPTS[:2]
    ]
    # Declare the third token of the first row an end token, as chat models do
    # with an end-of-turn token, provided the second row never produces it.
    end_token = references[0][2]
    assert end_token not in references[0][:2]
    assert end_token not in references[1]
    worker = GenerationWorker("chat", model, tokenizer)
    worker.eos_token_ids = worker.eos_token_ids | {end_token}

    first, second = asyncio.run(_run_worker_batch(worker, PROMPTS[:2], [10, 10]))

    assert first[-1].finish_reason == "stop"
    assert first[-1].completion_tokens == 2
    assert first[-1].text == tokenizer.decode(
        references[0][:2], skip_special_tokens=True
    )
    assert second[-1].finish_reason == "length"
    assert second[-1].text == tokenizer.decode(references[1], skip_special_tokens=True)


def test_worker_stream_deltas_add_up_to_text(chat_model):
    model, tokenizer = chat_model
    worker = GenerationWorker("chat", model, tokenizer)

    results = asyncio.run(_run_worker_batch(worker, PROMPTS, [16] * 4, stream=True))

    for events in results:
        deltas = [event.text for event in events if isinstance(event, TextDelta)]
        assert len(deltas) >= 2
        assert "".join(deltas) == events[-1].text


def test_worker_stop_string_truncates_and_holds_back(chat_model):
    model, tokenizer = chat_model
    worker = GenerationWorker("chat", model, tokenizer)
    plain = asyncio.run(_run_worker_batch(worker, PROMPTS[1:2], [16]))[0][-1].text
    stop = _clean_substring(plain, start=3)

    events = asyncio.run(
        _run_worker_batch(worker, PROMPTS[1:2], [16], stream=True, stop=(stop,))
    )[0]

    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    assert events[-1].text == plain[: plain.find(stop)]
    assert events[-1].finish_reason == "stop"
    assert "".join(deltas) == events[-1].text
    assert stop not in "".join(deltas)


def test_close_aborts_running_batch(chat_model):
    model, tokenizer = chat_model
    worker = GenerationWorker("chat", model, tokenizer)

    async def scenario():
        batcher = DynamicBatcher(
            "chat", worker.run_batch, max_batch_size=4, wait_s=0.0, max_queue=4
        )
        batcher.start()
        request = GenerationRequest(
            "req_long", worker.completion_prompt_ids("Hello"), 200, GREEDY, stream=True
        )
        batcher.submit(request)
        events = request.events()
        deltas = [await anext(events)]
        await batcher.close()
        with pytest.raises(ServerClosingError):
            async for event in events:
                deltas.append(event)
        return deltas

    deltas = asyncio.run(scenario())

    assert all(isinstance(delta, TextDelta) for delta in deltas)
    assert len(deltas) < 100


def _clean_substring(text: str, start: int) -> str:
    """Return two characters of `text` at or after `start`, without U+FFFD."""
    for position in range(start, len(text) - 1):
        candidate = text[position : position + 2]
        if "\ufffd" not in candidate and text.find(candidate) == position:
            return candidate
    raise AssertionError(f"no clean two-character substring in {text!r}")


class _Item(QueuedRequest):
    def __init__(self, name: str, key: str) -> None:
        super().__init__(name, (key,))
        self.name = name


def _recording_batcher(batches: list, **options) -> DynamicBatcher:
    def run_batch(items, abort):
        batches.append([item.name for item in items])
        for item in items:
            item.deliver(Finished(item.name))

    return DynamicBatcher("test", run_batch, **options)


def test_batcher_groups_by_key_up_to_max_size():
    async def scenario():
        batches = []
        batcher = _recording_batcher(
            batches, max_batch_size=3, wait_s=0.2, max_queue=16
        )
        batcher.start()
        items = [_Item(f"{key}{i}", key) for i, key in enumerate("aabaaab")]
        for item in items:
            batcher.submit(item)
        results = await asyncio.gather(*(item.result() for item in items))
        await batcher.close()
        return batches, [result.text for result in results], batcher.stats()

    batches, texts, stats = asyncio.run(scenario())

    assert batches == [["a0", "a1", "a3"], ["b2", "b6"], ["a4", "a5"]]
    assert texts == ["a0", "a1", "b2", "a3", "a4", "a5", "b6"]
    assert stats.largest_batch == 3
    assert stats.requests == 7


def test_batcher_raises_when_queue_full():
    async def scenario():
        batcher = _recording_batcher([], max_batch_size=4, wait_s=10.0, max_queue=2)
        batcher.start()
        first, second = _Item("a0", "a"), _Item("a1", "a")
        batcher.submit(first)
        batcher.submit(second)
        with pytest.raises(QueueFullError, match="2 requests waiting"):
            batcher.submit(_Item("a2", "a"))
        await batcher.close()
        for item in (first, second):
            with pytest.raises(ServerClosingError):
                await item.result()
        with pytest.raises(ServerClosingError):
            batcher.submit(_Item("a3", "a"))

    asyncio.run(scenario())


def test_sampling_batch_keys():
    assert SamplingParams(0.0, 0.5).batch_key() == SamplingParams(0.0).batch_key()
    assert SamplingParams(0.7).batch_key() == SamplingParams(0.7).batch_key()
    assert SamplingParams(0.7).batch_key() != SamplingParams(0.8).batch_key()
    assert (
        SamplingParams(0.7, seed=1).batch_key()
        != SamplingParams(0.7, seed=1).batch_key()
    )


def test_parse_model_specs():
    specs = parse_model_specs(["chat,small=/models/a", "/models/b/"])
    assert specs == [
        ModelSpec("chat", "chat"),
        ModelSpec("small", "/models/a"),
        ModelSpec("b", "/models/b/"),
    ]
    with pytest.raises(ServeConfigError, match="'a'"):
        parse_model_specs(["/x/a", "/y/a"])
    with pytest.raises(ServeConfigError, match="NAME=SOURCE"):
        parse_model_specs(["=/x/a"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_batch_size": 0}, "max_batch_size 0"),
        ({"max_queue": 0}, "max_queue 0"),
        ({"batch_wait_ms": -1}, "batch_wait_ms -1"),
        ({"max_tokens_cap": 0}, "max_tokens_cap 0"),
        ({"models": (), "embedder": None}, "No model to serve"),
        ({"dtype": "int8"}, "Invalid dtype 'int8'"),
    ],
)
def test_serve_config_rejects_bad_values(options, message):
    with pytest.raises(ServeConfigError, match=message):
        ServeConfig(**options)


def test_serve_config_hides_api_key():
    config = ServeConfig(api_key="secret-value")
    assert "secret-value" not in repr(config)
    assert ServeConfig(batching=False).effective_batch_size == 1
