"""The endpoints: models, chat completions, completions, embeddings, health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from llmlab.serve import api_errors
from llmlab.serve.app import (
    ServingState,
    error_event,
    log_api_error,
    request_id_of,
    to_api_error,
)
from llmlab.serve.generation import GenerationWorker
from llmlab.serve.requests import (
    EmbeddingRequest,
    Finished,
    GenerationRequest,
    SamplingParams,
    TextDelta,
)
from llmlab.serve.responses import (
    SSE_DONE,
    ResponseBuilder,
    embedding_list,
    sse_event,
    usage,
)
from llmlab.serve.schemas import (
    ChatCompletionRequest,
    CompletionRequest,
    parse_body,
)
from llmlab.serve.schemas import EmbeddingRequest as EmbeddingBody

logger = logging.getLogger(__name__)
router = APIRouter()

# OpenAI's default max_tokens for /v1/completions; chat completions default to
# the rest of the context, up to the server's cap.
DEFAULT_COMPLETION_MAX_TOKENS = 16
# Seconds between checks whether the client of a non-streaming request has
# disconnected (a client timeout, say), so that its generation stops early.
DISCONNECT_POLL_S = 0.05
# nginx's status for a request whose client closed the connection. No client
# receives it, but the log line shows why the request ended.
CLIENT_CLOSED_REQUEST = 499


def _state(request: Request) -> ServingState:
    return request.app.state.serving


@router.get("/health")
async def health(request: Request) -> dict:
    """Report liveness and, per model, queued and running requests and batch counts."""
    state = _state(request)
    return {
        "status": "ok",
        "models": {
            name: vars(batcher.stats()) for name, batcher in state.batchers.items()
        },
    }


@router.get("/v1/models")
async def list_models(request: Request) -> dict:
    state = _state(request)
    return {
        "object": "list",
        "data": [_model_card(state, name) for name in state.registry.ids()],
    }


@router.get("/v1/models/{model:path}")
async def retrieve_model(model: str, request: Request) -> dict:
    state = _state(request)
    if model not in state.registry.ids():
        raise api_errors.model_not_found(model, state.registry.ids())
    return _model_card(state, model)


def _model_card(state: ServingState, name: str) -> dict:
    return {
        "id": name,
        "object": "model",
        "created": state.created,
        "owned_by": "llmlab",
    }


@router.post("/v1/chat/completions")
async def create_chat_completion(request: Request):
    body = await parse_body(request, ChatCompletionRequest)
    worker, batcher = _state(request).generator(body.model)
    messages = [message.as_template_input() for message in body.messages]
    try:
        prompt_ids = worker.chat_prompt_ids(messages)
    except jinja2.TemplateError as error:
        # Templates raise for conversations they do not support, such as a
        # system message or two user turns in a row.
        raise api_errors.invalid_request(
            f"The chat template of model {body.model!r} rejected the messages: "
            f"{error}. Change the roles or order of the messages.",
            param="messages",
            code="invalid_messages",
        ) from None
    max_tokens = _resolve_max_tokens(
        worker,
        len(prompt_ids),
        body.requested_max_tokens(),
        _state(request).config.max_tokens_cap,
        default=None,
        param="messages",
    )
    return await _generate(
        request, body, worker, batcher, [(prompt_ids, max_tokens)], chat=True
    )


@router.post("/v1/completions")
async def create_completion(request: Request):
    body = await parse_body(request, CompletionRequest)
    worker, batcher = _state(request).generator(body.model)
    cap = _state(request).config.max_tokens_cap
    prompts = []
    for index, prompt in enumerate(body.prompts()):
        prompt_ids = worker.completion_prompt_ids(prompt)
        param = "prompt" if isinstance(body.prompt, str) else f"prompt[{index}]"
        if not prompt_ids:
            raise api_errors.invalid_request(
                f"{param} is empty; send some text.", param=param
            )
        max_tokens = _resolve_max_tokens(
            worker,
            len(prompt_ids),
            body.max_tokens,
            cap,
            default=DEFAULT_COMPLETION_MAX_TOKENS,
            param=param,
        )
        prompts.append((prompt_ids, max_tokens))
    return await _generate(request, body, worker, batcher, prompts, chat=False)


@router.post("/v1/embeddings")
async def create_embedding(request: Request):
    body = await parse_body(request, EmbeddingBody)
    worker, batcher = _state(request).embedder(body.model)
    texts = body.texts()
    if body.dimensions is not None and body.dimensions != worker.dimensions:
        raise api_errors.invalid_request(
            f"dimensions is {body.dimensions}, but model {body.model!r} makes "
            f"{worker.dimensions}-dimensional vectors and cannot shorten them. "
            "Leave dimensions out.",
            param="dimensions",
        )
    counts = worker.count_tokens(texts)
    for index, count in enumerate(counts):
        if count > worker.max_seq_length:
            raise api_errors.invalid_request(
                f"input[{index}] has {count} tokens; model {body.model!r} takes at "
                f"most {worker.max_seq_length}. Split the text into shorter pieces.",
                param="input",
                code="context_length_exceeded",
            )
    job = EmbeddingRequest(request_id_of(request), texts)
    batcher.submit(job)
    result = await job.result()
    encoding_format = body.encoding_format or "float"
    return embedding_list(body.model, result.embeddings, encoding_format, sum(counts))


def _resolve_max_tokens(
    worker: GenerationWorker,
    prompt_tokens: int,
    requested: int | None,
    cap: int,
    default: int | None,
    param: str,
) -> int:
    """Return the tokens to generate; raise a 400 over the cap or the context."""
    if requested is not None and requested > cap:
        raise api_errors.invalid_request(
            f"max_tokens is {requested}, above this server's cap of {cap}. "
            f"Request at most {cap}, or start the server with a larger "
            "--max-tokens-cap.",
            param="max_tokens",
            code="max_tokens_too_large",
        )
    context = worker.context_length
    available = context - prompt_tokens
    new_tokens = requested if requested is not None else 1
    if new_tokens > available:
        raise api_errors.invalid_request(
            f"This model's maximum context length is {context} tokens, but the "
            f"request has {prompt_tokens} prompt tokens and requests {new_tokens} "
            f"more ({prompt_tokens + new_tokens} in total). Shorten {param} or lower "
            "max_tokens.",
            param=param,
            code="context_length_exceeded",
        )
    if requested is not None:
        return requested
    return min(default or cap, cap, available)


async def _generate(request, body, worker, batcher, prompts, *, chat: bool):
    """Queue one generation per prompt; respond with JSON or an event stream."""
    request_id = request_id_of(request)
    sampling = SamplingParams(
        temperature=1.0 if body.temperature is None else body.temperature,
        top_p=1.0 if body.top_p is None else body.top_p,
        seed=body.seed,
    )
    stops = body.stop_strings()

    # Queue every prompt before waiting, so they can share a batch.
    jobs = [
        GenerationRequest(
            request_id, ids, max_tokens, sampling, stops, bool(body.stream)
        )
        for ids, max_tokens in prompts
    ]
    _submit_all(batcher, jobs)
    prompt_tokens = sum(len(ids) for ids, _ in prompts)
    builder = ResponseBuilder(chat, body.model)

    if body.stream:
        events = _stream(
            request_id, jobs, builder, prompt_tokens, body.include_usage_chunk
        )
        return StreamingResponse(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    try:
        results = await _results_unless_disconnected(request, jobs)
    finally:
        for job in jobs:
            job.cancel()
    if results is None:
        logger.info("%s: client disconnected; generation cancelled", request_id)
        return Response(status_code=CLIENT_CLOSED_REQUEST)

    completion_tokens = sum(result.completion_tokens for result in results)
    choices = [(result.text, result.finish_reason) for result in results]
    return JSONResponse(
        builder.completion(choices, usage(prompt_tokens, completion_tokens))
    )


async def _results_unless_disconnected(request, jobs: list[GenerationRequest]):
    """Wait for the result of every job, or return None if the client disconnects.

    Without this check a request whose client gave up (a timeout, followed by
    the SDK's retries) keeps its place in the queue and its row in the batch.
    """
    gathered = asyncio.ensure_future(asyncio.gather(*(job.result() for job in jobs)))
    try:
        while not gathered.done():
            await asyncio.wait({gathered}, timeout=DISCONNECT_POLL_S)
            if not gathered.done() and await request.is_disconnected():
                return None
        return gathered.result()
    finally:
        gathered.cancel()


def _submit_all(batcher, jobs: list[GenerationRequest]) -> None:
    """Queue every job, or none: a full queue cancels the ones already queued."""
    for count, job in enumerate(jobs):
        try:
            batcher.submit(job)
        except Exception:
            for queued in jobs[:count]:
                queued.cancel()
            raise


async def _stream(
    request_id: str,
    jobs: list[GenerationRequest],
    builder: ResponseBuilder,
    prompt_tokens: int,
    include_usage: bool,
) -> AsyncIterator[str]:
    """Yield the server-sent events of a streaming response, then `[DONE]`.

    Without `stream_options.include_usage`, the usage object rides on the
    chunk that closes the last choice, so every response carries it.
    """
    try:
        if builder.chat:
            for index in range(len(jobs)):
                yield sse_event(builder.chunk(index, role=True))
        completion_tokens, open_choices = 0, len(jobs)
        async for index, event in _merge_events(jobs):
            if isinstance(event, TextDelta):
                yield sse_event(builder.chunk(index, event.text))
                continue
            completion_tokens += event.completion_tokens
            open_choices -= 1
            totals = usage(prompt_tokens, completion_tokens)
            attach = totals if open_choices == 0 and not include_usage else None
            yield sse_event(
                builder.chunk(index, None, event.finish_reason, usage_body=attach)
            )
        if include_usage:
            yield sse_event(
                builder.usage_chunk(usage(prompt_tokens, completion_tokens))
            )
    except Exception as error:  # reported inside the stream: headers are sent
        api_error = to_api_error(error, request_id)
        log_api_error(request_id, api_error, error)
        yield error_event(api_error)
    finally:
        # Runs on completion and when the client disconnects mid-stream.
        for job in jobs:
            job.cancel()
    yield SSE_DONE


async def _merge_events(jobs: list[GenerationRequest]):
    """Yield (choice index, event) from every job as events arrive."""
    if len(jobs) == 1:
        async for event in jobs[0].events():
            yield 0, event
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def forward(index: int, job: GenerationRequest) -> None:
        try:
            async for event in job.events():
                await queue.put((index, event))
        except Exception as error:
            await queue.put((index, error))

    tasks = [asyncio.create_task(forward(i, job)) for i, job in enumerate(jobs)]
    try:
        remaining = len(jobs)
        while remaining:
            index, event = await queue.get()
            if isinstance(event, Exception):
                raise event
            if isinstance(event, Finished):
                remaining -= 1
            yield index, event
    finally:
        for task in tasks:
            task.cancel()
