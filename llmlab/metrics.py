"""Scores that several chapters share: answer matching, calibration, perplexity.

Every function takes plain Python values (strings, lists of floats) or a model
and token ids, so a chapter can show the computation next to the call.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Sequence

import torch

from llmlab.errors import InvalidArgumentError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case `text`, drop punctuation and the articles a/an/the, squeeze spaces.

    Two answers that differ only in these ways count as the same answer.
    """
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when both strings are equal after `normalize_answer`, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall after `normalize_answer`.

    Tokens are whitespace-separated words, counted with multiplicity. Two empty
    answers score 1.0; one empty answer against a non-empty one scores 0.0.
    """
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def final_number(text: str) -> int | None:
    """Return the integer a worked answer ends on, or None when `text` holds no integer.

    "the answer is N" wins when present; otherwise the last integer in the text.
    """
    match = re.search(r"answer is (-?\d+)", text)
    numbers = [match.group(1)] if match else re.findall(r"-?\d+", text)
    return int(numbers[-1]) if numbers else None


def majority_vote(answers: Sequence) -> tuple[object, float]:
    """Return the most frequent answer that is not None, and its share of all answers.

    Ties go to the answer seen first. When every answer is None the result is
    (None, 0.0), so a parser failure never wins a vote.
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None, 0.0
    best = max(counts.values())
    winner = next(a for a in answers if a is not None and counts[a] == best)
    return winner, best / len(answers)


def reliability_bins(confidences: Sequence[float], correct: Sequence[bool],
                     n_bins: int = 10) -> list[dict]:
    """Group predictions into `n_bins` equal-width confidence bins on [0, 1].

    Returns one dict per non-empty bin with its range (`lo`, `hi`), `count`,
    mean `confidence` and `accuracy`: the points of a reliability diagram.
    A confidence of exactly 1.0 falls in the last bin.
    """
    conf, hits = _check_calibration_inputs(confidences, correct, n_bins)
    bins = []
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i, c in enumerate(conf)
                   if lo <= c < hi or (b == n_bins - 1 and c == 1.0)]
        if members:
            bins.append({"lo": lo, "hi": hi, "count": len(members),
                         "confidence": sum(conf[i] for i in members) / len(members),
                         "accuracy": sum(hits[i] for i in members) / len(members)})
    return bins


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool],
                               n_bins: int = 10) -> float:
    """Return the expected calibration error, the mean |accuracy - confidence| by bin.

    `confidences` are the model's probabilities for its own predictions, in
    [0, 1]; `correct` marks each prediction as right or wrong. 10 bins is the
    usual choice; fewer bins suit a few hundred predictions.
    """
    bins = reliability_bins(confidences, correct, n_bins)
    total = sum(b["count"] for b in bins)
    return sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / total


def _check_calibration_inputs(confidences, correct, n_bins):
    conf = [float(c) for c in confidences]
    hits = [bool(h) for h in correct]
    if len(conf) != len(hits) or not conf:
        raise InvalidArgumentError(
            f"got {len(conf)} confidences and {len(hits)} correctness flags; pass one "
            "flag per confidence, at least one of each")
    bad = [c for c in conf if not 0.0 <= c <= 1.0]
    if bad:
        raise InvalidArgumentError(
            f"confidence {bad[0]} is outside [0, 1]; pass probabilities, not logits")
    if n_bins < 1:
        raise InvalidArgumentError(f"n_bins={n_bins}; use 1 or more bins")
    return conf, hits


@torch.no_grad()
def sliding_window_nll(model, input_ids: torch.Tensor, window: int,
                       stride: int) -> tuple[float, int]:
    """Return the total negative log-likelihood of `input_ids` and the scored tokens.

    `input_ids` is one sequence (shape `(T,)` or `(1, T)`). Each forward pass
    reads at most `window` tokens, the model's context or less. Successive
    windows end `stride` tokens apart, with `stride <= window`. A smaller stride
    gives each scored token more context and costs more passes. A window must
    also hold the token just before its first scored one, so the step between
    windows is at most `window - 1`. Every token after the first is scored
    exactly once, with all the context its window holds.
    """
    ids = input_ids.reshape(-1)
    if window < 2 or not 1 <= stride <= window:
        raise InvalidArgumentError(
            f"stride={stride}, window={window}; need window >= 2 and "
            "1 <= stride <= window")
    if ids.numel() < 2:
        raise InvalidArgumentError(
            f"a sequence of {ids.numel()} token(s) has nothing to score; "
            "pass 2 or more")
    device = next(model.parameters()).device
    total, scored, done = 0.0, 0, 1  # tokens before `done` are already scored
    for end in _window_ends(ids.numel(), window, min(stride, window - 1)):
        start = max(0, end - window)
        chunk = ids[start:end].unsqueeze(0).to(device)
        logits = model(input_ids=chunk).logits[0, :-1].float()
        targets = chunk[0, 1:]
        losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        new = end - done  # the last `new` targets are the ones not yet scored
        total += losses[-new:].sum().item()
        scored += new
        done = end
    return total, scored


def _window_ends(n_tokens: int, window: int, stride: int) -> list[int]:
    ends = list(range(min(window, n_tokens), n_tokens + 1, stride))
    if ends[-1] != n_tokens:
        ends.append(n_tokens)
    return ends


def sliding_window_perplexity(model, input_ids: torch.Tensor, window: int,
                              stride: int) -> float:
    """Return exp(total negative log-likelihood / scored tokens).

    See `sliding_window_nll` for `window` and `stride`.

    With `window` at least the sequence length this equals the perplexity of
    one forward pass over the whole sequence.
    """
    total, scored = sliding_window_nll(model, input_ids, window, stride)
    return math.exp(total / scored)
