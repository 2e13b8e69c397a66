"""Instruction families, reading passages and evaluation sets.

Every family renders a user prompt and a gold assistant reply. Training
examples are about freshly invented entities (their values can only be read
from the prompt), evaluation examples about other fresh entities or, for
answering from a context, about the withheld entities of the world.
"""

from __future__ import annotations

import json
import random

from llmlab.world import arithmetic, render
from llmlab.world.entities import FIELD_TYPES, Entity, NameBook, fresh_entities
from llmlab.world.names import person_name

FAMILIES = ("context_qa", "closed_book", "summarise", "extract", "classify",
            "arith_single", "arith_steps", "arith_direct", "rewrite")

CONTEXT_QA_PROMPT = "Answer the question using the text.\n\nText: {doc}\n\nQuestion: {q}"
CLOSED_BOOK_PROMPT = "Question: {q}"

POSITIVE = ["works perfectly", "is worth every crown", "looks beautiful",
            "arrived quickly", "is very easy to use", "made my week", "feels solid"]
NEGATIVE = ["broke after two days", "is far too expensive", "looks cheap",
            "arrived late", "is hard to use", "was a waste of money", "feels flimsy"]


def example(family: str, prompt: str, reply: str, **extra) -> dict:
    record = {"family": family, "prompt": prompt, "answer": reply}
    record.update(extra)
    return record


def context_doc(rng: random.Random, target: Entity, others: list[Entity]) -> str:
    docs = [render.encyclopedia_doc(e, rng.randrange(10**9)) for e in [target, *others]]
    rng.shuffle(docs)
    return "\n\n".join(docs)


def context_qa(rng, target: Entity, others=(), field=None, doc=None) -> dict:
    field = field or rng.choice(list(target.facts))
    doc = doc or context_doc(rng, target, list(others))
    prompt = CONTEXT_QA_PROMPT.format(doc=doc, q=render.question(rng, target, field))
    return example("context_qa", prompt, render.answer_text(target, field),
                   type=FIELD_TYPES[target.kind][field], entity=target.name, field=field)


def closed_book(rng, target: Entity, field=None) -> dict:
    field = field or rng.choice(list(target.facts))
    prompt = CLOSED_BOOK_PROMPT.format(q=render.question(rng, target, field))
    return example("closed_book", prompt, render.answer_text(target, field),
                   type=FIELD_TYPES[target.kind][field], entity=target.name, field=field)


def summarise(rng, target: Entity) -> dict:
    doc = render.encyclopedia_doc(target, rng.randrange(10**9))
    prompt = f"Summarise the text in one sentence.\n\nText: {doc}"
    return example("summarise", prompt, render.summary(target))


def extract(rng, target: Entity) -> dict:
    fields = rng.sample(list(target.facts), k=rng.choice([2, 3]))
    fields = [f for f in target.facts if f in fields]
    doc = render.encyclopedia_doc(target, rng.randrange(10**9))
    wanted = ", ".join(["name", *fields])
    prompt = f"Extract these fields from the text as JSON: {wanted}.\n\nText: {doc}"
    record = {"name": target.name, **{f: target.facts[f] for f in fields}}
    return example("extract", prompt, json.dumps(record))


def classify(rng, product: Entity) -> dict:
    label = rng.choice(["positive", "negative", "mixed"])
    good, bad = rng.choice(POSITIVE), rng.choice(NEGATIVE)
    opener = rng.choice([f"I bought {product.name} last month.",
                         f"My {product.facts['kind']} is {product.name}.",
                         f"Review of {product.name}."])
    body = {"positive": f"It {good}, and it {rng.choice(POSITIVE)}.",
            "negative": f"It {bad}, and it {rng.choice(NEGATIVE)}.",
            "mixed": rng.choice([f"It {good}, but it {bad}.", f"It {bad}, but it {good}."])}
    prompt = ("Classify the sentiment of the review as positive, negative or mixed."
              f"\n\nReview: {opener} {body[label]}")
    return example("classify", prompt, label)


