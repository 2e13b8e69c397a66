"""Train the zoo: tokenizer, base model (pretraining) and chat model (fine-tuning).

Both stages run the same loop: AdamW, linear warm-up, cosine decay to 10 % of
`lr`, gradient clipping, bfloat16 autocast where the CPU supports it. A stage
may be given a time budget. The learning-rate schedule then follows whichever
of steps or time runs out first, so a run that is slower than planned still
finishes its decay. The model folder is rewritten at every checkpoint, so an
interrupted run leaves a usable model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

from llmlab import world as world_lib
from llmlab.errors import InvalidArgumentError, ModelNotAvailableError
from llmlab.zoo import MODELS_DIR
from llmlab.zoo import tokenizer as tok_lib

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclasses.dataclass
class ModelConfig:
    """Shape of the tiny Llama. Every linear size is a multiple of 32."""

    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 704
    max_positions: int = 512

    def __post_init__(self):
        for name in ("d_model", "d_ff"):
            if getattr(self, name) % 32:
                raise InvalidArgumentError(
                    f"{name}={getattr(self, name)} is not a multiple of 32; "
                    "4-bit CPU kernels need multiples of 32")
        if self.d_model % self.n_heads:
            raise InvalidArgumentError(f"d_model={self.d_model} is not divisible by "
                                       f"n_heads={self.n_heads}; pick n_heads that divides it")


@dataclasses.dataclass
class TrainConfig:
    """Settings of one training stage.

    `batch_tokens` is the number of token positions per optimizer step (rows x
    seq_len for pretraining, a padded-length budget for fine-tuning).
    `time_budget_s` ends the stage early, with the schedule compressed to fit.
    """

    num_steps: int
    lr: float
    batch_tokens: int = 4096
    seq_len: int = 256
    warmup_steps: int = 100
    weight_decay: float = 0.1
    time_budget_s: float | None = None
    checkpoint_every: int = 200
    log_every: int = 25
    seed: int = 0


BASE_TRAIN = TrainConfig(num_steps=3000, lr=2e-3, time_budget_s=45 * 60)
CHAT_TRAIN = TrainConfig(num_steps=3300, lr=1e-3, seq_len=320, warmup_steps=50,
                         time_budget_s=28 * 60)
# Fresh documents and instruction examples drawn for the full runs; more than
# the full runs consume, so no document is repeated.
BASE_DOCS = 150_000
CHAT_EXAMPLES = 90_000


def autocast_dtype() -> torch.dtype | None:
    """bfloat16 where this CPU computes it natively, else None (plain float32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    return torch.bfloat16 if "avx512_bf16" in flags or "amx_bf16" in flags else None


def build_model(config: ModelConfig, tokenizer) -> LlamaForCausalLM:
    vocab_size = len(tokenizer)
    if vocab_size % 32:
        raise InvalidArgumentError(f"tokenizer has {vocab_size} tokens, not a multiple of 32; "
                                   "train it with a vocab_size that is a multiple of 64")
    llama = LlamaConfig(
        vocab_size=vocab_size, hidden_size=config.d_model,
        intermediate_size=config.d_ff, num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads, num_key_value_heads=config.n_heads,
        max_position_embeddings=config.max_positions, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(llama)


def lr_at(step: int, elapsed_s: float, config: TrainConfig) -> float:
    """Learning rate after `step` steps and `elapsed_s` seconds."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = step / config.num_steps
    if config.time_budget_s:
        progress = max(progress, elapsed_s / config.time_budget_s)
    progress = min(progress, 1.0)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_loop(model, batches: Iterator[dict], config: TrainConfig,
               on_checkpoint: Callable[[int], None] | None = None) -> dict:
    """Run optimizer steps over `batches` until steps, time or data run out.

    Returns a summary: steps, trained tokens (non-padding), seconds, final loss.
    """
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, betas=(0.9, 0.95),
                                  weight_decay=config.weight_decay)
    dtype = autocast_dtype()
    model.train()
    start, tokens, step, recent = time.time(), 0, 0, []
    for batch in batches:
        elapsed = time.time() - start
        if step >= config.num_steps or (config.time_budget_s and elapsed > config.time_budget_s):
            break
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, elapsed, config)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += int(batch["attention_mask"].sum())
        recent.append(loss.item())
        if step % config.log_every == 0:
            logger.info("step %d loss %.4f lr %.2e tokens/s %.0f", step,
                        sum(recent) / len(recent), optimizer.param_groups[0]["lr"],
                        tokens / (time.time() - start))
            recent = recent[-config.log_every:]
        if on_checkpoint and step % config.checkpoint_every == 0:
            on_checkpoint(step)
    seconds = time.time() - start
    final = sum(recent[-config.log_every:]) / max(1, len(recent[-config.log_every:]))
    return {"steps": step, "tokens": tokens, "seconds": round(seconds, 1),
            "tokens_per_s": round(tokens / max(seconds, 1e-9)), "final_loss": round(final, 4)}


# ----------------------------------------------------------------- pretraining

def pack_documents(docs: list[list[int]], seq_len: int, eos_id: int,
                   open_rows: int = 8) -> list[list[int]]:
    """Pack tokenized documents into rows of at most `seq_len` without splitting any.

    Each document is followed by `eos_id`. A document goes into the first of
    up to `open_rows` partly filled rows where it fits; longer documents are
    truncated to `seq_len`.
    """
    rows, current = [], []
    for doc in docs:
        doc = (doc + [eos_id])[:seq_len]
        for row in current:
            if len(row) + len(doc) <= seq_len:
                row.extend(doc)
                break
        else:
            if len(current) == open_rows:
                current.sort(key=len)
                rows.append(current.pop())
            current.append(list(doc))
    return rows + current


def pad_rows(rows: list[list[int]], pad_id: int, labels: list[list[int]] | None = None):
    """Right-pad rows into a batch; labels are -100 on padding only."""
    length = max(len(r) for r in rows)
    labels = labels or rows
    ids = torch.full((len(rows), length), pad_id)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    target = torch.full((len(rows), length), IGNORE_INDEX)
    for i, (row, lab) in enumerate(zip(rows, labels)):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
        target[i, :len(row)] = torch.tensor(lab)
    return {"input_ids": ids, "attention_mask": mask, "labels": target}


def pretraining_batches(rows: list[list[int]], batch_size: int, pad_id: int,
                        seed: int) -> Iterator[dict]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    for i in range(0, len(order) - batch_size + 1, batch_size):
        yield pad_rows([rows[j] for j in order[i:i + batch_size]], pad_id)


def tokenize_corpus(tokenizer, docs: list[str]) -> list[list[int]]:
    return tokenizer(docs, add_special_tokens=False)["input_ids"]


def train_base(out_dir: Path | None = None, num_steps: int | None = None, seed: int = 0,
               config: TrainConfig = BASE_TRAIN, model_config: ModelConfig | None = None,
               n_docs: int = BASE_DOCS, tokenizer_docs: int = 20_000) -> Path:
    """Train the tokenizer and pretrain the base model on the world's corpus.

    Args:
        out_dir: where to save the model folder (default: the shipped
            `llmlab/zoo/models/base`).
        num_steps: optimizer steps; None runs `config.num_steps` within
            `config.time_budget_s`.
        seed: world and training seed.
        config: training settings; see `TrainConfig`.
        model_config: model shape (default `ModelConfig()`, 3.7 M parameters).
        n_docs: pretraining documents drawn from the world.
        tokenizer_docs: documents the tokenizer is trained on.
    """
    out_dir = Path(out_dir or MODELS_DIR / "base")
    if num_steps is not None:
        config = dataclasses.replace(config, num_steps=num_steps)
    config = dataclasses.replace(config, seed=seed)
    world = world_lib.build(seed)

    logger.info("rendering %d documents", n_docs)
    docs = list(world.pretraining_corpus("train", n_docs))
    tokenizer = tok_lib.train_tokenizer(docs[:tokenizer_docs])
    rows = pack_documents(tokenize_corpus(tokenizer, docs), config.seq_len,
                          tokenizer.eos_token_id)
    logger.info("%d packed rows of %d tokens", len(rows), config.seq_len)

    torch.manual_seed(seed)
    model = build_model(model_config or ModelConfig(), tokenizer)
    logger.info("base model: %d parameters", model.num_parameters())
    batch_size = config.batch_tokens // config.seq_len
    batches = pretraining_batches(rows, batch_size, tokenizer.pad_token_id, seed)
    summary = train_loop(model, batches, config,
                         lambda step: save_model(model, tokenizer, out_dir))
    summary.update(params=model.num_parameters(), rows=len(rows))
    save_model(model, tokenizer, out_dir, training=summary)
    logger.info("base done: %s", summary)
    return out_dir


# ----------------------------------------------------------------- fine-tuning

def sft_features(tokenizer, prompt: str, answer: str,
                 followups: list[dict] = ()) -> tuple[list[int], list[int]]:
    """Token ids and labels of one chat example; the prompt is masked out.

    The conversation is the user `prompt`, the assistant `answer`, then one
    user and assistant turn per `followups` record (`prompt`, `answer`).
    Labels are -100 on every user turn and assistant header. Each reply and
    its closing `<|end|>` keep their labels even when the pad token equals
    the eos token, because masking is decided by position and not by token id.
    The ids equal those of `apply_chat_template` on the same conversation.
    """
    turns = [(prompt, answer)] + [(f["prompt"], f["answer"]) for f in followups]
    ids: list[int] = []
    labels: list[int] = []
    for i, (user, reply) in enumerate(turns):
        head = ("\n" if i else "") + f"<|user|>\n{user}{tok_lib.EOS}\n<|assistant|>\n"
        head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
        reply_ids = tokenizer(reply, add_special_tokens=False)["input_ids"]
        reply_ids = reply_ids + [tokenizer.eos_token_id]
        ids += head_ids + reply_ids
        labels += [IGNORE_INDEX] * len(head_ids) + reply_ids
    return ids, labels


def sft_batches(features: list[tuple[list[int], list[int]]], batch_tokens: int,
                pad_id: int, seed: int) -> Iterator[dict]:
    """Batches of examples of similar length, at most `batch_tokens` padded positions."""
    rng = random.Random(seed)
    order = list(range(len(features)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), 2048):  # sort within chunks, keep the mix
        chunk = sorted(order[start:start + 2048], key=lambda i: len(features[i][0]))
        batch = []
        for i in chunk:
            longest = max([len(features[j][0]) for j in batch] + [len(features[i][0])])
            if batch and longest * (len(batch) + 1) > batch_tokens:
                batches.append(batch)
                batch = []
            batch.append(i)
        if batch:
            batches.append(batch)
    rng.shuffle(batches)
    for batch in batches:
        rows = [features[i][0] for i in batch]
        yield pad_rows(rows, pad_id, [features[i][1] for i in batch])


def train_chat(out_dir: Path | None = None, num_steps: int | None = None, seed: int = 0,
               config: TrainConfig = CHAT_TRAIN, base_dir: Path | None = None,
               n_examples: int = CHAT_EXAMPLES) -> Path:
    """Fine-tune the base model on the world's instruction mixture.

    Args:
        out_dir: where to save (default: the shipped `llmlab/zoo/models/chat`).
        num_steps: optimizer steps; None runs `config.num_steps` within
            `config.time_budget_s`.
        seed: world and training seed.
        config: training settings; see `TrainConfig`.
        base_dir: the base model to start from (default: the shipped base).
        n_examples: instruction examples drawn from the world.
    """
    from transformers import AutoTokenizer

    out_dir = Path(out_dir or MODELS_DIR / "chat")
    base_dir = Path(base_dir or MODELS_DIR / "base")
    if num_steps is not None:
        config = dataclasses.replace(config, num_steps=num_steps)
    config = dataclasses.replace(config, seed=seed)
    if not (base_dir / "model.safetensors").exists():
        raise ModelNotAvailableError(f"no base model weights in {base_dir}; "
                                     "run `llmlab zoo train base` first")
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32)

    world = world_lib.build(seed)
    examples = world.instructions("train", n_examples)
    features = [sft_features(tokenizer, e["prompt"], e["answer"], e.get("followups", ()))
                for e in examples]
    features = [f for f in features if len(f[0]) <= config.seq_len]
    logger.info("%d fine-tuning examples", len(features))
    batches = sft_batches(features, config.batch_tokens, tokenizer.pad_token_id, seed)
    summary = train_loop(model, batches, config,
                         lambda step: save_model(model, tokenizer, out_dir))
    summary.update(params=model.num_parameters(), examples=len(features))
    save_model(model, tokenizer, out_dir, training=summary)
    logger.info("chat done: %s", summary)
    return out_dir


def save_model(model, tokenizer, out_dir: Path, training: dict | None = None) -> None:
    """Save weights in bfloat16 (half the bytes), tokenizer and generation config."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.bfloat16) for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        state.pop("lm_head.weight", None)  # the same tensor as the embedding
    model.save_pretrained(out_dir, state_dict=state)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text())
    config["dtype"] = "bfloat16"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    tokenizer.save_pretrained(out_dir)
    GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                     bos_token_id=tokenizer.bos_token_id, do_sample=False,
                     max_new_tokens=64).save_pretrained(out_dir)
    if training is not None:
        (out_dir / "training.json").write_text(json.dumps(training, indent=2) + "\n")
