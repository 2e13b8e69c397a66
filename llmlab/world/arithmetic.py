"""Single arithmetic operations and 2-3 step word problems over one number range.

Every operand, intermediate value and result stays within 0..99, additions and
subtractions use a second operand of 2..20, and multiplications are m x n with
m in 2..5 and n in 2..19. A tiny model can learn this table reliably, which is
what the worked-step format of the word problems relies on.
"""

from __future__ import annotations

import dataclasses
import random

MAX_VALUE = 99
ITEMS = ["apples", "pens", "stamps", "marbles", "books", "cups", "shells", "coins",
         "eggs", "candles", "tickets", "buttons", "plates", "seeds", "nails"]


@dataclasses.dataclass
class WordProblem:
    """A word problem, its worked steps as `a op b = c` strings, and the answer."""

    text: str
    steps: list[str]
    answer: int

    def worked_solution(self) -> str:
        return " ".join(s + "." for s in self.steps) + f" The answer is {self.answer}."


def single_operation(rng: random.Random) -> tuple[str, int]:
    """Draw one operation from the range the word problems use."""
    op = rng.choice("+-*")
    if op == "*":
        a, b = rng.randrange(2, 6), rng.randrange(2, 20)
        return f"{a} x {b}", a * b
    b = rng.randrange(2, 21)
    if op == "+":
        a = rng.randrange(0, MAX_VALUE - b + 1)
        return f"{a} + {b}", a + b
    a = rng.randrange(b, MAX_VALUE + 1)
    return f"{a} - {b}", a - b


def arithmetic_drill(rng: random.Random, n_lines: int) -> str:
    """Lines like `47 + 8 = 55`, the pretraining form of single operations."""
    lines = []
    for _ in range(n_lines):
        expression, value = single_operation(rng)
        lines.append(f"{expression} = {value}")
    return "\n".join(lines)


def word_problem(rng: random.Random, person: str, friend: str,
                 n_steps: int | None = None) -> WordProblem:
    """Build a 2 or 3 step problem whose values all stay within 0..MAX_VALUE."""
    n_steps = n_steps or rng.choice([2, 3])
    item = rng.choice(ITEMS)
    if rng.random() < 0.4:
        boxes, per_box = rng.randrange(2, 6), rng.randrange(2, 20)
        while boxes * per_box > MAX_VALUE - 10:
            per_box -= 1
        value = boxes * per_box
        sentences = [f"{person} buys {boxes} boxes with {per_box} {item} in each box."]
        steps = [f"{boxes} x {per_box} = {value}"]
    else:
        value = rng.randrange(10, 70)
        sentences = [f"{person} has {value} {item}."]
        steps = []
    while len(steps) < n_steps:
        value, sentence, step = _next_step(rng, value, item, friend)
        sentences.append(sentence)
        steps.append(step)
    sentences.append(f"How many {item} does {person} have now?")
    return WordProblem(" ".join(sentences), steps, value)


def _next_step(rng, value, item, friend):
    b = rng.randrange(2, 21)
    can_add, can_sub = value + b <= MAX_VALUE, value - b >= 0
    if can_add and (not can_sub or rng.random() < 0.5):
        sentence = rng.choice([f"Then {friend} gives {b} more {item} to them.",
                               f"Later, they find {b} more {item}.",
                               f"Then they buy {b} more {item}."])
        return value + b, sentence, f"{value} + {b} = {value + b}"
    b = min(b, value)
    sentence = rng.choice([f"Then they give {b} {item} to {friend}.",
                           f"Later, they lose {b} {item}.",
                           f"Then they sell {b} {item}."])
    return value - b, sentence, f"{value} - {b} = {value - b}"
