"""End-to-end tests of `python -m llmlab.serve` through the openai SDK.

Each server runs as a real subprocess on a free loopback port, serving random
tiny models that the tests save to a temporary folder, plus the bundled
all-MiniLM-L6-v2 embedder. Every request loop is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from transformers import AutoTokenizer

from llmlab.serve.tiny_model import save_random_chat_model

# torch 2.13's own torch.utils.mkldnn calls the deprecated torch.jit.script_method
# when sentence-transformers imports it; nothing here can change that.
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"
)

API_KEY = "test-key-7f3a9c"
# A marker placed in prompts; the server log must never contain it.
PROMPT_MARKER = "zebra-quartz-lantern"
SEQ_LEN = 128
MAX_TOKENS_CAP = 48
STARTUP_TIMEOUT_S = 180
ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """A `python -m llmlab.serve` subprocess on a free loopback port."""

    def __init__(self, args: list[str], log_path: Path, api_key: str | None) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = dict(os.environ, LLMLAB_PROFILE="offline", HF_HUB_OFFLINE="1")
        env.pop("LLMLAB_API_KEY", None)
        if api_key is not None:
            env["LLMLAB_API_KEY"] = api_key
        command = [
            sys.executable,
            "-m",
            "llmlab.serve",
            "--port",
            str(self.port),
            *args,
        ]
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"server exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.process.kill()
        pytest.fail(f"server not ready after {STARTUP_TIMEOUT_S} s:\n{self.log()}")

    def health(self) -> dict:
        return httpx.get(f"{self.base_url}/health", timeout=5).json()

    def terminate(self, timeout: float = 120) -> int:
        """Send SIGTERM and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self._log.close()

    def log(self) -> str:
        # The subprocess writes to the file directly; nothing is buffered here.
        return self.log_path.read_text()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("serve-models")
    return {
        "chat": save_random_chat_model(root / "chat", seq_len=SEQ_LEN),
        "base": save_random_chat_model(
            root / "base", seq_len=SEQ_LEN, chat_template=False
        ),
    }


@pytest.fixture(scope="module")
def server(model_dirs, tmp_path_factory):
    models = f"chat={model_dirs['chat']},base={model_dirs['base']}"
    args = [
        "--model",
        models,
        "--embedder",
        "embedder",
        "--max-batch-size",
        "32",
        "--batch-wait-ms",
        "30",
        "--max-queue",
        "128",
        "--max-tokens-cap",
        str(MAX_TOKENS_CAP),
        "--num-threads",
        "1",
    ]
    log_path = tmp_path_factory.mktemp("serve-log") / "server.log"
    process = ServerProcess(args, log_path, API_KEY)
    process.wait_ready()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=60
    )


@pytest.fixture(scope="module")
def chat_tokenizer(model_dirs):
    return AutoTokenizer.from_pretrained(model_dirs["chat"])


def _messages(text: str) -> list[dict]:
    return [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": text},
    ]


def _chat(client, text: str, max_tokens: int = 8, **options):
    return client.chat.completions.create(
        model="chat",
        messages=_messages(text),
        max_tokens=max_tokens,
        temperature=0,
        **options,
    )


