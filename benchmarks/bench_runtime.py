"""Load time and memory of fp32, bf16, int8 and nf4, and estimates for real decoders.

Part 1 loads one tiny model (the bundled base model when it exists, else a
random Llama-style model built here) in each precision on this machine and
prints the load time (median of 3), the measured footprint and the estimate.

Part 2 prints `llmlab.estimate_memory` for the published configurations of
open decoders from 0.5B to 8B parameters. Beside each it prints the NF4 floor:
4 bits per weight is 0.25x of fp16 for the linear layers. Block scales and the
layers that bitsandbytes leaves unquantized come on top of that floor.

Run: .venv/bin/python benchmarks/bench_runtime.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import torch

import llmlab
from llmlab.errors import ModelNotAvailableError

PRECISIONS = [
    ("fp32", None, torch.float32),
    ("bf16", None, torch.bfloat16),
    ("int8", "8bit", torch.float32),
    ("nf4", "4bit", torch.float32),
]

# Dimensions copied from each model's config.json on the Hugging Face Hub
# (https://huggingface.co/<model>/blob/main/config.json).
PUBLISHED_CONFIGS = {
    # Qwen/Qwen2.5-0.5B, Apache-2.0.
    "Qwen2.5-0.5B": {
        "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
        "num_hidden_layers": 24, "num_attention_heads": 14,
        "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True,
    },
    # meta-llama/Llama-3.2-1B, Llama 3.2 Community License.
    "Llama-3.2-1B": {
        "model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 16, "num_attention_heads": 32,
        "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 128256,
        "tie_word_embeddings": True,
    },
    # Qwen/Qwen2.5-1.5B, Apache-2.0.
    "Qwen2.5-1.5B": {
        "model_type": "qwen2", "hidden_size": 1536, "intermediate_size": 8960,
        "num_hidden_layers": 28, "num_attention_heads": 12,
        "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True,
    },
    # Qwen/Qwen2.5-7B, Apache-2.0.
    "Qwen2.5-7B": {
        "model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
        "num_hidden_layers": 28, "num_attention_heads": 28,
        "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False,
    },
    # meta-llama/Llama-3.1-8B, Llama 3.1 Community License.
    "Llama-3.1-8B": {
        "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False,
    },
}
GIB = 2**30


def tiny_model_dir(workdir: Path) -> tuple[str, str]:
    """Return (path, description) of the bundled base model or a random one."""
    try:
        return llmlab.model_id("base", "offline"), "bundled base model"
    except ModelNotAvailableError:
        pass
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=8192, hidden_size=512, intermediate_size=1408,
        num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(workdir)
    return str(workdir), "random Llama-style model (d_model 512, 4 layers)"


def median_load_seconds(path: str, quantization, dtype, repeats: int = 3):
    times, model = [], None
    for _ in range(repeats):
        del model
        start = time.perf_counter()
        model = llmlab.load_model(path, quantization, dtype=dtype)
        times.append(time.perf_counter() - start)
    return statistics.median(times), model


def bench_tiny_model() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        path, description = tiny_model_dir(Path(workdir))
        print(f"Part 1: {description}, CPU, {torch.get_num_threads()} threads")
        print(f"{'precision':<10}{'load s':>8}{'measured MiB':>14}"
              f"{'estimate MiB':>14}{'est/meas':>10}{'x fp32':>8}")
        fp32_bytes = None
        for name, quantization, dtype in PRECISIONS:
            seconds, model = median_load_seconds(path, quantization, dtype)
            measured = llmlab.memory_footprint(model)
            estimate = llmlab.estimate_memory(path, quantization, dtype=dtype).weights
            fp32_bytes = fp32_bytes or measured
            print(f"{name:<10}{seconds:8.3f}{measured / 2**20:14.2f}"
                  f"{estimate / 2**20:14.2f}{estimate / measured:10.3f}"
                  f"{measured / fp32_bytes:8.3f}")


def linear_fraction(fields: dict) -> float:
    """Return the share of parameters inside quantizable linear layers."""
    from llmlab import memory

    config = memory._as_config(fields)
    model = memory._meta_model(config)
    skipped = memory._unquantized_names(model)
    linear = sum(
        module.weight.numel() for name, module in model.named_modules()
        if memory._is_linear(module) and not memory._is_skipped(name, skipped)
    )
    return linear / sum(p.numel() for p in model.parameters())


def bench_published_configs() -> None:
    print("\nPart 2: estimate_memory of published configurations (weights only)")
    print(f"{'model':<14}{'params':>8}{'fp16 GiB':>10}{'int8 GiB':>10}"
          f"{'nf4 GiB':>9}{'nf4/fp16':>10}{'linear nf4/fp16':>17}{'floor':>7}")
    for name, fields in PUBLISHED_CONFIGS.items():
        fp16 = llmlab.estimate_memory(fields, dtype=torch.float16)
        int8 = llmlab.estimate_memory(fields, "8bit", dtype=torch.float16)
        nf4 = llmlab.estimate_memory(fields, "4bit", dtype=torch.float16)
        # Ratio restricted to the quantizable linear layers: remove the part
        # that stays in fp16 (embeddings, norms, lm_head) from both sides.
        share = linear_fraction(fields)
        kept = fp16.weights * (1 - share)
        linear_ratio = (nf4.weights - kept) / (fp16.weights - kept)
        print(f"{name:<14}{fp16.num_params / 1e9:7.2f}B{fp16.weights / GIB:10.2f}"
              f"{int8.weights / GIB:10.2f}{nf4.weights / GIB:9.2f}"
              f"{nf4.weights / fp16.weights:10.3f}{linear_ratio:17.3f}{0.25:7.2f}")
    qlora = llmlab.estimate_memory(
        PUBLISHED_CONFIGS["Qwen2.5-7B"], "4bit", dtype=torch.float16,
        training="lora", batch_size=4, seq_len=512,
    )
    print("\nQLoRA of Qwen2.5-7B, r=16, batch_size=4, seq_len=512, fp16:")
    print(qlora)


def main() -> None:
    bench_tiny_model()
    bench_published_configs()


if __name__ == "__main__":
    main()
