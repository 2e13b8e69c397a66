"""Tests of the zoo: tokenizer, fine-tuning labels, training loop, shipped models."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

from llmlab import world as world_lib
from llmlab.zoo import tokenizer as tok_lib
from llmlab.zoo import train

MODELS = Path(train.MODELS_DIR)
WEIGHTS_MISSING = {
    name: not (MODELS / name / "model.safetensors").exists() for name in ("base", "chat")
}


@pytest.fixture(scope="module")
def world():
    return world_lib.build(seed=0)


@pytest.fixture(scope="module")
def docs(world):
    return list(world.pretraining_corpus("train", 600))


@pytest.fixture(scope="module")
def tokenizer(docs):
    return tok_lib.train_tokenizer(docs, vocab_size=512)


def test_tokenizer_round_trips(tokenizer, world):
    texts = ["Gosta Skies was born in 1944.", "47 + 8 = 55\n12 x 4 = 48",
             "Ünïcödé and emoji 🙂 still decode.", world.encyclopedia()[0]["text"]]
    for text in texts:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text


def test_tokenizer_one_token_per_digit(tokenizer):
    tokens = tokenizer.tokenize("born in 1944")
    digits = [t for t in tokens if any(c.isdigit() for c in t)]
    assert digits == ["1", "9", "4", "4"]


def test_tokenizer_rejects_odd_vocab(docs):
    with pytest.raises(ValueError, match="multiple of 64"):
        tok_lib.train_tokenizer(docs[:10], vocab_size=1000)


def test_chat_template_generation_prompt(tokenizer):
    messages = [{"role": "user", "content": "What is 2 + 3?"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == "<|user|>\nWhat is 2 + 3?<|end|>\n<|assistant|>\n"


def test_sft_labels_mask_prompt_only(tokenizer):
    ids, labels = train.sft_features(tokenizer, "What is 2 + 3?", "5 apples")
    answer = tokenizer("5 apples", add_special_tokens=False)["input_ids"]
    kept = [label for label in labels if label != train.IGNORE_INDEX]
    assert kept == answer + [tokenizer.eos_token_id]
    assert len(kept) == len(answer) + 1
    assert labels[: len(ids) - len(kept)] == [train.IGNORE_INDEX] * (len(ids) - len(kept))


def test_sft_followups_match_chat_template(tokenizer):
    followups = [{"prompt": "Question: And 4 + 4?", "answer": "8"},
                 {"prompt": "Question: And 9 - 3?", "answer": "6"}]
    ids, labels = train.sft_features(tokenizer, "What is 2 + 3?", "5", followups)
    messages = [{"role": "user", "content": "What is 2 + 3?"},
                {"role": "assistant", "content": "5"}]
    for turn in followups:
        messages += [{"role": "user", "content": turn["prompt"]},
                     {"role": "assistant", "content": turn["answer"]}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    expected = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == expected[: len(ids)]
    assert tokenizer.decode(expected[len(ids):]) == "\n"  # the template's last newline
    kept = [tokenizer.decode([t]) for t in labels if t != train.IGNORE_INDEX]
    assert "".join(kept) == "5<|end|>8<|end|>6<|end|>"


def test_sft_batch_keeps_eos_when_pad_is_eos(tokenizer):
    eos = tokenizer.eos_token_id
    features = [train.sft_features(tokenizer, "Say hi.", "hi"),
                train.sft_features(tokenizer, "Say a longer greeting.", "hello there, friend")]
    batch = next(train.sft_batches(features, batch_tokens=4096, pad_id=eos, seed=0))
    for row in range(2):
        real = int(batch["attention_mask"][row].sum())
        labels = batch["labels"][row]
        assert labels[real - 1].item() == eos  # the real end token is trained
        assert (labels[real:] == train.IGNORE_INDEX).all()  # padding is not
        assert (batch["input_ids"][row, real:] == eos).all()


def test_pack_documents_never_splits():
    docs = [[1] * 100, [2] * 200, [3] * 50, [4] * 300, [5] * 10]
    rows = train.pack_documents(docs, seq_len=256, eos_id=0)
    assert all(len(r) <= 256 for r in rows)
    for doc in docs[:3] + docs[4:]:
        token = doc[0]
        holders = [r for r in rows if token in r]
        assert len(holders) == 1
        assert holders[0].count(token) == len(doc)
    assert sum(r.count(4) for r in rows) == 256  # the long document is truncated


def test_model_config_rejects_odd_sizes():
    with pytest.raises(ValueError, match="multiple of 32"):
        train.ModelConfig(d_model=100)


def test_short_training_lowers_loss(tokenizer, docs):
    rows = train.pack_documents(train.tokenize_corpus(tokenizer, docs), 128,
                                tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = train.build_model(train.ModelConfig(d_model=64, n_layers=2, n_heads=2,
                                                d_ff=128), tokenizer)
    held_out = train.pad_rows(rows[:8], tokenizer.pad_token_id)

    def loss():
        with torch.no_grad():
            return model(**held_out).loss.item()

    before = loss()
    config = train.TrainConfig(num_steps=60, lr=3e-3, batch_tokens=8 * 128, seq_len=128,
                               warmup_steps=5, log_every=1000)
    summary = train.train_loop(model, train.pretraining_batches(
        rows[8:], 8, tokenizer.pad_token_id, seed=0), config)
    assert summary["steps"] == 60
    assert loss() < before - 1.0


def test_lr_schedule_follows_time_budget():
    config = train.TrainConfig(num_steps=1000, lr=1.0, warmup_steps=10, time_budget_s=100)
    assert train.lr_at(0, 0, config) == pytest.approx(0.1)
    assert train.lr_at(10, 0, config) == pytest.approx(1.0, rel=1e-3)
    assert train.lr_at(10, 100, config) == pytest.approx(0.1)


@pytest.mark.parametrize("name", ["base", "chat"])
def test_shipped_model_loads_and_generates(name, monkeypatch):
    if WEIGHTS_MISSING[name]:
        pytest.skip(f"llmlab/zoo/models/{name} has no weights yet; "
                    f"run `llmlab zoo train {name}`")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = MODELS / name
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    if name == "chat":
        text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 7 + 5?"}],
                                             tokenize=False, add_generation_prompt=True)
    else:
        text = "The town of"
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    first = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    second = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    assert torch.equal(first, second)
    assert first.shape[1] > inputs["input_ids"].shape[1]


@pytest.mark.parametrize("name", ["base", "chat"])
def test_shipped_model_shape(name):
    if WEIGHTS_MISSING[name]:
        pytest.skip(f"llmlab/zoo/models/{name} has no weights yet")
    config = json.loads((MODELS / name / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    for key in ("hidden_size", "intermediate_size", "vocab_size"):
        assert config[key] % 32 == 0, key
    assert (MODELS / name / "README.md").exists()
    assert "<|assistant|>" in (MODELS / name / "chat_template.jinja").read_text()


def test_shipped_weights_under_25_mb():
    total = sum(os.path.getsize(p) for p in MODELS.glob("*/model.safetensors"))
    assert total < 25 * 1024 * 1024
