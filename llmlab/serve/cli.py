"""`llmlab serve` and `python -m llmlab.serve`: run the OpenAI-compatible server."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from llmlab.errors import LlmlabError
from llmlab.serve.config import ServeConfig

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `serve` subcommand on the top-level `llmlab` parser.

    Args:
        subparsers: the object returned by `parser.add_subparsers()` of the
            top-level parser. The subcommand stores its handler in `func`,
            which returns the exit code.
    """
    parser = subparsers.add_parser(
        "serve",
        help="Serve models over an OpenAI-compatible HTTP API.",
        description=_DESCRIPTION,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


_DESCRIPTION = (
    "Serve chat/completion models and an embedder over the OpenAI HTTP API "
    "(/v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings) with "
    "dynamic batching. Set LLMLAB_API_KEY to require 'Authorization: Bearer "
    "<key>' on every /v1 request."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the server's options to `parser`."""
    defaults = ServeConfig()
    parser.add_argument(
        "--host",
        default=defaults.host,
        help=f"Address to bind (default {defaults.host}, this machine only).",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=defaults.port,
        help=f"TCP port (default {defaults.port}).",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="MODEL",
        help="Chat or completion model: a role (chat, base), a folder, or "
        "NAME=SOURCE to serve it under the id NAME. Repeat the option or "
        "separate models with commas (default: chat).",
    )
    parser.add_argument(
        "--embedder",
        default=None,
        metavar="MODEL",
        help="Embedding model for /v1/embeddings: the role 'embedder', a "
        "sentence-transformers folder, or NAME=SOURCE (default: none).",
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=defaults.max_batch_size,
        help="Maximum number of requests per forward pass "
        f"(default {defaults.max_batch_size}).",
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=defaults.batch_wait_ms,
        help="Milliseconds the first request of a batch waits for others "
        f"(default {defaults.batch_wait_ms:g}).",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=defaults.max_queue,
        help="Requests that may wait per model; more get HTTP 429 "
        f"(default {defaults.max_queue}).",
    )
    parser.add_argument(
        "--max-tokens-cap",
        type=int,
        default=defaults.max_tokens_cap,
        help="Largest max_tokens a request may set "
        f"(default {defaults.max_tokens_cap}).",
    )
    parser.add_argument(
        "--no-batching",
        action="store_true",
        help="Run one request per forward pass, for comparison with batching.",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=defaults.shutdown_timeout_s,
        help="Seconds in-flight requests get to finish after SIGINT or SIGTERM "
        f"(default {defaults.shutdown_timeout_s:g}).",
    )
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        default=None,
        help="Weight dtype (default: float32 on the CPU, the GPU's half "
        "precision otherwise). Batched greedy outputs equal unbatched ones "
        "exactly in float32.",
    )
    parser.add_argument(
        "--num-threads",
        type=int,
        default=None,
        help="torch CPU threads (default: one per core). Use 1 when other busy "
        "processes share the CPU.",
    )


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """Build the `ServeConfig` of parsed arguments; LLMLAB_API_KEY sets the key."""
    return ServeConfig.from_environment(
        host=args.host,
        port=args.port,
        models=tuple(args.model) if args.model else ("chat",),
        embedder=args.embedder,
        max_batch_size=args.max_batch_size,
        batch_wait_ms=args.batch_wait_ms,
        max_queue=args.max_queue,
        max_tokens_cap=args.max_tokens_cap,
        batching=not args.no_batching,
        shutdown_timeout_s=args.shutdown_timeout,
        dtype=args.dtype,
        num_threads=args.num_threads,
    )


def run(args: argparse.Namespace) -> int:
    """Load the models and serve until SIGINT or SIGTERM; return the exit code.

    Returns 0 after a signal-initiated shutdown, 2 when the options or models
    are unusable, 1 when the server fails to start (a port in use, say).
    """
    _configure_logging()
    try:
        config = config_from_args(args)
        if config.num_threads is not None:
            import torch

            torch.set_num_threads(config.num_threads)
        from llmlab.serve.models import load_registry

        registry = load_registry(config)
    except LlmlabError as error:
        print(f"llmlab serve: {error}", file=sys.stderr)
        return 2
    from llmlab.serve.app import create_app

    return serve(create_app(config, registry), config)


def serve(app, config: ServeConfig) -> int:
    """Run `app` with uvicorn until a signal stops it; return the exit code."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=config.shutdown_timeout_s,
        )
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; these
    # handlers receive it, so a requested stop exits with status 0.
    received = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: received.append(number))
    logger.info("llmlab serve: listening on http://%s:%d", config.host, config.port)
    if config.api_key is None and config.host not in LOOPBACK_HOSTS:
        logger.warning(
            "Listening on %s without an API key: anyone who reaches this port can "
            "use the models. Set LLMLAB_API_KEY.",
            config.host,
        )
    try:
        server.run()
    except SystemExit as error:
        return int(error.code or 1)
    if not server.started:
        return 1
    if received:
        logger.info("llmlab serve: exiting after %s", signal.Signals(received[0]).name)
    return 0


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # Startup noise a server operator cannot act on: progress bars of weight
    # loading, and bitsandbytes looking for an optional kernel on the hub.
    from transformers.utils import logging as transformers_logging

    from llmlab.runtime import quiet_noisy_output

    transformers_logging.disable_progress_bar()
    quiet_noisy_output()
    logging.getLogger("kernels").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    """Run `python -m llmlab.serve` with `argv` (default `sys.argv[1:]`)."""
    parser = argparse.ArgumentParser(
        prog="python -m llmlab.serve", description=_DESCRIPTION
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