def test_health_needs_no_key(server):
    response = httpx.get(f"{server.base_url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert set(response.json()["models"]) == {"chat", "base", "embedder"}


def test_models_lists_every_model(client):
    assert {model.id for model in client.models.list()} == {"chat", "base", "embedder"}
    assert client.models.retrieve("chat").id == "chat"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("missing")


def test_chat_completion_and_usage(client, chat_tokenizer):
    raw = client.chat.completions.with_raw_response.create(
        model="chat",
        messages=_messages(f"Hello {PROMPT_MARKER}"),
        max_tokens=8,
        temperature=0,
    )
    completion = raw.parse()
    prompt_text = chat_tokenizer.apply_chat_template(
        _messages(f"Hello {PROMPT_MARKER}"), add_generation_prompt=True, tokenize=False
    )
    prompt_tokens = len(
        chat_tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
    )

    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.object == "chat.completion"
    assert completion.model == "chat"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.prompt_tokens == prompt_tokens
    assert completion.usage.completion_tokens == 8
    assert completion.usage.total_tokens == prompt_tokens + 8


def test_chat_stream_equals_plain(client):
    plain = _chat(client, "Tell me about batching.", max_tokens=12)

    stream = _chat(
        client,
        "Tell me about batching.",
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    text = "".join(c.choices[0].delta.content for c in content_chunks)
    assert len(content_chunks) >= 2
    assert text == plain.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.model_dump() == plain.usage.model_dump()


def test_stream_events_end_with_done(server):
    body = {
        "model": "chat",
        "messages": _messages("Hi"),
        "max_tokens": 5,
        "temperature": 0,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.stream(
        "POST", f"{server.base_url}/v1/chat/completions", json=body, headers=headers
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]

    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)
    last_chunk = json.loads(lines[-2].removeprefix("data: "))
    # Without include_usage, the usage rides on the chunk that closes the choice.
    assert last_chunk["choices"][0]["finish_reason"] == "length"
    assert last_chunk["usage"]["completion_tokens"] == 5


def test_completions_prompt_list(client):
    prompts = ["The quick brown fox", "A language model predicts"]
    alone = [
        client.completions.create(model="base", prompt=p, max_tokens=6, temperature=0)
        for p in prompts
    ]

    both = client.completions.create(
        model="base", prompt=prompts, max_tokens=6, temperature=0
    )
    streamed = client.completions.create(
        model="base", prompt=prompts, max_tokens=6, temperature=0, stream=True
    )
    streamed_texts = ["", ""]
    for chunk in streamed:
        for choice in chunk.choices:
            streamed_texts[choice.index] += choice.text

    assert [choice.index for choice in both.choices] == [0, 1]
    assert [c.text for c in both.choices] == [a.choices[0].text for a in alone]
    assert streamed_texts == [a.choices[0].text for a in alone]
    assert both.usage.prompt_tokens == sum(a.usage.prompt_tokens for a in alone)
    assert both.usage.completion_tokens == 12


def test_completions_default_max_tokens_is_16(client):
    completion = client.completions.create(model="base", prompt="Hello", temperature=0)
    assert completion.usage.completion_tokens == 16


def test_stop_string_ends_text(client):
    plain = _chat(client, "Stop somewhere.", max_tokens=16).choices[0].message.content
    stop = next(
        plain[i : i + 2]
        for i in range(3, len(plain) - 1)
        if "\ufffd" not in plain[i : i + 2] and plain.find(plain[i : i + 2]) == i
    )

    stopped = _chat(client, "Stop somewhere.", max_tokens=16, stop=[stop])

    assert stopped.choices[0].message.content == plain[: plain.find(stop)]
    assert stopped.choices[0].finish_reason == "stop"


def test_embeddings_match_sentence_transformers(client):
    from sentence_transformers import SentenceTransformer

    import llmlab

    texts = ["A cat sits on the mat.", "A kitten rests on a rug.", "Stock prices fell."]
    local = SentenceTransformer(llmlab.model_id("embedder"), device="cpu")
    expected = local.encode(texts, convert_to_numpy=True)
    token_count = sum(len(ids) for ids in local.tokenizer(texts)["input_ids"])

    as_base64 = client.embeddings.create(model="embedder", input=texts)
    as_float = client.embeddings.create(
        model="embedder", input=texts, encoding_format="float"
    )

    for response in (as_base64, as_float):
        vectors = np.array([item.embedding for item in response.data])
        assert vectors.shape == (3, 384)
        np.testing.assert_allclose(vectors, expected, atol=1e-5)
        assert response.usage.prompt_tokens == token_count
    assert [item.index for item in as_float.data] == [0, 1, 2]


def _error_body(error: openai.APIStatusError) -> dict:
    body = error.response.json()["error"]
    assert set(body) == {"message", "type", "param", "code"}
    assert error.response.headers["x-request-id"]
    return body


@pytest.mark.parametrize(
    ("options", "param", "code"),
    [
        ({"max_tokens": "ten"}, "max_tokens", "invalid_value"),
        ({"temperature": "hot"}, "temperature", "invalid_value"),
        (
            {"messages": [{"role": "user", "content": 42}]},
            "messages[0].content",
            "invalid_value",
        ),
        (
            {"messages": [{"role": "robot", "content": "hi"}]},
            "messages[0].role",
            "invalid_value",
        ),
        ({"messages": []}, "messages", "invalid_value"),
        ({"max_tokens": MAX_TOKENS_CAP + 1}, "max_tokens", "max_tokens_too_large"),
        ({"max_tokens": 0}, "max_tokens", "invalid_value"),
        ({"frequency_penalty": 0.5}, "frequency_penalty", "unsupported_parameter"),
        ({"n": 2}, "n", "invalid_value"),
    ],
)
def test_chat_rejects_invalid_fields(client, options, param, code):
    request = {"model": "chat", "messages": _messages("Hi"), "max_tokens": 4, **options}
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(**request)
    body = _error_body(raised.value)
    assert raised.value.status_code == 400
    assert body["type"] == "invalid_request_error"
    assert body["param"] == param
    assert body["code"] == code


def test_malformed_json_is_400(server):
    response = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        content=b'{"model": "chat", "messages": [',
        headers={
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert "not valid JSON" in response.json()["error"]["message"]


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="gpt-4o", messages=_messages("Hi"))
    body = _error_body(raised.value)
    assert body["code"] == "model_not_found"
    assert "chat, base" in body["message"]


def test_prompt_longer_than_context_is_400(client, chat_tokenizer):
    long_text = "The quick brown fox jumps over the lazy dog. " * 20
    with pytest.raises(openai.BadRequestError) as raised:
        _chat(client, long_text, max_tokens=4)
    body = _error_body(raised.value)
    assert body["code"] == "context_length_exceeded"
    assert f"maximum context length is {SEQ_LEN}" in body["message"]

    # A prompt that fits alone but not with max_tokens is rejected the same way.
    prompt = "Hello " * 25
    prompt_tokens = len(chat_tokenizer(prompt)["input_ids"])
    assert prompt_tokens < SEQ_LEN < prompt_tokens + MAX_TOKENS_CAP
    with pytest.raises(openai.BadRequestError, match="context length"):
        client.completions.create(
            model="base", prompt=prompt, max_tokens=MAX_TOKENS_CAP
        )


def test_embedding_input_too_long_is_400(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model="embedder", input=["word " * 400])
    assert _error_body(raised.value)["code"] == "context_length_exceeded"


def test_chat_on_base_model_is_400(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="base", messages=_messages("Hi"))
    assert _error_body(raised.value)["code"] == "no_chat_template"


def test_bad_or_missing_api_key_is_401(server):
    wrong = openai.OpenAI(
        base_url=f"{server.base_url}/v1", api_key="wrong", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError) as raised:
        wrong.models.list()
    assert _error_body(raised.value)["code"] == "invalid_api_key"

    response = httpx.get(f"{server.base_url}/v1/models")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"


def test_unknown_path_is_404(server):
    response = httpx.get(f"{server.base_url}/v2/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_64_concurrent_requests_equal_alone(client, server):
    # 16 distinct requests: prompts of different lengths, different max_tokens.
    cases = [
        (f"Question {i}: " + "tell me more " * (i % 5), 4 + (i * 3) % 21)
        for i in range(16)
    ]
    alone = [
        _chat(client, text, max_tokens=n).choices[0].message.content
        for text, n in cases
    ]
    batches_before = server.health()["models"]["chat"]["batches"]

    async def one(async_client, text, max_tokens, stream):
        if not stream:
            response = await async_client.chat.completions.create(
                model="chat",
                messages=_messages(text),
                max_tokens=max_tokens,
                temperature=0,
            )
            return response.choices[0].message.content
        stream = await async_client.chat.completions.create(
            model="chat",
            messages=_messages(text),
            max_tokens=max_tokens,
            temperature=0,
            stream=True,
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        return "".join(parts)

    async def all_at_once():
        async_client = openai.AsyncOpenAI(
            base_url=f"{server.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=60
        )
        jobs = [
            one(async_client, text, n, stream=(copy == 3))
            for copy in range(4)
            for text, n in cases
        ]
        try:
            return await asyncio.wait_for(asyncio.gather(*jobs), timeout=60)
        finally:
            await async_client.close()

    answers = asyncio.run(all_at_once())

    assert len(answers) == 64
    expected = [answer for _ in range(4) for answer in alone]
    mismatches = [i for i, (a, e) in enumerate(zip(answers, expected)) if a != e]
    assert mismatches == []
    stats = server.health()["models"]["chat"]
    assert stats["largest_batch"] > 1
    assert stats["batches"] - batches_before < 64


def test_log_hides_key_and_prompts(client, server):
    raw = client.chat.completions.with_raw_response.create(
        model="chat", messages=_messages(PROMPT_MARKER), max_tokens=2, temperature=0
    )
    request_id = raw.headers["x-request-id"]
    with pytest.raises(openai.NotFoundError) as raised:
        client.chat.completions.create(model="nope", messages=_messages(PROMPT_MARKER))
    failed_id = raised.value.response.headers["x-request-id"]

    log = server.log()
    assert f"{request_id} started: POST /v1/chat/completions" in log
    assert f"{request_id} finished: status 200" in log
    assert f"{failed_id} rejected with 404 model_not_found" in log
    assert API_KEY not in log
    assert PROMPT_MARKER not in log


def test_sigterm_exits_zero(server):
    assert server.terminate() == 0
    log = server.log()
    assert "llmlab serve stopped" in log
    assert "Traceback" not in log


def test_full_queue_is_429_and_sigint_finishes_queued(model_dirs, tmp_path):
    # One queue slot, and a batch window of 3 s that keeps the first request
    # in the queue while the second one arrives.
    args = [
        "--model",
        f"chat={model_dirs['chat']}",
        "--max-queue",
        "1",
        "--batch-wait-ms",
        "3000",
        "--max-batch-size",
        "8",
        "--num-threads",
        "1",
    ]
    server = ServerProcess(args, tmp_path / "server.log", api_key=None)
    try:
        server.wait_ready()
        client = openai.OpenAI(
            base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0
        )
        outcome = {}

        def first_request():
            try:
                outcome["first"] = _chat(client, "Wait in the queue.", max_tokens=4)
            except openai.APIError as error:
                outcome["error"] = error

        thread = threading.Thread(target=first_request)
        thread.start()
        deadline = time.monotonic() + 10
        while server.health()["models"]["chat"]["queued"] < 1:
            assert time.monotonic() < deadline, "first request never reached the queue"
            time.sleep(0.02)

        with pytest.raises(openai.RateLimitError) as raised:
            _chat(client, "No room for me.", max_tokens=4)
        body = _error_body(raised.value)
        assert raised.value.status_code == 429
        assert body["code"] == "queue_full"
        assert raised.value.response.headers["retry-after"] == "1"

        # SIGINT (Ctrl+C) while the first request still waits: it must finish.
        assert server.process.poll() is None
        server.process.send_signal(signal.SIGINT)
        thread.join(timeout=30)
        assert "error" not in outcome
        assert outcome["first"].choices[0].finish_reason == "length"
        assert server.terminate() == 0
    finally:
        server.terminate()


def test_abandoned_request_is_dropped(model_dirs, tmp_path):
    # A batch window of 2 s keeps the request in the queue after its client
    # has timed out, so the server must notice the disconnect and never run it.
    args = [
        "--model",
        f"chat={model_dirs['chat']}",
        "--batch-wait-ms",
        "2000",
        "--num-threads",
        "1",
    ]
    server = ServerProcess(args, tmp_path / "server.log", api_key=None)
    try:
        server.wait_ready()
        client = openai.OpenAI(
            base_url=f"{server.base_url}/v1",
            api_key="unused",
            max_retries=0,
            timeout=0.3,
        )
        with pytest.raises(openai.APITimeoutError):
            _chat(client, "Nobody waits for this answer.", max_tokens=4)

        deadline = time.monotonic() + 20
        while True:
            stats = server.health()["models"]["chat"]
            if stats["queued"] == 0 and stats["running"] == 0:
                break
            assert time.monotonic() < deadline, f"request still in the server: {stats}"
            time.sleep(0.1)
        assert stats["requests"] == 0
        assert "client disconnected; generation cancelled" in server.log()
        assert server.terminate() == 0
    finally:
        server.terminate()


def test_bad_model_path_exits_2(tmp_path):
    missing = tmp_path / "no-such-model"
    result = subprocess.run(
        [sys.executable, "-m", "llmlab.serve", "--model", str(missing), "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT_S,
        env=dict(os.environ, LLMLAB_PROFILE="offline", HF_HUB_OFFLINE="1"),
    )
    assert result.returncode == 2
    assert str(missing) in result.stderr
