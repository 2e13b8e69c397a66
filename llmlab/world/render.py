"""Sentences, documents and questions rendered from entity facts."""

from __future__ import annotations

import random
import re

from llmlab.world.entities import Entity

# One list of sentence templates per (kind, field). `{s}` is the subject (the
# name or a pronoun) and `{v}` the value.
FACT_SENTENCES = {
    ("person", "town"): ["{s} lives in {v}.", "{s} comes from {v}.",
                         "{s} is from the town of {v}."],
    ("person", "job"): ["{s} works as a {v}.", "{s} is a {v} by trade.",
                        "By profession, {s_low} is a {v}."],
    ("person", "born"): ["{s} was born in {v}.", "{s} was born in the year {v}."],
    ("person", "employer"): ["{s} works for {v}.", "{s} is employed by {v}.",
                             "{s} has a job at {v}."],
    ("org", "sector"): ["{s} is a {v} company.", "{s} works in {v}.",
                        "The business of {s_low} is {v}."],
    ("org", "founded"): ["{s} was founded in {v}.", "{s} was set up in the year {v}.",
                         "{s} opened in {v}."],
    ("org", "founder"): ["{s} was founded by {v}.", "{v} founded {s_low}.",
                         "The founder of {s_low} is {v}."],
    ("org", "town"): ["{s} is based in {v}.", "The headquarters of {s_low} are in {v}.",
                      "{s} has its main office in {v}."],
    ("org", "staff"): ["{s} employs {v} people.", "{s} has {v} employees.",
                       "About {v} people work at {s_low}."],
    ("product", "maker"): ["{s} is made by {v}.", "{v} makes {s_low}.",
                           "{s} is produced by {v}."],
    ("product", "kind"): ["{s} is a {v}.", "{s} is a kind of {v}.",
                          "{s} is a popular {v}."],
    ("product", "price"): ["{s} costs {v} crowns.", "The price of {s_low} is {v} crowns.",
                           "{s} sells for {v} crowns."],
    ("product", "launched"): ["{s} was launched in {v}.", "{s} first went on sale in {v}.",
                              "{s} came out in {v}."],
    ("event", "kind"): ["{s} is a {v}.", "{s} is a yearly {v}.",
                        "{s} is a well known {v}."],
    ("event", "town"): ["{s} takes place in {v}.", "{s} is held in {v}.",
                        "Every year, {s_low} is held in {v}."],
    ("event", "year"): ["{s} was first held in {v}.", "{s} began in {v}.",
                        "{s} started in the year {v}."],
    ("event", "visitors"): ["{s} draws {v} visitors.", "About {v} people visit {s_low}.",
                            "{s} attracts {v} visitors each year."],
    ("town", "region"): ["{s} lies in {v}.", "{s} is a town in {v}.",
                         "{s} is located in {v}."],
    ("town", "population"): ["{s} has {v} inhabitants.", "About {v} people live in {s_low}.",
                             "The population of {s_low} is {v}."],
    ("town", "founded"): ["{s} was founded in {v}.", "{s} was built in the year {v}.",
                          "{s} dates from {v}."],
}

# Questions per (kind, field); `{n}` is the entity name.
QUESTIONS = {
    ("person", "town"): ["Where does {n} live?", "Which town is {n} from?",
                         "What town does {n} come from?"],
    ("person", "job"): ["What is {n}'s job?", "What does {n} work as?",
                        "What is the profession of {n}?"],
    ("person", "born"): ["When was {n} born?", "In what year was {n} born?"],
    ("person", "employer"): ["Who does {n} work for?", "Which company employs {n}?"],
    ("org", "sector"): ["What industry is {n} in?", "What kind of company is {n}?",
                        "What business is {n} in?"],
    ("org", "founded"): ["When was {n} founded?", "In what year was {n} founded?"],
    ("org", "founder"): ["Who founded {n}?", "Who is the founder of {n}?"],
    ("org", "town"): ["Where is {n} based?", "In which town is {n} based?",
                      "Where are the headquarters of {n}?"],
    ("org", "staff"): ["How many people does {n} employ?",
                       "How many employees does {n} have?"],
    ("product", "maker"): ["Who makes {n}?", "Which company produces {n}?"],
    ("product", "kind"): ["What kind of product is {n}?", "What is {n}?"],
    ("product", "price"): ["How much does {n} cost?", "What is the price of {n}?"],
    ("product", "launched"): ["When was {n} launched?", "In what year did {n} come out?"],
    ("event", "kind"): ["What kind of event is {n}?"],
    ("event", "town"): ["Where is {n} held?", "In which town does {n} take place?"],
    ("event", "year"): ["When was {n} first held?", "In what year did {n} begin?"],
    ("event", "visitors"): ["How many visitors does {n} draw?",
                            "How many people visit {n}?"],
    ("town", "region"): ["In which region is {n}?", "Where does {n} lie?"],
    ("town", "population"): ["How many people live in {n}?",
                             "What is the population of {n}?"],
    ("town", "founded"): ["When was {n} founded?"],
}

TRAITS = ["its friendly staff", "a long history", "careful work", "bright colours",
          "a quiet garden", "good prices", "a famous old sign", "strong opinions",
          "early mornings", "a love of music", "fine craftsmanship", "a small museum",
          "a busy harbour", "its stone bridge", "a yearly picnic", "honest advice"]


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def fix_articles(text: str) -> str:
    """Turn "a" into "an" before a word that starts with a vowel."""
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)


def fact_sentence(rng: random.Random, entity: Entity, field: str, subject: str) -> str:
    """State one fact; `subject` is the entity's name or its pronoun."""
    template = rng.choice(FACT_SENTENCES[(entity.kind, field)])
    if not template.startswith(("{s}", "By profession")):
        subject = entity.name  # "The price of it" reads badly, so name it
    text = template.format(s=cap(subject), s_low=subject, v=entity.facts[field])
    return fix_articles(text)


def subject_for(rng: random.Random, entity: Entity, first: bool) -> str:
    """Return the name on first mention, later the name or a pronoun."""
    if first or rng.random() < 0.5:
        return entity.name
    return entity.pronoun


def encyclopedia_doc(entity: Entity, seed: int, fields=None, trait=True) -> str:
    """Render an article about one entity; the same seed gives the same text."""
    rng = random.Random(f"{seed}:{entity.name}")
    fields = list(fields or entity.facts)
    rng.shuffle(fields)
    sentences = [fact_sentence(rng, entity, f, subject_for(rng, entity, i == 0))
                 for i, f in enumerate(fields)]
    if trait and rng.random() < 0.5:
        subject = cap(subject_for(rng, entity, False))
        sentences.insert(rng.randrange(1, len(sentences) + 1),
                         f"{subject} is known for {rng.choice(TRAITS)}.")
    return " ".join(sentences)


def question(rng: random.Random, entity: Entity, field: str) -> str:
    return rng.choice(QUESTIONS[(entity.kind, field)]).format(n=entity.name)


def answer_text(entity: Entity, field: str) -> str:
    return str(entity.facts[field])


SUMMARIES = {
    "person": "{name} is a {job} from {town} who works for {employer}.",
    "org": "{name} is a {sector} company in {town}, founded in {founded} by {founder}.",
    "product": "{name} is a {kind} made by {maker} that costs {price} crowns.",
    "event": "{name} is a {kind} held in {town} since {year}.",
    "town": "{name} is a town in {region} with {population} inhabitants.",
}


def summary(entity: Entity) -> str:
    return fix_articles(cap(SUMMARIES[entity.kind].format(name=entity.name, **entity.facts)))
