"""`python -m llmlab.serve`: the same server as `llmlab serve`."""

import sys

from llmlab.serve.cli import main

sys.exit(main())
