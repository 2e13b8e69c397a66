"""Tests of load_model and load_tokenizer on tiny random models, on the CPU."""

from __future__ import annotations

import logging

import pytest
import torch
from runtime_tiny import llama_config, save_llama

import llmlab
from llmlab import loading
from llmlab.memory import memory_footprint


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return save_llama(tmp_path_factory.mktemp("llama"))


@pytest.fixture(autouse=True)
def offline_profile(monkeypatch):
    monkeypatch.setenv("LLMLAB_PROFILE", "offline")


def linear_weight_bytes(model) -> int:
    """Bytes of the weights inside the decoder layers (the quantizable ones)."""
    total = 0
    for name, param in model.named_parameters():
        if ".layers." in name and name.endswith("proj.weight"):
            total += param.numel() * param.element_size()
            quant_state = getattr(param, "quant_state", None)
            if quant_state is not None:
                total += quant_state.absmax.numel() * quant_state.absmax.element_size()
    return total


def test_load_fp32_on_cpu(llama_dir):
    model = llmlab.load_model(str(llama_dir))
    assert model.dtype == torch.float32
    assert model.device.type == "cpu"


def test_load_bf16_halves_footprint(llama_dir):
    fp32 = memory_footprint(llmlab.load_model(str(llama_dir)))
    bf16 = memory_footprint(llmlab.load_model(str(llama_dir), dtype=torch.bfloat16))
    assert bf16 / fp32 == pytest.approx(0.5, abs=0.01)


def test_load_4bit_on_cpu(llama_dir):
    import bitsandbytes as bnb

    model = llmlab.load_model(str(llama_dir), "4bit")
    assert isinstance(model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    assert type(model.lm_head) is torch.nn.Linear
    assert model.model.embed_tokens.weight.dtype == torch.float32
    quant_state = model.model.layers[0].mlp.up_proj.weight.quant_state
    assert quant_state.quant_type == "nf4"
    assert quant_state.nested  # double quantization


def test_4bit_and_8bit_footprint_ratios(llama_dir):
    fp32 = llmlab.load_model(str(llama_dir))
    int8 = llmlab.load_model(str(llama_dir), "8bit")
    nf4 = llmlab.load_model(str(llama_dir), "4bit")
    linear_fp32 = linear_weight_bytes(fp32)
    # int8 is 1/4 of float32; nf4 is 1/8 plus one absmax byte per 64 weights.
    assert linear_weight_bytes(int8) / linear_fp32 == pytest.approx(0.25, abs=0.005)
    assert linear_weight_bytes(nf4) / linear_fp32 == pytest.approx(
        0.125 + 1 / 256, abs=0.005
    )
    # Whole models: embeddings and lm_head stay in float32.
    assert memory_footprint(nf4) < memory_footprint(int8) < memory_footprint(fp32)


def test_quantized_forward_close_to_fp32(llama_dir):
    ids = torch.tensor([[1, 5, 9, 14, 20, 31]])
    errors = {}
    with torch.no_grad():
        ref = llmlab.load_model(str(llama_dir))(ids).logits
        for quantization in ("8bit", "4bit"):
            out = llmlab.load_model(str(llama_dir), quantization)(ids).logits
            errors[quantization] = ((out - ref).norm() / ref.norm()).item()
    # Unrelated logits would give a relative error near 1.4.
    assert errors["8bit"] < 0.1
    assert errors["4bit"] < 0.5
    assert errors["8bit"] < errors["4bit"]


def test_odd_sized_4bit_layers_run_on_cpu(tmp_path):
    # 96 and 200 are not multiples of 32: bitsandbytes' repacked CPU kernel
    # fails on them, the portable layout kept by load_model does not.
    path = save_llama(tmp_path, llama_config(hidden_size=96, intermediate_size=200))
    model = llmlab.load_model(str(path), "4bit")
    with torch.no_grad():
        logits = model(torch.tensor([[1, 2, 3], [4, 5, 6]])).logits
    assert logits.shape == (2, 3, 320)
    assert torch.isfinite(logits).all()


def test_qlora_trains_after_inference(llama_dir):
    from peft import LoraConfig, get_peft_model

    model = llmlab.load_model(str(llama_dir), "4bit")
    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]])
    with torch.no_grad():
        model(ids)  # an inference pass before training
    llmlab.check_trainable(model)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=1e-2
    )
    losses = []
    for _ in range(3):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_check_trainable_rejects_repacked(llama_dir):
    import bitsandbytes as bnb
    from transformers import AutoModelForCausalLM

    if not bnb.functional.has_avx512bf16():
        pytest.skip("bitsandbytes repacks 4-bit weights only on AVX512-BF16 CPUs")
    config = loading.quantization_config("4bit", torch.float32)
    model = AutoModelForCausalLM.from_pretrained(
        llama_dir, quantization_config=config, device_map="cpu"
    )
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3]]))
    with pytest.raises(llmlab.QuantizedTrainingError, match="Reload the model"):
        llmlab.check_trainable(model)


