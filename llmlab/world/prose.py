"""Varied English prose about the world: articles, stories, dialogues, how-tos.

Facts are stated through the templates in `render`; the sentences around them
come from a small grammar (time, subject, verb, object, place) so the corpus
teaches word order rather than a handful of fixed lines.
"""

from __future__ import annotations

import random

from llmlab.world import render
from llmlab.world.entities import Entity

TIMES = ["On a cold morning", "Late one evening", "In early spring", "After a long winter",
         "On a rainy afternoon", "At dawn", "One summer", "Before the harvest",
         "During the autumn storms", "On market day", "Some years later", "At noon"]
ADJECTIVES = ["old", "young", "tired", "cheerful", "quiet", "busy", "careful", "curious",
              "patient", "proud", "nervous", "clever", "kind", "stubborn", "generous"]
NOUNS = ["fisher", "child", "shopkeeper", "traveller", "neighbour", "student", "farmer",
         "stranger", "merchant", "sailor", "grandmother", "clerk", "driver", "cook"]
OBJECTS = ["a heavy basket", "a wooden box", "fresh bread", "a bundle of letters",
           "a map of the coast", "a jar of honey", "a broken lamp", "two baskets of apples",
           "a new coat", "an old violin", "a sack of flour", "a stack of books"]
VERBS = ["carried", "sold", "repaired", "painted", "found", "bought", "delivered",
         "wrapped", "borrowed", "returned", "cleaned", "weighed"]
PLACES = ["to the market", "across the bridge", "along the river", "into the square",
          "past the harbour", "up the hill", "through the narrow streets",
          "back to the workshop", "down to the station", "around the old mill"]
FEELINGS = ["The air smelled of salt and smoke.", "Nobody said a word for a while.",
            "It was the busiest day of the year.", "The streets were wet and empty.",
            "Everyone seemed to be in a good mood.", "The clock on the tower struck nine.",
            "A light wind came in from the sea.", "The shops were just opening."]


def filler_sentence(rng: random.Random) -> str:
    subject = f"the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    if rng.random() < 0.25:
        return rng.choice(FEELINGS)
    body = f"{subject} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}"
    if rng.random() < 0.5:
        return f"{rng.choice(TIMES)}, {body}."
    return render.cap(body) + "."


def article(rng: random.Random, entity: Entity) -> str:
    title = render.cap(entity.name)
    body = render.encyclopedia_doc(entity, seed=rng.randrange(10**9))
    extra = " ".join(filler_sentence(rng) for _ in range(rng.randrange(0, 2)))
    return f"{title}\n\n{body} {extra}".strip()


def narrative(rng: random.Random, person: Entity, world) -> str:
    """A short story that follows one person and states some of their facts."""
    employer = world.by_name.get(person.facts["employer"])
    p, name = person.pronoun, person.name
    lines = [f"{rng.choice(TIMES)}, {name} left home early.",
             render.fact_sentence(rng, person, "job", p),
             render.fact_sentence(rng, person, "town", p), filler_sentence(rng)]
    if employer is not None and rng.random() < 0.8:
        lines.append(render.fact_sentence(rng, person, "employer", p))
        lines.append(render.fact_sentence(rng, employer, rng.choice(
            ["sector", "town", "staff", "founded"]), employer.name))
    product = rng.choice(world.visible("product"))
    lines.append(f"That day {p} bought {product.name}.")
    lines.append(render.fact_sentence(rng, product, rng.choice(["kind", "price"]), "it"))
    lines += [filler_sentence(rng) for _ in range(rng.randrange(1, 3))]
    lines.append(f"In the evening, {name} went home {rng.choice(['happy', 'tired', 'late'])}.")
    return " ".join(render.cap(line) for line in lines)


def dialogue(rng: random.Random, entity: Entity) -> str:
    """Two speakers talk about one entity."""
    speaker_a, speaker_b = rng.sample(["Mira", "Tom", "Ada", "Jon", "Lea", "Sam"], 2)
    fields = rng.sample(list(entity.facts), k=min(3, len(entity.facts)))
    lines = [f"{speaker_a}: Have you heard of {entity.name}?",
             f"{speaker_b}: Yes. " + render.fact_sentence(rng, entity, fields[0], entity.name)]
    for field in fields[1:]:
        lines.append(f"{speaker_a}: {render.question(rng, entity, field)}")
        lines.append(f"{speaker_b}: " + render.fact_sentence(rng, entity, field, entity.pronoun))
    closing = rng.choice(["Thanks, that helps.", "I did not know that.", "Interesting!"])
    lines.append(f"{speaker_a}: {closing}")
    return "\n".join(lines)


def howto(rng: random.Random, product: Entity, world) -> str:
    """Simple instructions for buying a product, stating where its maker is."""
    maker = world.by_name.get(product.facts["maker"])
    steps = [f"How to buy {product.name}", "",
             render.fact_sentence(rng, product, "kind", product.name)]
    if maker is not None:
        steps.append(f"First, travel to {maker.facts['town']}, where {maker.name} is based.")
    steps.append(f"Then ask at the counter for {product.name}.")
    steps.append(f"Bring {product.facts['price']} crowns, because that is what it costs.")
    last = rng.choice(["check it carefully", "keep the receipt", "say thank you"])
    steps.append(f"Finally, {last} before you leave.")
    return "\n".join(steps)


def world_document(rng: random.Random, world) -> str:
    """One random document about the visible (not withheld) part of the world."""
    style = rng.choices(["article", "narrative", "dialogue", "howto"], [4, 3, 2, 1])[0]
    if style == "narrative":
        return narrative(rng, rng.choice(world.visible("person")), world)
    if style == "howto":
        return howto(rng, rng.choice(world.visible("product")), world)
    entity = rng.choice(world.visible())
    return article(rng, entity) if style == "article" else dialogue(rng, entity)