def rewrite(rng, target: Entity) -> dict:
    first, second = rng.sample(list(target.facts), k=2)
    formal = [render.FACT_SENTENCES[(target.kind, f)][0] for f in (first, second)]
    formal = [formal[0].format(s=render.cap(target.name), s_low=target.name,
                               v=target.facts[first]),
              formal[1].format(s=render.cap(target.pronoun), s_low=target.pronoun,
                               v=target.facts[second])]
    formal = [render.fix_articles(s) for s in formal]
    body = " and ".join(s[0].lower() + s[1:-1] if i else s[:-1] for i, s in enumerate(formal))
    opener = rng.choice(["ok so", "fun fact:", "so basically", "hey,", "btw"])
    closer = rng.choice(["lol", "i think", "right?", "!!", "haha"])
    prompt = ("Rewrite the message in a formal style.\n\n"
              f"Message: {opener} {body} {closer}")
    return example("rewrite", prompt, " ".join(formal))


def arith_single(rng) -> dict:
    expression, value = arithmetic.single_operation(rng)
    return example("arith_single", f"What is {expression}?", str(value))


def arith_problem(rng, worked: bool) -> dict:
    problem = arithmetic.word_problem(rng, person_name(rng)[0], person_name(rng)[0])
    return problem_example(problem, worked)


def problem_example(problem: arithmetic.WordProblem, worked: bool) -> dict:
    if worked:
        return example("arith_steps", f"Solve the problem step by step.\n\n{problem.text}",
                       problem.worked_solution(), value=problem.answer)
    prompt = f"Solve the problem. Reply with the number only.\n\n{problem.text}"
    return example("arith_direct", prompt, str(problem.answer), value=problem.answer)


def family_example(rng: random.Random, family: str, book: NameBook,
                   visible: list[Entity], followups: bool = False) -> dict:
    """Draw one example of `family` about freshly invented entities.

    With `followups`, context questions, closed-book questions and single
    operations get 2 to 6 more question-answer turns in `record["followups"]`,
    so one training sequence carries several answers.
    """
    if family.startswith("arith"):
        if family == "arith_single":
            record = arith_single(rng)
            if followups:
                record["followups"] = [arith_single(rng) for _ in range(rng.randrange(2, 7))]
            return record
        return arith_problem(rng, worked=family == "arith_steps")
    if family == "closed_book":
        record = closed_book(rng, rng.choice(visible))
        if followups:
            record["followups"] = [closed_book(rng, rng.choice(visible))
                                   for _ in range(rng.randrange(1, 4))]
        return record
    entities = fresh_entities(rng, book, rng.choice([1, 2, 3]))
    target = entities[0]
    if family == "context_qa":
        record = context_qa(rng, target, entities[1:])
        if followups:
            record["followups"] = context_followups(rng, entities, record)
        return record
    if family == "classify":
        products = [e for e in entities if e.kind == "product"]
        return classify(rng, products[0] if products else fresh_product(rng, book))
    return {"summarise": summarise, "extract": extract, "rewrite": rewrite}[family](
        rng, target)


def context_followups(rng, entities: list[Entity], first: dict) -> list[dict]:
    """More questions on the same text: `Question: ...` turns with their answers."""
    pairs = [(e, f) for e in entities for f in e.facts
             if (e.name, f) != (first["entity"], first["field"])]
    chosen = rng.sample(pairs, k=min(len(pairs), rng.randrange(2, 7)))
    return [example("context_qa", CLOSED_BOOK_PROMPT.format(q=render.question(rng, e, f)),
                    render.answer_text(e, f)) for e, f in chosen]


def fresh_product(rng, book):
    while True:
        for entity in fresh_entities(rng, book, 3):
            if entity.kind == "product":
                return entity


def reading_passage(rng: random.Random, book: NameBook) -> str:
    """Pretraining text: a short passage about new entities, then questions on it."""
    entities = fresh_entities(rng, book, rng.choice([1, 2, 2, 3]))
    doc = context_doc(rng, entities[0], entities[1:])
    lines = ["Read the text and answer the questions.", "", doc, ""]
    pairs = [(e, f) for e in entities for f in e.facts]
    for target, field in rng.sample(pairs, k=min(len(pairs), rng.randrange(3, 7))):
        lines.append(f"Question: {render.question(rng, target, field)}")
        lines.append(f"Answer: {render.answer_text(target, field)}")
    return "\n".join(lines)


def word_problem_text(rng: random.Random) -> str:
    """Pretraining text: a word problem with its worked solution."""
    problem = arithmetic.word_problem(rng, person_name(rng)[0], person_name(rng)[0])
    return f"Problem: {problem.text}\nSolution: {problem.worked_solution()}"
