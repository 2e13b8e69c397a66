"""The FastAPI application: request ids, API key check, error bodies, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from llmlab.errors import (
    ChatTemplateError,
    LlmlabError,
    QueueFullError,
    ServerClosingError,
)
from llmlab.serve import api_errors
from llmlab.serve.api_errors import APIError
from llmlab.serve.batcher import DynamicBatcher
from llmlab.serve.config import ServeConfig
from llmlab.serve.models import ModelRegistry

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
# A client may send its own request id; anything else gets a fresh one.
CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
ENDPOINTS = "/v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings, /health"


class ServingState:
    """The models of one server and the batcher in front of each."""

    def __init__(self, config: ServeConfig, registry: ModelRegistry) -> None:
        self.config = config
        self.registry = registry
        self.batchers: dict[str, DynamicBatcher] = {}
        self.created = int(time.time())

    def start(self) -> None:
        """Create and start one batcher per model (needs the running loop)."""
        workers = {**self.registry.generators, **self.registry.embedders}
        for name, worker in workers.items():
            batcher = DynamicBatcher(
                name,
                worker.run_batch,
                max_batch_size=self.config.effective_batch_size,
                wait_s=self.config.effective_wait_s,
                max_queue=self.config.max_queue,
            )
            batcher.start()
            self.batchers[name] = batcher

    async def close(self) -> None:
        await asyncio.gather(*(batcher.close() for batcher in self.batchers.values()))

    def generator(self, name: str):
        """Return the generation worker and batcher of model `name`, or raise a 404."""
        if name not in self.registry.generators:
            raise self._not_found(name, list(self.registry.generators))
        return self.registry.generators[name], self.batchers[name]

    def embedder(self, name: str):
        """Return the embedding worker and batcher of model `name`, or raise a 404."""
        if name not in self.registry.embedders:
            raise self._not_found(name, list(self.registry.embedders))
        return self.registry.embedders[name], self.batchers[name]

    def _not_found(self, name: str, candidates: list[str]) -> APIError:
        error = api_errors.model_not_found(name, candidates)
        if name in self.registry.ids():
            error.message += f" {name!r} is served, but by another endpoint."
        return error


def to_api_error(error: Exception, request_id: str) -> APIError:
    """Map an exception raised while handling a request to its HTTP error response."""
    if isinstance(error, APIError):
        return error
    if isinstance(error, QueueFullError):
        return api_errors.queue_full(str(error))
    if isinstance(error, ServerClosingError):
        return api_errors.server_closing()
    if isinstance(error, ChatTemplateError):
        return api_errors.invalid_request(
            str(error), param="messages", code="no_chat_template"
        )
    return api_errors.internal_error(request_id)


def log_api_error(request_id: str, error: APIError, cause: Exception | None = None):
    """Log an error response, and the traceback of a server fault."""
    if error.status_code >= 500 and cause is not None and cause is not error:
        logger.error(
            "%s failed with %d %s",
            request_id,
            error.status_code,
            error.code,
            exc_info=cause,
        )
        return
    logger.warning(
        "%s rejected with %d %s: %s",
        request_id,
        error.status_code,
        error.code,
        error.message,
    )


class RequestContextMiddleware:
    """Give every request an id, check the API key, log starts and stops.

    The id comes from the client's `x-request-id` header when it is a short
    token, else it is generated; it is returned in the same header. Log lines
    carry the method, path, status and duration, never headers or bodies, so
    neither the API key nor a prompt reaches the log.
    """

    def __init__(self, app, api_key: str | None) -> None:
        self.app = app
        self._api_key = api_key.encode() if api_key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get(REQUEST_ID_HEADER, "")
        if not CLIENT_REQUEST_ID.match(request_id):
            request_id = f"req_{uuid.uuid4().hex[:24]}"
        scope.setdefault("state", {})["request_id"] = request_id
        status = {"code": None}

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        path = scope["path"]
        level = logging.DEBUG if path == "/health" else logging.INFO
        logger.log(level, "%s started: %s %s", request_id, scope["method"], path)
        started = time.perf_counter()
        try:
            denial = self._check_api_key(path, headers)
            if denial is not None:
                log_api_error(request_id, denial)
                await _error_response(denial)(scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.log(
                level,
                "%s finished: status %s in %.0f ms",
                request_id,
                status["code"],
                elapsed_ms,
            )

    def _check_api_key(self, path: str, headers: Headers) -> APIError | None:
        if self._api_key is None or not path.startswith("/v1/"):
            return None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return APIError(
                401,
                "Missing API key. Send it in the header "
                "'Authorization: Bearer <key>' (the key is the server's "
                "LLMLAB_API_KEY).",
                code="missing_api_key",
            )
        if not hmac.compare_digest(token.strip().encode(), self._api_key):
            return APIError(
                401,
                "Invalid API key. Use the key the server was started with "
                "(its LLMLAB_API_KEY).",
                code="invalid_api_key",
            )
        return None


def _error_response(error: APIError) -> JSONResponse:
    return JSONResponse(
        error.body(), status_code=error.status_code, headers=error.headers
    )


def request_id_of(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "req_unknown")


def create_app(config: ServeConfig, registry: ModelRegistry) -> FastAPI:
    """Build the application serving `registry` with the settings of `config`."""
    from llmlab.serve.routes import router

    state = ServingState(config, registry)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        logger.info(
            "llmlab serve started: models %s; batching %s (max_batch_size %d, "
            "batch_wait_ms %g); max_queue %d; max_tokens_cap %d; API key %s",
            ", ".join(registry.ids()),
            "on" if config.batching else "off",
            config.effective_batch_size,
            config.effective_wait_s * 1000,
            config.max_queue,
            config.max_tokens_cap,
            "required" if config.api_key else "not required",
        )
        try:
            yield
        finally:
            await state.close()
            logger.info("llmlab serve stopped")

    app = FastAPI(
        title="llmlab serve",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.serving = state
    app.include_router(router)
    app.add_middleware(RequestContextMiddleware, api_key=config.api_key)
    _add_exception_handlers(app)
    return app


def _add_exception_handlers(app: FastAPI) -> None:
    async def handle_error(request: Request, error: Exception) -> JSONResponse:
        request_id = request_id_of(request)
        api_error = to_api_error(error, request_id)
        log_api_error(request_id, api_error, error)
        return _error_response(api_error)

    async def handle_http_exception(request: Request, error: StarletteHTTPException):
        if error.status_code == 404:
            message = (
                f"Unknown path {request.url.path}. This server serves {ENDPOINTS}."
            )
        elif error.status_code == 405:
            message = f"Method {request.method} is not allowed on {request.url.path}."
        else:
            message = str(error.detail)
        api_error = APIError(
            error.status_code,
            message,
            code="not_found" if error.status_code == 404 else None,
        )
        log_api_error(request_id_of(request), api_error)
        return _error_response(api_error)

    app.add_exception_handler(LlmlabError, handle_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(Exception, handle_error)


def error_event(error: APIError) -> str:
    """Return the server-sent event that reports an error inside a stream."""
    return f"data: {json.dumps(error.body())}\n\n"
