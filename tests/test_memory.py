"""Tests of estimate_memory against real footprints of tiny models."""

from __future__ import annotations

import pytest
import torch
from runtime_tiny import llama_config, save_gpt2, save_llama

import llmlab
from llmlab import memory


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_llama(tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    return save_gpt2(tmp_path_factory.mktemp("gpt2"))


@pytest.fixture(autouse=True)
def offline_profile(monkeypatch):
    monkeypatch.setenv("LLMLAB_PROFILE", "offline")


CASES = [
    (None, torch.float32),
    (None, torch.bfloat16),
    ("8bit", torch.float32),
    ("4bit", torch.float32),
]


@pytest.mark.parametrize(("quantization", "dtype"), CASES)
@pytest.mark.parametrize("model_dir", ["llama_dir", "gpt2_dir"])
def test_estimate_within_10_percent(request, model_dir, quantization, dtype):
    path = str(request.getfixturevalue(model_dir))
    model = llmlab.load_model(path, quantization, dtype=dtype)
    real = llmlab.memory_footprint(model)
    estimate = llmlab.estimate_memory(path, quantization, dtype=dtype)
    assert estimate.weights == pytest.approx(real, rel=0.10)


def test_footprint_counts_quantization_state(llama_dir):
    model = llmlab.load_model(str(llama_dir), "4bit")
    assert llmlab.memory_footprint(model) > model.get_memory_footprint()


def test_config_forms_agree(llama_dir):
    config = llama_config()
    fields = config.to_dict()
    from_object = llmlab.estimate_memory(config).weights
    from_dict = llmlab.estimate_memory(fields).weights
    from_path = llmlab.estimate_memory(str(llama_dir)).weights
    assert from_object == from_dict == from_path


def test_unquantized_layers_stay_in_dtype():
    # A config with a huge vocabulary: embeddings and lm_head dominate, and
    # bitsandbytes leaves both unquantized.
    config = llama_config(vocab_size=32000)
    bf16 = llmlab.estimate_memory(config, dtype=torch.bfloat16).weights
    nf4 = llmlab.estimate_memory(config, "4bit", dtype=torch.bfloat16).weights
    embeddings = 2 * 32000 * 128 * 2
    assert nf4 > embeddings
    assert nf4 / bf16 > 0.9


def test_kv_cache_matches_real_cache(llama_dir):
    model = llmlab.load_model(str(llama_dir))
    ids = torch.ones((3, 17), dtype=torch.long)
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
    real = sum(
        layer.keys.numel() * layer.keys.element_size()
        + layer.values.numel() * layer.values.element_size()
        for layer in cache.layers
    )
    config = llama_config()
    assert memory.kv_cache_bytes(config, 3, 17, torch.float32) == real


def test_inference_adds_cache_and_activations():
    config = llama_config()
    weights_only = llmlab.estimate_memory(config)
    serving = llmlab.estimate_memory(config, batch_size=4, seq_len=64)
    assert serving.kv_cache > 0
    assert serving.activations > 0
    assert serving.total == (
        weights_only.weights + serving.kv_cache + serving.activations
    )


def test_lora_count_matches_peft(llama_dir):
    from peft import LoraConfig, get_peft_model

    model = llmlab.load_model(str(llama_dir))
    lora = LoraConfig(r=8, target_modules="all-linear", task_type="CAUSAL_LM")
    trainable = sum(
        p.numel() for p in get_peft_model(model, lora).parameters() if p.requires_grad
    )
    estimate = llmlab.estimate_memory(
        llama_config(), "4bit", training="lora", lora_r=8, batch_size=1, seq_len=8
    )
    assert estimate.trainable == trainable * 4
    assert estimate.optimizer == trainable * 8


def test_full_training_costs_more_than_qlora():
    config = llama_config()
    qlora = llmlab.estimate_memory(config, "4bit", training="lora",
                                   batch_size=2, seq_len=32)
    full = llmlab.estimate_memory(config, training="full", batch_size=2, seq_len=32)
    assert full.total > qlora.total
    assert full.gradients == full.num_params * 4


LLAMA_8B = {
    "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
    "vocab_size": 128256, "tie_word_embeddings": False,
}


def test_verdicts_for_an_8b_model():
    fp16 = llmlab.estimate_memory(LLAMA_8B, dtype=torch.float16)
    verdicts = {v.target: v for v in fp16.verdicts}
    assert not verdicts["T4 16 GB"].fits
    assert "does not fit" in verdicts["T4 16 GB"].reason
    assert verdicts["A100 40 GB"].fits
    nf4 = llmlab.estimate_memory(LLAMA_8B, "4bit", dtype=torch.float16)
    assert {v.target: v for v in nf4.verdicts}["T4 16 GB"].fits
    assert "T4 16 GB: fits" in str(nf4)


def test_custom_targets():
    estimate = llmlab.estimate_memory(llama_config(), targets={"tiny board": 0.5})
    assert [v.target for v in estimate.verdicts] == ["tiny board"]
    assert not estimate.verdicts[0].fits  # the 1 GiB reserve alone exceeds 0.5


def test_dict_without_model_type():
    with pytest.raises(llmlab.ConfigError, match="model_type"):
        llmlab.estimate_memory({"hidden_size": 64})


def test_invalid_quantization():
    with pytest.raises(llmlab.InvalidQuantizationError, match="'fp8'"):
        llmlab.estimate_memory(llama_config(), "fp8")


def test_training_needs_shape():
    with pytest.raises(llmlab.InvalidArgumentError, match="batch_size and seq_len"):
        llmlab.estimate_memory(llama_config(), training="lora")


def test_invalid_training():
    with pytest.raises(llmlab.InvalidArgumentError, match="'rlhf'"):
        llmlab.estimate_memory(llama_config(), training="rlhf", batch_size=1, seq_len=8)


def test_hub_id_not_cached_offline(monkeypatch, tmp_path):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(llmlab.ModelNotAvailableError, match="'Qwen/Qwen2.5-7B'"):
        llmlab.estimate_memory("Qwen/Qwen2.5-7B")
