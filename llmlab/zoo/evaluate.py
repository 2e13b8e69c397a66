"""Evaluate the zoo models on the world's held-out sets.

Every score is greedy decoding followed by a comparison with the gold answer
after light normalisation (case, surrounding spaces, a final full stop, a
leading "the"). Models are run in float32, whatever dtype they are stored in.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmlab import world as world_lib
from llmlab.errors import ModelNotAvailableError
from llmlab.metrics import final_number
from llmlab.zoo.train import MODELS_DIR, pack_documents, pad_rows, tokenize_corpus

logger = logging.getLogger(__name__)

MAX_NEW_TOKENS = {"context_qa": 16, "closed_book": 16, "summarise": 48, "extract": 64,
                  "classify": 4, "rewrite": 48, "arith_single": 6, "arith_steps": 64,
                  "arith_direct": 6, "closed_book_control": 16}
CHAT_FAMILIES = ("summarise", "extract", "classify", "rewrite", "arith_single",
                 "arith_steps", "arith_direct", "context_qa")


def load(path: Path):
    """Load a model folder in float32, with a left-padding tokenizer."""
    if not (Path(path) / "model.safetensors").exists():
        raise ModelNotAvailableError(f"no model weights in {path}; train it with "
                                     "`llmlab zoo train base` or `llmlab zoo train chat`")
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    return model, tokenizer


def normalise(text: str) -> str:
    text = text.strip().lower().rstrip(".").strip()
    return text[4:] if text.startswith("the ") else text


@torch.no_grad()
def generate(model, tokenizer, texts: list[str], max_new_tokens: int,
             batch_size: int = 32) -> list[str]:
    """Greedy continuations of `texts` (already formatted), in input order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs = [""] * len(texts)
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in chunk], return_tensors="pt", padding=True,
                          add_special_tokens=False)
        new = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
        new = new[:, batch["input_ids"].shape[1]:]
        for i, row in zip(chunk, new):
            outputs[i] = tokenizer.decode(row, skip_special_tokens=True)
    return outputs


def chat_replies(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in prompts]
    return generate(model, tokenizer, texts, max_new_tokens)


def is_correct(record: dict, reply: str) -> bool:
    family = record["family"]
    if family in ("arith_steps", "arith_direct"):
        return final_number(reply) == record["value"]
    if family == "extract":
        try:
            return json.loads(reply) == json.loads(record["answer"])
        except json.JSONDecodeError:
            return False
    return normalise(reply) == normalise(record["answer"])


def score(model, tokenizer, records: list[dict], family: str) -> tuple[list[bool], list[str]]:
    replies = chat_replies(model, tokenizer, [r["prompt"] for r in records],
                           MAX_NEW_TOKENS[family])
    return [is_correct(r, reply) for r, reply in zip(records, replies)], replies


@torch.no_grad()
def perplexity(model, tokenizer, docs: list[str], seq_len: int = 256) -> float:
    """exp(total negative log-likelihood / scored tokens) over packed rows."""
    rows = pack_documents(tokenize_corpus(tokenizer, docs), seq_len, tokenizer.eos_token_id)
    total_nll, total_tokens = 0.0, 0
    for start in range(0, len(rows), 16):
        batch = pad_rows(rows[start:start + 16], tokenizer.pad_token_id)
        logits = model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).logits[:, :-1]
        labels = batch["labels"][:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels,
                                                ignore_index=-100, reduction="sum")
        total_nll += nll.item()
        total_tokens += int((labels != -100).sum())
    return math.exp(total_nll / total_tokens)


def evaluate_base(path: Path, world, n_docs: int = 1000) -> dict:
    model, tokenizer = load(path)
    docs = list(world.pretraining_corpus("validation", n_docs))
    return {"params": model.num_parameters(),
            "perplexity": round(perplexity(model, tokenizer, docs), 3),
            "validation_docs": len(docs)}


def evaluate_chat(path: Path, world, limit: int | None = None) -> dict:
    model, tokenizer = load(path)
    sets = world.eval_sets()
    result = {"params": model.num_parameters(), "families": {}}
    for family in CHAT_FAMILIES + ("closed_book", "closed_book_control"):
        records = sets[family][:limit]
        start = time.time()
        correct, _ = score(model, tokenizer, records, family)
        accuracy = round(sum(correct) / len(correct), 4)
        logger.info("%s: %.3f on %d (%.0f s)", family, accuracy, len(correct),
                    time.time() - start)
        if family in CHAT_FAMILIES:
            result["families"][family] = {"accuracy": accuracy, "n": len(correct)}
        if family == "context_qa":
            result["context_qa_by_type"] = by_type(records, correct)
        result[{"context_qa": "context_qa_em", "closed_book": "closed_book_em",
                "closed_book_control": "closed_book_seen_em",
                "arith_single": "arith_single_acc", "arith_steps": "arith_steps_acc",
                "arith_direct": "arith_direct_acc"}.get(family, f"{family}_acc")] = accuracy
    return result


def by_type(records: list[dict], correct: list[bool]) -> dict:
    groups: dict[str, list[bool]] = {}
    for record, ok in zip(records, correct):
        groups.setdefault(record["type"], []).append(ok)
    return {t: {"accuracy": round(sum(v) / len(v), 4), "n": len(v)}
            for t, v in sorted(groups.items())}


def evaluate_zoo(base_dir: Path | None = None, chat_dir: Path | None = None,
                 limit: int | None = None, seed: int = 0) -> dict:
    """Evaluate both models and return the report `llmlab zoo eval` prints.

    Args:
        base_dir, chat_dir: model folders (default: the shipped models).
        limit: cap on items per evaluation set, for a quick look (default: all).
        seed: the world seed the models were trained on.
    """
    world = world_lib.build(seed)
    base_dir = Path(base_dir or MODELS_DIR / "base")
    chat_dir = Path(chat_dir or MODELS_DIR / "chat")
    return {"base": evaluate_base(base_dir, world, 1000 if limit is None else limit),
            "chat": evaluate_chat(chat_dir, world, limit)}
