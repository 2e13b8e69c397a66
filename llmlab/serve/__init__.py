"""An OpenAI-compatible HTTP server over the course's models, with dynamic batching.

Start it with `llmlab serve` or `python -m llmlab.serve` (options in
`llmlab/serve/cli.py`), then use any OpenAI client with
`base_url="http://127.0.0.1:8000/v1"`. In Python, `create_app` builds the
FastAPI application from a `ServeConfig` and the loaded models
(`load_registry`).
"""

from llmlab.serve.app import create_app
from llmlab.serve.config import ServeConfig
from llmlab.serve.models import load_registry

__all__ = ["ServeConfig", "create_app", "load_registry"]
