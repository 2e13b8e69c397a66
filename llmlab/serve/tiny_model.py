"""A randomly initialised chat model for testing and benchmarking the server.

The model is a Llama-architecture decoder with random weights and a byte-level
BPE tokenizer trained on a few sentences, saved with a chat template. Its
output is gibberish, but it exercises every path of the server (batching,
streaming, stop strings, context limits) in milliseconds per token on a CPU,
without the bundled chat model and without network.
"""

from __future__ import annotations

from pathlib import Path

# Sentences the tokenizer learns its merges from.
TOKENIZER_CORPUS = (
    "A language model predicts the next token from the tokens before it.",
    "The server batches requests that arrive together into one forward pass.",
    "Left padding keeps the last real token of every row at the same position.",
    "Greedy decoding picks the most likely token at every step.",
    "Hello! How are you today? I am fine, thank you.",
    "The quick brown fox jumps over the lazy dog, 0123456789 times.",
)
# Jinja chat template: role headers, each turn closed by the end token.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}{{ eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tokenizer(vocab_size: int = 384, chat_template: bool = True):
    """Train a byte-level BPE tokenizer on `TOKENIZER_CORPUS`.

    Args:
        vocab_size: target vocabulary size, 256 byte tokens plus merges plus
            the `<s>`/`</s>` special tokens. The small corpus may stop short of it.
        chat_template: attach `CHAT_TEMPLATE`; False makes a base-model tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TOKENIZER_CORPUS * 4, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="</s>",
        padding_side="left",
    )
    if chat_template:
        wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def save_random_chat_model(
    folder: str | Path,
    *,
    d_model: int = 64,
    n_layers: int = 2,
    n_heads: int = 2,
    seq_len: int = 256,
    chat_template: bool = True,
    seed: int = 0,
) -> Path:
    """Save a random Llama model and its tokenizer to `folder`; return the folder.

    Args:
        folder: output folder, created if missing.
        d_model: hidden size; keep it a multiple of 32 (bitsandbytes' block
            size) and of `n_heads`. The MLP is 2 * d_model wide.
        n_layers: decoder layers. Time per token grows linearly with it.
        n_heads: attention heads; d_head = d_model / n_heads.
        seq_len: context length (`max_position_embeddings`), in tokens.
        chat_template: save a chat template; False makes a base model.
        seed: torch seed of the random weights.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(chat_template=chat_template)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=d_model,
        intermediate_size=2 * d_model,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=n_heads,
        max_position_embeddings=seq_len,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
