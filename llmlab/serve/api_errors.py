"""Errors sent as OpenAI-style JSON: `{"error": {message, type, param, code}}`."""

from __future__ import annotations

from llmlab.errors import LlmlabError

INVALID_REQUEST = "invalid_request_error"


class APIError(LlmlabError):
    """An error sent to the client as an HTTP status and an OpenAI-style body.

    Args:
        status_code: HTTP status, 4xx for the client's mistakes, 5xx for ours.
        message: what failed, on which value, and what to do next.
        type: OpenAI's error class, such as `invalid_request_error`.
        param: the request field at fault (`max_tokens`, `messages[0].content`),
            or None.
        code: a machine-readable code such as `context_length_exceeded`.
        headers: extra response headers, such as `Retry-After`.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = INVALID_REQUEST,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        """Return the JSON body OpenAI clients parse into an exception."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def invalid_request(message: str, param: str | None = None, code: str | None = None):
    """Return a 400 `APIError` for a request the server cannot run as sent."""
    return APIError(400, message, param=param, code=code)


def model_not_found(model: str, available: list[str]) -> APIError:
    """Return the 404 for a `model` that this server does not serve."""
    return APIError(
        404,
        f"The model {model!r} does not exist on this server. "
        f"Use one of: {', '.join(available) or 'none loaded'} (see GET /v1/models).",
        param="model",
        code="model_not_found",
    )


def queue_full(detail: str) -> APIError:
    """Return the 429 for a model whose request queue is full.

    Args:
        detail: the message of the `QueueFullError`, naming the model.
    """
    return APIError(
        429,
        f"{detail} Retry after a short wait, or start the server with a larger "
        "--max-queue.",
        type="rate_limit_error",
        code="queue_full",
        headers={"Retry-After": "1"},
    )


def server_closing() -> APIError:
    """Return the 503 for a request cut short by the server shutting down."""
    return APIError(
        503,
        "The server is shutting down and did not run this request. Retry on "
        "another server or after it restarts.",
        type="server_error",
        code="server_shutting_down",
    )


def internal_error(request_id: str) -> APIError:
    """Return the 500 for an unexpected failure, pointing at the server log."""
    return APIError(
        500,
        f"The server failed while handling request {request_id}. The server "
        "log has the details under that request id.",
        type="server_error",
        code="internal_error",
    )
