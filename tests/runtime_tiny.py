"""Tiny random models and tokenizers for the runtime tests, built without downloads.

Dimensions are multiples of 32 unless a test passes others, because
bitsandbytes' repacked CPU kernel needs that of 4-bit layers.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

EOS = "<|endoftext|>"
CORPUS = [
    "the cat sat on the mat",
    "a dog ran in the park and the cat watched",
    "models read tokens and predict the next token",
    "short text",
]
VOCAB_SIZE = 320


def make_tokenizer(vocab_size: int = VOCAB_SIZE) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer with an end-of-sequence token, no pad token."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(CORPUS * 10, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=EOS)


def llama_config(hidden_size: int = 128, intermediate_size: int = 256, **overrides):
    fields = dict(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        # Larger than the default 0.02 so that the random model's next token
        # depends on its input, which the padding tests need to see.
        initializer_range=0.1,
    )
    fields.update(overrides)
    return LlamaConfig(**fields)


def save_llama(path: Path, config: LlamaConfig | None = None, seed: int = 0) -> Path:
    """Save a random Llama-style model with the tiny tokenizer to `path`."""
    torch.manual_seed(seed)
    config = config or llama_config()
    tokenizer = make_tokenizer()
    config.eos_token_id = tokenizer.eos_token_id
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def save_gpt2(path: Path, seed: int = 0) -> Path:
    """Save a random GPT-2-style model (Conv1D layers) with the tiny tokenizer."""
    torch.manual_seed(seed)
    tokenizer = make_tokenizer()
    config = GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=128, n_embd=128, n_layer=2, n_head=4,
        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
