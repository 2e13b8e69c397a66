"""Tests of the LoRA target-module helpers on tiny random GPT-2 and Llama models."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from runtime_tiny import VOCAB_SIZE, llama_config
from transformers import GPT2Config, GPT2LMHeadModel, LlamaForCausalLM

import llmlab
from llmlab.errors import LlmlabError, TargetModulesError


@pytest.fixture(scope="module")
def llama():
    torch.manual_seed(0)
    return LlamaForCausalLM(llama_config())


@pytest.fixture(scope="module")
def gpt2():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=VOCAB_SIZE, n_positions=64, n_embd=64,
                        n_layer=2, n_head=4)
    return GPT2LMHeadModel(config)


class TwoLayers(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = torch.nn.Linear(8, 8)
        self.head = torch.nn.Linear(8, 2)


def test_linear_names_llama(llama):
    names = llmlab.linear_layer_names(llama)
    expected = ["down_proj", "gate_proj", "k_proj", "lm_head", "o_proj",
                "q_proj", "up_proj", "v_proj"]
    assert names == expected


def test_linear_names_gpt2_conv1d(gpt2):
    names = llmlab.linear_layer_names(gpt2)
    assert names == ["c_attn", "c_fc", "c_proj", "lm_head"]


def test_attention_targets_llama(llama):
    targets = llmlab.attention_target_modules(llama)
    assert targets == ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_attention_targets_gpt2(gpt2):
    assert llmlab.attention_target_modules(gpt2) == ["c_attn"]


def test_attention_targets_wrap_gpt2_with_peft(gpt2):
    targets = llmlab.attention_target_modules(gpt2)
    config = LoraConfig(r=2, target_modules=targets, fan_in_fan_out=True)
    peft_model = get_peft_model(GPT2LMHeadModel(gpt2.config), config)
    lora_layers = [n for n, _ in peft_model.named_modules() if n.endswith("c_attn")]
    assert len(lora_layers) == gpt2.config.n_layer
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable
    assert all("lora_" in n for n in trainable)


def test_linear_names_after_peft_wrap(llama):
    wrapped = get_peft_model(LlamaForCausalLM(llama.config),
                             LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert llmlab.linear_layer_names(wrapped) == llmlab.linear_layer_names(llama)


def test_attention_targets_unknown_lists_layers():
    with pytest.raises(TargetModulesError) as caught:
        llmlab.attention_target_modules(TwoLayers())
    message = str(caught.value)
    assert "'encoder'" in message
    assert "'head'" in message
    assert "q_proj" in message


def test_check_targets_gpt2_rejects_llama_names(gpt2):
    with pytest.raises(TargetModulesError) as caught:
        llmlab.check_target_modules(gpt2, ["q_proj", "v_proj"])
    message = str(caught.value)
    assert "['q_proj', 'v_proj']" in message
    assert "c_attn" in message
    assert isinstance(caught.value, LlmlabError)
    assert isinstance(caught.value, ValueError)


def test_check_targets_reports_only_missing(llama):
    with pytest.raises(TargetModulesError) as caught:
        llmlab.check_target_modules(llama, ["q_proj", "c_attn"])
    assert "['c_attn']" in str(caught.value)


def test_check_targets_accepts_present(llama):
    llmlab.check_target_modules(llama, ["q_proj", "v_proj"])
    llmlab.check_target_modules(llama, r".*\.q_proj")  # regex: left to peft
