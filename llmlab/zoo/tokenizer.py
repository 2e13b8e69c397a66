"""Byte-level BPE tokenizer for the zoo, with one token per digit and a chat template."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from llmlab.errors import InvalidArgumentError

logger = logging.getLogger(__name__)

EOS = "<|end|>"
PAD = "<|pad|>"
ROLES = ("system", "user", "assistant")
SPECIAL_TOKENS = [EOS, PAD] + [f"<|{role}|>" for role in ROLES]

# Each message is `<|role|>\n{content}<|end|>\n`; the generation prompt is the
# assistant header, so a reply ends with `<|end|>`, the eos token.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('Unknown role ' ~ message['role'] ~ '; use system, user or "
    "assistant.') }}"
    "{%- endif -%}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Train the BPE tokenizer on `texts` and wrap it for transformers.

    Args:
        texts: training documents (the pretraining corpus, or a sample of it).
        vocab_size: entries including the special tokens. Keep it a multiple of
            64 so the embedding and output layer sizes stay multiples of 32
            (4-bit CPU kernels require that). 2048 default; a corpus of a few
            megabytes supports no more than about 2,000 useful merges.
    """
    if vocab_size % 64:
        raise InvalidArgumentError(f"vocab_size={vocab_size} is not a multiple of 64; "
                                   "round it, e.g. to 2048")
    tokenizer = Tokenizer(models.BPE())
    # Digits are split first, so every digit is its own token and numbers are
    # read and written digit by digit.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    logger.info("trained tokenizer with %d tokens", tokenizer.get_vocab_size())
    return wrap(tokenizer)


def wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a `tokenizers.Tokenizer` with the special tokens and chat template set."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=EOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=[f"<|{role}|>" for role in ROLES],
        chat_template=CHAT_TEMPLATE, padding_side="left", clean_up_tokenization_spaces=False,
    )
