"""Benchmark the zoo on this machine and print the figures as JSON.

It measures the time to build and export the world, the pretraining
throughput of the shipped model shape (tokens/s over a short run), the size of
the shipped models and their greedy generation speed (new tokens/s). It also
prints how long the training runs behind the shipped models took, as recorded
in their `training.json`. Run it on an idle machine, because other processes
on the CPU lower every figure.

    .venv/bin/python benchmarks/bench_zoo.py [--train-steps 30]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmlab import world as world_lib
from llmlab.zoo import train


def bench_world() -> dict:
    start = time.time()
    world = world_lib.build(seed=0)
    with tempfile.TemporaryDirectory() as out:
        paths = world_lib.export(world, out)
        size = sum(p.stat().st_size for p in paths.values())
    return {"build_and_export_s": round(time.time() - start, 2), "export_mb": round(size / 1e6, 1)}


def bench_training(num_steps: int) -> dict:
    world = world_lib.build(seed=0)
    docs = list(world.pretraining_corpus("train", 3000))
    tokenizer = train.tok_lib.train_tokenizer(docs)
    rows = train.pack_documents(train.tokenize_corpus(tokenizer, docs), 256,
                                tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = train.build_model(train.ModelConfig(), tokenizer)
    config = train.TrainConfig(num_steps=num_steps, lr=2e-3, warmup_steps=5,
                               log_every=10**6)
    summary = train.train_loop(model, train.pretraining_batches(
        rows, 16, tokenizer.pad_token_id, 0), config)
    return {"steps": summary["steps"], "tokens_per_s": summary["tokens_per_s"],
            "autocast": str(train.autocast_dtype())}


@torch.no_grad()
def bench_generation(path: Path, batch_size: int, new_tokens: int = 64) -> float:
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    inputs = tokenizer(["The town of"] * batch_size, return_tensors="pt",
                       add_special_tokens=False)
    start = time.time()
    model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                   do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return round(batch_size * new_tokens / (time.time() - start), 1)


def bench_models() -> dict:
    result = {}
    for name in ("base", "chat"):
        path = train.MODELS_DIR / name
        if not (path / "model.safetensors").exists():
            result[name] = "no weights"
            continue
        recorded = json.loads((path / "training.json").read_text())
        result[name] = {
            "weights_mb": round((path / "model.safetensors").stat().st_size / 1e6, 2),
            "folder_mb": round(sum(p.stat().st_size for p in path.iterdir()) / 1e6, 2),
            "params": recorded.get("params"),
            "training_s_recorded": recorded.get("seconds"),
            "training_tokens_per_s_recorded": recorded.get("tokens_per_s"),
            "generate_tokens_per_s_batch1": bench_generation(path, 1),
            "generate_tokens_per_s_batch16": bench_generation(path, 16),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=30,
                        help="optimizer steps of the throughput run (default 30)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    report = {"threads": torch.get_num_threads(), "world": bench_world(),
              "training": bench_training(args.train_steps), "models": bench_models()}
    recorded = [m["training_s_recorded"] for m in report["models"].values()
                if isinstance(m, dict)]
    report["zoo_training_s_recorded"] = round(sum(recorded), 1) if recorded else None
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