def test_invalid_quantization(llama_dir):
    with pytest.raises(llmlab.InvalidQuantizationError, match="'int4'.*'8bit'.*'4bit'"):
        llmlab.load_model(str(llama_dir), "int4")


def test_bitsandbytes_missing_raises(llama_dir, monkeypatch):
    real_find_spec = loading.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "bitsandbytes" else real_find_spec(name, *args)

    monkeypatch.setattr(loading.importlib.util, "find_spec", find_spec)
    with pytest.raises(llmlab.QuantizationUnavailableError, match="pip install"):
        llmlab.load_model(str(llama_dir), "4bit")


def test_backend_failure_names_device(llama_dir, monkeypatch):
    def broken(*args):
        raise NotImplementedError("no kernel registered for this device")

    monkeypatch.setattr(loading, "_quantized_linear", broken)
    expected = "'cpu'.*quantization=None"
    with pytest.raises(llmlab.QuantizationUnavailableError, match=expected):
        llmlab.load_model(str(llama_dir), "8bit")


def test_fallback_loads_unquantized(llama_dir, monkeypatch):
    def broken(*args):
        raise NotImplementedError("no kernel registered for this device")

    monkeypatch.setattr(loading, "_quantized_linear", broken)
    with pytest.warns(llmlab.FallbackWarning, match="without quantization"):
        model = llmlab.load_model(str(llama_dir), "4bit", fallback=True)
    assert type(model.model.layers[0].self_attn.q_proj) is torch.nn.Linear


def test_hub_id_offline_not_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    expected = "'Qwen/Qwen2.5-0.5B'.*offline"
    with pytest.raises(llmlab.ModelNotAvailableError, match=expected):
        llmlab.load_model("Qwen/Qwen2.5-0.5B")


def test_missing_local_folder():
    with pytest.raises(llmlab.ModelNotAvailableError, match="'./no-such-model'"):
        llmlab.load_model("./no-such-model")


def test_unknown_device(llama_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(llmlab.DeviceNotFoundError, match="'cuda:1'"):
        llmlab.load_model(str(llama_dir), device_map="cuda:1")


def greedy(model, tokenizer, prompts, max_new_tokens=10):
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(
            **batch, max_new_tokens=max_new_tokens, do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    return out[:, batch["input_ids"].shape[1]:]


def test_left_padded_batch_matches_single(llama_dir):
    model = llmlab.load_model(str(llama_dir))
    tokenizer = llmlab.load_tokenizer(str(llama_dir))
    prompts = ["the cat sat on the mat and", "a dog"]
    batched = greedy(model, tokenizer, prompts)
    for row, prompt in enumerate(prompts):
        alone = greedy(model, tokenizer, [prompt])
        assert torch.equal(batched[row], alone[0]), prompt


def test_right_padding_changes_short_prompt(llama_dir):
    model = llmlab.load_model(str(llama_dir))
    tokenizer = llmlab.load_tokenizer(str(llama_dir))
    prompts = ["the cat sat on the mat and", "a dog"]
    alone = greedy(model, tokenizer, [prompts[1]])
    tokenizer.padding_side = "right"
    batched = greedy(model, tokenizer, prompts)
    assert not torch.equal(batched[1], alone[0])


def test_pad_token_set_and_logged(llama_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="llmlab.loading"):
        tokenizer = llmlab.load_tokenizer(str(llama_dir))
    assert tokenizer.pad_token == tokenizer.eos_token
    assert "no pad token" in caplog.text
    assert "<|endoftext|>" in caplog.text
    batch = tokenizer(["the cat", "the cat sat on the mat"], padding=True)
    mask = batch["attention_mask"]
    ids = batch["input_ids"]
    assert tokenizer.padding_side == "left"
    num_pad = len(ids[1]) - len(tokenizer("the cat")["input_ids"])
    assert num_pad > 0
    assert mask[0][:num_pad] == [0] * num_pad
    assert ids[0][:num_pad] == [tokenizer.pad_token_id] * num_pad
    assert all(mask[1])


def test_chat_template_missing(llama_dir):
    tokenizer = llmlab.load_tokenizer(str(llama_dir))
    messages = [{"role": "user", "content": "hi"}]
    expected = "no chat template: it is a base model"
    with pytest.raises(llmlab.ChatTemplateError, match=expected):
        tokenizer.apply_chat_template(messages, tokenize=False)


def test_chat_template_passed(llama_dir):
    tokenizer = llmlab.load_tokenizer(str(llama_dir))
    template = (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], chat_template=template,
        tokenize=False, add_generation_prompt=True,
    )
    assert text == "<|user|>hi\n<|assistant|>"


def test_embedder_role_loads_encoder():
    model = llmlab.load_model("embedder")
    tokenizer = llmlab.load_tokenizer("embedder")
    assert type(model).__name__ == "BertModel"
    assert tokenizer.padding_side == "right"  # left would shift BERT positions
    batch = tokenizer(["a cat", "the dog ran home"], return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert hidden.shape[-1] == 384
