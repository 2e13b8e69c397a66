"""Request bodies of the OpenAI API subset that the server accepts.

Validation is strict: a string where a number belongs is an error, not a
conversion, and a field the server does not implement is rejected by name
instead of being silently ignored.
"""

from __future__ import annotations

import json
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from llmlab.serve.api_errors import APIError, invalid_request

# Largest request body in bytes: far above any prompt a served model can take.
MAX_BODY_BYTES = 8 * 2**20
# OpenAI's limits on stop strings and on inputs per embedding request.
MAX_STOP_STRINGS = 4
MAX_EMBEDDING_INPUTS = 2048


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class TextPart(_Strict):
    """One part of a message whose content is a list of parts."""

    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    """A message of the conversation. `developer` is OpenAI's newer `system`."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    def as_template_input(self) -> dict[str, str]:
        """Return the message as the chat template expects it."""
        role = "system" if self.role == "developer" else self.role
        if isinstance(self.content, str):
            return {"role": role, "content": self.content}
        return {"role": role, "content": "".join(part.text for part in self.content)}


class StreamOptions(_Strict):
    include_usage: bool = False


class _GenerationFields(_Strict):
    """Fields shared by chat completions and completions."""

    model: str
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None

    def stop_strings(self) -> tuple[str, ...]:
        """Return `stop` as a tuple; raise a 400 for empty or too many strings."""
        if self.stop is None:
            return ()
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop)
        if len(stops) > MAX_STOP_STRINGS:
            raise invalid_request(
                f"stop has {len(stops)} strings; send at most {MAX_STOP_STRINGS}.",
                param="stop",
            )
        if any(stop == "" for stop in stops):
            raise invalid_request("stop strings must not be empty.", param="stop")
        return tuple(stops)

    @property
    def include_usage_chunk(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


class ChatCompletionRequest(_GenerationFields):
    """Body of `POST /v1/chat/completions`. Default temperature 1, as OpenAI's."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    def requested_max_tokens(self) -> int | None:
        """Return max_completion_tokens (OpenAI's newer name) or max_tokens."""
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens
        return self.max_tokens


class CompletionRequest(_GenerationFields):
    """Body of `POST /v1/completions`; a list of prompts gets one choice each."""

    prompt: str | list[str] = Field(min_length=1)

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class EmbeddingRequest(_Strict):
    """Body of `POST /v1/embeddings`."""

    model: str
    input: str | list[str] = Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None

    def texts(self) -> list[str]:
        texts = [self.input] if isinstance(self.input, str) else list(self.input)
        for index, text in enumerate(texts):
            if not text:
                raise invalid_request(
                    f"input[{index}] is an empty string; every input must "
                    "contain text.",
                    param="input",
                )
        return texts


async def parse_body(request, model_class: type[BaseModel]) -> BaseModel:
    """Read the JSON body of `request` into `model_class`, or raise a 400 `APIError`."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise APIError(
            413,
            f"The request body has {len(body)} bytes; the limit is {MAX_BODY_BYTES}.",
            code="request_too_large",
        )
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid_request(
            f"The request body is not valid JSON ({error}). Send a JSON object "
            "with Content-Type: application/json.",
            code="invalid_json",
        ) from None
    if not isinstance(payload, dict):
        raise invalid_request(
            f"The request body is a JSON {type(payload).__name__}; send a JSON "
            'object such as {"model": ..., ...}.',
            code="invalid_json",
        )
    try:
        return model_class.model_validate(payload)
    except pydantic.ValidationError as error:
        raise _validation_error(error) from None


def _validation_error(error: pydantic.ValidationError) -> APIError:
    """Turn the first pydantic error into a 400 that names the field."""
    first = error.errors()[0]
    location = [part for part in first["loc"] if not _is_union_branch(part)]
    param = _param_path(location)
    if first["type"] == "extra_forbidden":
        message = (
            f"Unrecognized request argument supplied: {param}. This server "
            "does not implement it; remove it from the request."
        )
        return invalid_request(message, param=param, code="unsupported_parameter")
    if first["type"] == "missing":
        return invalid_request(
            f"Missing required parameter: '{param}'.", param=param, code="missing"
        )
    message = (
        f"Invalid value for '{param}': {first['msg']}; "
        f"received {_describe(first.get('input'))}."
    )
    return invalid_request(message, param=param, code="invalid_value")


def _describe(value) -> str:
    """Describe a rejected value without echoing text, which may be a prompt."""
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, list):
        return f"an array of {len(value)} items"
    return "an object"


def _is_union_branch(part) -> bool:
    # pydantic names the union branch it tried (`str`, `list[TextPart]`) in
    # the location; the client wants the field path only.
    return isinstance(part, str) and ("[" in part or part in ("str", "int", "float"))


def _param_path(location: list) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif path:
            path += f".{part}"
        else:
            path = str(part)
    return path
