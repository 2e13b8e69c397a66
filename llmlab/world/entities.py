"""The entities of the toy world, their facts, and which of them are withheld."""

from __future__ import annotations

import collections
import dataclasses
import random

from llmlab.errors import InvalidArgumentError
from llmlab.world import names

# Answer type of each fact field: "name" (a proper name), "number" (digits) or
# "category" (a value out of a closed list: 8 regions, 20 to 30 of the others).
FIELD_TYPES = {
    "person": {"town": "name", "job": "category", "born": "number", "employer": "name"},
    "org": {"sector": "category", "founded": "number", "founder": "name",
            "town": "name", "staff": "number"},
    "product": {"maker": "name", "kind": "category", "price": "number",
                "launched": "number"},
    "event": {"kind": "category", "town": "name", "year": "number", "visitors": "number"},
    "town": {"region": "category", "population": "number", "founded": "number"},
}


@dataclasses.dataclass
class Entity:
    """One thing in the world: its kind, name, facts and whether it is withheld."""

    kind: str
    name: str
    facts: dict
    gender: str = "n"
    withheld: bool = False

    @property
    def pronoun(self) -> str:
        return {"f": "she", "m": "he"}.get(self.gender, "it")

    @property
    def possessive(self) -> str:
        return {"f": "her", "m": "his"}.get(self.gender, "its")


class NameBook:
    """Hands out names that are not in `taken` and were not handed out recently.

    With `memory=None` every name is remembered, so all names are unique (the
    world itself). Streams of fresh entities pass a `memory` of a few dozen
    names: names stay unique within a passage and never match a world entity,
    while the stream can run far longer than the name space would allow.
    """

    def __init__(self, rng: random.Random, taken: set[str] | None = None,
                 memory: int | None = None):
        self.rng = rng
        self.taken = set(taken or ())
        self.recent = collections.deque(maxlen=memory) if memory else None

    def unique(self, make):
        for _ in range(1000):
            value = make(self.rng)
            name = value[0] if isinstance(value, tuple) else value
            if name in self.taken or name.lower() in self.taken:
                continue
            if self.recent is None:
                self.taken.add(name)
            elif name in self.recent:
                continue
            else:
                self.recent.append(name)
            return value
        raise InvalidArgumentError(
            f"no unused name left after 1000 draws ({len(self.taken)} names taken); "
            "lower the entity counts in llmlab.world.model.COUNTS")


def make_town(book: NameBook, rng: random.Random) -> Entity:
    facts = {"region": rng.choice(names.REGIONS),
             "population": rng.randrange(800, 90000),
             "founded": rng.randrange(1100, 1900)}
    return Entity("town", book.unique(names.town_name), facts)


def make_org(book, rng, towns, people) -> Entity:
    facts = {"sector": rng.choice(names.SECTORS), "founded": rng.randrange(1850, 2021),
             "founder": rng.choice(people).name if people else book.unique(
                 names.person_name)[0],
             "town": rng.choice(towns).name, "staff": rng.randrange(12, 4800)}
    return Entity("org", book.unique(names.org_name), facts)


def make_person(book, rng, towns, orgs) -> Entity:
    name, gender = book.unique(names.person_name)
    facts = {"town": rng.choice(towns).name, "job": rng.choice(names.JOBS),
             "born": rng.randrange(1940, 2006),
             "employer": rng.choice(orgs).name if orgs else book.unique(names.org_name)}
    return Entity("person", name, facts, gender)


def make_product(book, rng, orgs) -> Entity:
    facts = {"maker": rng.choice(orgs).name if orgs else book.unique(names.org_name),
             "kind": rng.choice(names.PRODUCT_KINDS), "price": rng.randrange(3, 950),
             "launched": rng.randrange(1950, 2025)}
    return Entity("product", book.unique(names.product_name), facts)


def make_event(book, rng, towns) -> Entity:
    kind = rng.choice(names.EVENT_KINDS)
    facts = {"kind": kind, "town": rng.choice(towns).name,
             "year": rng.randrange(1950, 2025), "visitors": rng.randrange(150, 25000)}
    return Entity("event", book.unique(lambda r: names.event_name(r, kind)), facts)


def fresh_entities(rng: random.Random, book: NameBook, n: int) -> list[Entity]:
    """Invent `n` entities whose facts point at other freshly invented names.

    Used for reading exercises: their values can only be known from the text
    they appear in, never from memory.
    """
    towns = [make_town(book, rng) for _ in range(3)]
    founders = [Entity("person", book.unique(names.person_name)[0], {}) for _ in range(2)]
    orgs = [make_org(book, rng, towns, founders) for _ in range(2)]
    makers = {"town": lambda: make_town(book, rng),
              "person": lambda: make_person(book, rng, towns, orgs),
              "org": lambda: make_org(book, rng, towns, founders),
              "product": lambda: make_product(book, rng, orgs),
              "event": lambda: make_event(book, rng, towns)}
    kinds = rng.choices(["person", "org", "product", "event", "town"],
                        weights=[4, 3, 2, 2, 1], k=n)
    return [makers[kind]() for kind in kinds]
