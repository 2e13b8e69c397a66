"""The bundled tiny models and the code that builds them.

`models/base` is a 3.7 M-parameter Llama pretrained on the toy world of
`llmlab.world`, `models/chat` the same model fine-tuned on the world's
instruction mixture. Both are complete Hugging Face folders that load with
`AutoModelForCausalLM.from_pretrained(path)` and
`AutoTokenizer.from_pretrained(path)`. `llmlab zoo train base|chat` rebuilds
them (`llmlab.zoo.train`) and `llmlab zoo eval` scores them
(`llmlab.zoo.evaluate`).
"""

from pathlib import Path

MODELS_DIR = Path(__file__).parent / "models"

__all__ = ["MODELS_DIR"]
