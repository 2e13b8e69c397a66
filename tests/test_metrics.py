"""Scores in llmlab.metrics, including the sliding-window perplexity of case C10."""

import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from llmlab.errors import InvalidArgumentError
from llmlab.metrics import (
    exact_match,
    expected_calibration_error,
    final_number,
    majority_vote,
    normalize_answer,
    reliability_bins,
    sliding_window_nll,
    sliding_window_perplexity,
    token_f1,
)


def test_normalize_drops_case_punctuation_and_articles():
    assert normalize_answer("  The Red  Harbour. ") == "red harbour"
    assert normalize_answer("An apple, a day!") == "apple day"


def test_exact_match_after_normalization():
    assert exact_match("the Red Harbour.", "red harbour") == 1.0
    assert exact_match("red harbor", "red harbour") == 0.0


def test_token_f1_partial_overlap():
    # prediction "red big harbour" vs reference "red harbour": p = 2/3, r = 1
    assert token_f1("red big harbour", "red harbour") == pytest.approx(0.8)
    assert token_f1("blue", "red harbour") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("", "red") == 0.0


def test_token_f1_counts_repeated_tokens_once_per_match():
    # "red red" vs "red": one match, p = 1/2, r = 1
    assert token_f1("red red", "red") == pytest.approx(2 / 3)


def test_final_number_prefers_the_stated_answer():
    assert final_number("3 + 4 = 7, so the answer is 7.") == 7
    assert final_number("first 12 then -5") == -5
    assert final_number("no digits here") is None


def test_majority_vote_skips_none_and_ties():
    assert majority_vote([5, None, 5, 3]) == (5, 0.5)
    assert majority_vote([3, 5, 5, 3]) == (3, 0.5)
    assert majority_vote([None, None]) == (None, 0.0)


def test_ece_of_a_calibrated_and_an_overconfident_model():
    # 10 predictions at 0.7 confidence, 7 right: perfectly calibrated
    assert expected_calibration_error([0.7] * 10, [1] * 7 + [0] * 3) == pytest.approx(0)
    # always 0.9 confident, right half the time: gap 0.4
    assert expected_calibration_error([0.9] * 4, [1, 0, 1, 0]) == pytest.approx(0.4)


def test_reliability_bins_confidence_one():
    bins = reliability_bins([1.0, 0.05], [True, False], n_bins=10)
    assert [(b["lo"], b["count"]) for b in bins] == [(0.0, 1), (0.9, 1)]
    assert bins[1]["accuracy"] == 1.0


@pytest.mark.parametrize("conf, hits, fragment", [
    ([0.5, 0.6], [True], "2 confidences and 1"),
    ([1.5], [True], "confidence 1.5"),
    ([], [], "0 confidences"),
])
def test_calibration_inputs_are_checked(conf, hits, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment):
        expected_calibration_error(conf, hits)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=4, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def ids():
    return torch.randint(0, 50, (50,), generator=torch.Generator().manual_seed(1))


def reference_nll_per_token(model, ids, window, stride):
    """Score each target t with the context the windows give it, one pass per token."""
    step = min(stride, window - 1)
    ends = list(range(min(window, len(ids)), len(ids) + 1, step))
    if ends[-1] != len(ids):
        ends.append(len(ids))
    owner, done = {}, 1
    for end in ends:
        for t in range(done, end):
            owner[t] = max(0, end - window)
        done = end
    nll = {}
    with torch.no_grad():
        for t, start in owner.items():
            logits = model(input_ids=ids[start:t].unsqueeze(0)).logits[0, -1]
            nll[t] = -torch.log_softmax(logits, -1)[ids[t]].item()
    return nll


@pytest.mark.parametrize("window, stride", [(16, 16), (16, 8), (16, 1), (7, 5)])
def test_sliding_window_scores_every_token_once(tiny_model, ids, window, stride):
    total, scored = sliding_window_nll(tiny_model, ids, window, stride)
    expected = reference_nll_per_token(tiny_model, ids, window, stride)
    assert scored == len(ids) - 1 == len(expected)
    assert total == pytest.approx(sum(expected.values()), rel=1e-4)


def test_one_window_equals_one_pass(tiny_model, ids):
    with torch.no_grad():
        loss = tiny_model(input_ids=ids.unsqueeze(0), labels=ids.unsqueeze(0)).loss
    assert sliding_window_perplexity(tiny_model, ids, 64, 64) == pytest.approx(
        math.exp(loss.item()), rel=1e-5)


@pytest.mark.parametrize("window, stride", [(16, 0), (16, 17), (1, 1)])
def test_bad_windows_are_refused(tiny_model, ids, window, stride):
    with pytest.raises(InvalidArgumentError, match=f"stride={stride}"):
        sliding_window_nll(tiny_model, ids, window, stride)
